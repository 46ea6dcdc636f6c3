"""`possync status` (each credential's health, last pull and cursors; exit 1 when one needs attention) and
`possync quarantine list`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.markup import escape
from rich.table import Table

from functions.core import pull_health
from functions.core.errors import SettingsError
from functions.core.layout import ResourceNames, Stream, Vendor
from functions.core.replay import load_codec
from functions.core.settings import IntegrationSettings, parse_integration_settings
from functions.core.store import Checkpoint, ControlStore, RegisteredCredential
from possync.admin import reevaluate
from possync.admin.context import (
    OptionalTenant,
    OptionalVendor,
    TenantOption,
    admin,
    parse_id,
    parse_vendor,
)
from possync.admin.render import Output, OutputOption, age, cell, console, emit, fail, guarded, when
from possync.admin.tenants import command_line, known_tenant, require_tenant

quarantine_app = typer.Typer(
    help="Records a mapping refused: each with its reason and the archived page it came from.", no_args_is_help=True
)

STATUS_FIELDS = (
    ("health", "health"),
    ("last_outcome", "last outcome"),
    ("last_attempt_at", "last attempt"),
    ("last_success_at", "last success"),
    ("pull_interval_minutes", "pull interval (min)"),
    ("last_pages", "pages"),
    ("last_records", "records"),
    ("last_changed", "changed"),
    ("last_quarantined", "quarantined"),
    ("last_error", "last error"),
    ("timezone", "store timezone"),
)
# Reported beside the outcome: a lease another pull held (who, since, until), a lease that could not be let go,
# a dispatch that could not read the settings, streams whose records no longer match the contract, streams whose
# window did not settle (read again next run).
NOTICE_FIELDS = (
    ("lease_skip", "skipped (lease held)"),
    ("lease_release_failed", "lease not released"),
    ("dispatch_problem", "not dispatched"),
    ("contract_mismatch", "contract mismatch"),
    ("unsettled_streams", "read again next run"),
)


class IntervalLookup:
    """Each integration's pull interval and freeze switch, read once per (tenant, vendor) from SSM."""

    def __init__(self, ssm: Any, names: ResourceNames) -> None:
        self.ssm = ssm
        self.names = names
        self._seen: dict[tuple[str, Vendor], IntegrationSettings | None] = {}

    def __call__(self, tenant: str, vendor: Vendor) -> IntegrationSettings | None:
        """The settings, or None when they cannot be read or are invalid (the last dispatch's interval is used)."""
        key = (tenant, vendor)
        if key not in self._seen:
            parameter = self.names.integration_settings_parameter(tenant, vendor)
            try:
                raw = self.ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
                self._seen[key] = parse_integration_settings(raw, vendor, parameter)
            except ClientError as exc:
                missing = exc.response.get("Error", {}).get("Code") == "ParameterNotFound"
                self._seen[key] = IntegrationSettings(vendor=vendor) if missing else None
            except (BotoCoreError, SettingsError):
                self._seen[key] = None
        return self._seen[key]


def _cursor_text(checkpoint: Checkpoint) -> str | None:
    if checkpoint.cursor is None and not checkpoint.in_progress:
        return None
    text = checkpoint.cursor.isoformat() if checkpoint.cursor else "(none yet)"
    if checkpoint.in_progress:
        text += f" (window open: {checkpoint.pages_done} pages stored, resumes next run)"
    return text


