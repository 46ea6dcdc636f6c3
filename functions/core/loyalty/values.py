"""Loyalty domain values: persona, identity claim, store visit, ledger entry, parked record, consent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Literal

from functions.core import layout
from functions.core.layout import RecordKind
from functions.core.loyalty.rewards import Redemption
from functions.core.models import CanonicalRecord

CONTACT_FIELDS: tuple[str, ...] = ("first_name", "last_name", "email", "phone", "birth_date")
IdentityKind = Literal["phone", "email", "pos"]

# Consent per channel: nothing asked or answered yet is "unknown" (the SMS double opt-in builds on this).
SMS = "sms"
UNKNOWN_CONSENT = "unknown"


def iso(value: datetime) -> str:
    """The one timestamp format stored here: UTC with microseconds, so strings order like the times they name."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Claim:
    """An identity a persona holds: a phone, an email, or one POS customer record ("vendor#credential#pos_id")."""

    kind: IdentityKind
    value: str

    def pk(self, tenant: str) -> str:
        return layout.identity_pk(tenant, self.kind, self.value)


@dataclass(frozen=True)
class FieldSource:
    """Which POS record last set a contact field, and that record's update time."""

    vendor: str
    credential_id: str
    pos_id: str
    source_updated_at: str


@dataclass(frozen=True)
class SourceVersion:
    """The newest change of one POS record applied to a persona (stale changes are recognised against it)."""

    version: int
    source_updated_at: str


@dataclass(frozen=True)
class Visit:
    """Visits of a persona to one mapped retail store: how many sales counted as one, and the latest."""

    store_id: str
    count: int
    last_at: str


@dataclass(frozen=True)
class Persona:
    """A persona profile: contact details and their sources (the personas consumer), membership, points, store
    visits and favourite store (the sales rules), consent. One item, versioned for optimistic concurrency."""

    tenant: str
    persona_id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    birth_date: str | None = None
    field_sources: Mapping[str, FieldSource] = field(default_factory=dict)
    sources: frozenset[str] = frozenset()
    source_records: frozenset[str] = frozenset()
    source_versions: Mapping[str, SourceVersion] = field(default_factory=dict)
    favourite_store: str | None = None
    visits: Mapping[str, Visit] = field(default_factory=dict)
    member: bool = False
    member_since: str | None = None  # the enrolling sale's time (UTC)
    member_since_date: str | None = None  # the enrolling sale's store-local date: what membership dates show
    member_how: str | None = None
    points: int = 0
    last_sale_date: str | None = None  # the latest store-local date of a sale in the ledger
    consent: Mapping[str, str] = field(default_factory=lambda: {SMS: UNKNOWN_CONSENT})
    version: int = 0
    created_at: str = ""
    updated_at: str = ""

    def contact(self, name: str) -> str | None:
        value: str | None = getattr(self, name)
        return value

    def with_contact(self, values: Mapping[str, str | None]) -> Persona:
        return replace(
            self,
            first_name=values.get("first_name", self.first_name),
            last_name=values.get("last_name", self.last_name),
            email=values.get("email", self.email),
            phone=values.get("phone", self.phone),
            birth_date=values.get("birth_date", self.birth_date),
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view for the CLI: profile, sources, membership (dated by the store-local day), points."""
        return {
            "persona_id": self.persona_id,
            "tenant": self.tenant,
            **{name: self.contact(name) for name in CONTACT_FIELDS},
            "sources": sorted(self.sources),
            "source_records": sorted(self.source_records),
            "field_sources": {k: vars(v) for k, v in sorted(self.field_sources.items())},
            "favourite_store": self.favourite_store,
            "member": self.member,
            "member_since": self.member_since_date,
            "member_since_at": self.member_since,
            "member_how": self.member_how,
            "points": self.points,
            "consent": dict(self.consent),
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class LedgerEntry:
    """One sale's points (kind "sale") or one POSaBIT balance import (kind "import") on a persona."""

    sk: str
    kind: Literal["sale", "import"]
    vendor: str
    credential_id: str
    source_id: str  # the sale's POS id, or the loyalty balance record's POS id
    record_version: int
    source_updated_at: str
    points: int
    net_cents: int = 0
    local_date: str | None = None  # the sale's store-local date
    status: str | None = None
    at: str = ""  # the sale's ordered_at, or the balance's as_of
    visit_store: str | None = None  # the store this sale was counted as a visit to, once
    applied_at: str = ""
    # rewards the sale redeemed (their points are taken off `points`, in the same write), and whether a redemption
    # took the persona's balance below zero when it was booked (kept and flagged, never dropped)
    redemptions: tuple[Redemption, ...] = ()
    overdrawn: bool = False

    @property
    def redeemed_points(self) -> int:
        return sum(r.points for r in self.redemptions)


@dataclass(frozen=True)
class Purchase:
    """What enrollment reads of a sale version (an older version than the one parked may have been a purchase)."""

    status: str
    local_date: date
    ordered_at: datetime

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status, "local_date": self.local_date.isoformat(), "ordered_at": iso(self.ordered_at)}

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> Purchase:
        return cls(data["status"], date.fromisoformat(data["local_date"]), datetime.fromisoformat(data["ordered_at"]))


@dataclass(frozen=True)
class ParkedRecord:
    """A record that could not be applied yet, stored durably: a sale or balance whose customer has no persona
    (pending), or any record whose tenant's settings were invalid (waiting). The newest version is kept, and
    `purchase` remembers that some version of a sale was a purchase (enrollment is sticky)."""

    pk: str
    sk: str
    kind: RecordKind
    version: int
    record: CanonicalRecord
    purchase: Purchase | None = None
