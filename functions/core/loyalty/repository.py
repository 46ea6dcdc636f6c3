"""The personas table through DynamoDB: profiles, identity claims, the points ledger and parked records.

Reads are batched (BatchGetItem, consistent) so a stream batch reads what it needs in a few requests. Every write
that decides something is conditional: on the profile's `version` (optimistic), on a claim being absent, on a
ledger entry being exactly as read, on a parked record's version. A lost race raises PersonaConflictError and the
caller reads again; any other DynamoDB failure raises StoreError (an AwsServiceError: the work is retried whole).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from functions.core import layout
from functions.core.ddb_batch import BATCH_GET_MAX, batch_get, chunks
from functions.core.errors import PossyncError
from functions.core.layout import Vendor
from functions.core.loyalty import codecs
from functions.core.loyalty.codecs import Item
from functions.core.loyalty.values import Claim, LedgerEntry, ParkedRecord, Persona, Purchase
from functions.core.models import CanonicalRecord
from functions.core.observability import logger
from functions.core.store import call_table

# DynamoDB's limit on the actions of one TransactWriteItems.
TRANSACTION_MAX_ITEMS = 100
CANCELLED = frozenset(
    {"TransactionCanceledException", "ConditionalCheckFailedException", "TransactionConflictException"}
)

Customer = tuple[Vendor, str, str]  # (vendor, credential id, the POS's customer id)


class PersonaConflictError(PossyncError):
    """A conditional write or transaction lost a race (or found newer data): re-read and decide again."""


def pending_id(record: CanonicalRecord) -> str:
    """Pending sort key: SALE#<sale id> for sales (layout.pending_sk); balances get their own namespace in it."""
    if record.kind.value == "sale":
        return layout.pending_sk(record.pos_id)
    return layout.pending_sk(f"{record.kind.value}#{record.pos_id}")


