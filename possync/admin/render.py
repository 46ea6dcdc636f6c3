"""Output for the admin commands: tables, JSON and CSV, errors that say what to do next, readable ages."""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer._click.globals import get_current_context  # typer's own (vendored) click; it exports no accessor

from functions.core.errors import PossyncError
from possync.admin.globals import with_global_options
from possync.target import TargetError


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


OutputOption = Annotated[
    Output, typer.Option("--output", "-o", help="table for people, json or csv for scripts.", case_sensitive=False)
]


def output_width() -> int | None:
    """None (rich measures the terminal, or reads $COLUMNS) on a terminal; 120 columns into a file or a pipe,
    where rich would assume 80 and squeeze wide tables."""
    return None if sys.stdout.isatty() or "COLUMNS" in os.environ else 120


def console() -> Console:
    # Built per call: rich then writes to whatever sys.stdout is now (the test runner swaps it).
    # emoji=False: rich would turn ":cd:" inside a hex fingerprint or an id into an emoji.
    return Console(highlight=False, soft_wrap=False, width=output_width(), emoji=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, emoji=False)


def _runnable(text: str) -> str:
    """The text with the global options of the running command added to each `possync ...` it quotes: hints built
    here use `command_line`, but messages of domain errors (functions/) cannot know the options typed."""
    ctx = get_current_context(silent=True)
    flags = getattr(ctx.obj, "global_flags", None) if ctx is not None else None
    return with_global_options(text, flags or [])


def fail(message: str, hint: str | None = None) -> NoReturn:
    """A user error: say what is wrong and what to do next, exit 1."""
    err = err_console()
    err.print(f"[bold red]Error:[/] {escape(_runnable(message))}")  # spelled as click spells its usage errors
    if hint:
        err.print(f"[dim]Hint:[/] {escape(_runnable(hint))}")
    raise typer.Exit(1)


def warn(message: str) -> None:
    err_console().print(f"[yellow]Warning:[/] {escape(_runnable(message))}")


def interactive() -> bool:
    """Whether a person can answer a question: standard input is a terminal (not a pipe, a file or /dev/null)."""
    return sys.stdin is not None and sys.stdin.isatty()


def confirm(question: str) -> None:
    """Ask yes or no, exit 1 on no; with no terminal to ask on, exit 1 at once naming --yes (not click's bare
    "Aborted.")."""
    if not interactive():
        fail(f"cannot ask {question!r} (standard input is not a terminal): pass --yes to go ahead without asking")
    typer.confirm(question, abort=True)


def ask_secret(question: str, *, instead: str) -> str:
    """A secret typed at a hidden prompt; with no terminal, exit 1 saying how else to give it (`instead`), before
    getpass would warn that it cannot hide the input."""
    if not interactive():
        fail(f"cannot ask for the {question} (standard input is not a terminal): {instead}")
    return str(typer.prompt(question, hide_input=True))


P = ParamSpec("P")
R = TypeVar("R")


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Turn domain and AWS failures into one readable error line and exit 1 (never a traceback)."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except TargetError as exc:
            fail(str(exc))
        except NoCredentialsError:
            fail("no AWS credentials found", "configure a profile (AWS_PROFILE) or use --local")
        except NoRegionError:
            fail("no AWS region configured", "pass --region or set AWS_REGION")
        except ClientError as exc:
            error = exc.response.get("Error", {})
            fail(
                f"AWS refused {exc.operation_name}: {error.get('Code', 'error')}",
                "check that your AWS identity may use the possync stack's resources",
            )
        except BotoCoreError as exc:
            fail(f"AWS request failed: {type(exc).__name__}", "check your network and AWS configuration")
        except PossyncError as exc:
            fail(str(exc))

    return run


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


def emit(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[tuple[str, str]],
    output: Output,
    *,
    title: str | None = None,
    empty: str = "nothing to show",
) -> None:
    """Rows as a rich table, a JSON list, or CSV; `columns` is (key, heading), in order."""
    if output is Output.JSON:
        typer.echo(json.dumps([{k: row.get(k) for k, _ in columns} for row in rows], indent=2, default=str))
        return
    if output is Output.CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([k for k, _ in columns])
        for row in rows:
            writer.writerow([cell(row.get(k)) for k, _ in columns])
        typer.echo(buffer.getvalue(), nl=False)
        return
    if not rows:
        console().print(escape(empty))
        return
    table = Table(title=title, title_justify="left", header_style="bold")
    for _, heading in columns:
        table.add_column(heading, overflow="fold")
    for row in rows:
        table.add_row(*(escape(cell(row.get(k))) for k, _ in columns))
    console().print(table)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age(value: str | None, now: datetime | None = None) -> str:
    """'3h 5m ago' for an ISO time; '' when there is none."""
    moment = parse_time(value)
    if moment is None:
        return ""
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 0:
        return "in the future"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h ago"
    if hours:
        return f"{hours}h {minutes}m ago"
    if minutes:
        return f"{minutes}m ago"
    return f"{seconds}s ago"


def when(value: str | None) -> str:
    """An ISO time shortened to the minute, in UTC, with its age."""
    moment = parse_time(value)
    if moment is None:
        return ""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({age(value)})"
