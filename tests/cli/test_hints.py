"""Hints printed by a command carry its mode and global flags, so they run as printed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import typer
from typer.testing import CliRunner

import possync
from functions.core.errors import PossyncError
from functions.core.store import ControlStore
from possync.admin import verify
from possync.admin.context import AdminContext, admin_options
from possync.admin.globals import with_global_options
from possync.admin.render import guarded
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


def test_the_reported_hints_carry_local(tenants: tuple[str, ...], target: Target, control: ControlStore) -> None:
    register(control, "store-1")

    reward = run(target, "--local", "rewards", "show", "nothere", "--tenant", "t1")
    removed = run(target, "--local", "rewards", "remove", "nothere", "--tenant", "t1")
    not_an_id = run(target, "--local", "personas", "show", "--tenant", "t1", "x_y")
    csv = run(target, "--local", "personas", "show", "--tenant", "t1", "abc123", "--output", "csv")
    no_keys = run(target, "--local", "signup-keys", "list", "--tenant", "t1")
    revoke = run(target, "--local", "signup-keys", "revoke", "nokey", "--tenant", "t1")
    no_credentials = run(target, "--local", "credentials", "list", "--tenant", "t2")

    assert "`possync --local rewards list --tenant t1`" in reward
    assert "`possync --local rewards list --tenant t1`" in removed
    assert "(from `possync --local personas list --tenant t1`)" in not_an_id
    assert "`possync --local personas list --tenant t1 --output csv`" in csv
    assert "`possync --local signup-keys create --tenant t1` makes one" in no_keys
    assert "`possync --local signup-keys list --tenant t1` shows its keys" in revoke
    assert "`possync --local credentials add VENDOR --tenant t2 --id ID`" in no_credentials


def test_removing_a_credential_locally_says_how_to_add_it_back_locally(
    tenants: tuple[str, ...], target: Target
) -> None:
    env = {"POSSYNC_VERIFY": "false", "VT": "venue-token-123456", "IT": "integrator-token-1234"}
    add = ["credentials", "add", "posabit", "-t", "t1", "--id", "c1", "--store-name", "S"]
    added = CliRunner().invoke(
        app,
        ["--local", *add, "--venue-token-env", "VT", "--integrator-token-env", "IT"],
        obj=AdminContext(target_override=target),
        env=env,
    )
    assert added.exit_code == 0, added.output

    removed = run(target, "--local", "credentials", "remove", "posabit", "-t", "t1", "--id", "c1", "--yes")

    assert "restore-secret" not in removed  # that would go to AWS, not to the local runtime
    assert "`possync --local credentials add posabit --tenant t1 --id c1` with its values restores it" in removed


def test_a_domain_errors_quoted_command_gets_the_global_flags() -> None:
    # Given a command failing with an error raised below the CLI, which cannot know the options typed
    probe = typer.Typer()
    probe.callback()(admin_options)

    @probe.command()
    @guarded
    def fails() -> None:
        raise PossyncError("no such secret; add it with `possync credentials add posabit`; or `possync local serve`")

    # When it runs with --stage and --region
    result = CliRunner().invoke(probe, ["--stage", "dev", "--region", "eu-west-1", "fails"])

    # Then the admin command it quotes carries them, and `possync local serve` (no target) is left as it is
    text = " ".join(result.output.split())
    assert "`possync --stage dev --region eu-west-1 credentials add posabit`" in text
    assert "`possync local serve`" in text


def test_with_global_options_adds_them_once() -> None:
    once = with_global_options("run `possync status`", ["--local"])

    assert once == "run `possync --local status`"
    assert with_global_options(once, ["--local"]) == once
    assert with_global_options("run `possync status`", []) == "run `possync status`"


# Strings that name a possync admin command without being a hint to run it.
NOT_HINTS = {
    ("reevaluate.py", "possync reevaluate"),  # the audit log's action name
    ("demo.py", "Texts are in .local/outbox.jsonl: `possync sms outbox` lists them."),  # reads a file, no target
    ("verify.py", verify._READD_ADVICE.pattern),  # the pattern of the advice it drops from a POS's refusal
}
ADMIN_COMMAND = re.compile(
    r"possync (tenants|credentials|settings|stores|personas|sms|rewards|signup-keys|status|quarantine|replay"
    r"|reevaluate|pull)\b"
)


def _documentation(tree: ast.AST) -> set[int]:
    """Docstrings and help texts: they describe a command, with no target to repeat."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
        if isinstance(node, ast.keyword) and node.arg == "help":
            found.update(id(sub) for sub in ast.walk(node.value))
    return found


def test_no_message_spells_a_possync_command_by_hand() -> None:
    """A hint naming a possync command must be built with `command_line`, which repeats --local and the other global
    options; a literal `possync pull ...` in a message would run against another target than the one typed."""
    root = Path(possync.__file__).parent
    by_hand = []
    for path in sorted(root.rglob("*.py")):
        if "local" in path.relative_to(root).parts:  # the local runtime's own output, not a command's hint
            continue
        tree = ast.parse(path.read_text())
        documentation = _documentation(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in documentation
                and ADMIN_COMMAND.search(node.value)
                and (path.name, node.value) not in NOT_HINTS
            ):
                by_hand.append(f"{path.relative_to(root)}:{node.lineno}: {node.value}")

    assert by_hand == []
