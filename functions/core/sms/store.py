"""Consent, evidence, the per-number send cap and the once-per-persona marker, in the personas table.

Keys: a number's items share the partition `SMSNUM#<E.164>` (its consent per tenant, its evidence, its send log),
so a reply, which names only the number, finds every tenant that texted it in one query. The persona's marker
(`SMS#OPTIN` under the persona's partition) makes "one request per persona, ever" a conditional write. Every state
change is conditional on the state read, so a redelivered batch, a parallel one and a STOP racing a deferred
request each decide once.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from functions.core import layout
from functions.core.ddb_batch import BATCH_GET_MAX, batch_get
from functions.core.loyalty.values import iso
from functions.core.sms.consent import Consent, Evidence, State
from functions.core.store import call_table

NUMBER_PREFIX = "SMSNUM#"
CONSENT_PREFIX = "CONSENT#"
EVIDENCE_PREFIX = "EVIDENCE#"
SEND_LOG_SK = "SENDLOG"
PERSONA_MARKER_SK = "SMS#OPTIN"
# A qualifying sale whose shopper had no persona yet: picked up when the shopper's record comes through.
WAITING_SALE_PREFIX = "SMSWAIT#"
WAITING_SALE_SK = "SALE"
# At most this many texts of any kind to one number in any 24 hours.
TEXTS_PER_DAY = 3
CAP_WINDOW = timedelta(hours=24)
LOST_RACE = frozenset(
    {"ConditionalCheckFailedException", "TransactionCanceledException", "TransactionConflictException"}
)
CAP_ATTEMPTS = 5

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_sequence = itertools.count()


def number_pk(number: str) -> str:
    return f"{NUMBER_PREFIX}{number}"


def consent_sk(tenant: str) -> str:
    return f"{CONSENT_PREFIX}{tenant}"


def _to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None and v != [] and v != set()}


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def consent_item(consent: Consent) -> dict[str, Any]:
    return _to_item(
        {
            "pk": number_pk(consent.number),
            "sk": consent_sk(consent.tenant),
            "tenant": consent.tenant,
            "number": consent.number,
            "state": consent.state.value,
            "source": consent.source,
            "persona_id": consent.persona_id,
            "template_version": consent.template_version,
            "request_text": consent.request_text,
            "zones": list(consent.zones),
            "requested_at": consent.requested_at,
            "deferred_until": consent.deferred_until,
            "sent_at": consent.sent_at,
            "sending_since": consent.sending_since,
            "replied_at": consent.replied_at,
            "confirmed_at": consent.confirmed_at,
            "opted_out_at": consent.opted_out_at,
            "message_ids": list(consent.message_ids),
            "replies_answered": set(consent.replies_answered) or None,
            "version": consent.version,
        }
    )


def consent_from_item(item: dict[str, Any]) -> Consent:
    data = _from_item(item)
    version = data.get("template_version")
    return Consent(
        tenant=data["tenant"],
        number=data["number"],
        state=State(data["state"]),
        source=data["source"],
        persona_id=data.get("persona_id"),
        template_version=int(version) if version is not None else None,
        request_text=data.get("request_text"),
        zones=tuple(data.get("zones") or ()),
        requested_at=data.get("requested_at"),
        deferred_until=data.get("deferred_until"),
        sent_at=data.get("sent_at"),
        sending_since=data.get("sending_since"),
        replied_at=data.get("replied_at"),
        confirmed_at=data.get("confirmed_at"),
        opted_out_at=data.get("opted_out_at"),
        message_ids=tuple(data.get("message_ids") or ()),
        replies_answered=frozenset(data.get("replies_answered") or ()),
        version=int(data.get("version", 0)),
    )


def evidence_item(evidence: Evidence) -> dict[str, Any]:
    # The sort key orders a tenant's history by time; the counter keeps two events of one instant apart.
    sk = f"{EVIDENCE_PREFIX}{evidence.tenant}#{evidence.at}#{next(_sequence):09d}#{evidence.event}"
    return _to_item(
        {
            "pk": number_pk(evidence.number),
            "sk": sk,
            "tenant": evidence.tenant,
            "number": evidence.number,
            "event": evidence.event,
            "at": evidence.at,
            "source": evidence.source,
            "details": dict(evidence.details) or None,
        }
    )


def evidence_from_item(item: dict[str, Any]) -> Evidence:
    data = _from_item(item)
    details = {
        k: (int(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, float) else v)
        for k, v in (data.get("details") or {}).items()
    }
    return Evidence(data["tenant"], data["number"], data["event"], data["at"], data["source"], details)


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; evidence details hold integers only."""
    return int(value) if isinstance(value, Decimal) else value


class LostRaceError(Exception):
    """A conditional write found the state changed since it was read."""


