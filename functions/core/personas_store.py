"""DynamoDB repository for the personas table (profiles, claims, visits, ledger, pending) and unmapped stores."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from functions.core import layout
from functions.core.ddb_batch import BATCH_GET_MAX, batch_get
from functions.core.errors import PossyncError
from functions.core.layout import RecordKind, Vendor
from functions.core.models import RECORD_MODELS, CanonicalRecord
from functions.core.store import StoreError

CONTACT_FIELDS: tuple[str, ...] = ("first_name", "last_name", "email", "phone", "birth_date")
IdentityKind = Literal["phone", "email", "pos"]
LEDGER_PREFIX = "LEDGER#"
VISIT_PREFIX = "VISIT#"
UNKNOWN_CONSENT = "unknown"


class PersonaConflictError(PossyncError):
    """A conditional write or transaction lost a race (or found newer data): re-read and decide again."""


def iso(value: datetime) -> str:
    """The one timestamp format stored here: UTC with microseconds, so strings order like the times they name."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


# --- value objects ------------------------------------------------------------------------------------------


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
class Persona:
    """A persona profile (attribute names as in ISSUE4.md)."""

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
    member: bool = False
    member_since: str | None = None
    member_since_date: str | None = None
    member_how: str | None = None
    points: int = 0
    consent: Mapping[str, str] = field(default_factory=lambda: {"sms": UNKNOWN_CONSENT})
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
        """JSON-ready view for the CLI: profile, sources, membership, points and consent."""
        return {
            "persona_id": self.persona_id,
            "tenant": self.tenant,
            **{name: self.contact(name) for name in CONTACT_FIELDS},
            "sources": sorted(self.sources),
            "source_records": sorted(self.source_records),
            "field_sources": {k: vars(v) for k, v in sorted(self.field_sources.items())},
            "favourite_store": self.favourite_store,
            "member": self.member,
            "member_since": self.member_since,
            "member_how": self.member_how,
            "points": self.points,
            "consent": dict(self.consent),
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Visit:
    store_id: str
    count: int
    last_at: str


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
class PendingRecord:
    """A sale or loyalty balance whose customer has no persona yet."""

    pk: str
    sk: str
    kind: RecordKind
    version: int
    record: CanonicalRecord
    purchase: Purchase | None = None


@dataclass(frozen=True)
class UnmappedStore:
    tenant: str
    vendor: Vendor
    credential_id: str
    location_id: str | None
    first_seen_at: str
    record_kind: str = ""
    notified: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "vendor": self.vendor.value,
            "credential_id": self.credential_id,
            "location_id": self.location_id,
            "first_seen_at": self.first_seen_at,
            "record_kind": self.record_kind,
            "notified": self.notified,
        }


# --- item (de)serialisation -------------------------------------------------------------------------------


def _s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value["S"] if value and "S" in value else None


