"""Persona rules as pure functions: identity matching and POS-to-persona contact sync."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Literal

from functions.core import layout
from functions.core.loyalty.values import Claim, FieldSource, Persona, SourceVersion, iso
from functions.core.models import PLACEHOLDER_PHONES, Shopper, is_placeholder_email
from functions.core.settings import SYNC_VENDORS, IntegrationSettings

SyncMode = Literal["fill", "overwrite"]


# --- identity ------------------------------------------------------------------------------------------------


def is_placeholder_phone(phone: str | None) -> bool:
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    return len(digits) >= 10 and digits[-10:] in PLACEHOLDER_PHONES


def source_key(shopper: Shopper) -> str:
    """The POS record a shopper change comes from: "vendor#credential#pos_id"."""
    return layout.pos_identity_value(shopper.vendor, shopper.credential_id, shopper.pos_id)


def identity_claims(shopper: Shopper) -> list[Claim]:
    """The identities a shopper record matches and claims, best first: E.164 phone, email, then its POS record.

    Placeholder phones and emails (1234567890, test@test.com, ...) are never among them; names never are.
    """
    return [*contact_claims(shopper.matchable_phone, shopper.matchable_email), Claim("pos", source_key(shopper))]


def contact_claims(phone: str | None, email: str | None) -> list[Claim]:
    """The identities a phone (E.164) and an email (lower-cased) claim, phone first; placeholders claim nothing.
    What a POS shopper record and a form signup both match by."""
    claims: list[Claim] = []
    if phone and not is_placeholder_phone(phone):
        claims.append(Claim("phone", phone))
    if email and not is_placeholder_email(email):
        claims.append(Claim("email", email))
    return claims


def choose_persona(claims: Sequence[Claim], owners: Mapping[Claim, str]) -> str | None:
    """The persona holding the shopper's phone, else the one holding its email, else the one holding its POS
    record; None means a new persona. `claims` come from identity_claims, in that order."""
    for kind in ("phone", "email", "pos"):
        for claim in claims:
            if claim.kind == kind and claim in owners:
                return owners[claim]
    return None


# --- contact sync --------------------------------------------------------------------------------------------


def in_market(state: str | None, markets: Iterable[str]) -> bool:
    """A contact belongs to the credential's market when its state is one of the credential's markets/regions."""
    wanted = {m.strip().upper() for m in markets if m and m.strip()}
    return bool(state) and state is not None and state.strip().upper() in wanted


def sync_mode(settings: IntegrationSettings, edited_on: date, state: str | None, markets: Iterable[str]) -> SyncMode:
    """POS edits overwrite the persona only with "sync personas" on (POSaBIT, Flourish) for edits made on or after the
    day it was enabled (`edited_on` is the edit's local date) and, with "sync to relevant market", only for contacts
    whose state is in the credential's market/regions. Otherwise POS data only fills empty persona fields."""
    if settings.vendor not in SYNC_VENDORS or not settings.sync_personas or settings.sync_personas_enabled_on is None:
        return "fill"
    if edited_on < settings.sync_personas_enabled_on:
        return "fill"
    if settings.sync_to_relevant_market and not in_market(state, markets):
        return "fill"
    return "overwrite"


def shopper_contact(shopper: Shopper) -> dict[str, str | None]:
    """The contact values a shopper record offers a persona (placeholders and blanks offer nothing)."""

    def text(value: str | None) -> str | None:
        return value.strip() or None if value else None

    phone = shopper.matchable_phone
    return {
        "first_name": text(shopper.first_name),
        "last_name": text(shopper.last_name),
        "email": shopper.matchable_email,
        "phone": None if is_placeholder_phone(phone) else phone,
        "birth_date": shopper.birth_date.isoformat() if shopper.birth_date else None,
    }


def merge_contact(persona: Persona, shopper: Shopper, mode: SyncMode) -> Persona:
    """Fill mode sets only empty fields. Overwrite mode also replaces a field whose value was set by an edit no newer
    than this one (so a replayed older change never overwrites a newer one). A blank never erases a value."""
    updated = iso(shopper.source_updated_at)
    origin = FieldSource(shopper.vendor.value, shopper.credential_id, shopper.pos_id, updated)
    values: dict[str, str | None] = {}
    sources = dict(persona.field_sources)
    for name, value in shopper_contact(shopper).items():
        current = persona.contact(name)
        if value is None or value == current:
            continue
        if current is not None:
            if mode == "fill":
                continue
            known = sources.get(name)
            if known is not None and known.source_updated_at > updated:
                continue
        values[name] = value
        sources[name] = origin
    if not values:
        return persona
    return replace(persona.with_contact(values), field_sources=sources)


def is_stale(persona: Persona, shopper: Shopper, version: int) -> bool:
    """A change of a POS record no newer than the one already applied from that record (redelivered or replayed)."""
    seen = persona.source_versions.get(source_key(shopper))
    if seen is None:
        return False
    return version <= seen.version or iso(shopper.source_updated_at) < seen.source_updated_at


def apply_shopper(persona: Persona, shopper: Shopper, version: int, mode: SyncMode, now: str) -> Persona:
    """The persona after one shopper change: contact merged, the POS recorded among its sources, version bumped."""
    source = source_key(shopper)
    merged = persona if is_stale(persona, shopper, version) else merge_contact(persona, shopper, mode)
    versions = dict(merged.source_versions)
    seen = versions.get(source)
    if seen is None or version > seen.version:
        versions[source] = SourceVersion(version, iso(shopper.source_updated_at))
    return replace(
        merged,
        sources=merged.sources | {shopper.vendor.value},
        source_records=merged.source_records | {source},
        source_versions=versions,
        version=persona.version + 1,
        updated_at=now,
    )


def new_persona(tenant: str, persona_id: str, shopper: Shopper, version: int, now: str) -> Persona:
    """A persona created from its first shopper record (every field it offers fills the empty profile)."""
    blank = Persona(tenant=tenant, persona_id=persona_id, created_at=now, updated_at=now, version=0)
    return apply_shopper(blank, shopper, version, "fill", now)