class ConsentStore:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self.ddb = dynamodb
        self.table = table
        self.requests = 0  # DynamoDB requests made (the benchmark reads it)

    def _call(self, op: str, **kwargs: Any) -> Any:
        self.requests += 1
        try:
            return call_table(self.ddb, self.table, op, passthrough=LOST_RACE, **kwargs)
        except ClientError as exc:
            raise LostRaceError(f"{op} on {self.table} lost a race") from exc

    def _query(self, pk: str, prefix: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        while True:
            response = self._call("query", **kwargs)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # --- reads ---------------------------------------------------------------------------------------------
    def consent(self, tenant: str, number: str) -> Consent | None:
        key = {"pk": {"S": number_pk(number)}, "sk": {"S": consent_sk(tenant)}}
        item = self._call("get_item", TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        return consent_from_item(item) if item else None

    def consents(self, number: str) -> list[Consent]:
        """Every tenant's consent of this number."""
        return [consent_from_item(i) for i in self._query(number_pk(number), CONSENT_PREFIX)]

    def evidence(self, tenant: str, number: str) -> list[Evidence]:
        items = self._query(number_pk(number), f"{EVIDENCE_PREFIX}{tenant}#")
        return [evidence_from_item(i) for i in items]

    def persona_marker(self, tenant: str, persona_id: str) -> str | None:
        """The number a persona's one opt-in request went to, if it ever had one."""
        key = {"pk": {"S": layout.persona_pk(tenant, persona_id)}, "sk": {"S": PERSONA_MARKER_SK}}
        item = self._call("get_item", TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        return item["number"]["S"] if item else None

    # --- writes --------------------------------------------------------------------------------------------
    def record_intent(self, consent: Consent, evidence: Evidence) -> bool:
        """The durable send intent, before any provider call: the consent (absent for this number and tenant) and
        the persona's once-ever marker (absent), with its evidence, in one transaction. False when either exists
        (another batch, a redelivery or an earlier request got there first)."""
        if consent.persona_id is None:
            raise ValueError("an opt-in request belongs to a persona")
        marker = _to_item(
            {
                "pk": layout.persona_pk(consent.tenant, consent.persona_id),
                "sk": PERSONA_MARKER_SK,
                "number": consent.number,
                "at": consent.requested_at,
            }
        )
        absent = "attribute_not_exists(pk)"
        try:
            self._call(
                "transact_write_items",
                TransactItems=[
                    {"Put": {"TableName": self.table, "Item": consent_item(consent), "ConditionExpression": absent}},
                    {"Put": {"TableName": self.table, "Item": marker, "ConditionExpression": absent}},
                    {"Put": {"TableName": self.table, "Item": evidence_item(evidence), "ConditionExpression": absent}},
                ],
            )
        except LostRaceError:
            return False
        return True

    def change(self, before: Consent, after: Consent, evidence: Sequence[Evidence] = ()) -> bool:
        """Replace the consent as read (`before`, by its version) with `after`, appending evidence, atomically.
        False when the consent changed meanwhile (the caller reads again and decides again)."""
        new = consent_item(after.__class__(**{**after.__dict__, "version": before.version + 1}))
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": new,
                    "ConditionExpression": "#v = :v",
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": {":v": {"N": str(before.version)}},
                }
            }
        ]
        for event in evidence:
            actions.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": evidence_item(event),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        try:
            if len(actions) == 1:
                self._call("put_item", **actions[0]["Put"])
            else:
                self._call("transact_write_items", TransactItems=actions)
        except LostRaceError:
            return False
        return True

    def create(self, consent: Consent, evidence: Sequence[Evidence] = ()) -> bool:
        """A consent where none exists yet (consent the POS recorded); False if one appeared meanwhile."""
        actions = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": consent_item(consent),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        actions += [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": evidence_item(e),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for e in evidence
        ]
        try:
            self._call("transact_write_items", TransactItems=actions)
        except LostRaceError:
            return False
        return True

    def append(self, evidence: Evidence) -> None:
        self._call(
            "put_item",
            TableName=self.table,
            Item=evidence_item(evidence),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def reserve_text(self, number: str, now: datetime, cap: int = TEXTS_PER_DAY) -> datetime | None:
        """Take one of the number's texts of the last 24 h: None when taken, else when the next one frees up.
        Conditional on the log read, so texts counted concurrently never exceed the cap."""
        key = {"pk": {"S": number_pk(number)}, "sk": {"S": SEND_LOG_SK}}
        for _ in range(CAP_ATTEMPTS):
            item = self._call("get_item", TableName=self.table, Key=key, ConsistentRead=True).get("Item")
            sent = [s["S"] for s in item["sent"]["L"]] if item else []
            version = int(item["version"]["N"]) if item else 0
            recent = sorted(s for s in sent if datetime.fromisoformat(s) > now - CAP_WINDOW)
            if len(recent) >= cap:
                return datetime.fromisoformat(recent[-cap]) + CAP_WINDOW
            values = {
                **key,
                "sent": {"L": [{"S": s} for s in [*recent, iso(now)]]},
                "version": {"N": str(version + 1)},
            }
            condition = "attribute_not_exists(pk)" if item is None else "#v = :v"
            extra: dict[str, Any] = (
                {}
                if item is None
                else {
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": {":v": {"N": str(version)}},
                }
            )
            try:
                self._call("put_item", TableName=self.table, Item=values, ConditionExpression=condition, **extra)
            except LostRaceError:
                continue
            return None
        return now + timedelta(minutes=1)  # heavy contention on one number: try again shortly

    def texts_in_window(self, number: str, now: datetime) -> int:
        key = {"pk": {"S": number_pk(number)}, "sk": {"S": SEND_LOG_SK}}
        item = self._call("get_item", TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        sent = [s["S"] for s in item["sent"]["L"]] if item else []
        return sum(1 for s in sent if datetime.fromisoformat(s) > now - CAP_WINDOW)

    def settled(self, tenant: str, numbers: dict[str, str]) -> dict[str, str]:
        """Of these personas (persona id -> number), the ones nothing can be sent to any more: asked before (the
        marker) or with a consent for the number that is not a request still to send. In BatchGetItem requests of
        100 keys, consistent; a persona whose request may still go out is not settled (its sale resumes it)."""
        keys: list[dict[str, Any]] = []
        for persona_id, number in numbers.items():
            keys.append({"pk": {"S": number_pk(number)}, "sk": {"S": consent_sk(tenant)}})
            keys.append({"pk": {"S": layout.persona_pk(tenant, persona_id)}, "sk": {"S": PERSONA_MARKER_SK}})
        unique = list({(k["pk"]["S"], k["sk"]["S"]): k for k in keys}.values())
        consents: dict[str, Consent] = {}
        marked: set[str] = set()
        for start in range(0, len(unique), BATCH_GET_MAX):
            request = {self.table: {"Keys": unique[start : start + BATCH_GET_MAX], "ConsistentRead": True}}
            for _, item in batch_get(self.ddb, request, on_request=self._count_request):
                if item["sk"]["S"] == PERSONA_MARKER_SK:
                    marked.add(item["pk"]["S"])
                else:
                    found = consent_from_item(item)
                    consents[found.number] = found
        done: dict[str, str] = {}
        for persona_id, number in numbers.items():
            consent = consents.get(number)
            if consent is not None and consent.state in (State.INTENT, State.DEFERRED, State.SENDING):
                continue  # a request under way: its sale resumes or reports it
            if consent is not None and consent.source != "optin":
                done[persona_id] = "answered"  # the POS recorded the consent
            elif consent is not None or layout.persona_pk(tenant, persona_id) in marked:
                done[persona_id] = "already_requested"
        return done

    def _count_request(self) -> None:
        self.requests += 1

    # --- sales waiting for their shopper's persona ------------------------------------------------------------
    @staticmethod
    def _waiting_key(tenant: str, vendor: str, credential_id: str, customer: str) -> dict[str, Any]:
        pk = f"{WAITING_SALE_PREFIX}{tenant}#{vendor}#{credential_id}#{customer}"
        return {"pk": {"S": pk}, "sk": {"S": WAITING_SALE_SK}}

    def park_sale(self, tenant: str, vendor: str, credential_id: str, customer: str, sale: dict[str, str]) -> None:
        """Remember a qualifying sale of a customer without a persona (one per customer is enough: any asks)."""
        item = {**self._waiting_key(tenant, vendor, credential_id, customer), **_to_item(dict(sale))}
        self._call("put_item", TableName=self.table, Item=item)

    def waiting_sale(self, tenant: str, vendor: str, credential_id: str, customer: str) -> dict[str, str] | None:
        key = self._waiting_key(tenant, vendor, credential_id, customer)
        item = self._call("get_item", TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        if item is None:
            return None
        return {k: str(v) for k, v in _from_item(item).items() if k not in ("pk", "sk")}

    def waiting_sales(self, customers: Collection[tuple[str, str, str, str]]) -> set[tuple[str, str, str, str]]:
        """Which of these (tenant, vendor, credential, customer) have a sale waiting, in BatchGetItem requests."""
        keys = {self._waiting_key(*c)["pk"]["S"]: c for c in customers}
        request_keys = [self._waiting_key(*c) for c in keys.values()]
        found: set[tuple[str, str, str, str]] = set()
        for start in range(0, len(request_keys), BATCH_GET_MAX):
            request = {self.table: {"Keys": request_keys[start : start + BATCH_GET_MAX], "ConsistentRead": True}}
            for _, item in batch_get(self.ddb, request, on_request=self._count_request):
                found.add(keys[item["pk"]["S"]])
        return found

    def drop_waiting_sale(self, tenant: str, vendor: str, credential_id: str, customer: str) -> None:
        key = self._waiting_key(tenant, vendor, credential_id, customer)
        self._call("delete_item", TableName=self.table, Key=key)

    def consents_of(self, tenant: str, numbers: Collection[str]) -> dict[str, Consent]:
        """The tenant's consent of each number that has one (one read each; for the CLI)."""
        found: dict[str, Consent] = {}
        for number in numbers:
            consent = self.consent(tenant, number)
            if consent is not None:
                found[number] = consent
        return found
