"""With no terminal to answer on (a script, cron, `</dev/null`), a question is an error naming the option to use."""

from __future__ import annotations

import os
import sys

import pytest

from functions.core.layout import Vendor
from functions.core.store import ControlStore
from possync.admin import render
from tests.cli.conftest import Invoke
from tests.cli.test_status import register

REAL_INTERACTIVE = render.interactive  # as imported, before the cli conftest's autouse fixture stands in for it


@pytest.fixture
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "interactive", lambda: False)


def one_line(output: str) -> str:
    return " ".join(output.split())


def test_interactive_is_false_when_stdin_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    with open(os.devnull) as devnull:
        monkeypatch.setattr(sys, "stdin", devnull)
        assert REAL_INTERACTIVE() is False
    monkeypatch.setattr(sys, "stdin", None)  # pythonw, or a closed fd 0
    assert REAL_INTERACTIVE() is False


@pytest.mark.usefixtures("no_terminal")
def test_a_confirmation_names_yes(cli: Invoke, control: ControlStore) -> None:
    register(control, "store-1")

    changed = cli("settings", "set", "-t", "t1", "-v", "posabit", "use_last_backup=true", input="")
    removed = cli("credentials", "remove", "posabit", "--tenant", "t1", "--id", "store-1", input="")

    for result in (changed, removed):
        assert result.exit_code == 1
        assert "(standard input is not a terminal): pass --yes to go ahead without asking" in one_line(result.output)
        assert "Aborted" not in result.output
    assert control.get_credential("t1", Vendor.POSABIT, "store-1") is not None  # nothing was removed


@pytest.mark.usefixtures("no_terminal")
def test_a_secret_prompt_names_the_other_ways_to_give_it(cli: Invoke) -> None:
    result = cli("credentials", "add", "profitek", "-t", "t1", "--id", "op-1", "--store-name", "Mall", input="")

    text = one_line(result.output)
    assert result.exit_code == 1
    assert "Error: cannot ask for the profitek auth key for credential op-1 (standard input is not a terminal)" in text
    assert "--auth-key-env VAR" in text and "--from-json FILE" in text
    assert "Warning" not in text and "Aborted" not in text


@pytest.mark.usefixtures("no_terminal")
def test_the_integrator_token_prompt_names_token_env(cli: Invoke) -> None:
    result = cli("credentials", "integrator-token", "posabit", input="")

    assert result.exit_code == 1 and "pass --token-env VAR" in one_line(result.output)


@pytest.mark.usefixtures("no_terminal")
def test_yes_needs_no_terminal(cli: Invoke, control: ControlStore) -> None:
    register(control, "store-1")

    result = cli("credentials", "remove", "posabit", "--tenant", "t1", "--id", "store-1", "--yes")

    assert result.exit_code == 0, result.output
