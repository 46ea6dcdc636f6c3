"""`possync local serve`: publishes itself so `--local` finds it from any directory, prints the demo tenants and
commands to try, and runs a pull the CLI queues within seconds."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from functions.core.layout import Vendor
from possync.cli import app
from possync.local import serve as serve_module
from possync.local.runtime import Scale
from possync.target import find_local_state, user_state_file

pytestmark = pytest.mark.e2e


def test_serve_is_found_from_anywhere_and_runs_the_pull_the_cli_queues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("POSSYNC_LOCAL", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(serve_module, "JOB_POLL_SECONDS", 0.01)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = io.StringIO()
    calls: list[str] = []

    def stop_after() -> bool:
        calls.append("check")
        if len(calls) == 1:
            # Given a running runtime, from another directory, `--local` after the subcommand finds it
            monkeypatch.chdir(elsewhere)
            assert find_local_state() == user_state_file()
            queued = CliRunner().invoke(
                app, ["pull", "--tenant", "greenleaf", "--vendor", "posabit", "--local"], env={"COLUMNS": "200"}
            )
            assert queued.exit_code == 0, queued.output
            assert "possync --local status --tenant greenleaf" in queued.output
            return False
        return True

    serve_module.serve(
        Console(file=out, width=200),
        vendors=(Vendor.POSABIT,),
        scale=Scale(customers_per_store=2, sales_per_store=2),
        seed=7,
        tick_minutes=0,
        stop_after=stop_after,
    )

    text = out.getvalue()
    assert "Demo tenants:" in text and "greenleaf (2 posabit)" in text
    assert "possync --local pull --tenant greenleaf --wait" in text
    assert "No schedule ticks" in text
    assert "manual pull: 2 pull jobs" in text and "FAILED" not in text
    assert not user_state_file().exists()  # unpublished when it stopped


def test_serve_with_the_default_tick_loads_no_cdk_library(tmp_path: Path) -> None:
    # Given a shell with no `node` on PATH (the CDK's libraries run their code in Node), in a scratch directory
    script = textwrap.dedent(
        """
        import io, sys
        from rich.console import Console
        from typer.testing import CliRunner
        from functions.core.layout import Vendor
        from possync.cli import app
        from possync.local.runtime import Scale
        from possync.local.serve import serve

        assert CliRunner().invoke(app, ["local", "serve", "--help"]).exit_code == 0
        out = io.StringIO()
        serve(Console(file=out, width=200), vendors=(Vendor.POSABIT,), scale=Scale(2, 2), seed=7, tick_minutes=None,
              stop_after=lambda: True)
        print(out.getvalue())
        print("LOADED", sorted({m.split(".")[0] for m in sys.modules} & {"constructs", "jsii", "aws_cdk"}))
        """
    )
    env = {**os.environ, "PATH": str(Path(sys.executable).parent), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    env.pop("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", None)
    env.pop("POSSYNC_LOCAL", None)
    # When `possync local serve` runs without --tick-minutes
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    # Then it ticks at the deployment's default without loading constructs, jsii or aws_cdk
    assert done.returncode == 0, done.stderr[-2000:]
    assert "A schedule tick every 15 minutes" in done.stdout
    assert "LOADED []" in done.stdout
    assert "!!" not in done.stdout + done.stderr  # no Node end-of-life banner


def test_sigterm_stops_serve_as_cleanly_as_ctrl_c(tmp_path: Path) -> None:
    # Given `possync local serve` running in a scratch directory, its state published
    published = tmp_path / "run" / "possync" / "runtime.json"
    local = tmp_path / ".local" / "runtime.json"
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    env.pop("POSSYNC_LOCAL", None)
    command = [str(Path(sys.executable).parent / "possync"), "local", "serve", "--vendors", "posabit"]
    command += ["--customers", "2", "--sales", "2", "--tick-minutes", "0"]
    server = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not (published.exists() and local.exists()) and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert published.exists() and local.exists(), server.stdout.read() if server.poll() is not None else "slow"
        # When it is sent SIGTERM
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    # Then it stops as after Ctrl-C, and leaves no state file naming a dead runtime
    assert server.returncode == 0, output
    assert "stopping" in output
    assert not published.exists() and not local.exists()


def test_a_failed_job_is_named() -> None:
    from possync.local.runtime import JobRecord, TickReport

    report = TickReport(
        "tick", jobs=[JobRecord("pull_posabit", False, {"tenant": "t", "vendor": "posabit", "credential_id": "c1"})]
    )

    assert "1 FAILED: t/posabit/c1" in serve_module.describe_jobs(report)
