"""The global options (--local, --stage, --stack, --region) accepted anywhere on the command line, and --version."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

GLOBAL_FLAGS = frozenset({"--local"})
GLOBAL_VALUED = frozenset({"--stage", "--stack", "--region"})


# A possync command quoted in a message (`possync pull ...`); not `possync local serve` or `possync demo`, which
# start a runtime rather than talk to one, and not one that already carries a global option.
_QUOTED_COMMAND = re.compile(r"`possync (?!local |demo\b|--)")


def with_global_options(text: str, flags: Sequence[str]) -> str:
    """Every `possync ...` command quoted in text (a domain error's advice, say) with the global options typed, so
    it runs as printed against the same target."""
    if not flags:
        return text
    return _QUOTED_COMMAND.sub(lambda _: f"`possync {shlex.join(flags)} ", text)


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options typed after a subcommand (`possync status --local`) in front of it, where click reads
    them; everything after a bare `--` stays where it is."""
    hoisted: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        if word == "--":
            rest.extend(args[index:])
            break
        name = word.split("=", 1)[0]
        if word in GLOBAL_FLAGS or (name in GLOBAL_VALUED and "=" in word):
            hoisted.append(word)
        elif word in GLOBAL_VALUED and index + 1 < len(args):
            hoisted.extend(args[index : index + 2])
            index += 1
        else:
            rest.append(word)
        index += 1
    return hoisted + rest


class GlobalOptionsGroup(TyperGroup):
    """The top-level `possync` group: global options may follow the subcommand, as in `gh` or `aws`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's own (vendored) click Context
        return super().parse_args(ctx, hoist_global_options(list(args)))


def possync_version() -> str:
    try:
        return version("possync")
    except PackageNotFoundError:
        return "unknown (not installed as a package)"


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"possync {possync_version()}")
        raise typer.Exit()


_PLAIN_TYPES = {"<str>": "TEXT", "<int>": "INTEGER", "<float>": "NUMBER", "<Path>": "PATH"}


def _display_type(self: TyperOption, ctx: Any) -> str | None:
    """A flag shows no type (`--local`, not `--local <bool>`); a value shows its metavar or a plain word."""
    if self.is_flag:
        return None
    if self.metavar is not None:
        return self.metavar
    shown = TyperOption.display_type(self, ctx)
    if shown.startswith("<") and shown.endswith(">") and "|" in shown:
        return shown[1:-1]  # choices: table|json|csv
    return _PLAIN_TYPES.get(shown, shown.strip("<>").upper())


def quiet_help_types() -> None:
    """Typer's rich help prints a type beside every option, `<bool>` on flags included; possync's help shows a
    type only where a value is expected (installed once, by possync.cli)."""
    TyperOption.display_type_rich = _display_type  # type: ignore[method-assign,assignment]
    # An argument's name or metavar (KEY=VALUE, VENDOR) already says what it takes; `<list[str]>` adds noise.
    TyperArgument.display_type_rich = _no_type  # type: ignore[method-assign,assignment]


def _no_type(self: TyperArgument, ctx: Any) -> str | None:
    return None
