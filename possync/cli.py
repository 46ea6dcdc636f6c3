"""The `possync` command: the local demo and runtime, and admin commands against a stack or the local runtime."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console

from functions.core.layout import Vendor
from possync.admin import credentials as admin_credentials
from possync.admin import personas as admin_personas
from possync.admin import reevaluate as admin_reevaluate
from possync.admin import replay_cmd as admin_replay
from possync.admin import rewards as admin_rewards
from possync.admin import settings as admin_settings
from possync.admin import status as admin_status
from possync.admin import stores as admin_stores
from possync.admin import tenants as admin_tenants
from possync.admin.context import admin_options
from possync.admin.render import output_width
from possync.local.runtime import DEMO_SCALE, LocalRuntime, Scale

app = typer.Typer(
    name="possync",
    help="possync: POS data to loyalty personas. Run `possync demo` to see it work with no AWS account.",
    no_args_is_help=True,
    add_completion=False,
)
local_app = typer.Typer(help="The embedded default: moto and the POS simulators on this machine.", no_args_is_help=True)
app.add_typer(local_app, name="local")
app.callback()(admin_options)
app.add_typer(admin_tenants.app, name="tenants")
app.add_typer(admin_credentials.app, name="credentials")
app.add_typer(admin_settings.app, name="settings")
app.add_typer(admin_stores.app, name="stores")
app.add_typer(admin_personas.app, name="personas")
app.add_typer(admin_rewards.app, name="rewards")
app.command("status")(admin_status.status_command)
app.add_typer(admin_status.quarantine_app, name="quarantine")
app.command("replay")(admin_replay.replay_command)
app.command("reevaluate")(admin_reevaluate.reevaluate_command)

console = Console(width=output_width())
# How often `possync local serve` looks for re-evaluation jobs the CLI queued.
JOB_POLL_SECONDS = 2.0


def _vendors(value: str | None) -> tuple[Vendor, ...] | None:
    if not value:
        return None
    try:
        return tuple(Vendor(v.strip()) for v in value.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(f"vendors are {', '.join(v.value for v in Vendor)}") from None


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="Customers per store.", min=1)] = DEMO_SCALE.customers_per_store,
    sales: Annotated[int, typer.Option(help="Sales per store.", min=1)] = DEMO_SCALE.sales_per_store,
    vendors: Annotated[str | None, typer.Option(help="Comma-separated vendors (default: all five).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the simulators' data.")] = 7,
) -> None:
    """Run possync's main job locally: pull every demo store into personas, members and points, then pull again
    after new sales arrive. Everything runs on this machine (moto and POS simulators); no AWS account is used."""
    from possync.demo import run_demo

    outcome = run_demo(console, Scale(customers, sales), vendors=_vendors(vendors), seed=seed)
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
    tick_minutes: Annotated[float, typer.Option(help="Minutes between schedule ticks (0: only the first).")] = 0,
) -> None:
    """Keep a local runtime up so `possync --local ...` commands can talk to it; Ctrl-C stops it.

    Re-evaluation jobs (queued by `possync --local settings set`, `stores map` or `reevaluate`) run within a few
    seconds, as the job queue's event source mapping would run them.
    """
    with LocalRuntime(vendors=_vendors(vendors)) as rt:
        rt.register_tenants()
        console.print(f"Local runtime up: moto at {rt.state()['endpoint_url']}; state in {rt.state_file}")
        rt.tick("first pull")
        console.print("First pull done. Ctrl-C to stop.")
        next_tick = time.monotonic() + max(1.0, tick_minutes * 60) if tick_minutes else None
        try:
            while True:
                time.sleep(JOB_POLL_SECONDS)
                for job in rt.reevaluate():
                    where = f"{job.body.get('tenant', '?')}/{job.body.get('vendor', '?')}"
                    console.print(f"re-evaluation message for {where}: {'done' if job.ok else 'failed (retried)'}")
                if next_tick is not None and time.monotonic() >= next_tick:
                    next_tick += max(1.0, tick_minutes * 60)
                    report = rt.tick("scheduled pull")
                    console.print(f"tick: {len(report.jobs)} jobs, {sum(report.written.values())} records written")
        except KeyboardInterrupt:
            console.print("stopping")


def main() -> None:
    app()
