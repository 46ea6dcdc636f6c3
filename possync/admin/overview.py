"""`possync tenants show T`: one tenant at a glance (stores and their pulls, personas, members, points, what to fix)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from functions.core.layout import Vendor
from possync.admin import reevaluate
from possync.admin.context import AdminContext, admin, parse_id
from possync.admin.personas import list_personas
from possync.admin.render import Output, OutputOption, age, console, emit, guarded, when
from possync.admin.status import IntervalLookup, credential_status
from possync.admin.stores import unmapped_notices
from possync.admin.tenants import command_line, require_tenant


def tenant_overview(context: AdminContext, tenant: str, now: datetime) -> dict[str, Any]:
    """Everything `tenants show` prints, as data (its JSON output)."""
    found = require_tenant(context, tenant)
    target = context.target()
    control = context.control()
    settings = IntervalLookup(context.client("ssm"), target.names)
    credentials = []
    for vendor in Vendor:
        for entry in control.credentials(vendor, tenant):
            row = credential_status(control, entry, settings, now)
            row["quarantined_now"] = len(control.list_quarantine(tenant, vendor, entry.credential_id))
            credentials.append(row)
    personas, _ = list_personas(context.client("dynamodb"), target.personas_table, tenant)
    members = [p for p in personas if p.member]
    notices = unmapped_notices(context.client("dynamodb"), target.control_table, tenant)
    return {
        "tenant": found.tenant,
        "name": found.name,
        "created_at": found.created_at,
        "created_by": found.created_by,
        "registered": found.registered,
        "credentials": credentials,
        "personas": len(personas),
        "members": len(members),
        "points": sum(p.points for p in personas),
        "personas_by_source": {
            v.value: sum(1 for p in personas if v.value in p.sources)
            for v in Vendor
            if any(v.value in p.sources for p in personas)
        },
        "unmapped_stores": [
            {"vendor": n.vendor.value, "credential": n.credential_id, "location": n.location_id} for n in notices
        ],
        "quarantined": sum(r["quarantined_now"] for r in credentials),
        "reevaluations": reevaluate.status_rows(context, [tenant], now),
    }


def _freshness(row: dict[str, Any]) -> str:
    success = row.get("last_success_at")
    return age(success) if success else "never succeeded"


@guarded
def show_command(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(metavar="TENANT", help="The tenant id (`possync tenants list`).")],
    output: OutputOption = Output.TABLE,
) -> None:
    """One tenant at a glance: each store credential with its health, last outcome and freshness; personas,
    members and points; unmapped stores and quarantined records, with the commands that fix them.

    Example: possync tenants show acme
    """
    context = admin(ctx)
    tenant = parse_id(tenant, "tenant")
    overview = tenant_overview(context, tenant, datetime.now(UTC))
    if output is not Output.TABLE:
        if output is Output.JSON:
            typer.echo(json.dumps(overview, indent=2, default=str))
            return
        emit(
            overview["credentials"],
            [
                ("vendor", "vendor"),
                ("id", "id"),
                ("store", "store"),
                ("active", "active"),
                ("health", "health"),
                ("last_outcome", "last_outcome"),
                ("last_success_at", "last_success_at"),
                ("quarantined_now", "quarantined"),
            ],
            output,
        )
        return
    out = console()
    card = Table(
        title=escape(f"Tenant {tenant}" + (f" ({overview['name']})" if overview["name"] else "")),
        title_justify="left",
        show_header=False,
    )
    card.add_column(style="bold")
    card.add_column(overflow="fold")
    created = when(overview["created_at"]) + (f" by {overview['created_by']}" if overview["created_by"] else "")
    card.add_row("created", escape(created or "not registered (known from its credentials)"))
    card.add_row("store credentials", str(len(overview["credentials"])))
    sources = ", ".join(f"{v}: {n}" for v, n in overview["personas_by_source"].items())
    card.add_row("personas", f"{overview['personas']}" + (f" ({escape(sources)})" if sources else ""))
    card.add_row("members", str(overview["members"]))
    card.add_row("points (all personas)", str(overview["points"]))
    card.add_row("unmapped stores", str(len(overview["unmapped_stores"])))
    card.add_row("quarantined records", str(overview["quarantined"]))
    out.print(card)
    emit(
        [
            {
                **r,
                "freshness": _freshness(r),
                "health": r["health"] + (": " + "; ".join(r["problems"]) if r["problems"] else ""),
            }
            for r in overview["credentials"]
        ],
        [
            ("vendor", "vendor"),
            ("id", "id"),
            ("store", "store"),
            ("active", "active"),
            ("last_outcome", "last outcome"),
            ("freshness", "last success"),
            ("quarantined_now", "quarantined"),
            ("health", "health"),
        ],
        Output.TABLE,
        title="Store credentials",
        empty="no store credentials yet: "
        f"`{command_line(context, f'credentials add VENDOR --tenant {tenant} --id ID')}`",
    )
    for found in overview["reevaluations"]:
        out.print(reevaluate.status_table(found))
    hints = []
    if any(r["last_outcome"] is None and r["active"] for r in overview["credentials"]):
        hints.append(f"pull the new stores now: `{command_line(context, f'pull --tenant {tenant} --wait')}`")
    if any(r["problems"] for r in overview["credentials"]):
        hints.append(f"details of each pull: `{command_line(context, f'status --tenant {tenant}')}`")
    if overview["unmapped_stores"]:
        hints.append(f"map the unmapped stores: `{command_line(context, f'stores unmapped --tenant {tenant}')}`")
    if overview["quarantined"]:
        hints.append(f"see the quarantined records: `{command_line(context, f'quarantine list --tenant {tenant}')}`")
    hints.append(f"personas: `{command_line(context, f'personas list --tenant {tenant}')}`")
    for hint in hints:
        out.print("Next: " + hint, markup=False)
