"""Unmapped-store notices in the control table, beside functions.core.store.ControlStore: one per store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from functions.core import layout
from functions.core.layout import Vendor
from functions.core.store import call_table


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


def _s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value["S"] if value and "S" in value else None


class UnmappedStores:
    """One notice per unmapped credential / POS location, in the control table."""

    def __init__(self, dynamodb: Any, control_table: str) -> None:
        self.ddb = dynamodb
        self.table = control_table

    def _call(self, op: str, **kwargs: Any) -> Any:
        """The request's response, or None when its condition was not met."""
        try:
            return call_table(self.ddb, self.table, op, TableName=self.table, **kwargs)
        except ClientError as exc:  # only a condition that did not hold comes through
            return exc.response

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
        response = self._call(
            "put_item",
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if "Error" in response:  # there is a notice already
            return not response.get("Item", {}).get("notified", {}).get("BOOL", True)
        return True

    def mark_notified(self, tenant: str, vendor: Vendor, credential_id: str, location_id: str | None) -> None:
        # a condition not met means the store was mapped (and the notice deleted) in between
        self._call(
            "update_item",
            Key=self._key(tenant, vendor, credential_id, location_id),
            UpdateExpression="SET notified = :yes",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":yes": {"BOOL": True}},
        )

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