def credential_status(
    control: ControlStore,
    entry: RegisteredCredential,
    settings: Callable[[str, Vendor], IntegrationSettings | None] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One credential's status row; `problems` (and `health`) say why it needs attention, if it does."""
    status = control.get_status(entry.tenant, entry.vendor, entry.credential_id)
    found = settings(entry.tenant, entry.vendor) if settings is not None else None
    interval = found.pull_interval_minutes if found is not None else pull_health.interval_of(status)
    frozen = found.use_last_backup if found is not None else False
    problems = pull_health.problems(status, interval, now or datetime.now(UTC), active=entry.active, frozen=frozen)
    row: dict[str, Any] = {
        "tenant": entry.tenant,
        "vendor": entry.vendor.value,
        "id": entry.credential_id,
        "store": entry.attributes.get("store_name") or entry.label,
        "active": entry.active,
        "frozen": frozen,
        **{key: status.get(key) for key, _ in STATUS_FIELDS},
        "pull_interval_minutes": interval,
        "health": "needs attention" if problems else "ok",
        "problems": problems,
        **{key: status.get(key) or None for key, _ in NOTICE_FIELDS},
        "cursors": {},
    }
    # e.g. POSaBIT balances are read from the customers pages: theirs is the customers' cursor (as replay reads them)
    derived: dict[Stream, Stream] = dict(getattr(load_codec(entry.vendor), "derived_streams", {}))
    for stream in Stream:
        read = derived.get(stream, stream)
        text = _cursor_text(control.get_checkpoint(entry.tenant, entry.vendor, entry.credential_id, read))
        if text is not None:
            row["cursors"][stream.value] = text
    return row


def _notice_text(key: str, value: Any) -> str:
    if key == "lease_skip":
        return (
            f"{when(value.get('at'))}: the {value.get('by', 'pull')} found the lease held by {value.get('holder')}"
            f" since {value.get('since') or '?'} until {value.get('until')}"
        )
    if key == "lease_release_failed":
        return (
            f"{when(value.get('at'))}: {value.get('error')}; pulls are skipped until the lease expires at "
            f"{value.get('lease_until')}"
        )
    if key == "dispatch_problem":
        return f"{when(value.get('at'))}: {value.get('error')}"
    if key == "unsettled_streams":
        return (
            f"{', '.join(value)}: the POS changed records in every pass over the window, so its cursor did not move "
            "(the next pull reads from the same start; a store busy all day settles when it is quiet)"
        )
    return "; ".join(
        f"{stream}: {entry.get('quarantined')} of {entry.get('read')} records quarantined for field "
        f"{entry.get('field')!r} ({entry.get('problem')})"
        for stream, entry in sorted(value.items())
    )


def cursor_age(text: str) -> str:
    """A cursor as people read it: '2026-10-01 08:30 UTC (3h 5m ago)', and what follows the time unchanged."""
    moment, space, rest = text.partition(" ")
    shown = when(moment)
    return (shown + space + rest) if shown else text


def _status_table(row: dict[str, Any]) -> Table:
    title = f"{row['tenant']} / {row['vendor']} / {row['id']}" + (f"  ({row['store']})" if row["store"] else "")
    table = Table(title=escape(title), title_justify="left", show_header=False, min_width=60)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("active", cell(row["active"]) + ("" if row["active"] else " (not pulled)"))
    if row["frozen"]:
        table.add_row("frozen", "use last backup is on: the POS is not called")
    if row["last_outcome"] is None:
        table.add_row("last outcome", "never pulled")
    elif not row.get("last_success_at"):
        table.add_row("last success", "never")
    for key, label in STATUS_FIELDS:
        value = row.get(key)
        if value is None or value == "":
            continue
        if key in ("last_attempt_at", "last_success_at"):
            value = when(value)
        if key == "health" and row["problems"]:
            table.add_row(label, "[red]" + escape("needs attention: " + "; ".join(row["problems"])) + "[/]")
            continue
        table.add_row(label, escape(cell(value)))
    for key, label in NOTICE_FIELDS:
        if row.get(key):
            table.add_row(label, "[yellow]" + escape(_notice_text(key, row[key])) + "[/]")
    if row["cursors"]:
        for stream, text in row["cursors"].items():
            table.add_row(f"cursor {stream}", escape(cursor_age(text)))
    else:
        table.add_row("cursors", "none yet: no window has completed")
    return table


@guarded
def status_command(
    ctx: typer.Context,
    tenant: OptionalTenant = None,
    vendor_name: OptionalVendor = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """How each credential's pulls are going: health, last outcome, freshness, counts, last error, cursors; and each
    re-evaluation of stored records after a settings change: queued, running, done or failed, and what it did.

    Exits 1 when any active credential needs attention (its last pull failed or hit a contract mismatch, or its
    data is older than twice its pull interval) or a re-evaluation failed.

    Example: possync status --tenant acme --vendor posabit
    """
    vendors = [parse_vendor(vendor_name)] if vendor_name else list(Vendor)
    context = admin(ctx)
    if tenant is not None:
        tenant = known_tenant(context, tenant)
    control = context.control()
    settings = IntervalLookup(context.client("ssm"), context.target().names)
    now = datetime.now(UTC)
    rows = [
        credential_status(control, entry, settings, now)
        for vendor in vendors
        for entry in control.credentials(vendor, tenant)
    ]
    rows.sort(key=lambda r: (r["tenant"], r["vendor"], r["id"]))
    unhealthy = [r for r in rows if r["problems"]]
    # Re-evaluations of stored records after settings changes, per tenant and POS (queued, running, done, failed).
    reevaluations = [
        r
        for r in reevaluate.status_rows(context, [tenant] if tenant else {r["tenant"] for r in rows}, now)
        if vendor_name is None or r["vendor"] in {v.value for v in vendors}
    ]
    by_scope = {(r["tenant"], r["vendor"]): r for r in reevaluations}
    for row in rows:
        found = by_scope.get((row["tenant"], row["vendor"]))
        row["reevaluation"] = found
        row["reevaluation_state"] = found["state"] if found else None
    if output is Output.TABLE:
        if not rows:
            console().print(
                "no credentials registered; add one with "
                f"`{command_line(context, 'credentials add VENDOR --tenant ' + (tenant or 'T') + ' --id ID')}`",
                markup=False,
            )
            return
        out = console()
        for row in rows:
            out.print(_status_table(row))
        for found in reevaluations:
            out.print(reevaluate.status_table(found))
        reevaluate.warn_unhealthy(reevaluations)
        active = [r for r in rows if r["active"]]
        failed = sum(1 for r in active if r["last_outcome"] not in (None, "ok", "continued"))
        never = sum(1 for r in active if r["last_outcome"] is None)
        if failed:
            out.print(f"[yellow]{failed} of {len(rows)} credentials did not complete their last pull.[/]")
        if never:
            out.print(f"{never} of {len(rows)} credentials have not been pulled yet (next scheduled tick).")
        if unhealthy:
            out.print(
                f"[red]{len(unhealthy)} of {len(rows)} credentials need attention: "
                + escape(", ".join(f"{r['tenant']}/{r['vendor']}/{r['id']}" for r in unhealthy))
                + "[/] (see `health` above; `"
                + escape(command_line(context, f"quarantine list --tenant {tenant or unhealthy[0]['tenant']}"))
                + "` for contract mismatches)"
            )
    else:
        columns = [("tenant", "tenant"), ("vendor", "vendor"), ("id", "id"), ("store", "store"), ("active", "active")]
        columns += [("frozen", "frozen"), *STATUS_FIELDS, ("problems", "problems"), *NOTICE_FIELDS]
        if output is Output.CSV:
            columns.append(("reevaluation_state", "re-evaluation"))
            for row in rows:
                row["success_age"] = age(row.get("last_success_at"))
                row["problems"] = "; ".join(row["problems"])
                for stream in Stream:
                    row[f"cursor_{stream.value}"] = row["cursors"].get(stream.value)
            columns += [("success_age", "success age")] + [(f"cursor_{s.value}", f"cursor {s.value}") for s in Stream]
        else:
            columns += [("cursors", "cursors"), ("reevaluation", "reevaluation")]
        emit(rows, columns, output)
    if unhealthy or any(r["needs_attention"] for r in reevaluations):
        raise typer.Exit(1)


@quarantine_app.command("list")
@guarded
def quarantine_list(
    ctx: typer.Context,
    tenant: TenantOption,
    vendor_name: OptionalVendor = None,
    credential_id: Annotated[
        str | None, typer.Option("--id", "--credential", help="Only this store credential (its id).")
    ] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Quarantined records of a tenant (or one POS, or one credential): stream, POS id, reason, archived page.

    Example: possync quarantine list --tenant acme --vendor posabit --id downtown
    """
    vendor = parse_vendor(vendor_name) if vendor_name else None
    tenant = parse_id(tenant, "tenant")
    if credential_id is not None:
        credential_id = parse_id(credential_id, "credential id")
    context = admin(ctx)
    require_tenant(context, tenant)
    control = context.control()
    vendors = [vendor] if vendor is not None else list(Vendor)
    credentials = [
        entry
        for v in vendors
        for entry in control.credentials(v, tenant)
        if credential_id is None or entry.credential_id == credential_id
    ]
    if credential_id is not None and not credentials:
        fail(
            f"tenant {tenant} has no {vendor.value + ' ' if vendor else ''}credential {credential_id}",
            f"see `{command_line(context, f'credentials list --tenant {tenant}')}`",
        )
    rows = []
    for entry in credentials:
        for found in control.list_quarantine(tenant, entry.vendor, entry.credential_id):
            stream, _, pos_id = found["sk"].partition("#")
            rows.append(
                {"vendor": entry.vendor.value, "credential": entry.credential_id, "stream": stream, "pos_id": pos_id}
                | found
            )
    scope = " / ".join([tenant, *([vendor.value] if vendor else []), *([credential_id] if credential_id else [])])
    emit(
        rows,
        [
            ("vendor", "vendor"),
            ("credential", "credential"),
            ("stream", "stream"),
            ("pos_id", "POS id"),
            ("field", "field"),
            ("reason", "reason"),
            ("archive_key", "archived page"),
            ("item_index", "item"),
        ],
        output,
        title=f"Quarantine of {scope}",
        empty=f"nothing quarantined for {scope}",
    )
    if rows and output is Output.TABLE:
        first = rows[0]
        replay = (
            f"replay --tenant {tenant} --vendor {first['vendor']} --credential {first['credential']} "
            "--from YYYY-MM-DD --to YYYY-MM-DD"
        )
        console().print(
            f"{len(rows)} quarantined. After a mapping fix, `{command_line(context, replay)}` rebuilds them from the "
            "archive.",
            markup=False,
        )
