"""Global options anywhere on the line, the local runtime found from any directory, --version, help without noise."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from possync.admin.globals import hoist_global_options
from possync.cli import app
from possync.target import LOCAL_ENV, TargetError, find_local_state, local_target, user_state_file

STATE = {
    "endpoint_url": "http://127.0.0.1:9",
    "region": "us-east-1",
    "prefix": "possync",
    "records_table": "r",
    "control_table": "c",
    "archive_bucket": "b",
    "queue_urls": {},
}


@pytest.fixture
def elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A working directory with no .local/, and a user state path of our own."""
    work = tmp_path / "somewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv(LOCAL_ENV, raising=False)
    return tmp_path


def test_global_options_after_the_subcommand_are_moved_in_front() -> None:
    assert hoist_global_options(["status", "--local"]) == ["--local", "status"]
    assert hoist_global_options(["settings", "show", "-t", "a", "--stage", "dev"]) == [
        "--stage",
        "dev",
        "settings",
        "show",
        "-t",
        "a",
    ]
    assert hoist_global_options(["status", "--region=eu-west-1"]) == ["--region=eu-west-1", "status"]
    assert hoist_global_options(["replay", "--", "--local"]) == ["replay", "--", "--local"]


def test_local_after_the_subcommand_targets_the_local_runtime(elsewhere: Path) -> None:
    result = CliRunner().invoke(app, ["status", "--local"])

    assert result.exit_code == 1
    assert "no local runtime is running" in result.output
    assert str(user_state_file()) in result.output.replace("\n", "")


def test_the_runtime_is_found_from_any_directory_through_the_user_state_path(elsewhere: Path) -> None:
    published = user_state_file()
    assert published.is_relative_to(elsewhere / "run")
    published.parent.mkdir(parents=True)
    published.write_text(json.dumps({**STATE, "pid": os.getpid()}))

    assert find_local_state() == published
    assert local_target().endpoint_url == "http://127.0.0.1:9"


def test_possync_local_names_the_state_file_or_its_directory(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    somewhere = elsewhere / "rt"
    somewhere.mkdir()
    (somewhere / "runtime.json").write_text(json.dumps(STATE))
    monkeypatch.setenv(LOCAL_ENV, str(somewhere))
    assert find_local_state() == somewhere / "runtime.json"
    monkeypatch.setenv(LOCAL_ENV, str(somewhere / "missing.json"))
    with pytest.raises(TargetError, match="POSSYNC_LOCAL names"):
        find_local_state()


def test_a_runtime_that_died_is_reported_as_not_running(elsewhere: Path) -> None:
    published = user_state_file()
    published.parent.mkdir(parents=True)
    published.write_text(json.dumps({**STATE, "pid": 2**22 + 12345}))  # above pid_max: no such process

    with pytest.raises(TargetError, match="no longer running"):
        local_target()


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.output.startswith("possync 0.")


def test_help_shows_no_type_on_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    top = CliRunner().invoke(app, ["--help"])
    listing = CliRunner().invoke(app, ["personas", "list", "--help"])

    assert "<bool>" not in top.output and "<bool>" not in listing.output
    assert "<str>" not in listing.output and "<int>" not in listing.output
    assert "--version" in top.output
    assert "[default: possync-prod]" in top.output  # not eaten as rich markup
    assert "table|json|csv" in listing.output


def test_every_command_has_an_example_in_its_help() -> None:
    from typer.main import get_command

    def leaves(command: object, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], object]]:
        subs = getattr(command, "commands", {})
        if not subs:
            return [(path, command)]
        return [leaf for name, sub in subs.items() for leaf in leaves(sub, (*path, name))]

    found = leaves(get_command(app), ())
    missing = [" ".join(path) for path, command in found if "Example" not in (getattr(command, "help", "") or "")]

    assert len(found) > 20 and not missing, missing


def test_arguments_show_no_type_either(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["settings", "set", "--help"])

    assert "<list[str]>" not in result.output and "KEY=VALUE" in result.output
    assert "Example: possync settings set" in result.output