def _n(item: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = item.get(name)
    return int(value["N"]) if value and "N" in value else default


def persona_key(tenant: str, persona_id: str) -> dict[str, Any]:
    return {"pk": {"S": layout.persona_pk(tenant, persona_id)}, "sk": {"S": layout.PERSONA_PROFILE_SK}}


def persona_item(p: Persona) -> dict[str, Any]:
    item: dict[str, Any] = {
        **persona_key(p.tenant, p.persona_id),
        "tenant": {"S": p.tenant},
        "persona_id": {"S": p.persona_id},
        "field_sources": {"S": json.dumps({k: vars(v) for k, v in sorted(p.field_sources.items())})},
        "source_versions": {"S": json.dumps({k: vars(v) for k, v in sorted(p.source_versions.items())})},
        "member": {"BOOL": p.member},
        "points": {"N": str(p.points)},
        "consent": {"M": {k: {"S": v} for k, v in p.consent.items()}},
        "version": {"N": str(p.version)},
        "created_at": {"S": p.created_at},
        "updated_at": {"S": p.updated_at},
    }
    for name in (*CONTACT_FIELDS, "favourite_store", "member_since", "member_since_date", "member_how"):
        value = getattr(p, name)
        if value:
            item[name] = {"S": value}
    # DynamoDB string sets cannot be empty
    if p.sources:
        item["sources"] = {"SS": sorted(p.sources)}
    if p.source_records:
        item["source_records"] = {"SS": sorted(p.source_records)}
    return item


def persona_from_item(item: Mapping[str, Any]) -> Persona:
    field_sources = json.loads(_s(item, "field_sources") or "{}")
    source_versions = json.loads(_s(item, "source_versions") or "{}")
    consent = {k: v.get("S", UNKNOWN_CONSENT) for k, v in item.get("consent", {}).get("M", {}).items()}
    return Persona(
        tenant=_s(item, "tenant") or "",
        persona_id=_s(item, "persona_id") or "",
        first_name=_s(item, "first_name"),
        last_name=_s(item, "last_name"),
        email=_s(item, "email"),
        phone=_s(item, "phone"),
        birth_date=_s(item, "birth_date"),
        field_sources={k: FieldSource(**v) for k, v in field_sources.items()},
        sources=frozenset(item.get("sources", {}).get("SS", [])),
        source_records=frozenset(item.get("source_records", {}).get("SS", [])),
        source_versions={k: SourceVersion(**v) for k, v in source_versions.items()},
        favourite_store=_s(item, "favourite_store"),
        member=bool(item.get("member", {}).get("BOOL", False)),
        member_since=_s(item, "member_since"),
        member_since_date=_s(item, "member_since_date"),
        member_how=_s(item, "member_how"),
        points=_n(item, "points"),
        consent=consent or {"sms": UNKNOWN_CONSENT},
        version=_n(item, "version"),
        created_at=_s(item, "created_at") or "",
        updated_at=_s(item, "updated_at") or "",
    )


def ledger_item(tenant: str, persona_id: str, e: LedgerEntry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": layout.persona_pk(tenant, persona_id)},
        "sk": {"S": e.sk},
        "entry_kind": {"S": e.kind},
        "vendor": {"S": e.vendor},
        "credential_id": {"S": e.credential_id},
        "source_id": {"S": e.source_id},
        "record_version": {"N": str(e.record_version)},
        "source_updated_at": {"S": e.source_updated_at},
        "points": {"N": str(e.points)},
        "net_cents": {"N": str(e.net_cents)},
        "at": {"S": e.at},
        "applied_at": {"S": e.applied_at},
    }
    for name in ("local_date", "status", "visit_store"):
        value = getattr(e, name)
        if value:
            item[name] = {"S": value}
    return item


def ledger_from_item(item: Mapping[str, Any]) -> LedgerEntry:
    kind = _s(item, "entry_kind")
    return LedgerEntry(
        sk=_s(item, "sk") or "",
        kind="import" if kind == "import" else "sale",
        vendor=_s(item, "vendor") or "",
        credential_id=_s(item, "credential_id") or "",
        source_id=_s(item, "source_id") or "",
        record_version=_n(item, "record_version"),
        source_updated_at=_s(item, "source_updated_at") or "",
        points=_n(item, "points"),
        net_cents=_n(item, "net_cents"),
        local_date=_s(item, "local_date"),
        status=_s(item, "status"),
        at=_s(item, "at") or "",
        visit_store=_s(item, "visit_store"),
        applied_at=_s(item, "applied_at") or "",
    )


def _cancelled(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in {
        "TransactionCanceledException",
        "ConditionalCheckFailedException",
        "TransactionConflictException",
    }


# --- the repository ----------------------------------------------------------------------------------------


class PersonaStore:
    """Profiles, identity claims, store visits, the points ledger and pending records in the personas table.

    Every write that decides something is conditional: on the profile's `version` (optimistic), on a claim being
    absent, or on the ledger entry being exactly as read. A lost race raises PersonaConflictError; callers re-read.
    """

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.ddb = dynamodb
        self.table = table
        self.requests = 0  # DynamoDB requests made (the benchmark reports them per 1,000 sales)

    # plumbing
    def _call(self, op: str, **kwargs: Any) -> Any:
        self.requests += 1
        try:
            return getattr(self.ddb, op)(**kwargs)
        except ClientError as exc:
            if _cancelled(exc):
                raise PersonaConflictError(f"{op} on {self.table} lost a race") from exc
            code = exc.response.get("Error", {}).get("Code")
            raise StoreError(f"{op} on {self.table} failed: {code}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"{op} on {self.table} failed: {type(exc).__name__}") from exc

    def _batch_get(self, request: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        def counted() -> None:
            self.requests += 1

        return batch_get(self.ddb, request, on_request=counted)

    def _transact(self, items: Sequence[dict[str, Any]]) -> None:
        self._call("transact_write_items", TransactItems=list(items))

    def _query(self, pk: str, prefix: str | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk" + (" AND begins_with(sk, :prefix)" if prefix else ""),
            "ExpressionAttributeValues": {":pk": {"S": pk}, **({":prefix": {"S": prefix}} if prefix else {})},
            "ConsistentRead": True,
        }
        if limit is not None:
            kwargs["Limit"] = limit
        while True:
            response = self._call("query", **kwargs)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # profiles
    def get_persona(self, tenant: str, persona_id: str) -> Persona | None:
        item = self._call(
            "get_item", TableName=self.table, Key=persona_key(tenant, persona_id), ConsistentRead=True
        ).get("Item")
        return persona_from_item(item) if item else None

    def persona_and_entry(self, tenant: str, persona_id: str, sk: str) -> tuple[Persona | None, LedgerEntry | None]:
        """A persona's profile and one of its ledger entries in one consistent BatchGetItem (the hot path of a sale)."""
        pk = layout.persona_pk(tenant, persona_id)
        request: dict[str, Any] = {
            self.table: {
                "Keys": [{"pk": {"S": pk}, "sk": {"S": layout.PERSONA_PROFILE_SK}}, {"pk": {"S": pk}, "sk": {"S": sk}}],
                "ConsistentRead": True,
            }
        }
        persona: Persona | None = None
        entry: LedgerEntry | None = None
        for _, item in self._batch_get(request):
            if item["sk"]["S"] == layout.PERSONA_PROFILE_SK:
                persona = persona_from_item(item)
            else:
                entry = ledger_from_item(item)
        return persona, entry

    def list_personas(self, tenant: str, limit: int = 100) -> list[Persona]:
        """Up to `limit` persona profiles of a tenant (a scan: the CLI's listing, not a hot path)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "begins_with(pk, :prefix) AND sk = :profile",
            "ExpressionAttributeValues": {
                ":prefix": {"S": layout.persona_pk(tenant, "")},
                ":profile": {"S": layout.PERSONA_PROFILE_SK},
            },
        }
        found: list[Persona] = []
        while len(found) < limit:
            response = self._call("scan", **kwargs)
            found.extend(persona_from_item(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return sorted(found[:limit], key=lambda p: p.created_at)

    # identity claims
    def claim_owners(self, tenant: str, claims: Sequence[Claim]) -> dict[Claim, str]:
        """Which persona holds each claim (claims nobody holds are absent), read consistently."""
        by_pk = {c.pk(tenant): c for c in claims}
        owners: dict[Claim, str] = {}
        pks = list(by_pk)
        for start in range(0, len(pks), BATCH_GET_MAX):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [
                        {"pk": {"S": pk}, "sk": {"S": layout.IDENTITY_SK}} for pk in pks[start : start + BATCH_GET_MAX]
                    ],
                    "ConsistentRead": True,
                }
            }
            for _, item in self._batch_get(request):
                owners[by_pk[item["pk"]["S"]]] = item["persona_id"]["S"]
        return owners

    def pos_owner(self, tenant: str, vendor: Vendor, credential_id: str, customer_pos_id: str) -> str | None:
        """The persona a POS customer record resolved to, if any."""
        claim = Claim("pos", layout.pos_identity_value(vendor, credential_id, customer_pos_id))
        return self.claim_owners(tenant, [claim]).get(claim)

    def _claim_put(self, tenant: str, claim: Claim, persona_id: str, now: str) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": {
                    "pk": {"S": claim.pk(tenant)},
                    "sk": {"S": layout.IDENTITY_SK},
                    "persona_id": {"S": persona_id},
                    "tenant": {"S": tenant},
                    "kind": {"S": claim.kind},
                    "claimed_at": {"S": now},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _profile_put(self, persona: Persona, expected_version: int | None) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table, "Item": persona_item(persona)}
        if expected_version is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :v"
            put["ExpressionAttributeValues"] = {":v": {"N": str(expected_version)}}
        return {"Put": put}

    def create_persona(self, persona: Persona, claims: Sequence[Claim]) -> None:
        """One transaction: the profile and every claim, each only if absent (two creators: one wins)."""
        now = persona.created_at
        self._transact(
            [
                self._profile_put(persona, None),
                *(self._claim_put(persona.tenant, c, persona.persona_id, now) for c in claims),
            ]
        )

    def save_persona(
        self,
        persona: Persona,
        expected_version: int,
        new_claims: Sequence[Claim] = (),
        moved: tuple[Claim, str] | None = None,
    ) -> None:
        """One transaction: the profile (if still at `expected_version`), new claims (if still free) and, when a POS
        record moves here from another persona, its claim repointed (if that persona still holds it)."""
        now = persona.updated_at
        items = [self._profile_put(persona, expected_version)]
        items += [self._claim_put(persona.tenant, c, persona.persona_id, now) for c in new_claims]
        if moved is not None:
            claim, previous_owner = moved
            put = self._claim_put(persona.tenant, claim, persona.persona_id, now)["Put"]
            put["ConditionExpression"] = "persona_id = :old"
            put["ExpressionAttributeValues"] = {":old": {"S": previous_owner}}
            items.append({"Put": put})
        self._transact(items)

    # enrollment
    def enroll(
        self, tenant: str, persona_id: str, since: str, since_date: str, how: str, now: str
    ) -> tuple[bool, str | None]:
        """Make the persona a member from `since`, or move its membership back to an earlier qualifying sale.

        Membership is sticky: this never sets member to false. Returns whether it changed anything, and the
        membership start the profile holds when it did not.
        """
        try:
            self._call(
                "update_item",
                TableName=self.table,
                Key=persona_key(tenant, persona_id),
                UpdateExpression=(
                    "SET #member = :yes, member_since = :since, member_since_date = :date, member_how = :how, "
                    "updated_at = :now ADD version :one"
                ),
                ConditionExpression=(
                    "attribute_exists(pk) AND (attribute_not_exists(member_since) OR member_since > :since)"
                ),
                ExpressionAttributeNames={"#member": "member"},
                ExpressionAttributeValues={
                    ":yes": {"BOOL": True},
                    ":since": {"S": since},
                    ":date": {"S": since_date},
                    ":how": {"S": how},
                    ":now": {"S": now},
                    ":one": {"N": "1"},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except PersonaConflictError as exc:
            cause = exc.__cause__
            old = cause.response.get("Item", {}) if isinstance(cause, ClientError) else {}
            return False, _s(old, "member_since")
        return True, since

    # points ledger and visits
    def ledger_entry(self, tenant: str, persona_id: str, sk: str) -> LedgerEntry | None:
        item = self._call(
            "get_item",
            TableName=self.table,
            Key={"pk": {"S": layout.persona_pk(tenant, persona_id)}, "sk": {"S": sk}},
            ConsistentRead=True,
        ).get("Item")
        return ledger_from_item(item) if item else None

    def ledger_entries(self, tenant: str, persona_id: str) -> list[LedgerEntry]:
        return [ledger_from_item(i) for i in self._query(layout.persona_pk(tenant, persona_id), LEDGER_PREFIX)]

    def apply_ledger(
        self,
        tenant: str,
        persona_id: str,
        entry: LedgerEntry,
        previous: LedgerEntry | None,
        member_since_date: str | None,
        visit_store: str | None = None,
        *,
        check_member: bool = True,
    ) -> None:
        """One transaction: the ledger entry (only if it is still exactly `previous`), the balance moved by the
        difference (only if membership is still what the points were computed from, unless `check_member` is off)
        and, when this sale counts as a
        visit for the first time, the store's visit counter."""
        pk = layout.persona_pk(tenant, persona_id)
        delta = entry.points - (previous.points if previous else 0)
        put: dict[str, Any] = {"TableName": self.table, "Item": ledger_item(tenant, persona_id, entry)}
        if previous is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "record_version = :v AND points = :p AND source_updated_at = :u"
            put["ExpressionAttributeValues"] = {
                ":v": {"N": str(previous.record_version)},
                ":p": {"N": str(previous.points)},
                ":u": {"S": previous.source_updated_at},
            }
        values: dict[str, Any] = {":delta": {"N": str(delta)}, ":one": {"N": "1"}, ":now": {"S": entry.applied_at}}
        condition = "attribute_exists(pk)"
        if check_member and member_since_date is None:
            condition += " AND attribute_not_exists(member_since_date)"
        elif check_member:
            condition += " AND member_since_date = :msd"
            values[":msd"] = {"S": member_since_date}
        items: list[dict[str, Any]] = [
            {"Put": put},
            {
                "Update": {
                    "TableName": self.table,
                    "Key": persona_key(tenant, persona_id),
                    "UpdateExpression": "SET updated_at = :now ADD points :delta, version :one",
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": values,
                }
            },
        ]
        if visit_store is not None:
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": pk}, "sk": {"S": layout.visit_sk(visit_store)}},
                        "UpdateExpression": "SET store_id = :store ADD #count :one",
                        "ExpressionAttributeNames": {"#count": "count"},
                        "ExpressionAttributeValues": {":store": {"S": visit_store}, ":one": {"N": "1"}},
                    }
                }
            )
        self._transact(items)

    def touch_visit(self, tenant: str, persona_id: str, store_id: str, at: str) -> bool:
        """Move a store's last visit time forward to `at` (never back): idempotent, so safe to repeat.

        Returns whether it moved (a favourite store can only change when a visit count or time does)."""
        try:
            self._call(
                "update_item",
                TableName=self.table,
                Key={"pk": {"S": layout.persona_pk(tenant, persona_id)}, "sk": {"S": layout.visit_sk(store_id)}},
                UpdateExpression="SET last_at = :at",
                ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(last_at) OR last_at < :at)",
                ExpressionAttributeValues={":at": {"S": at}},
            )
        except PersonaConflictError:
            return False
        return True

    def visits(self, tenant: str, persona_id: str) -> list[Visit]:
        return [
            Visit(
                store_id=_s(i, "store_id") or (_s(i, "sk") or "").removeprefix(VISIT_PREFIX),
                count=_n(i, "count"),
                last_at=_s(i, "last_at") or "",
            )
            for i in self._query(layout.persona_pk(tenant, persona_id), VISIT_PREFIX)
        ]

    def set_favourite(
        self, tenant: str, persona_id: str, store_id: str | None, expected_version: int, now: str
    ) -> None:
        key = persona_key(tenant, persona_id)
        values: dict[str, Any] = {":v": {"N": str(expected_version)}, ":one": {"N": "1"}, ":now": {"S": now}}
        if store_id is None:
            update = "SET updated_at = :now REMOVE favourite_store ADD version :one"
        else:
            update = "SET favourite_store = :store, updated_at = :now ADD version :one"
            values[":store"] = {"S": store_id}
        self._call(
            "update_item",
            TableName=self.table,
            Key=key,
            UpdateExpression=update,
            ConditionExpression="version = :v",
            ExpressionAttributeValues=values,
        )

    # pending records (a sale or balance that arrived before its shopper's persona)
    def put_pending(
        self, record: CanonicalRecord, customer_pos_id: str, version: int, now: str, purchase: Purchase | None = None
    ) -> bool:
        """Park a record until its customer has a persona; a newer version replaces an older one (True if this one
        is now parked). `purchase` keeps, whatever the versions' arrival order, that the sale was once a purchase:
        enrollment is sticky, so a later refund version must not hide it."""
        pk = layout.pending_pk(record.tenant, record.vendor, record.credential_id, customer_pos_id)
        key = {"pk": {"S": pk}, "sk": {"S": pending_id(record)}}
        values: dict[str, Any] = {
            ":kind": {"S": record.kind.value},
            ":v": {"N": str(version)},
            ":data": {"S": record.model_dump_json()},
            ":now": {"S": now},
        }
        update = "SET kind = :kind, record_version = :v, #data = :data, received_at = :now"
        if purchase is not None:
            update += ", purchase = if_not_exists(purchase, :purchase)"
            values[":purchase"] = {"S": json.dumps(purchase.as_dict())}
        try:
            self._call(
                "update_item",
                TableName=self.table,
                Key=key,
                UpdateExpression=update,
                ConditionExpression="attribute_not_exists(pk) OR record_version < :v",
                ExpressionAttributeNames={"#data": "data"},
                ExpressionAttributeValues=values,
            )
        except PersonaConflictError:
            if purchase is not None:
                self._note_purchase(key, purchase)
            return False
        return True

    def _note_purchase(self, key: dict[str, Any], purchase: Purchase) -> None:
        try:
            self._call(
                "update_item",
                TableName=self.table,
                Key=key,
                UpdateExpression="SET purchase = :purchase",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(purchase)",
                ExpressionAttributeValues={":purchase": {"S": json.dumps(purchase.as_dict())}},
            )
        except PersonaConflictError:
            return

    def pending(self, tenant: str, vendor: Vendor, credential_id: str, customer_pos_id: str) -> list[PendingRecord]:
        pk = layout.pending_pk(tenant, vendor, credential_id, customer_pos_id)
        out = []
        for item in self._query(pk):
            kind = RecordKind(item["kind"]["S"])
            purchase = _s(item, "purchase")
            out.append(
                PendingRecord(
                    pk=pk,
                    sk=item["sk"]["S"],
                    kind=kind,
                    version=_n(item, "record_version"),
                    record=RECORD_MODELS[kind].model_validate_json(item["data"]["S"]),
                    purchase=Purchase.from_dict(json.loads(purchase)) if purchase else None,
                )
            )
        return out

    def delete_pending(self, pending: PendingRecord) -> None:
        """Remove an applied pending record, unless a newer version replaced it meanwhile (that one stays)."""
        try:
            self._call(
                "delete_item",
                TableName=self.table,
                Key={"pk": {"S": pending.pk}, "sk": {"S": pending.sk}},
                ConditionExpression="record_version = :v",
                ExpressionAttributeValues={":v": {"N": str(pending.version)}},
            )
        except PersonaConflictError:
            return


