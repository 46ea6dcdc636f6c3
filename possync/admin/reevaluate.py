"""Re-evaluation from the CLI: the jobs a saved settings change requests, `possync reevaluate`, and what
`possync status` shows of them (functions/core/reevaluation.py runs them)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from functions.core.errors import AwsServiceError
from functions.core.layout import Vendor
from functions.core.reevaluation import (
    FAILED_STATES,
    ReevaluationRequests,
    RunStatus,
    RunStatuses,
    vendors_with_credentials,
)
from possync.admin.context import AdminContext, OptionalVendor, TenantOption, admin, parse_vendor
from possync.admin.render import cell, console, fail, guarded, warn, when
from possync.admin.tenants import command_line, known_tenant

FORCE_HELP = "Run even if the stored records were last evaluated with the settings in force now."


class NotQueuedError(Exception):
    """The jobs could not be queued; the message says why and what to run."""


def requests(context: AdminContext) -> ReevaluationRequests | None:
    """How this target takes re-evaluation jobs (None: it has no re-evaluation queue)."""
    target = context.target()
    if not target.reevaluation_queue_url:
        return None
    control = context.control()
    return ReevaluationRequests(
        statuses=RunStatuses(context.client("dynamodb"), target.control_table),
        sqs=context.client("sqs"),
        queue_url=target.reevaluation_queue_url,
        vendors_of=lambda tenant: vendors_with_credentials(control, tenant),
    )


def request_jobs(
    context: AdminContext, tenant: str, vendor: Vendor | None, trigger: str, *, force: bool = False
) -> list[Vendor]:
    """Queue the jobs a change calls for: one for an integration, one per POS with credentials for the tenant's
    loyalty settings. NotQueuedError (saying what to run) when the target has no queue or AWS refused."""
    sender = requests(context)
    rerun = command_line(context, f"reevaluate --tenant {tenant}" + (f" --vendor {vendor.value}" if vendor else ""))
    if sender is None:
        raise NotQueuedError(
            f"{context.target().description} has no re-evaluation queue (a stack deployed before re-evaluation "
            f"existed, or an older local runtime): deploy this version, then run `{rerun}`"
        )
    try:
        if vendor is None:
            return sender.request_tenant(tenant, trigger, force=force)
        sender.request(tenant, vendor, trigger, force=force)
    except AwsServiceError as exc:
        raise NotQueuedError(f"{exc}; run `{rerun}` to queue it") from None
    return [vendor]


def after_change(context: AdminContext, tenant: str, vendor: Vendor | None, trigger: str) -> None:
    """After a saved settings change: queue the re-evaluation of the records already stored, and say so."""
    try:
        vendors = request_jobs(context, tenant, vendor, trigger)
    except NotQueuedError as exc:
        fail(
            f"the change was saved, but the records already stored were not re-evaluated: {exc}",
            "new records follow the new settings as they arrive",
        )
    if not vendors:
        console().print(f"{tenant} has no store credentials yet: no stored records to re-evaluate.")
        return
    names = ", ".join(v.value for v in vendors)
    console().print(
        f"Re-evaluation of the stored {names} records of {tenant} queued: `"
        + command_line(context, f"status --tenant {tenant}")
        + "` shows its progress.",
        markup=False,
    )


@guarded
def reevaluate_command(
    ctx: typer.Context,
    tenant: TenantOption,
    vendor_name: OptionalVendor = None,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Apply the settings in force to the records already stored (a settings change does this by itself; run it
    after a failed re-evaluation). Without --vendor: every POS the tenant has credentials for.

    Example: possync reevaluate --tenant acme --vendor posabit
    """
    context = admin(ctx)
    tenant = known_tenant(context, tenant)
    vendor = parse_vendor(vendor_name) if vendor_name else None
    if vendor is not None:
        has = vendors_with_credentials(context.control(), tenant)
        if vendor not in has:
            add = command_line(context, f"credentials add {vendor.value} --tenant {tenant} --id ID")
            fail(
                f"tenant {tenant} has no {vendor.value} credentials: no {vendor.value} records to re-evaluate",
                f"its POSes are {', '.join(v.value for v in has)}; "
                f"`{command_line(context, f'reevaluate --tenant {tenant}')}` re-evaluates them all"
                if has
                else f"connect a store with `{add}`",
            )
    try:
        vendors = request_jobs(context, tenant, vendor, "possync reevaluate", force=force)
    except NotQueuedError as exc:
        fail(str(exc))
    if not vendors:
        fail(
            f"{tenant} has no store credentials: nothing is stored to re-evaluate",
            f"connect one with `{command_line(context, f'credentials add VENDOR --tenant {tenant} --id ID')}`",
        )
    console().print(
        f"Queued {', '.join(v.value for v in vendors)}; `{command_line(context, f'status --tenant {tenant}')}` "
        "shows the progress.",
        markup=False,
    )


