"""Hints printed by a command carry its mode and global flags, so they run as printed."""

from __future__ import annotations

from typer.testing import CliRunner

from functions.core.store import ControlStore
from possync.admin.context import AdminContext
from possync.admin.tenants import command_line
from possync.cli import app
from possync.target import Target
from tests.cli.test_status import register


def test_command_line_repeats_the_global_flags_typed() -> None:
    local = AdminContext(local=True)
    staged = AdminContext(global_flags=["--stage", "dev", "--region", "eu-west-1"])

    assert command_line(local, "status --tenant t1") == "possync --local status --tenant t1"
    assert command_line(staged, "status") == "possync --stage dev --region eu-west-1 status"


def run(target: Target, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), obj=AdminContext(target_override=target))
    return " ".join(result.output.split())


def test_hints_carry_local_and_the_required_flags(
    tenants: tuple[str, ...], target: Target, control: ControlStore
) -> None:
    register(control, "store-1")

    unknown = run(target, "settings", "show", "--tenant", "t11", "--local")
    persona = run(target, "personas", "show", "--tenant", "t1", "abc123", "--local")
    no_stores = run(target, "--local", "status", "--tenant", "t2")
    quarantine = run(target, "quarantine", "list", "--tenant", "t1", "--id", "nope", "--local")
    bad = run(target, "--local", "settings", "set", "-t", "t1", "-v", "posabit", "pull_interval_minutes=5")

    assert "`possync --local tenants add t11`" in unknown
    assert "`possync --local personas list --tenant t1`" in persona
    assert "`possync --local credentials add VENDOR --tenant t2 --id ID`" in no_stores
    assert "`possync --local credentials list --tenant t1`" in quarantine
    assert "`possync --local settings show --tenant t1 --vendor posabit`" in bad
