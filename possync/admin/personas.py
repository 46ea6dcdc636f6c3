"""`possync personas list|show`: what a marketer needs to see of each persona, and no more personal data."""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterable
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from functions.core import layout
from functions.core.layout import Vendor
from functions.core.loyalty.codecs import persona_from_item
from functions.core.loyalty.repository import PersonaStore
from functions.core.loyalty.values import UNKNOWN_CONSENT, Claim, LedgerEntry, Persona
from functions.core.models import normalize_email, normalize_phone
from possync.admin.audit import AuditLog
from possync.admin.context import AdminContext, TenantOption, admin, parse_id, parse_vendor
from possync.admin.pos_sync_view import pos_sync_rows
from possync.admin.render import Output, OutputOption, cell, console, emit, err_console, fail, guarded, when
from possync.admin.rewards import redemption_rows
from possync.admin.sms import consent_evidence, consent_labels
from possync.admin.tenants import command_line, require_tenant

app = typer.Typer(
    help="Personas: one view of each shopper across POSes (sources, favourite store, membership, points, consent).",
    no_args_is_help=True,
)

_PERSONA_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_PHONE_LIKE = re.compile(r"\+?[\d\s().-]{10,20}")  # persona ids are 32 hex characters: never this


def sms_consent(persona: Persona) -> str:
    return persona.consent.get("sms", UNKNOWN_CONSENT)


def full_name(persona: Persona) -> str:
    return " ".join(part for part in (persona.first_name, persona.last_name) if part)


def mask_phone(phone: str | None) -> str | None:
    """+12065551234 -> +*******1234: enough to tell two people apart, not enough to call them."""
    if not phone:
        return phone
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) <= 4:
        return "*" * len(digits)
    return ("+" if phone.startswith("+") else "") + "*" * (len(digits) - 4) + digits[-4:]


def mask_email(email: str | None) -> str | None:
    """jane.doe@example.com -> j***@example.com."""
    if not email:
        return email
    local, at, domain = email.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def list_personas(
    ddb: Any,
    table: str,
    tenant: str,
    *,
    member_only: bool = False,
    sourced_from: Vendor | None = None,
    limit: int | None = None,
) -> tuple[list[Persona], bool]:
    """A tenant's persona profiles matching the filters (up to `limit`), and whether more matched.

    A filtered scan: PersonaStore.list_personas applies its limit before any filter, which would under-fill
    `--member-only` and `--sourced-from` listings.
    """
    conditions = ["begins_with(pk, :prefix)", "sk = :profile"]
    values: dict[str, Any] = {
        ":prefix": {"S": layout.persona_pk(tenant, "")},
        ":profile": {"S": layout.PERSONA_PROFILE_SK},
    }
    names: dict[str, str] = {}
    if member_only:
        conditions.append("#member = :yes")
        names["#member"] = "member"
        values[":yes"] = {"BOOL": True}
    if sourced_from is not None:
        conditions.append("contains(#sources, :vendor)")
        names["#sources"] = "sources"
        values[":vendor"] = {"S": sourced_from.value}
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": " AND ".join(conditions),
        "ExpressionAttributeValues": values,
    }
    if names:
        kwargs["ExpressionAttributeNames"] = names
    found: list[Persona] = []
    while True:
        response = ddb.scan(**kwargs)
        for item in response.get("Items", []):
            if limit is not None and len(found) >= limit:
                return found, True
            found.append(persona_from_item(item))
        if "LastEvaluatedKey" not in response:
            return found, False
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def identity_claims(persona: Persona) -> list[Claim]:
    """Every identity this persona should hold, from its profile and its source records."""
    claims: list[Claim] = []
    if persona.phone:
        claims.append(Claim("phone", persona.phone))
    if persona.email:
        claims.append(Claim("email", persona.email))
    claims.extend(Claim("pos", record) for record in sorted(persona.source_records))
    return claims


def _resolve(context: AdminContext, store: PersonaStore, tenant: str, who: str) -> str:
    """A persona id, or the persona holding a phone number or email address."""
    text = who.strip()
    if "@" in text:
        claim = Claim("email", normalize_email(text) or "")
        owner = store.claim_owners(tenant, [claim]).get(claim)
        if owner is None:
            fail(f"no persona of tenant {tenant} has that email address")
        return owner
    if _PHONE_LIKE.fullmatch(text):
        phone = normalize_phone(text)
        if phone is None:
            fail("that is not a usable phone number", "give a persona id, an E.164 phone (+12065551234) or an email")
        claim = Claim("phone", phone)
        owner = store.claim_owners(tenant, [claim]).get(claim)
        if owner is None:
            fail(f"no persona of tenant {tenant} has that phone number")
        return owner
    if not _PERSONA_ID.fullmatch(text):
        fail(
            f"{who!r} is not a persona id",
            f"give a persona id (from `{command_line(context, f'personas list --tenant {tenant}')}`), a phone or an "
            "email",
        )
    return text


