"""Persona -> POS sync records in the personas table: the durable claim written before any POS call, and the
outcome (created, matched, skipped, ... with the reason and the POS id) that `possync personas show` prints."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from functions.core import layout
from functions.core.ddb_batch import BATCH_GET_MAX, batch_get, chunks
from functions.core.layout import Vendor
from functions.core.loyalty.codecs import Item, s
from functions.core.store import CONDITION_FAILED, call_table

CANCELLED = CONDITION_FAILED | {"TransactionCanceledException"}
SyncKey = tuple[str, Vendor, str]  # (persona id, vendor, credential id)


@dataclass(frozen=True)
class SyncRecord:
    tenant: str
    persona_id: str
    vendor: Vendor
    credential_id: str
    state: str
    reason: str = ""
    pos_id: str | None = None
    owner: str = ""  # the invocation holding the claim
    claimed_at: str = ""
    updated_at: str = ""
    synced_at: str | None = None  # when the POS customer was created or found and linked

    @property
    def key(self) -> SyncKey:
        return (self.persona_id, self.vendor, self.credential_id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor.value,
            "credential_id": self.credential_id,
            "state": self.state,
            "reason": self.reason,
            "pos_id": self.pos_id,
            "synced_at": self.synced_at,
            "updated_at": self.updated_at,
        }


def _key(tenant: str, persona_id: str, vendor: Vendor, credential_id: str) -> Item:
    return {
        "pk": {"S": layout.pos_sync_pk(tenant, persona_id)},
        "sk": {"S": layout.pos_sync_sk(vendor, credential_id)},
    }


def record_item(r: SyncRecord) -> Item:
    item: Item = {
        **_key(r.tenant, r.persona_id, r.vendor, r.credential_id),
        "tenant": {"S": r.tenant},
        "persona_id": {"S": r.persona_id},
        "vendor": {"S": r.vendor.value},
        "credential_id": {"S": r.credential_id},
        "state": {"S": r.state},
        "reason": {"S": r.reason},
        "owner": {"S": r.owner},
        "claimed_at": {"S": r.claimed_at},
        "updated_at": {"S": r.updated_at},
    }
    if r.pos_id:
        item["pos_id"] = {"S": r.pos_id}
    if r.synced_at:
        item["synced_at"] = {"S": r.synced_at}
    return item


def record_from_item(item: Item) -> SyncRecord:
    return SyncRecord(
        tenant=s(item, "tenant") or "",
        persona_id=s(item, "persona_id") or "",
        vendor=Vendor(s(item, "vendor") or ""),
        credential_id=s(item, "credential_id") or "",
        state=s(item, "state") or "",
        reason=s(item, "reason") or "",
        pos_id=s(item, "pos_id"),
        owner=s(item, "owner") or "",
        claimed_at=s(item, "claimed_at") or "",
        updated_at=s(item, "updated_at") or "",
        synced_at=s(item, "synced_at"),
    )


class SyncStore:
    """Sync records and the POS identity claims they link (both in the personas table). Every write but the
    plain skip notes is conditional on the claim: whoever lost a race learns it (False) and changes nothing."""

    def __init__(self, dynamodb: Any, table: str, on_request: Callable[[], None] | None = None) -> None:
        self.ddb = dynamodb
        self.table = table
        self.on_request = on_request

    def _call(self, op: str, **kwargs: Any) -> bool:
        """One request; False when its condition did not hold (a lost race), StoreError for anything else."""
        if self.on_request is not None:
            self.on_request()
        try:
            call_table(self.ddb, self.table, op, passthrough=CANCELLED, **kwargs)
        except ClientError:
            return False
        return True

    def get(self, tenant: str, keys: Iterable[SyncKey]) -> dict[SyncKey, SyncRecord]:
        """The sync records of these personas and credentials that exist (consistent batched reads)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[SyncKey, SyncRecord] = {}
        for chunk in chunks(wanted, BATCH_GET_MAX):
            request = {self.table: {"Keys": [_key(tenant, p, v, c) for p, v, c in chunk], "ConsistentRead": True}}
            for _, item in batch_get(self.ddb, request, on_request=self.on_request):
                record = record_from_item(item)
                found[record.key] = record
        return found

    def of_persona(self, tenant: str, persona_id: str) -> list[SyncRecord]:
        response = call_table(
            self.ddb,
            self.table,
            "query",
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": layout.pos_sync_pk(tenant, persona_id)}},
            ConsistentRead=True,
        )
        return [record_from_item(item) for item in response.get("Items", [])]

    def claim(self, record: SyncRecord, previous: SyncRecord | None) -> bool:
        """Write the claim (state "claimed", this owner) if nobody wrote one since `previous` was read."""
        put: dict[str, Any] = {"TableName": self.table, "Item": record_item(record)}
        if previous is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "#owner = :owner AND #state = :state AND updated_at = :updated"
            put["ExpressionAttributeNames"] = {"#owner": "owner", "#state": "state"}
            put["ExpressionAttributeValues"] = {
                ":owner": {"S": previous.owner},
                ":state": {"S": previous.state},
                ":updated": {"S": previous.updated_at},
            }
        return self._call("put_item", **put)

    def note(self, record: SyncRecord) -> bool:
        """Record a skip (no claim held): only where no claim or outcome exists, or over an earlier skip."""
        return self._call(
            "put_item",
            TableName=self.table,
            Item=record_item(record),
            ConditionExpression="attribute_not_exists(pk) OR #state = :skipped",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":skipped": {"S": "skipped"}},
        )

    def advance(self, record: SyncRecord) -> bool:
        """Move a claimed record on (to "creating", or to an outcome without a link), if the claim is still ours."""
        return self._call("put_item", **self._owned_put(record))

    def link(self, record: SyncRecord, tenant: str, now: str) -> bool:
        """The outcome and the POS identity claim ("vendor#credential#pos_id" -> persona) in one transaction, so the
        pull that brings the customer back resolves it to this persona. A claim already pointing at this persona
        is fine; one held by another persona keeps its owner (the outcome still records the POS id)."""
        assert record.pos_id is not None
        value = layout.pos_identity_value(record.vendor, record.credential_id, record.pos_id)
        claim = {
            "pk": {"S": layout.identity_pk(tenant, "pos", value)},
            "sk": {"S": layout.IDENTITY_SK},
            "persona_id": {"S": record.persona_id},
            "tenant": {"S": tenant},
            "kind": {"S": "pos"},
            "claimed_at": {"S": now},
        }
        linked = self._call(
            "transact_write_items",
            TransactItems=[
                {"Put": self._owned_put(record)},
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": claim,
                        "ConditionExpression": "attribute_not_exists(pk) OR persona_id = :me",
                        "ExpressionAttributeValues": {":me": {"S": record.persona_id}},
                    }
                },
            ],
        )
        if linked:
            return True
        # The identity belongs to another persona (or the claim was lost): record the outcome alone if still ours.
        return self.advance(record)

    def _owned_put(self, record: SyncRecord) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "Item": record_item(record),
            "ConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {":owner": {"S": record.owner}},
        }
