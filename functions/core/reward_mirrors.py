"""The mirror check over stored data: each store's pulled POS discounts against the tenant's reward catalogue, and
one "unmirrored reward" notice per store and reward (control-table item, EventBridge event, metric), raised once."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from functions.core import layout, metrics
from functions.core.layout import RecordKind, Vendor
from functions.core.loyalty.catalogue import RewardCatalogue
from functions.core.loyalty.rewards import MirrorFinding, PosDiscount, Reward, check_mirrors, name_key
from functions.core.models import Discount
from functions.core.notify import DEFAULT_EVENT_BUS, EVENT_SOURCE, NotifyError
from functions.core.store import RecordStore, RegisteredCredential, call_table

UNMIRRORED_REWARD_DETAIL_TYPE = "possync.unmirrored-reward"


def stored_discounts(
    records: RecordStore, tenant: str, vendor: Vendor, credential_id: str | None = None
) -> dict[str, list[PosDiscount]]:
    """A tenant's pulled discounts of one POS (or of one store of it), by credential (read through the index by
    tenant and POS)."""
    found: dict[str, list[PosDiscount]] = {}
    start: dict[str, Any] | None = None
    while True:
        page = records.scope_page(tenant, vendor, RecordKind.DISCOUNT, start, credential_id=credential_id)
        for record, _ in page.records:
            if isinstance(record, Discount):
                found.setdefault(record.credential_id, []).append(
                    PosDiscount(vendor, record.credential_id, record.pos_id, record.name, record.active)
                )
        if page.next_key is None:
            return found
        start = page.next_key


def check_tenant(
    rewards: Sequence[Reward], credentials: Iterable[RegisteredCredential], records: RecordStore, tenant: str
) -> list[MirrorFinding]:
    """Every active store of the tenant checked against the catalogue (a store with no discounts pulled lists
    none, so each of its rewards is missing there)."""
    findings: list[MirrorFinding] = []
    by_vendor: dict[Vendor, list[str]] = {}
    for credential in credentials:
        if credential.tenant == tenant and credential.active:
            by_vendor.setdefault(credential.vendor, []).append(credential.credential_id)
    for vendor, credential_ids in sorted(by_vendor.items()):
        discounts = stored_discounts(records, tenant, vendor)
        for credential_id in sorted(credential_ids):
            findings += check_mirrors(rewards, vendor, credential_id, discounts.get(credential_id, []))
    return findings


def check_credential(
    rewards: Sequence[Reward], vendor: Vendor, credential_id: str, records: RecordStore, tenant: str
) -> list[MirrorFinding]:
    """One store checked against the catalogue (after a pull of its discounts), as check_tenant checks each."""
    discounts = stored_discounts(records, tenant, vendor, credential_id)
    return check_mirrors(rewards, vendor, credential_id, discounts.get(credential_id, []))


class Counts(Protocol):
    """Where the count of raised notices goes: EMF in a Lambda (notify.AwsNotifier), PutMetricData from the CLI."""

    def counts(self, values: Mapping[str, int]) -> None: ...


@dataclass(frozen=True)
class UnmirroredNotice:
    tenant: str
    finding: MirrorFinding

    @property
    def key(self) -> dict[str, Any]:
        f = self.finding
        return {
            "pk": {"S": layout.control_unmirrored_pk(self.tenant)},
            "sk": {"S": layout.control_unmirrored_sk(f.vendor, f.credential_id, name_key(f.reward or ""))},
        }

    def event(self, bus: str) -> dict[str, Any]:
        """The PutEvents entry: ids, the reward's name and what to do (no personal data)."""
        f = self.finding
        detail = {
            "tenant": self.tenant,
            "vendor": f.vendor.value,
            "credential_id": f.credential_id,
            "reward": f.reward,
            "problem": f.problem,
            "fix": f.advice,
        }
        return {
            "Source": EVENT_SOURCE,
            "DetailType": UNMIRRORED_REWARD_DETAIL_TYPE,
            "Detail": json.dumps(detail),
            "EventBusName": bus,
        }