class PersonaStore:
    def __init__(self, dynamodb: Any, table: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self.ddb = dynamodb
        self.table = table
        self.sleep = sleep

    # --- plumbing ------------------------------------------------------------------------------------------
    def _call(self, op: str, **kwargs: Any) -> Any:
        try:
            return call_table(self.ddb, self.table, op, passthrough=CANCELLED, **kwargs)
        except ClientError as exc:  # only a lost race comes through
            raise PersonaConflictError(f"{op} on {self.table} lost a race") from exc

    def _get_many(self, keys: Sequence[Item]) -> Iterator[Item]:
        """Every item of these keys that exists (consistent reads, 100 keys per BatchGetItem)."""
        unique = list({(k["pk"]["S"], k["sk"]["S"]): k for k in keys}.values())
        for chunk in chunks(unique, BATCH_GET_MAX):
            request = {self.table: {"Keys": list(chunk), "ConsistentRead": True}}
            for _, item in batch_get(self.ddb, request, sleep=self.sleep):
                yield item

    def _query(self, pk: str, prefix: str | None = None) -> Iterator[Item]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk" + (" AND begins_with(sk, :prefix)" if prefix else ""),
            "ExpressionAttributeValues": {":pk": {"S": pk}, **({":prefix": {"S": prefix}} if prefix else {})},
            "ConsistentRead": True,
        }
        while True:
            response = self._call("query", **kwargs)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _write(self, items: Sequence[Item]) -> None:
        """One action as a plain conditional write (half the cost of a transaction), several as a transaction."""
        if len(items) == 1:
            [(action, spec)] = items[0].items()
            op = {"Put": "put_item", "Update": "update_item", "Delete": "delete_item"}[action]
            self._call(op, **spec)
        else:
            self._call("transact_write_items", TransactItems=list(items))

    # --- profiles and claims -------------------------------------------------------------------------------
    def get_persona(self, tenant: str, persona_id: str) -> Persona | None:
        return self.get_personas(tenant, [persona_id]).get(persona_id)

    def get_personas(self, tenant: str, persona_ids: Iterable[str]) -> dict[str, Persona]:
        keys = [codecs.persona_key(tenant, pid) for pid in persona_ids]
        found = (codecs.persona_from_item(item) for item in self._get_many(keys))
        return {p.persona_id: p for p in found}

    def claim_owners(self, tenant: str, claims: Iterable[Claim]) -> dict[Claim, str]:
        """Which persona holds each claim (claims nobody holds are absent), read consistently, in batches."""
        by_pk = {c.pk(tenant): c for c in claims}
        keys = [{"pk": {"S": pk}, "sk": {"S": layout.IDENTITY_SK}} for pk in by_pk]
        return {by_pk[item["pk"]["S"]]: item["persona_id"]["S"] for item in self._get_many(keys)}

    def pos_owners(self, tenant: str, customers: Iterable[Customer]) -> dict[Customer, str]:
        """The persona each POS customer record resolved to (customers with none are absent)."""
        claims = {Claim("pos", layout.pos_identity_value(v, c, pos_id)): (v, c, pos_id) for v, c, pos_id in customers}
        return {claims[claim]: owner for claim, owner in self.claim_owners(tenant, claims).items()}

    def pos_owner(self, tenant: str, vendor: Vendor, credential_id: str, customer_pos_id: str) -> str | None:
        return self.pos_owners(tenant, [(vendor, credential_id, customer_pos_id)]).get(
            (vendor, credential_id, customer_pos_id)
        )

    def _claim_put(self, tenant: str, claim: Claim, persona_id: str, now: str) -> Item:
        item = codecs.claim_item(tenant, claim.kind, claim.value, persona_id, now)
        return {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}

    def create_persona(self, persona: Persona, claims: Sequence[Claim]) -> None:
        """One transaction: the profile and every claim, each only if absent (two creators: one wins)."""
        profile = {
            "Put": {
                "TableName": self.table,
                "Item": codecs.persona_item(persona),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        now = persona.created_at
        self._write([profile, *(self._claim_put(persona.tenant, c, persona.persona_id, now) for c in claims)])

    def save_persona(
        self,
        persona: Persona,
        current: Persona,
        new_claims: Sequence[Claim] = (),
        moved: tuple[Claim, str] | None = None,
    ) -> None:
        """The profile's contact and source attributes that differ from `current` (if the profile is still at its
        version), new claims (if still free) and, when a POS record moves here from another persona, its claim
        repointed (if that persona still holds it): one conditional write, or one transaction with claims."""
        update = codecs.profile_update(persona, codecs.CONTACT_ATTRIBUTES, current.version, current)
        items: list[Item] = [{"Update": {"TableName": self.table, **update}}]
        now = persona.updated_at
        items += [self._claim_put(persona.tenant, c, persona.persona_id, now) for c in new_claims]
        if moved is not None:
            claim, previous_owner = moved
            put = self._claim_put(persona.tenant, claim, persona.persona_id, now)["Put"]
            put["ConditionExpression"] = "persona_id = :old"
            put["ExpressionAttributeValues"] = {":old": {"S": previous_owner}}
            items.append({"Put": put})
        self._write(items)

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
            found.extend(codecs.persona_from_item(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return sorted(found[:limit], key=lambda p: p.created_at)

    # --- the points ledger ---------------------------------------------------------------------------------
    def read_bookings(
        self, tenant: str, wanted: Mapping[str, Iterable[str]]
    ) -> tuple[dict[str, Persona], dict[str, dict[str, LedgerEntry]]]:
        """The profiles of these personas and the ledger entries named for each (persona id -> sort keys), in
        batched consistent reads: what booking a batch of sales needs."""
        keys: list[Item] = []
        for persona_id, sks in wanted.items():
            keys.append(codecs.persona_key(tenant, persona_id))
            keys += [codecs.ledger_key(tenant, persona_id, sk) for sk in sks]
        by_pk = {layout.persona_pk(tenant, pid): pid for pid in wanted}
        profiles: dict[str, Persona] = {}
        entries: dict[str, dict[str, LedgerEntry]] = {pid: {} for pid in wanted}
        for item in self._get_many(keys):
            if item["sk"]["S"] == layout.PERSONA_PROFILE_SK:
                persona = codecs.persona_from_item(item)
                profiles[persona.persona_id] = persona
            else:
                entries[by_pk[item["pk"]["S"]]][item["sk"]["S"]] = codecs.ledger_from_item(item)
        return profiles, entries

    def ledger_entry(self, tenant: str, persona_id: str, sk: str) -> LedgerEntry | None:
        _, entries = self.read_bookings(tenant, {persona_id: [sk]})
        return entries[persona_id].get(sk)

    def ledger_entries(self, tenant: str, persona_id: str) -> list[LedgerEntry]:
        items = self._query(layout.persona_pk(tenant, persona_id), "LEDGER#")
        return [codecs.ledger_from_item(i) for i in items]

    def book(
        self,
        profile: Persona,
        writes: Sequence[tuple[LedgerEntry, LedgerEntry | None]],
        current: Persona,
    ) -> Persona:
        """Write ledger entries (each only if it is still exactly as read) with the profile's loyalty attributes
        that differ from `current` (only if the profile is still at its version) in one transaction; more entries
        than one transaction holds go in several, each moving the balance by its own entries, the profile's other
        changes in the last. Returns the profile as written."""
        parts = list(chunks(list(writes), TRANSACTION_MAX_ITEMS - 1)) or [[]]
        stored = current  # the profile as stored before each part
        for index, part in enumerate(parts):
            points = stored.points + sum(new.points - (old.points if old else 0) for new, old in part)
            last = index == len(parts) - 1
            written = replace(profile, points=points, version=stored.version + 1)
            names = codecs.LOYALTY_ATTRIBUTES if last else ("points",)
            update = codecs.profile_update(written, names, stored.version, stored)
            items: list[Item] = [self._ledger_put(profile.tenant, profile.persona_id, new, old) for new, old in part]
            items.append({"Update": {"TableName": self.table, **update}})
            self._write(items)
            stored = replace(stored, points=points, version=stored.version + 1)
        return replace(profile, version=stored.version)

    def _ledger_put(self, tenant: str, persona_id: str, new: LedgerEntry, old: LedgerEntry | None) -> Item:
        put: Item = {"TableName": self.table, "Item": codecs.ledger_item(tenant, persona_id, new)}
        if old is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "record_version = :v AND points = :p AND source_updated_at = :u"
            put["ExpressionAttributeValues"] = {
                ":v": {"N": str(old.record_version)},
                ":p": {"N": str(old.points)},
                ":u": {"S": old.source_updated_at},
            }
        return {"Put": put}

    # --- parked records ------------------------------------------------------------------------------------
    def _park(
        self, pk: str, sk: str, record: CanonicalRecord, version: int, now: str, purchase: Purchase | None
    ) -> bool:
        """Keep the newest version of a record (True if this one is kept now). `purchase` keeps, whatever the
        versions' arrival order, that the sale was once a purchase: enrollment is sticky, so a later refund
        version must not hide it."""
        key = {"pk": {"S": pk}, "sk": {"S": sk}}
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

    def _note_purchase(self, key: Item, purchase: Purchase) -> None:
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

    def _parked(self, pk: str, skip: str) -> list[ParkedRecord]:
        out: list[ParkedRecord] = []
        for item in self._query(pk):
            if item["sk"]["S"] == skip:
                continue
            try:
                out.append(codecs.parked_from_item(item))
            except (ValidationError, ValueError, KeyError) as exc:
                # kept where it is (nothing is lost); this version of the code cannot apply it
                logger.error("parked record unreadable; left in place", pk=pk, sk=item["sk"]["S"], error=str(exc))
        return out

    def delete_parked(self, parked: ParkedRecord) -> bool:
        """Remove an applied parked record, unless a newer version replaced it meanwhile (that one stays)."""
        try:
            self._call(
                "delete_item",
                TableName=self.table,
                Key={"pk": {"S": parked.pk}, "sk": {"S": parked.sk}},
                ConditionExpression="record_version = :v",
                ExpressionAttributeValues={":v": {"N": str(parked.version)}},
            )
        except PersonaConflictError:
            return False
        return True

    # a sale or balance whose customer has no persona yet
    def park_pending(
        self, record: CanonicalRecord, customer_pos_id: str, version: int, now: str, purchase: Purchase | None = None
    ) -> bool:
        """Park a record until its customer has a persona. The customer's marker is written first, so a parked
        record always has one: the personas consumer reads the markers of the customers it resolves."""
        pk = layout.pending_pk(record.tenant, record.vendor, record.credential_id, customer_pos_id)
        self._call(
            "put_item",
            TableName=self.table,
            Item={"pk": {"S": pk}, "sk": {"S": layout.PENDING_MARKER_SK}, "marked_at": {"S": now}},
        )
        return self._park(pk, pending_id(record), record, version, now, purchase)

    def pending(self, tenant: str, vendor: Vendor, credential_id: str, customer_pos_id: str) -> list[ParkedRecord]:
        return self._parked(layout.pending_pk(tenant, vendor, credential_id, customer_pos_id), layout.PENDING_MARKER_SK)

    def pending_markers(self, tenant: str, customers: Iterable[Customer]) -> set[Customer]:
        """The customers that have (or had) parked records, in batched reads."""
        by_pk = {layout.pending_pk(tenant, v, c, pos_id): (v, c, pos_id) for v, c, pos_id in customers}
        keys = [{"pk": {"S": pk}, "sk": {"S": layout.PENDING_MARKER_SK}} for pk in by_pk]
        return {by_pk[item["pk"]["S"]] for item in self._get_many(keys)}

    def drop_pending_marker(self, tenant: str, vendor: Vendor, credential_id: str, customer_pos_id: str) -> None:
        """Once the customer's parked records are applied. (A sale parked after this sees the persona, which exists
        by then, when it checks again after parking, and applies itself.)"""
        pk = layout.pending_pk(tenant, vendor, credential_id, customer_pos_id)
        self._call("delete_item", TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": layout.PENDING_MARKER_SK}})

    # any record whose tenant's settings were invalid
    def park_waiting(self, record: CanonicalRecord, version: int, now: str, purchase: Purchase | None = None) -> bool:
        """Park a record until its tenant's settings for its POS are valid; then the waiting flag moves, so a
        flag cleared concurrently (see clear_waiting_flag) is set again."""
        pk = layout.waiting_pk(record.tenant, record.vendor)
        sk = layout.waiting_sk(record.kind, record.credential_id, record.pos_id)
        kept = self._park(pk, sk, record, version, now, purchase)
        self.flag_waiting(record.tenant, record.vendor, now)
        return kept

    def flag_waiting(self, tenant: str, vendor: Vendor, now: str) -> None:
        """Say that something waits for the tenant's settings for this POS to be valid again: the re-evaluation job
        that their fix requests then runs over the stored records even if the settings read as before."""
        self._call(
            "update_item",
            TableName=self.table,
            Key={"pk": {"S": layout.waiting_pk(tenant, vendor)}, "sk": {"S": layout.WAITING_FLAG_SK}},
            UpdateExpression="SET flagged_at = :now ADD changes :one",
            ExpressionAttributeValues={":now": {"S": now}, ":one": {"N": "1"}},
        )

    def is_waiting(self, record: CanonicalRecord) -> bool:
        """Whether this record is parked until its tenant's settings for its POS are valid (a consistent read)."""
        key = {
            "pk": {"S": layout.waiting_pk(record.tenant, record.vendor)},
            "sk": {"S": layout.waiting_sk(record.kind, record.credential_id, record.pos_id)},
        }
        return any(True for _ in self._get_many([key]))

    def waiting(self, tenant: str, vendor: Vendor) -> list[ParkedRecord]:
        return self._parked(layout.waiting_pk(tenant, vendor), layout.WAITING_FLAG_SK)

    def waiting_flag(self, tenant: str, vendor: Vendor) -> int | None:
        """The waiting flag's change counter, None when no record waits for that tenant and POS."""
        key = {"pk": {"S": layout.waiting_pk(tenant, vendor)}, "sk": {"S": layout.WAITING_FLAG_SK}}
        for item in self._get_many([key]):
            return codecs.n(item, "changes")
        return None

    def clear_waiting_flag(self, tenant: str, vendor: Vendor, seen: int) -> bool:
        """Remove the flag if nothing was parked since it read `seen` (the caller found nothing waiting)."""
        try:
            self._call(
                "delete_item",
                TableName=self.table,
                Key={"pk": {"S": layout.waiting_pk(tenant, vendor)}, "sk": {"S": layout.WAITING_FLAG_SK}},
                ConditionExpression="changes = :seen",
                ExpressionAttributeValues={":seen": {"N": str(seen)}},
            )
        except PersonaConflictError:
            return False
        return True

    def count_waiting(self, tenant: str, vendor: Vendor) -> int:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            # the flag's sort key ("#FLAG") sorts before every record's ("<kind>#...")
            "KeyConditionExpression": "pk = :pk AND sk > :flag",
            "ExpressionAttributeValues": {
                ":pk": {"S": layout.waiting_pk(tenant, vendor)},
                ":flag": {"S": layout.WAITING_FLAG_SK},
            },
            "Select": "COUNT",
            "ConsistentRead": True,
        }
        total = 0
        while True:
            response = self._call("query", **kwargs)
            total += int(response.get("Count", 0))
            if "LastEvaluatedKey" not in response:
                return total
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
