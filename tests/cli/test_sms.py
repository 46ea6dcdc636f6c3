"""`possync sms outbox|reply` and the SMS consent `possync personas list|show` display."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from functions.core.observability import logger
from functions.core.sms.gateway import read_outbox
from functions.core.streams import BatchFailures, RecordChange, StreamChange
from possync.target import user_state_file
from tests.cli.conftest import Invoke
from tests.integration.optin_world import NUMBER, TENANT, World, make_world


@pytest.fixture
def asked(resources: Any, cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """Persona p1 of t1 was sent its opt-in request (by the consumer's rules, through a fake provider)."""
    monkeypatch.chdir(tmp_path)
    world = make_world(resources)
    world.shopper()
    sale = world.sale()
    world.service().batch([StreamChange("1", "k", RecordChange(sale.kind, 1, sale))], BatchFailures())
    assert world.gateway.kinds() == ["optin_request"]
    return world


def test_reply_yes_confirms_and_answers_through_the_outbox(asked: World, cli: Invoke, tmp_path: Path) -> None:
    result = cli("sms", "reply", "--local", "--from", "(206) 555-0123", "--text", "YES")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("confirmed:")
    [line] = read_outbox(tmp_path / ".local" / "outbox.jsonl")
    assert (line["tenant"], line["to"], line["kind"]) == (TENANT, NUMBER, "confirmation")
    assert "Our store: you're in" in line["body"]
    # the outbox command lists it
    listed = cli("sms", "outbox", "--output", "json")
    assert listed.exit_code == 0 and [r["kind"] for r in json.loads(listed.stdout)] == ["confirmation"]


def test_reply_and_outbox_use_the_runtimes_outbox_from_any_directory(
    asked: World, cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a running runtime started in serve/, published as a runtime from before outbox paths were absolute
    workdir = tmp_path / "serve" / ".local"
    workdir.mkdir(parents=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    published = user_state_file()
    published.parent.mkdir(parents=True)
    state = {"pid": os.getpid(), "workdir": str(workdir), "sms_outbox": ".local/outbox.jsonl"}
    published.write_text(json.dumps(state))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # When a shopper's reply is simulated, and the outbox listed, from another directory
    replied = cli("sms", "reply", "--local", "--from", NUMBER, "--text", "YES")
    listed = cli("sms", "outbox", "--output", "json")
    # Then the confirmation went to the runtime's outbox, not to a new one here, and the listing reads it
    assert replied.exit_code == 0 and replied.output.startswith("confirmed:"), replied.output
    assert [line["kind"] for line in read_outbox(workdir / "outbox.jsonl")] == ["confirmation"]
    assert not (elsewhere / ".local").exists()
    assert listed.exit_code == 0 and [r["kind"] for r in json.loads(listed.stdout)] == ["confirmation"]


def test_reply_from_an_unknown_number_changes_nothing(asked: World, cli: Invoke, tmp_path: Path) -> None:
    result = cli("sms", "reply", "--local", "--from", "+12065550999", "--text", "STOP")
    assert result.exit_code == 0 and result.output.startswith("unknown:")
    assert read_outbox(tmp_path / ".local" / "outbox.jsonl") == []


def test_reply_needs_local_and_a_number(cli: Invoke) -> None:
    result = cli("sms", "reply", "--from", "+12065550123", "--text", "YES")
    assert result.exit_code == 1 and "add --local" in result.output
    result = cli("sms", "reply", "--local", "--from", "12", "--text", "YES")
    assert result.exit_code == 1 and "E.164" in result.output


def test_personas_show_the_consent_state_and_its_evidence(asked: World, cli: Invoke) -> None:
    cli("sms", "reply", "--local", "--from", NUMBER, "--text", "Yes!")
    listed = cli("personas", "list", "--tenant", TENANT, "--output", "json")
    assert listed.exit_code == 0, listed.output
    assert [p["consent_sms"] for p in json.loads(listed.stdout)] == ["opted_in"]
    shown = cli("personas", "show", "p1", "--tenant", TENANT, "--output", "json")
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.output)
    assert view["consent"]["sms"] == "opted_in" and view["sms_consent"]["source"] == "optin"
    events = [e["event"] for e in view["sms_consent_evidence"]]
    assert events == ["requested", "sent", "replied", "confirmed", "sent"]
    requested = view["sms_consent_evidence"][0]
    assert requested["template_version"] == 1 and "Reply YES to join" in requested["text"]
    assert view["sms_consent_evidence"][1]["message_id"] == "msg-1"
    assert view["sms_consent_evidence"][2]["body"] == "Yes!"
    table = cli("personas", "show", "p1", "--tenant", TENANT)
    assert "SMS consent evidence (append-only)" in table.output and "opted_in (source optin)" in table.output


def test_templates_are_checked_when_set(cli: Invoke) -> None:
    too_long = '{"help": "{brand} {program}. Msg & data rates may apply. Reply STOP to cancel. ' + "x" * 480 + '"}'
    refused = cli("settings", "set", "--tenant", "t1", f"sms_templates={too_long}")
    assert refused.exit_code == 1
    assert "SMS template help is" in refused.output and "segments; at most 3" in refused.output
    missing = cli("settings", "set", "--tenant", "t1", 'sms_templates={"stop_ack": "Bye"}')
    assert missing.exit_code == 1 and "stop_ack must contain '{brand}'" in missing.output
    ok = '{"stop_ack": "{brand}: you will get no more texts."}'
    assert cli("settings", "set", "--tenant", "t1", f"sms_templates={ok}", "sms_template_version=2").exit_code == 0
    assert cli("settings", "set", "--tenant", "t1", "sms_templates=nope").exit_code == 1


def test_reply_keeps_the_rules_log_lines_off_the_terminal(
    asked: World, cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the shared Powertools logger writing to the terminal (here, a buffer standing in for it)
    terminal = io.StringIO()
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            monkeypatch.setattr(handler, "stream", terminal)

    # When a reply from a number never texted is simulated (the rules log it at INFO)
    result = cli("sms", "reply", "--local", "--from", "+12065550999", "--text", "YES")

    # Then the terminal shows only the command's own line, and the log line is in .local/cli.log
    assert result.exit_code == 0 and result.output.startswith("unknown:")
    assert terminal.getvalue() == ""
    assert '"level":"INFO"' in (tmp_path / ".local" / "cli.log").read_text()


def test_outbox_refuses_an_unknown_kind(asked: World, cli: Invoke) -> None:
    known = cli("sms", "outbox", "--kind", "OPTIN_REQUEST", "--output", "json")
    result = cli("sms", "outbox", "--kind", "bogus")

    assert known.exit_code == 0, known.output
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "'bogus' is not one of 'optin_request', 'confirmation', 'help', 'stop_ack'" in text