class UnmirroredNotices:
    """One notice per store and unmirrored reward: recorded once, announced once; cleared when it is mirrored."""

    def __init__(self, dynamodb: Any, control_table: str) -> None:
        self.ddb = dynamodb
        self.table = control_table

    def raise_notices(
        self,
        tenant: str,
        findings: Sequence[MirrorFinding],
        events: Any,
        counter: Counts,
        bus: str = DEFAULT_EVENT_BUS,
        store: tuple[Vendor, str] | None = None,
    ) -> int:
        """Record each unmirrored finding not recorded yet, announce it (event) and count it (metric); clear the
        notices of rewards mirrored now: the tenant's, or with `store` (vendor, credential id) only that store's
        (the findings are then that store's alone). Returns how many new notices were raised."""
        current = [UnmirroredNotice(tenant, f) for f in findings if f.unmirrored and f.reward]
        wanted = {n.key["sk"]["S"] for n in current}
        for sk in self._stored(tenant, store) - wanted:
            call_table(self.ddb, self.table, "delete_item", TableName=self.table,
                       Key={"pk": {"S": layout.control_unmirrored_pk(tenant)}, "sk": {"S": sk}})  # fmt: skip
        raised = 0
        try:
            for notice in current:
                raised += self._raise(notice, events, bus)
        finally:  # those announced before a failure are counted too
            counter.counts({metrics.REWARDS_UNMIRRORED: raised})
        return raised

    def _raise(self, notice: UnmirroredNotice, events: Any, bus: str) -> int:
        """1 if this notice is new and announced now, 0 if it was announced already; NotifyError if EventBridge
        refused it (then it is forgotten, so the next check announces it)."""
        item = {
            **notice.key,
            "problem": {"S": notice.finding.problem},
            "reward": {"S": notice.finding.reward or ""},
        }
        try:
            call_table(self.ddb, self.table, "put_item", TableName=self.table, Item=item,
                       ConditionExpression="attribute_not_exists(pk)")  # fmt: skip
        except ClientError:  # announced already
            return 0
        try:
            response = events.put_events(Entries=[notice.event(bus)])
        except (ClientError, BotoCoreError) as exc:
            self._forget(notice)  # announced next time
            raise NotifyError(f"unmirrored-reward event not accepted: {type(exc).__name__}") from exc
        if response.get("FailedEntryCount"):
            self._forget(notice)
            raise NotifyError("unmirrored-reward event not accepted by EventBridge")
        return 1

    def standing(self, tenant: str) -> int:
        """How many of the tenant's notices stand (raised, not cleared yet)."""
        return len(self._stored(tenant, None))

    def _forget(self, notice: UnmirroredNotice) -> None:
        call_table(self.ddb, self.table, "delete_item", TableName=self.table, Key=notice.key)

    def _stored(self, tenant: str, store: tuple[Vendor, str] | None) -> set[str]:
        values = {":pk": {"S": layout.control_unmirrored_pk(tenant)}}
        condition = "pk = :pk"
        if store is not None:
            values[":store"] = {"S": layout.control_unmirrored_sk(store[0], store[1], "")}
            condition += " AND begins_with(sk, :store)"
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ProjectionExpression": "sk",
            "ConsistentRead": True,
        }
        found: set[str] = set()
        while True:
            response = call_table(self.ddb, self.table, "query", **kwargs)
            found.update(i["sk"]["S"] for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


class StoreMirrorCheck:
    """After a pull of a store's discounts: that store against the tenant's catalogue, its notices raised or
    cleared (the pull functions; `possync rewards check` runs check_tenant over every store)."""

    def __init__(
        self,
        catalogue: RewardCatalogue,
        records: RecordStore,
        notices: UnmirroredNotices,
        events: Any,
        counter: Counts,
        bus: str = DEFAULT_EVENT_BUS,
    ) -> None:
        self.catalogue = catalogue
        self.records = records
        self.notices = notices
        self.events = events
        self.counter = counter
        self.bus = bus

    def run(self, tenant: str, vendor: Vendor, credential_id: str) -> int:
        """How many new notices were raised for this store."""
        findings = check_credential(self.catalogue.rewards(tenant), vendor, credential_id, self.records, tenant)
        return self.notices.raise_notices(
            tenant, findings, self.events, self.counter, self.bus, store=(vendor, credential_id)
        )
