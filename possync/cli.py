"""The `possync` command: the local demo and runtime, and admin commands against a stack or the local runtime."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console

from functions.core.layout import Vendor
from infra.defaults import DEFAULT_DISPATCH_TICK_MINUTES
from possync.admin import credentials as admin_credentials
from possync.admin import overview as admin_overview
from possync.admin import personas as admin_personas
from possync.admin import pull as admin_pull
from possync.admin import reevaluate as admin_reevaluate
from possync.admin import replay_cmd as admin_replay
from possync.admin import rewards as admin_rewards
from possync.admin import settings as admin_settings
from possync.admin import signup_cmd as admin_signup_cmd
from possync.admin import signup_keys as admin_signup_keys
from possync.admin import sms as admin_sms
from possync.admin import status as admin_status
from possync.admin import stores as admin_stores
from possync.admin import tenants as admin_tenants
from possync.admin.context import admin_options
from possync.admin.globals import GlobalOptionsGroup, quiet_help_types
from possync.admin.render import fail, output_width
from possync.local.runtime import DEMO_SCALE, RuntimeBusyError, Scale

quiet_help_types()
app = typer.Typer(
    cls=GlobalOptionsGroup,
    name="possync",
    help="possync: POS data to loyalty personas. Run `possync demo` to see it work with no AWS account.",
    no_args_is_help=True,
    add_completion=False,
)
local_app = typer.Typer(help="The embedded default: moto and the POS simulators on this machine.", no_args_is_help=True)
app.add_typer(local_app, name="local")
app.callback()(admin_options)
admin_tenants.app.command("show")(admin_overview.show_command)
app.add_typer(admin_tenants.app, name="tenants")
app.add_typer(admin_credentials.app, name="credentials")
app.add_typer(admin_settings.app, name="settings")
app.add_typer(admin_stores.app, name="stores")
admin_personas.app.command("signup")(admin_signup_cmd.signup_command)
app.add_typer(admin_personas.app, name="personas")
app.add_typer(admin_sms.app, name="sms")
app.add_typer(admin_rewards.app, name="rewards")
app.add_typer(admin_signup_keys.app, name="signup-keys")
app.command("status")(admin_status.status_command)
app.add_typer(admin_status.quarantine_app, name="quarantine")
app.command("replay")(admin_replay.replay_command)
app.command("reevaluate")(admin_reevaluate.reevaluate_command)
app.command("pull")(admin_pull.pull_command)


def _console() -> Console:
    """Built per command, so its width follows $COLUMNS as the command runs (not as the module was imported)."""
    return Console(width=output_width(), emoji=False)  # no ":cd:" emoji inside ids


def _vendors(value: str | None) -> tuple[Vendor, ...] | None:
    if not value:
        return None
    try:
        return tuple(Vendor(v.strip()) for v in value.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(f"vendors are {', '.join(v.value for v in Vendor)}") from None


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("give an ISO-8601 instant, e.g. 2026-03-08T21:30:00-08:00") from None
    if moment.tzinfo is None:
        raise typer.BadParameter("give the instant's UTC offset too, e.g. 2026-03-08T21:30:00-08:00 or ...Z")
    return moment


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="Customers per store.", min=1)] = DEMO_SCALE.customers_per_store,
    sales: Annotated[int, typer.Option(help="Sales per store.", min=1)] = DEMO_SCALE.sales_per_store,
    vendors: Annotated[str | None, typer.Option(help="Comma-separated vendors (default: all five).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the simulators' data.")] = 7,
    now: Annotated[
        str | None,
        typer.Option(
            help="Run the SMS opt-in as if at this ISO-8601 instant with its offset (e.g. 2026-03-08T21:30:00-08:00), "
            "to see quiet hours at any time of day."
        ),
    ] = None,
) -> None:
    """Run possync's main job locally: pull every demo store into personas, members and points, then pull again
    after new sales arrive. Everything runs on this machine (moto and POS simulators); no AWS account is used.

    Example: possync demo --vendors posabit,flourish --customers 20 --sales 40
    """
    from possync.demo import run_demo

    console = _console()
    try:
        outcome = run_demo(console, Scale(customers, sales), vendors=_vendors(vendors), seed=seed, now=_instant(now))
    except RuntimeBusyError as exc:
        fail(str(exc))
    if outcome["failed_jobs"]:
        console.print(f"[red]{len(outcome['failed_jobs'])} pull jobs failed; see .local/lambda.log[/]")  # type: ignore[arg-type]
        raise typer.Exit(1)
    if outcome["unhealthy"]:
        console.print("[red]Some pulls need attention (see Pull health above and .local/lambda.log)[/]")
        raise typer.Exit(1)
    if outcome["rule_failures"]:
        console.print("[red]Some stream records could not be applied; see .local/lambda.log[/]")
        raise typer.Exit(1)


@local_app.command("serve")
def local_serve(
    vendors: Annotated[str | None, typer.Option(help="Comma-separated vendors (default: all five).")] = None,
    tick_minutes: Annotated[
        float | None,
        typer.Option(
            help=f"Minutes between schedule ticks (default: the deployment's {DEFAULT_DISPATCH_TICK_MINUTES}; "
            "0: only the first pull)."
        ),
    ] = None,
    customers: Annotated[int, typer.Option(help="Customers per store.", min=1)] = DEMO_SCALE.customers_per_store,
    sales: Annotated[int, typer.Option(help="Sales per store.", min=1)] = DEMO_SCALE.sales_per_store,
    seed: Annotated[int, typer.Option(help="Seed for the simulators' data.")] = 7,
    allow_private_hosts: Annotated[
        bool,
        typer.Option(
            "--allow-private-hosts",
            help="Let the on-premises pulls call private addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7), "
            "so `possync --local credentials add` accepts a private --ip-port; loopback and metadata stay refused.",
        ),
    ] = False,
) -> None:
    """Keep a local runtime up so `possync --local ...` commands can talk to it (from any directory); Ctrl-C stops it.

    It prints the demo tenants and commands to try, ticks like the schedule, and runs within a few seconds the
    pulls (`possync --local pull`) and re-evaluations (`settings set`, `stores map`, `reevaluate`) you queue.

    Example: possync local serve --vendors posabit,flourish --customers 20 --sales 40 --tick-minutes 5
    """
    from possync.local.serve import serve

    try:
        serve(
            _console(),
            vendors=_vendors(vendors),
            scale=Scale(customers, sales),
            seed=seed,
            tick_minutes=tick_minutes,
            allow_private_hosts=allow_private_hosts,
        )
    except RuntimeBusyError as exc:
        fail(str(exc))


def main() -> None:
    app()