# --- what `possync status` shows ----------------------------------------------------------------------------------


def status_rows(context: AdminContext, tenants: Iterable[str], now: datetime) -> list[dict[str, Any]]:
    """One row per tenant and POS with a re-evaluation (running, queued or past)."""
    statuses = RunStatuses(context.client("dynamodb"), context.target().control_table)
    rows = []
    for tenant in sorted(set(tenants)):
        for status in sorted(statuses.of_tenant(tenant), key=lambda s: s.vendor.value):
            rows.append(status_row(status, now))
    return rows


def status_row(status: RunStatus, now: datetime) -> dict[str, Any]:
    state = status.shown_state(now)
    counts = status.counts
    return {
        "tenant": status.tenant,
        "vendor": status.vendor.value,
        "state": state,
        "needs_attention": state in FAILED_STATES,
        "phase": status.phase if state in ("running", "retrying", "stalled") else None,
        "trigger": status.trigger,
        "started_at": status.started_at,
        "finished_at": status.finished_at,
        "records_evaluated": counts.evaluated,
        "members_enrolled": counts.enrolled,
        "points_booked": counts.points,
        "favourite_stores_set": counts.favourites_set,
        "balances_imported": counts.imported,
        "parked_records_applied": counts.waiting_applied,
        "records_still_waiting": counts.still_waiting,
        "unreadable_records": counts.unreadable,
        "optin_requests_sent": counts.texts_sent,
        "optin_requests_deferred": counts.texts_deferred,
        "error": status.error,
        "queued_behind": status.queued_behind,
        "requested_at": status.requested_at,
        "requested_by": status.requested_by,
    }


STATE_STYLE = {"done": "green", "running": "cyan", "queued": "cyan", "retrying": "yellow"}


def status_table(row: dict[str, Any]) -> Table:
    table = Table(
        title=escape(f"re-evaluation {row['tenant']} / {row['vendor']}"),
        title_justify="left",
        show_header=False,
        min_width=60,
    )
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    state = row["state"]
    style = STATE_STYLE.get(state, "red")
    text = state + (f" ({row['phase']} records)" if row["phase"] in ("shopper", "sale", "loyalty_balance") else "")
    if row["phase"] == "waiting":
        text += " (records parked for invalid settings)"
    if state == "stalled":
        text += ": the job's last invocation ended without saying how (timed out?); SQS hands it out again"
    table.add_row("state", f"[{style}]{escape(text)}[/]")
    if row["queued_behind"]:
        table.add_row("queued", "another change waits for this run to end, then runs once")
    if state == "queued" and row["requested_at"]:
        table.add_row("requested", escape(f"{when(row['requested_at'])} by {row['requested_by']}"))
    for key, label in (("trigger", "triggered by"), ("started_at", "started"), ("finished_at", "finished")):
        if row[key]:
            table.add_row(label, escape(when(row[key]) if key.endswith("_at") else cell(row[key])))
    if row["started_at"]:
        table.add_row(
            "effect",
            escape(
                f"{row['records_evaluated']} records evaluated, {row['members_enrolled']} members enrolled, "
                f"{row['points_booked']} points booked, {row['favourite_stores_set']} favourite stores set, "
                f"{row['balances_imported']} balances imported, {row['parked_records_applied']} parked records "
                f"applied, {row['optin_requests_sent']} SMS opt-in requests sent "
                f"({row['optin_requests_deferred']} deferred for quiet hours or the 24 h cap)"
            ),
        )
    if row["records_still_waiting"]:
        table.add_row("waiting", escape(f"{row['records_still_waiting']} records wait for valid settings"))
    if row["unreadable_records"]:
        table.add_row("unreadable", escape(f"{row['unreadable_records']} stored items could not be read as records"))
    if row["error"]:
        table.add_row("last error", f"[{'yellow' if state == 'retrying' else 'red'}]{escape(row['error'])}[/]")
    return table


def warn_unhealthy(rows: list[dict[str, Any]]) -> None:
    failed = [f"{r['tenant']}/{r['vendor']}" for r in rows if r["needs_attention"]]
    if failed:
        warn(f"{len(failed)} re-evaluations need attention: {', '.join(failed)} (see `last error` above)")
