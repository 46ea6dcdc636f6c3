"""The mirror check over stored data: each store's pulled POS discounts against the tenant's reward catalogue, and
one "unmirrored reward" notice per store and reward (control-table item, EventBridge event, metric), raised once."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.core import layout, metrics
from functions.core.layout import RecordKind, Vendor
from functions.core.loyalty.rewards import MirrorFinding, PosDiscount, Reward, check_mirrors, name_key
from functions.core.models import Discount
from functions.core.notify import EVENT_SOURCE, NotifyError
from functions.core.store import RecordStore, RegisteredCredential, call_table

UNMIRRORED_REWARD_DETAIL_TYPE = "possync.unmirrored-reward"


def stored_discounts(records: RecordStore, tenant: str, vendor: Vendor) -> dict[str, list[PosDiscount]]:
    """A tenant's pulled discounts of one POS, by credential (read through the index by tenant and POS)."""
    found: dict[str, list[PosDiscount]] = {}
    start: dict[str, Any] | None = None
    while True:
        page = records.scope_page(tenant, vendor, RecordKind.DISCOUNT, start)
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
        cloudwatch: Any,
        namespace: str,
        bus: str = "default",
    ) -> int:
        """Record each unmirrored finding not recorded yet, announce it (event) and count it (metric); clear the
        notices of rewards mirrored now. Returns how many new notices were raised."""
        current = [UnmirroredNotice(tenant, f) for f in findings if f.unmirrored and f.reward]
        wanted = {n.key["sk"]["S"] for n in current}
        for sk in self._stored(tenant) - wanted:
            call_table(self.ddb, self.table, "delete_item", TableName=self.table,
                       Key={"pk": {"S": layout.control_unmirrored_pk(tenant)}, "sk": {"S": sk}})  # fmt: skip
        raised = 0
        for notice in current:
            item = {
                **notice.key,
                "problem": {"S": notice.finding.problem},
                "reward": {"S": notice.finding.reward or ""},
            }
            try:
                call_table(self.ddb, self.table, "put_item", TableName=self.table, Item=item,
                           ConditionExpression="attribute_not_exists(pk)")  # fmt: skip
            except ClientError:  # announced already
                continue
            try:
                response = events.put_events(Entries=[notice.event(bus)])
            except (ClientError, BotoCoreError) as exc:
                self._forget(notice)  # announced next time
                raise NotifyError(f"unmirrored-reward event not accepted: {type(exc).__name__}") from exc
            if response.get("FailedEntryCount"):
                self._forget(notice)
                raise NotifyError("unmirrored-reward event not accepted by EventBridge")
            raised += 1
        if raised:
            cloudwatch.put_metric_data(
                Namespace=namespace,
                MetricData=[{"MetricName": metrics.REWARDS_UNMIRRORED, "Value": raised, "Unit": "Count"}],
            )
        return raised

    def _forget(self, notice: UnmirroredNotice) -> None:
        call_table(self.ddb, self.table, "delete_item", TableName=self.table, Key=notice.key)

    def _stored(self, tenant: str) -> set[str]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": layout.control_unmirrored_pk(tenant)}},
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