def _list_row(persona: Persona, consent: str | None = None, *, unmask: bool = False) -> dict[str, Any]:
    return {
        "id": persona.persona_id,
        "name": full_name(persona),
        "phone": persona.phone if unmask else mask_phone(persona.phone),
        "email": persona.email if unmask else mask_email(persona.email),
        "sourced_from": sorted(persona.sources),
        "favourite_store": persona.favourite_store,
        "member": persona.member,
        # the enrolling sale's store-local date (a UTC timestamp's date can be the day after, in the evening)
        "member_since": persona.member_since_date if persona.member else None,
        "points": persona.points,
        "consent_sms": consent or sms_consent(persona),
    }


LIST_COLUMNS = [
    ("id", "id"),
    ("name", "name"),
    ("phone", "phone"),
    ("email", "email"),
    ("sourced_from", "sourced from"),
    ("favourite_store", "favourite store"),
    ("member_since", "member since"),
    ("points", "points"),
    ("consent_sms", "SMS consent"),
]
TABLE_LIMIT = 100  # on screen; exports (-o csv / json) have no limit unless one is given
# The audit log's parameter for exports of unmasked personal data (settings changes name their SSM parameter).
UNMASK_AUDIT_PARAMETER = "personas export (unmasked)"


def sort_key(persona: Persona) -> tuple[str, str, str]:
    return ((persona.last_name or "").lower(), (persona.first_name or "").lower(), persona.persona_id)


def stream_rows(rows: Iterable[dict[str, Any]], output: Output) -> int:
    """Write rows to stdout as they come (CSV: lists `;`-joined; JSON: one array), returning how many."""
    keys = [k for k, _ in LIST_COLUMNS]
    count = 0
    if output is Output.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(keys)
        for row in rows:
            writer.writerow([";".join(v) if isinstance(v := row.get(k), list) else cell(v) for k in keys])
            count += 1
        sys.stdout.flush()
        return count
    sys.stdout.write("[")
    for row in rows:
        sys.stdout.write(("," if count else "") + "\n  " + json.dumps({k: row.get(k) for k in keys}, default=str))
        count += 1
    sys.stdout.write("\n]\n" if count else "]\n")
    sys.stdout.flush()
    return count


@app.command("list")
@guarded
def list_command(
    ctx: typer.Context,
    tenant: TenantOption,
    member_only: Annotated[bool, typer.Option("--member-only", help="Only loyalty members.")] = False,
    sourced_from: Annotated[
        str | None, typer.Option("--sourced-from", help="Only personas sourced from this POS.")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=f"At most this many, after sorting by name (default: {TABLE_LIMIT} on screen, all in an export).",
        ),
    ] = None,
    unmask: Annotated[
        bool,
        typer.Option("--unmask", help="Full phone numbers and emails (the export is audited: who, when, how many)."),
    ] = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """List personas: name, sourced from, favourite store, member since, points, consent (phone and email masked).

    Sorted by last name, then first name. On screen the first 100 and the total; `-o csv` or `-o json` export every
    matching persona (the count goes to stderr), with lists `;`-joined in CSV.

    Examples: possync personas list --tenant acme --member-only --output csv > members.csv

    possync personas list --tenant acme --sourced-from posabit --limit 20
    """
    tenant = parse_id(tenant, "tenant")
    vendor = parse_vendor(sourced_from) if sourced_from else None
    context = admin(ctx)
    require_tenant(context, tenant)
    if unmask and output is Output.TABLE:
        fail("--unmask is for exports", "add -o csv or -o json (the export is audited)")
    personas, _ = list_personas(
        context.client("dynamodb"),
        context.target().personas_table,
        tenant,
        member_only=member_only,
        sourced_from=vendor,
    )
    total = len(personas)
    personas.sort(key=sort_key)
    cap = limit if limit is not None else (TABLE_LIMIT if output is Output.TABLE else None)
    chosen = personas[:cap] if cap is not None else personas
    labels = consent_labels(context.client("dynamodb"), context.target().personas_table, tenant, chosen)
    which = ("members" if member_only else "personas") + (f" sourced from {vendor.value}" if vendor else "")
    if output is not Output.TABLE:
        if unmask:
            AuditLog(context.client("dynamodb"), context.target().control_table).record(
                tenant,
                UNMASK_AUDIT_PARAMETER,
                context.actor(),
                "personas list --unmask",
                None,
                {
                    "output": output.value,
                    "member_only": member_only,
                    "sourced_from": vendor.value if vendor else None,
                    "rows": len(chosen),
                },
            )
        count = stream_rows((_list_row(p, labels.get(p.persona_id), unmask=unmask) for p in chosen), output)
        err_console().print(
            f"{count} of {total} {which} exported"
            + (
                " (phone and email unmasked; audited)"
                if unmask
                else " (phone and email masked; --unmask for full values)"
            ),
            highlight=False,
        )
        return
    rows = [_list_row(p, labels.get(p.persona_id)) for p in chosen]
    for row in rows:
        row["sourced_from"] = ", ".join(row["sourced_from"])
        row["member_since"] = (row["member_since"] or "unknown") if row["member"] else "no"
    emit(
        rows,
        LIST_COLUMNS,
        output,
        title=f"{which.capitalize()} of {tenant}",
        empty=f"no {which} for tenant {tenant} yet (personas appear as shopper records are pulled)",
    )
    if rows:
        more = f"; raise --limit (now {cap}) or export with -o csv to see all" if len(rows) < total else ""
        console().print(
            f"{len(rows)} shown of {total} {which}{more}. "
            f"Full details: `{command_line(context, f'personas show --tenant {tenant} ID')}`.",
            markup=False,
        )


