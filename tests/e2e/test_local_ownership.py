"""One local runtime per directory, and one published: a second `local serve` or `demo` is refused while the first
runs, a runtime removes only its own state files, and a file left by a runtime that died hides nothing."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from functions.core.layout import Vendor
from possync.cli import app
from possync.local import serve as serve_module
from possync.local.runtime import LocalRuntime, Scale
from possync.target import LOCAL_ENV, find_local_state, user_state_file

pytestmark = pytest.mark.e2e

SMALL = Scale(customers_per_store=2, sales_per_store=2)
GONE = 2**22 + 12345  # above pid_max: no such process


@pytest.fixture
def other_process() -> Iterator[int]:
    """A running process that is not this one: it plays the first runtime."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    yield process.pid
    process.kill()
    process.wait()


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory, with a user state path of its own."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv(LOCAL_ENV, raising=False)
    return work


def write_state(path: Path, pid: int, workdir: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"pid": pid, "workdir": str(workdir), "endpoint_url": "http://127.0.0.1:9"})
    path.write_text(text)
    return text


def test_a_demo_where_a_runtime_runs_is_refused_and_changes_nothing(scratch: Path, other_process: int) -> None:
    # Given a runtime running in this directory, with texts in its outbox
    state = write_state(scratch / ".local" / "runtime.json", other_process, scratch / ".local")
    (scratch / ".local" / "outbox.jsonl").write_text('{"kind": "optin_request"}\n')
    # When a demo is started here
    result = CliRunner().invoke(app, ["demo", "--vendors", "posabit", "--customers", "1", "--sales", "1"])
    # Then it is refused, naming the running runtime and how to stop it, and its files are untouched
    assert result.exit_code == 1, result.output
    assert f"a local runtime (process {other_process}) is already running" in result.output
    assert f"kill {other_process}" in result.output
    assert "Traceback" not in result.output
    assert (scratch / ".local" / "runtime.json").read_text() == state
    assert (scratch / ".local" / "outbox.jsonl").read_text() == '{"kind": "optin_request"}\n'


def test_a_second_serve_is_refused_while_the_published_one_runs(
    scratch: Path, other_process: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a runtime serving `--local` from another directory
    published = user_state_file()
    state = write_state(published, other_process, scratch.parent / "first" / ".local")
    monkeypatch.setattr(serve_module, "serve", functools.partial(serve_module.serve, stop_after=lambda: True))
    # When `local serve` is started here
    result = CliRunner().invoke(app, ["local", "serve", "--vendors", "posabit", "--customers", "1", "--sales", "1"])
    # Then it is refused, naming the running one, which stays the one `--local` finds
    assert result.exit_code == 1, result.output
    assert f"process {other_process}, in {scratch.parent / 'first' / '.local'}" in result.output.replace("\n", "")
    assert published.read_text() == state
    assert not (scratch / ".local" / "runtime.json").exists()


def test_a_dead_runtimes_files_are_replaced_and_only_a_runtimes_own_files_removed(
    scratch: Path, other_process: int
) -> None:
    # Given state files left by a runtime that died
    local = scratch / ".local" / "runtime.json"
    write_state(local, GONE, scratch / ".local")
    write_state(user_state_file(), GONE, scratch / ".local")
    with LocalRuntime(vendors=(Vendor.POSABIT,), scale=SMALL, publish=True) as rt:
        # Then a new runtime starts and replaces them with its own
        assert json.loads(local.read_text())["pid"] == os.getpid()
        assert json.loads(user_state_file().read_text())["pid"] == os.getpid()
        assert rt.state_file == local.resolve()
        # When another runtime has written both files since
        taken = write_state(local, other_process, scratch / ".local")
        published = write_state(user_state_file(), other_process, scratch / ".local")
    # Then stopping leaves that runtime's files alone
    assert local.read_text() == taken
    assert user_state_file().read_text() == published


def test_a_dead_runtime_here_does_not_hide_the_published_one(scratch: Path, other_process: int) -> None:
    # Given a state file here from a runtime that died, and a running published one
    write_state(scratch / ".local" / "runtime.json", GONE, scratch / ".local")
    write_state(user_state_file(), other_process, scratch.parent / "first" / ".local")
    # Then `--local` finds the running one
    assert find_local_state() == user_state_file()
