"""The global options: help works anywhere, targets resolve lazily, and say how to fix a missing one."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from functions.core.layout import ResourceNames
from possync.admin.context import AdminContext
from possync.cli import app
from possync.target import Target, TargetError


def test_help_needs_no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # any AWS call would fail

    top = CliRunner().invoke(app, ["--help"])
    sub = CliRunner().invoke(app, ["--local", "settings", "set", "--help"])

    assert top.exit_code == 0
    for command in ("credentials", "settings", "status", "quarantine", "replay", "demo", "--local", "--stack"):
        assert command in top.output
    assert sub.exit_code == 0 and "KEY=VALUE" in sub.output


def test_local_without_a_running_runtime_says_how_to_start_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # a `possync local serve` on this machine is not ours
    monkeypatch.delenv("POSSYNC_LOCAL", raising=False)

    result = CliRunner().invoke(app, ["--local", "status"])

    assert result.exit_code == 1
    assert "no local runtime is running" in result.output and "possync local serve" in result.output


def test_local_and_stack_together_are_refused() -> None:
    result = CliRunner().invoke(app, ["--local", "--stack", "prod", "status"])

    assert result.exit_code == 1
    assert "use one or the other" in result.output


def test_a_stack_that_cannot_be_read_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str | None]] = []

    def unreadable(stack: str, region: str | None) -> Target:
        asked.append((stack, region))
        raise TargetError(f"could not read stack {stack!r} (ClientError); check AWS credentials and region")

    monkeypatch.setattr("possync.admin.context.stack_target", unreadable)

    result = CliRunner().invoke(app, ["--stack", "nope", "--region", "eu-west-1", "credentials", "list"])

    assert result.exit_code == 1
    assert "could not read stack 'nope'" in result.output and "Traceback" not in result.output
    assert asked == [("nope", "eu-west-1")]


def test_changes_against_the_local_runtime_are_attributed_to_the_local_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "dana")
    monkeypatch.setenv("LOGNAME", "dana")
    local = Target(ResourceNames(), "r", "c", "b", endpoint_url="http://127.0.0.1:9", region="us-east-1")

    assert AdminContext(target_override=local).actor() == "local:dana"


def test_piped_output_is_120_columns_and_a_terminal_or_columns_decides_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from possync.admin import render

    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(render.sys.stdout, "isatty", lambda: False, raising=False)
    assert render.output_width() == 120
    monkeypatch.setenv("COLUMNS", "90")
    assert render.output_width() is None  # rich reads $COLUMNS itself


def test_the_demo_tick_table_keeps_whole_headers_on_an_80_column_terminal() -> None:
    import io
    from collections import Counter
    from types import SimpleNamespace

    from rich.console import Console

    from functions.core.layout import Vendor
    from possync.demo import _show_tick

    rt = SimpleNamespace(
        vendors=tuple(Vendor),
        stored_counts=lambda: {v.value: Counter({"shopper": 1_800, "sale": 36_000}) for v in Vendor},
        archived_pages=lambda: {v.value: 1_234 for v in Vendor},
        quarantined=lambda: {},
        statuses=lambda: [{"vendor": v.value, "last_outcome": "ok"} for v in Vendor],
    )
    report = SimpleNamespace(label="tick 1: first pull", seconds=12.5, jobs=[1] * 14, written={("posabit", "s"): 9})
    out = io.StringIO()
    _show_tick(Console(file=out, width=80), rt, report)  # type: ignore[arg-type]

    text = out.getvalue()
    assert "…" not in text
    for word in ("vendor", "shoppers", "products", "archived", "written", "quarantined", "profitek", "36,000"):
        assert word in text