def _ledger_row(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "entry": entry.kind,
        "vendor": entry.vendor,
        "credential": entry.credential_id,
        "pos_id": entry.source_id,
        "points": entry.points,
        "net_cents": entry.net_cents,
        "local_date": entry.local_date,
        "status": entry.status,
        "at": entry.at or None,
        "applied_at": entry.applied_at or None,
    }


def _source_rows(persona: Persona) -> list[dict[str, Any]]:
    rows = []
    for record in sorted(persona.source_records):
        vendor, _, rest = record.partition("#")
        credential, _, pos_id = rest.partition("#")
        supplied = [
            name
            for name, origin in sorted(persona.field_sources.items())
            if (origin.vendor, origin.credential_id, str(origin.pos_id)) == (vendor, credential, pos_id)
        ]
        rows.append({"vendor": vendor, "credential": credential, "pos_id": pos_id, "fields": supplied})
    return rows


@app.command("show")
@guarded
def show_command(
    ctx: typer.Context,
    who: Annotated[str, typer.Argument(metavar="ID", help="Persona id, or a phone number or email it holds.")],
    tenant: TenantOption,
    ledger: Annotated[int, typer.Option(min=0, help="How many of the latest ledger entries to show.")] = 10,
    output: OutputOption = Output.TABLE,
) -> None:
    """One persona in full: profile, sources, identity claims, store visits, latest points ledger entries.

    Example: possync personas show --tenant acme +12065550123
    """
    tenant = parse_id(tenant, "tenant")
    context = admin(ctx)
    if output is Output.CSV:
        fail(
            "show prints one persona: use --output table or json",
            f"for many personas use `{command_line(context, f'personas list --tenant {tenant} --output csv')}`",
        )
    require_tenant(context, tenant)
    store = PersonaStore(context.client("dynamodb"), context.target().personas_table)
    persona_id = _resolve(context, store, tenant, who)
    persona = store.get_persona(tenant, persona_id)
    if persona is None:
        fail(
            f"tenant {tenant} has no persona {persona_id}",
            f"see `{command_line(context, f'personas list --tenant {tenant}')}`",
        )
    claims = identity_claims(persona)
    owners = store.claim_owners(tenant, claims)
    claim_rows = [
        {
            "kind": claim.kind,
            "value": claim.value,
            "held_by": "this persona"
            if owners.get(claim) == persona.persona_id
            else (f"persona {owners[claim]}" if claim in owners else "nobody (not claimed)"),
        }
        for claim in claims
    ]
    visits: list[dict[str, Any]] = [
        {"store": v.store_id, "count": v.count, "last_at": v.last_at or None}
        for v in sorted(persona.visits.values(), key=lambda v: (-v.count, v.store_id))
    ]
    entries = sorted(store.ledger_entries(tenant, persona_id), key=lambda e: (e.at, e.applied_at), reverse=True)
    latest = [_ledger_row(e) for e in entries[:ledger]]
    redemptions = redemption_rows(entries)
    sources = _source_rows(persona)
    consent, evidence = consent_evidence(
        context.client("dynamodb"), context.target().personas_table, tenant, persona.phone
    )
    sms = consent.label if consent else sms_consent(persona)
    synced = pos_sync_rows(
        context.client("dynamodb"),
        context.client("ssm"),
        context.target().names,
        context.target().personas_table,
        context.control(),
        persona,
    )
    if output is Output.JSON:
        view = persona.as_dict()
        view["id"] = view.pop("persona_id")
        view["sourced_from"] = view.pop("sources")
        view.pop("source_records")
        typer.echo(
            json.dumps(
                {
                    **view,
                    "consent": {**dict(persona.consent), "sms": sms},
                    "sms_consent": consent.as_dict() if consent else None,
                    "sms_consent_evidence": [e.as_dict() for e in evidence],
                    "sources": sources,
                    "identity_claims": claim_rows,
                    "visits": visits,
                    "ledger": latest,
                    "ledger_entries": len(entries),
                    "redemptions": redemptions,
                    "pos_sync": synced,
                },
                indent=2,
                default=str,
            )
        )
        return
    card = Table(title=escape(f"Persona {persona.persona_id} of {tenant}"), title_justify="left", show_header=False)
    card.add_column(style="bold")
    card.add_column(overflow="fold")
    membership = "no"
    if persona.member:
        membership = f"yes, since {persona.member_since_date or 'unknown'}" + (
            f" ({persona.member_how})" if persona.member_how else ""
        )
    for label, value in (
        ("name", full_name(persona)),
        ("phone", persona.phone),
        ("email", persona.email),
        ("birth date", persona.birth_date),
        ("sourced from", ", ".join(sorted(persona.sources))),
        ("favourite store", persona.favourite_store or "none yet (needs a sale at a mapped store)"),
        ("member", membership),
        ("points", persona.points),
        ("SMS consent", sms + (f" (source {consent.source})" if consent else "")),
        ("created", when(persona.created_at)),
        ("updated", when(persona.updated_at)),
    ):
        card.add_row(label, escape(cell(value)))
    console().print(card)
    emit(
        [{**s, "fields": ", ".join(s["fields"])} for s in sources],
        [("vendor", "vendor"), ("credential", "credential"), ("pos_id", "POS id"), ("fields", "fields it supplied")],
        Output.TABLE,
        title="Sources",
        empty="no source records",
    )
    emit(
        claim_rows,
        [("kind", "kind"), ("value", "value"), ("held_by", "held by")],
        Output.TABLE,
        title="Identity claims",
        empty="no identity claims",
    )
    emit(
        [{**v, "last_at": when(v["last_at"])} for v in visits],
        [("store", "store"), ("count", "visits"), ("last_at", "last visit")],
        Output.TABLE,
        title="Store visits",
        empty="no visits at mapped stores yet",
    )
    emit(
        [{**e, "at": when(e["at"]), "net": f"{e['net_cents'] / 100:.2f}"} for e in latest],
        [
            ("entry", "entry"),
            ("vendor", "vendor"),
            ("credential", "credential"),
            ("pos_id", "sale / POS id"),
            ("local_date", "store date"),
            ("status", "status"),
            ("net", "net $"),
            ("points", "points"),
            ("at", "when"),
        ],
        Output.TABLE,
        title=f"Points ledger (latest {len(latest)} of {len(entries)})",
        empty="no points ledger entries",
    )
    emit(
        [
            {"at": e.at, "event": e.event, "source": e.source, "details": {k: v for k, v in e.details.items() if v}}
            for e in evidence
        ],
        [("at", "when (UTC)"), ("event", "event"), ("source", "source"), ("details", "evidence")],
        Output.TABLE,
        title="SMS consent evidence (append-only)",
        empty="no SMS consent evidence: never asked, never answered",
    )
    emit(
        [{**r, "at": when(r["at"]), "overdrawn": "yes (flagged)" if r["overdrawn"] else ""} for r in redemptions],
        [(k, k.replace("_", " ")) for k in ("reward", "points", "vendor", "sale", "local_date", "at", "overdrawn")],
        Output.TABLE,
        title="Redemptions",
        empty="no rewards redeemed",
    )
    emit(
        [{**r, "when": when(r["when"]) if r["when"] else ""} for r in synced],
        [(k, k.replace("_", " ")) for k in ("vendor", "credential", "what", "pos_id", "when", "why")],
        Output.TABLE,
        title="Synced to POS (form signups created in POSaBIT / Flourish)",
        empty="no POSaBIT or Flourish credential: nothing to sync to",
    )
