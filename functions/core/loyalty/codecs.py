"""The personas table's items (DynamoDB JSON) for the loyalty values, and back; unknown attributes are ignored."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from functions.core import layout
from functions.core.layout import RecordKind
from functions.core.loyalty.rewards import Redemption
from functions.core.loyalty.values import (
    CONTACT_FIELDS,
    SMS,
    UNKNOWN_CONSENT,
    FieldSource,
    LedgerEntry,
    ParkedRecord,
    Persona,
    Purchase,
    SourceVersion,
    Visit,
)
from functions.core.models import read_record

Item = dict[str, Any]

# Profile attributes each writer owns: a writer updates only its own, so attributes it does not know (written by
# a newer version of the code) survive its writes.
CONTACT_ATTRIBUTES: tuple[str, ...] = (
    *CONTACT_FIELDS,
    "field_sources",
    "source_versions",
    "sources",
    "source_records",
)
LOYALTY_ATTRIBUTES: tuple[str, ...] = (
    "points",
    "visits",
    "favourite_store",
    "member",
    "member_since",
    "member_since_date",
    "member_how",
    "last_sale_date",
)


def s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value["S"] if isinstance(value, Mapping) and "S" in value else None


def n(item: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = item.get(name)
    return int(value["N"]) if isinstance(value, Mapping) and "N" in value else default


def persona_key(tenant: str, persona_id: str) -> Item:
    return {"pk": {"S": layout.persona_pk(tenant, persona_id)}, "sk": {"S": layout.PERSONA_PROFILE_SK}}


def _visits_value(visits: Mapping[str, Visit]) -> Item:
    return {
        "M": {
            store: {"M": {"count": {"N": str(v.count)}, "last_at": {"S": v.last_at}}}
            for store, v in sorted(visits.items())
        }
    }


def _visits_from(value: Any) -> dict[str, Visit]:
    stores = value.get("M", {}) if isinstance(value, Mapping) else {}
    return {
        store: Visit(store, n(v.get("M", {}), "count"), s(v.get("M", {}), "last_at") or "")
        for store, v in stores.items()
    }


def profile_attributes(p: Persona, names: Iterable[str]) -> tuple[Item, list[str]]:
    """The DynamoDB values of these profile attributes, and the names to remove (empty: DynamoDB stores no
    empty strings or sets, and an absent optional value is no attribute)."""
    values: Item = {}
    removed: list[str] = []
    for name in names:
        value: Any = None
        if name in CONTACT_FIELDS or name in ("favourite_store", "member_since", "member_since_date", "member_how"):
            text = getattr(p, name)
            value = {"S": text} if text else None
        elif name == "last_sale_date":
            value = {"S": p.last_sale_date} if p.last_sale_date else None
        elif name == "field_sources":
            value = {"S": json.dumps({k: vars(v) for k, v in sorted(p.field_sources.items())})}
        elif name == "source_versions":
            value = {"S": json.dumps({k: vars(v) for k, v in sorted(p.source_versions.items())})}
        elif name in ("sources", "source_records"):
            strings = sorted(getattr(p, name))
            value = {"SS": strings} if strings else None
        elif name == "visits":
            value = _visits_value(p.visits)
        elif name == "member":
            value = {"BOOL": p.member}
        elif name == "points":
            value = {"N": str(p.points)}
        else:
            raise ValueError(f"{name} is not a persona profile attribute")
        if value is None:
            removed.append(name)
        else:
            values[name] = value
    return values, removed


def persona_item(p: Persona) -> Item:
    values, _ = profile_attributes(p, (*CONTACT_ATTRIBUTES, *LOYALTY_ATTRIBUTES))
    return {
        **persona_key(p.tenant, p.persona_id),
        "tenant": {"S": p.tenant},
        "persona_id": {"S": p.persona_id},
        **values,
        "consent": {"M": {k: {"S": v} for k, v in p.consent.items()}},
        "version": {"N": str(p.version)},
        "created_at": {"S": p.created_at},
        "updated_at": {"S": p.updated_at},
    }


def profile_update(p: Persona, names: Iterable[str], expected_version: int, before: Persona | None = None) -> Item:
    """An Update of these attributes (those that differ from `before`, when given) and of version and updated_at,
    if the profile is still at `expected_version`: the persona's other attributes stay as they are."""
    if before is not None:
        names = [name for name in names if profile_attributes(p, [name]) != profile_attributes(before, [name])]
    values, removed = profile_attributes(p, names)
    placeholders = {f"#a{i}": name for i, name in enumerate((*values, *removed))}
    by_name = {name: key for key, name in placeholders.items()}
    sets = [f"{by_name[name]} = :a{i}" for i, name in enumerate(values)]
    sets += ["#version = :version", "#updated = :updated"]
    expression = "SET " + ", ".join(sets)
    if removed:
        expression += " REMOVE " + ", ".join(by_name[name] for name in removed)
    return {
        "Key": persona_key(p.tenant, p.persona_id),
        "UpdateExpression": expression,
        "ConditionExpression": "#version = :expected",
        "ExpressionAttributeNames": {**placeholders, "#version": "version", "#updated": "updated_at"},
        "ExpressionAttributeValues": {
            **{f":a{i}": value for i, value in enumerate(values.values())},
            ":version": {"N": str(p.version)},
            ":updated": {"S": p.updated_at},
            ":expected": {"N": str(expected_version)},
        },
    }