def pending_id(record: CanonicalRecord) -> str:
    """Pending sort key: SALE#<sale id> for sales (layout.pending_sk); balances get their own namespace in it."""
    if record.kind is RecordKind.SALE:
        return layout.pending_sk(record.pos_id)
    return layout.pending_sk(f"{record.kind.value}#{record.pos_id}")


def list_personas(store: PersonaStore, tenant: str, limit: int = 100) -> list[Persona]:
    return store.list_personas(tenant, limit)


def get_persona(store: PersonaStore, tenant: str, persona_id: str) -> Persona | None:
    return store.get_persona(tenant, persona_id)


# --- unmapped-store notices (control table) -----------------------------------------------------------------


class UnmappedStores:
    """One notice per unmapped credential / POS location, in the control table."""

    def __init__(self, dynamodb: Any, control_table: str) -> None:
        self.ddb = dynamodb
        self.table = control_table

    def _call(self, op: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.ddb, op)(TableName=self.table, **kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise PersonaConflictError(f"{op} on {self.table}: condition not met") from exc
            raise StoreError(f"{op} on {self.table} failed: {exc.response.get('Error', {}).get('Code')}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"{op} on {self.table} failed: {type(exc).__name__}") from exc

    @staticmethod
    def _key(tenant: str, vendor: Vendor, credential_id: str, location_id: str | None) -> dict[str, Any]:
        return {
            "pk": {"S": layout.control_unmapped_pk(tenant)},
            "sk": {"S": layout.control_unmapped_sk(vendor, credential_id, location_id)},
        }

    def raise_notice(self, notice: UnmappedStore) -> bool:
        """Record the notice if it is new; True when it still has to be announced (new, or an earlier announcement
        did not complete), False when it was announced already."""
        item = {
            **self._key(notice.tenant, notice.vendor, notice.credential_id, notice.location_id),
            "tenant": {"S": notice.tenant},
            "vendor": {"S": notice.vendor.value},
            "credential_id": {"S": notice.credential_id},
            "first_seen_at": {"S": notice.first_seen_at},
            "record_kind": {"S": notice.record_kind},
            "notified": {"BOOL": False},
        }
        if notice.location_id:
            item["location_id"] = {"S": notice.location_id}
        try:
            self._call(
                "put_item",
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except PersonaConflictError as exc:
            cause = exc.__cause__
            old = cause.response.get("Item", {}) if isinstance(cause, ClientError) else {}
            return not old.get("notified", {}).get("BOOL", True)
        return True

    def mark_notified(self, tenant: str, vendor: Vendor, credential_id: str, location_id: str | None) -> None:
        try:
            self._call(
                "update_item",
                Key=self._key(tenant, vendor, credential_id, location_id),
                UpdateExpression="SET notified = :yes",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":yes": {"BOOL": True}},
            )
        except PersonaConflictError:
            return  # mapped (and the notice deleted) in between

    def list_unmapped(self, tenant: str) -> list[UnmappedStore]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": layout.control_unmapped_pk(tenant)}},
            "ConsistentRead": True,
        }
        out: list[UnmappedStore] = []
        while True:
            response = self._call("query", **kwargs)
            for i in response.get("Items", []):
                out.append(
                    UnmappedStore(
                        tenant=_s(i, "tenant") or tenant,
                        vendor=Vendor(_s(i, "vendor") or ""),
                        credential_id=_s(i, "credential_id") or "",
                        location_id=_s(i, "location_id"),
                        first_seen_at=_s(i, "first_seen_at") or "",
                        record_kind=_s(i, "record_kind") or "",
                        notified=bool(i.get("notified", {}).get("BOOL", False)),
                    )
                )
            if "LastEvaluatedKey" not in response:
                return out
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def clear(self, tenant: str, vendor: Vendor, credential_id: str, location_id: str | None) -> bool:
        """Delete a store's notice (it was mapped); True if there was one."""
        response = self._call(
            "delete_item", Key=self._key(tenant, vendor, credential_id, location_id), ReturnValues="ALL_OLD"
        )
        return bool(response.get("Attributes"))


# --- records-table stream images (what both rule consumers receive) -----------------------------------------


@dataclass(frozen=True)
class RecordChange:
    """A record item written by RecordStore, as its stream NewImage carries it."""

    kind: RecordKind
    version: int
    record: CanonicalRecord


def record_change(stream_record: Mapping[str, Any]) -> RecordChange | None:
    """The canonical record and its version from an INSERT/MODIFY stream record of the records table (DynamoDB JSON);
    None for removals and items that are not records. Unreadable record data raises (the record is retried)."""
    if stream_record.get("eventName") not in ("INSERT", "MODIFY"):
        return None
    image = (stream_record.get("dynamodb") or {}).get("NewImage") or {}
    kind = _s(image, "kind")
    data = _s(image, "data")
    if kind not in {k.value for k in RecordKind} or data is None:
        return None
    record_kind = RecordKind(kind)
    return RecordChange(record_kind, _n(image, "version"), RECORD_MODELS[record_kind].model_validate_json(data))
