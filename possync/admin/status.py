"""`possync status` (each credential's last pull and cursors) and `possync quarantine list`."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from functions.core.layout import Stream, Vendor
from functions.core.store import Checkpoint, ControlStore, RegisteredCredential
from possync.admin.context import (
    CredentialIdOption,
    OptionalTenant,
    OptionalVendor,
    TenantOption,
    VendorOption,
    admin,
    parse_id,
    parse_vendor,
)
from possync.admin.render import Output, OutputOption, age, cell, console, emit, fail, guarded, when
from possync.admin.tenants import known_tenant, require_tenant

quarantine_app = typer.Typer(
    help="Records a mapping refused: each with its reason and the archived page it came from.", no_args_is_help=True
)

STATUS_FIELDS = (
    ("last_outcome", "last outcome"),
    ("last_attempt_at", "last attempt"),
    ("last_success_at", "last success"),
    ("last_pages", "pages"),
    ("last_records", "records"),
    ("last_changed", "changed"),
    ("last_quarantined", "quarantined"),
    ("last_error", "last error"),
    ("timezone", "store timezone"),
)


def _cursor_text(checkpoint: Checkpoint) -> str | None:
    if checkpoint.cursor is None and not checkpoint.in_progress:
        return None
    text = checkpoint.cursor.isoformat() if checkpoint.cursor else "(none yet)"
    if checkpoint.in_progress:
        text += f" (window open: {checkpoint.pages_done} pages stored, resumes next run)"
    return text


def credential_status(control: ControlStore, entry: RegisteredCredential) -> dict[str, Any]:
    status = control.get_status(entry.tenant, entry.vendor, entry.credential_id)
    row: dict[str, Any] = {
        "tenant": entry.tenant,
        "vendor": entry.vendor.value,
        "id": entry.credential_id,
        "store": entry.attributes.get("store_name") or entry.label,
        "active": entry.active,
        **{key: status.get(key) for key, _ in STATUS_FIELDS},
        "cursors": {},
    }
    for stream in Stream:
        text = _cursor_text(control.get_checkpoint(entry.tenant, entry.vendor, entry.credential_id, stream))
        if text is not None:
            row["cursors"][stream.value] = text
    return row


def _status_table(row: dict[str, Any]) -> Table:
    title = f"{row['tenant']} / {row['vendor']} / {row['id']}" + (f"  ({row['store']})" if row["store"] else "")
    table = Table(title=escape(title), title_justify="left", show_header=False, min_width=60)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("active", cell(row["active"]) + ("" if row["active"] else " (not pulled)"))
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
        table.add_row(label, escape(cell(value)))
    if row["cursors"]:
        for stream, text in row["cursors"].items():
            table.add_row(f"cursor {stream}", escape(text))
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
    """How each credential's pulls are going: last outcome, freshness, counts, last error, cursor per stream."""
    vendors = [parse_vendor(vendor_name)] if vendor_name else list(Vendor)
    context = admin(ctx)
    if tenant is not None:
        tenant = known_tenant(context, tenant)
    control = context.control()
    rows = [credential_status(control, entry) for vendor in vendors for entry in control.credentials(vendor, tenant)]
    rows.sort(key=lambda r: (r["tenant"], r["vendor"], r["id"]))
    if output is Output.TABLE:
        if not rows:
            console().print(
                "no credentials registered; add one with `possync credentials add VENDOR --tenant T --id ID`"
            )
            return
        out = console()
        for row in rows:
            out.print(_status_table(row))
        active = [r for r in rows if r["active"]]
        failed = sum(1 for r in active if r["last_outcome"] not in (None, "ok", "continued"))
        never = sum(1 for r in active if r["last_outcome"] is None)
        if failed:
            out.print(f"[yellow]{failed} of {len(rows)} credentials did not complete their last pull.[/]")
        if never:
            out.print(f"{never} of {len(rows)} credentials have not been pulled yet (next scheduled tick).")
        return
    columns = [("tenant", "tenant"), ("vendor", "vendor"), ("id", "id"), ("store", "store"), ("active", "active")]
    columns += list(STATUS_FIELDS)
    if output is Output.CSV:
        for row in rows:
            row["success_age"] = age(row.get("last_success_at"))
            for stream in Stream:
                row[f"cursor_{stream.value}"] = row["cursors"].get(stream.value)
        columns += [("success_age", "success age")] + [(f"cursor_{s.value}", f"cursor {s.value}") for s in Stream]
    else:
        columns += [("cursors", "cursors")]
    emit(rows, columns, output)


@quarantine_app.command("list")
@guarded
def quarantine_list(
    ctx: typer.Context,
    tenant: TenantOption,
    vendor_name: VendorOption,
    credential_id: CredentialIdOption,
    output: OutputOption = Output.TABLE,
) -> None:
    """Quarantined records of one credential: stream, POS id, reason, archived page and item position."""
    vendor = parse_vendor(vendor_name)
    tenant = parse_id(tenant, "tenant")
    context = admin(ctx)
    require_tenant(context, tenant)
    control = context.control()
    entries = control.list_quarantine(tenant, vendor, credential_id)
    if not entries and control.get_credential(tenant, vendor, credential_id) is None:
        fail(
            f"tenant {tenant} has no {vendor.value} credential {credential_id}",
            f"see `possync credentials list --tenant {tenant}`",
        )
    rows = []
    for entry in entries:
        stream, _, pos_id = entry["sk"].partition("#")
        rows.append({"stream": stream, "pos_id": pos_id, **entry})
    emit(
        rows,
        [
            ("stream", "stream"),
            ("pos_id", "POS id"),
            ("reason", "reason"),
            ("archive_key", "archived page"),
            ("item_index", "item"),
        ],
        output,
        title=f"Quarantine of {tenant} / {vendor.value} / {credential_id}",
        empty=f"nothing quarantined for {tenant} / {vendor.value} / {credential_id}",
    )
    if rows and output is Output.TABLE:
        console().print(
            f"{len(rows)} quarantined. After a mapping fix, `possync replay --tenant {tenant} --vendor {vendor.value} "
            f"--credential {credential_id} --from DATE --to DATE` rebuilds them from the archive."
        )
