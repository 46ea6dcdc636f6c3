"""`possync personas list|show`: what a marketer needs to see of each persona, and no more personal data."""

from __future__ import annotations

import json
import re
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
from possync.admin.context import TenantOption, admin, parse_id, parse_vendor
from possync.admin.render import Output, OutputOption, cell, console, emit, fail, guarded, when
from possync.admin.rewards import redemption_rows
from possync.admin.tenants import require_tenant

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


def _resolve(store: PersonaStore, tenant: str, who: str) -> str:
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
        fail(f"{who!r} is not a persona id", "give a persona id (from `possync personas list`), a phone or an email")
    return text


def _list_row(persona: Persona) -> dict[str, Any]:
    return {
        "id": persona.persona_id,
        "name": full_name(persona),
        "phone": mask_phone(persona.phone),
        "email": mask_email(persona.email),
        "sourced_from": sorted(persona.sources),
        "favourite_store": persona.favourite_store,
        "member": persona.member,
        # the enrolling sale's store-local date (a UTC timestamp's date can be the day after, in the evening)
        "member_since": persona.member_since_date if persona.member else None,
        "points": persona.points,
        "consent_sms": sms_consent(persona),
    }


@app.command("list")
@guarded
def list_command(
    ctx: typer.Context,
    tenant: TenantOption,
    member_only: Annotated[bool, typer.Option("--member-only", help="Only loyalty members.")] = False,
    sourced_from: Annotated[
        str | None, typer.Option("--sourced-from", help="Only personas sourced from this POS.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many personas.")] = 100,
    output: OutputOption = Output.TABLE,
) -> None:
    """List personas: name, sourced from, favourite store, member since, points, consent (phone and email masked)."""
    tenant = parse_id(tenant, "tenant")
    vendor = parse_vendor(sourced_from) if sourced_from else None
    context = admin(ctx)
    require_tenant(context, tenant)
    personas, more = list_personas(
        context.client("dynamodb"),
        context.target().personas_table,
        tenant,
        member_only=member_only,
        sourced_from=vendor,
        limit=limit,
    )
    personas.sort(key=lambda p: ((p.last_name or "").lower(), (p.first_name or "").lower(), p.persona_id))
    rows = [_list_row(p) for p in personas]
    if output is Output.TABLE:
        for row in rows:
            row["sourced_from"] = ", ".join(row["sourced_from"])
            row["member_since"] = (row["member_since"] or "unknown") if row["member"] else "no"
    which = ("members" if member_only else "personas") + (f" sourced from {vendor.value}" if vendor else "")
    emit(
        rows,
        [
            ("id", "id"),
            ("name", "name"),
            ("phone", "phone"),
            ("email", "email"),
            ("sourced_from", "sourced from"),
            ("favourite_store", "favourite store"),
            ("member_since", "member since"),
            ("points", "points"),
            ("consent_sms", "SMS consent"),
        ],
        output,
        title=f"{which.capitalize()} of {tenant}",
        empty=f"no {which} for tenant {tenant} yet (personas appear as shopper records are pulled)",
    )
    if output is Output.TABLE and rows:
        console().print(
            f"{len(rows)} shown" + (f"; more match: raise --limit (now {limit})" if more else "") + ". "
            f"Full details: `possync personas show --tenant {tenant} ID`."
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
    """One persona in full: profile, sources, identity claims, store visits, latest points ledger entries."""
    tenant = parse_id(tenant, "tenant")
    if output is Output.CSV:
        fail("show prints one persona: use --output table or json", "for many personas use `possync personas list`")
    context = admin(ctx)
    require_tenant(context, tenant)
    store = PersonaStore(context.client("dynamodb"), context.target().personas_table)
    persona_id = _resolve(store, tenant, who)
    persona = store.get_persona(tenant, persona_id)
    if persona is None:
        fail(f"tenant {tenant} has no persona {persona_id}", f"see `possync personas list --tenant {tenant}`")
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
    if output is Output.JSON:
        view = persona.as_dict()
        view["id"] = view.pop("persona_id")
        view["sourced_from"] = view.pop("sources")
        view.pop("source_records")
        typer.echo(
            json.dumps(
                {
                    **view,
                    "consent": {"sms": sms_consent(persona), **dict(persona.consent)},
                    "sources": sources,
                    "identity_claims": claim_rows,
                    "visits": visits,
                    "ledger": latest,
                    "ledger_entries": len(entries),
                    "redemptions": redemptions,
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
        ("SMS consent", sms_consent(persona)),
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
        [{**r, "at": when(r["at"]), "overdrawn": "yes (flagged)" if r["overdrawn"] else ""} for r in redemptions],
        [(k, k.replace("_", " ")) for k in ("reward", "points", "vendor", "sale", "local_date", "at", "overdrawn")],
        Output.TABLE,
        title="Redemptions",
        empty="no rewards redeemed",
    )
