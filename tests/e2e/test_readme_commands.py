"""Every `possync` command in the README's fenced shell blocks runs as written, in order, against one local runtime
(moto and the POS simulators): prompts are answered as a merchant would, files and env vars the commands name exist."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from functions.core import netguard
from functions.core.layout import Vendor
from possync.admin import pull, render
from possync.admin.context import AdminContext
from possync.cli import app
from possync.local.runtime import LocalRuntime, Scale, TenantPlan
from possync.local.signup_server import start_signups
from possync.target import local_target
from simulators.profitek import self_signed_identity

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
# Commands that run until stopped or take minutes: documented, not run here (the e2e and demo tests run them).
LONG_RUNNING = (("local", "serve"), ("demo",))
# The shopper the README's `personas show` finds: a customer of the store the README connects as acme/downtown.
SHOPPER_PHONE = "(206) 555-0123"


def readme_commands(text: str) -> list[str]:
    """The `possync ...` command lines of the README's ```bash blocks, continuation lines joined, in order."""
    commands: list[str] = []
    in_block = False
    pending: str | None = None
    for line in text.splitlines():
        if line.startswith("```"):
            in_block = line.strip() == "```bash" and not in_block
            continue
        if not in_block:
            continue
        stripped = line.strip()
        if pending is not None:
            pending += " " + stripped.rstrip("\\")
            if not stripped.endswith("\\"):
                commands.append(pending)
                pending = None
            continue
        if stripped.startswith("possync "):
            if stripped.endswith("\\"):
                pending = stripped.rstrip("\\")
            else:
                commands.append(stripped)
    return commands


def words_of(command: str) -> tuple[list[str], str | None]:
    """The arguments after `possync`, and the file a `> FILE` redirect names (comments dropped)."""
    words = shlex.split(command, comments=True)[1:]
    if ">" in words:
        at = words.index(">")
        return words[:at], words[at + 1]
    return words, None


def test_the_readme_has_commands_to_run() -> None:
    commands = readme_commands(README.read_text())

    assert len(commands) >= 33
    assert any("192.101.102.103:25565" in c for c in commands)
    assert not any("203.0.113." in c or "198.51.100." in c or "192.0.2." in c for c in commands)


def test_the_address_errors_suggest_is_one_the_check_accepts() -> None:
    host, port = netguard.parse_host_port(netguard.EXAMPLE)

    assert netguard.resolve_allowed(netguard.EXAMPLE, allow_private=False)
    assert (host, port) == ("192.101.102.103", 25565)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    workdir = tmp_path_factory.mktemp("readme")
    plan = (TenantPlan("greenleaf", {Vendor.POSABIT: 1, Vendor.FLOURISH: 1}),)
    with LocalRuntime(
        plan=plan, scale=Scale(customers_per_store=4, sales_per_store=6), workdir=workdir / ".local"
    ) as rt:
        rt.register_tenants()  # the demo tenants `possync local serve` registers (the README shows greenleaf)
        signups = start_signups(rt)  # the signup endpoint and demo key `possync local serve` starts
        try:
            yield rt
        finally:
            signups.stop()


def prompt_answers(rt: LocalRuntime, words: list[str]) -> str | None:
    """What the admin types at the command's prompts: the merchant's secrets of a simulated store, or "y"."""
    if words[:3] == ["credentials", "add", "posabit"]:
        credential = rt.simulators[Vendor.POSABIT].credential_for(rt.simulators[Vendor.POSABIT].stores[0])
        return f"{credential['venue_token']}\n"  # the merchant's one key; the integrator token is the deployment's
    if words[:3] == ["credentials", "add", "flourish"]:
        simulator = rt.simulators[Vendor.FLOURISH]
        return f"{simulator.credential_for(simulator.stores[0])['key']}\n"
    if words[:2] == ["settings", "unset"] or (words[:2] == ["settings", "set"] and "--dry-run" not in words):
        return "y\n"
    return None


def test_every_readme_command_runs_as_written(
    runtime: LocalRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = runtime
    # The files and variables the README's commands name, as the admin would have them.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mall.pem").write_text(self_signed_identity().cert_pem)
    # A shopper with the README's phone number shops at the store the README connects.
    posabit = rt.simulators[Vendor.POSABIT]
    with posabit.lock:
        customer = next(iter(posabit.venue(posabit.stores[0]).customers.values()))
        customer["telephone"] = SHOPPER_PHONE
        # Changed a minute ago: a pull's window ends its settle time before the pull (a second, locally, then rounded
        # down to the second), so a change stamped at the very moment the pull starts waits for the next pull; stamped
        # now, the shopper was missed whenever the commands before the pull took under two seconds.
        customer["updated_at"] = datetime.now(UTC) - timedelta(minutes=1)
    # `pull --wait` waits for the pull Lambda; here the runtime runs the queued job while the command waits.
    monkeypatch.setattr(pull, "sleep", lambda seconds: rt.tick("manual pull", dispatch=False))
    context = AdminContext(target_override=local_target(rt.state_file))
    monkeypatch.setattr(render, "interactive", lambda: True)  # prompt_answers is what the admin types at a terminal
    runner = CliRunner()
    env = {
        "PROFITEK_KEY": "profitek-authkey-0001",
        "POSABIT_INTEGRATOR_TOKEN": rt.simulators[Vendor.POSABIT].integrator_token,
        "COLUMNS": "200",
    }
    ran: list[str] = []
    for command in readme_commands(README.read_text()):
        words, into = words_of(command)
        if any(tuple(words[: len(skip)]) == skip for skip in LONG_RUNNING):
            continue
        result: Any = runner.invoke(app, words, obj=context, input=prompt_answers(rt, words), env=env)
        assert result.exit_code == 0, f"`{command}` exited {result.exit_code}:\n{result.output}"
        if into is not None:
            (tmp_path / into).write_text(result.stdout)
        ran.append(command)
        if words[:1] == ["reevaluate"] or (words[:2] == ["settings", "set"] and "--dry-run" not in words):
            rt.reevaluate()

    assert len(ran) >= 30
    members = (tmp_path / "members.csv").read_text().splitlines()
    assert members[0].startswith("id,name,phone,email,sourced_from")
    assert len(members) >= 2  # enroll_after, confirmed above, enrolled shoppers of the store pulled
    assert "+12065550123" in (tmp_path / "contacts.csv").read_text()  # --unmask: the full number