def persona_from_item(item: Mapping[str, Any]) -> Persona:
    field_sources = json.loads(s(item, "field_sources") or "{}")
    source_versions = json.loads(s(item, "source_versions") or "{}")
    consent = {k: v.get("S", UNKNOWN_CONSENT) for k, v in item.get("consent", {}).get("M", {}).items()}
    return Persona(
        tenant=s(item, "tenant") or "",
        persona_id=s(item, "persona_id") or "",
        first_name=s(item, "first_name"),
        last_name=s(item, "last_name"),
        email=s(item, "email"),
        phone=s(item, "phone"),
        birth_date=s(item, "birth_date"),
        field_sources={k: FieldSource(**v) for k, v in field_sources.items()},
        sources=frozenset(item.get("sources", {}).get("SS", [])),
        source_records=frozenset(item.get("source_records", {}).get("SS", [])),
        source_versions={k: SourceVersion(**v) for k, v in source_versions.items()},
        favourite_store=s(item, "favourite_store"),
        visits=_visits_from(item.get("visits")),
        member=bool(item.get("member", {}).get("BOOL", False)),
        member_since=s(item, "member_since"),
        member_since_date=s(item, "member_since_date"),
        member_how=s(item, "member_how"),
        points=n(item, "points"),
        last_sale_date=s(item, "last_sale_date"),
        consent=consent or {SMS: UNKNOWN_CONSENT},
        version=n(item, "version"),
        created_at=s(item, "created_at") or "",
        updated_at=s(item, "updated_at") or "",
    )


def claim_item(tenant: str, kind: str, value: str, persona_id: str, now: str) -> Item:
    return {
        "pk": {"S": layout.identity_pk(tenant, kind, value)},
        "sk": {"S": layout.IDENTITY_SK},
        "persona_id": {"S": persona_id},
        "tenant": {"S": tenant},
        "kind": {"S": kind},
        "claimed_at": {"S": now},
    }


def ledger_key(tenant: str, persona_id: str, sk: str) -> Item:
    return {"pk": {"S": layout.persona_pk(tenant, persona_id)}, "sk": {"S": sk}}


def ledger_item(tenant: str, persona_id: str, e: LedgerEntry) -> Item:
    item: Item = {
        **ledger_key(tenant, persona_id, e.sk),
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
    if e.redemptions:
        item["redemptions"] = {"S": json.dumps([vars(r) for r in e.redemptions], sort_keys=True)}
    if e.overdrawn:
        item["overdrawn"] = {"BOOL": True}
    return item


def redemptions_from_item(item: Mapping[str, Any]) -> tuple[Redemption, ...]:
    raw = s(item, "redemptions")
    if not raw:
        return ()
    return tuple(
        Redemption(str(r["reward"]), str(r["name"]), str(r["pos_discount"]), int(r["points"])) for r in json.loads(raw)
    )


def ledger_from_item(item: Mapping[str, Any]) -> LedgerEntry:
    kind = s(item, "entry_kind")
    return LedgerEntry(
        sk=s(item, "sk") or "",
        kind="import" if kind == "import" else "sale",
        vendor=s(item, "vendor") or "",
        credential_id=s(item, "credential_id") or "",
        source_id=s(item, "source_id") or "",
        record_version=n(item, "record_version"),
        source_updated_at=s(item, "source_updated_at") or "",
        points=n(item, "points"),
        net_cents=n(item, "net_cents"),
        local_date=s(item, "local_date"),
        status=s(item, "status"),
        at=s(item, "at") or "",
        visit_store=s(item, "visit_store"),
        applied_at=s(item, "applied_at") or "",
        redemptions=redemptions_from_item(item),
        overdrawn=bool(item.get("overdrawn", {}).get("BOOL", False)),
    )


def parked_from_item(item: Mapping[str, Any]) -> ParkedRecord:
    """A parked record, read with the consumers' leniency (it may have been parked by another code version)."""
    kind = RecordKind(item["kind"]["S"])
    purchase = s(item, "purchase")
    return ParkedRecord(
        pk=item["pk"]["S"],
        sk=item["sk"]["S"],
        kind=kind,
        version=n(item, "record_version"),
        record=read_record(kind, item["data"]["S"]),
        purchase=Purchase.from_dict(json.loads(purchase)) if purchase else None,
    )
