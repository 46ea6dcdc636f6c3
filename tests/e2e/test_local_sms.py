"""End to end: the SMS opt-in on the local runtime, texting through the outbox, shoppers answering, quiet hours."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from functions.core.layout import Vendor
from functions.core.sms.gateway import read_outbox
from possync.cli import app
from possync.local.runtime import LocalRuntime, Scale

pytestmark = pytest.mark.e2e

SMALL = Scale(customers_per_store=10, sales_per_store=20)


def test_demo_texts_through_the_outbox_and_shoppers_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the demo runs as if at noon in Washington (the simulated POSaBIT shoppers' area codes)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        ["demo", "--customers", "10", "--sales", "15", "--vendors", "posabit", "--now", "2026-11-27T12:00:00-08:00"],
    )
    assert result.exit_code == 0, result.output
    # Then requests went out, each number at most once, with the required fields and the runtime's clock
    lines = read_outbox(tmp_path / ".local" / "outbox.jsonl")
    requests = [line for line in lines if line["kind"] == "optin_request"]
    assert requests, result.output
    assert max(Counter(line["to"] for line in requests).values()) == 1
    for line in lines:
        assert set(line) >= {"tenant", "to", "kind", "sent_at", "body"}
        assert line["to"].startswith("+1") and line["kind"] in {"optin_request", "confirmation", "help", "stop_ack"}
        assert line["sent_at"].startswith("2026-11-27T12:0") and line["sent_at"].endswith("-08:00")
    assert requests[0]["body"].startswith(("Greenleaf: ", "High Desert: "))
    # and the simulated shoppers' answers were applied: confirmations and acknowledgements follow their replies
    kinds = Counter(line["kind"] for line in lines)
    assert "SMS opt-in (as if at 2026-11-27T12:00:00-08:00):" in result.output
    assert f"{kinds['optin_request']} requests sent" in result.output
    assert "Simulated shoppers answered:" in result.output
    assert kinds["confirmation"] + kinds["stop_ack"] + kinds["help"] > 0
    # and `possync sms outbox` lists them
    listed = CliRunner().invoke(app, ["sms", "outbox", "--output", "json", "--kind", "optin_request"])
    assert listed.exit_code == 0, listed.output
    assert len(json.loads(listed.output)) == len(requests)


def test_the_published_outbox_path_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a runtime started with the default relative workdir, as `possync local serve` starts it
    monkeypatch.chdir(tmp_path)
    with LocalRuntime(scale=SMALL, vendors=(Vendor.POSABIT,)):
        published = json.loads((tmp_path / ".local" / "runtime.json").read_text())
    # Then what it publishes names its outbox whatever directory the reader runs in
    assert published["sms_outbox"] == str(tmp_path.resolve() / ".local" / "outbox.jsonl")
    assert published["workdir"] == str(tmp_path.resolve() / ".local")


def test_at_night_requests_are_deferred_not_sent(tmp_path: Path) -> None:
    # Given the runtime runs as if at 23:00 in Washington
    night = datetime.fromisoformat("2026-11-27T23:00:00-08:00")
    with LocalRuntime(scale=SMALL, workdir=tmp_path, vendors=(Vendor.POSABIT,), now=night) as rt:
        rt.register_tenants()
        rt.tick("first")
        assert rt.sms is not None
        report = rt.sms.report()
    # Then nothing was texted; the requests wait on the deferral queue for 8:00
    assert [line for line in read_outbox(tmp_path / "outbox.jsonl") if line["kind"] == "optin_request"] == []
    assert report.states["deferred"] > 0 and report.deferred == report.states["deferred"]
