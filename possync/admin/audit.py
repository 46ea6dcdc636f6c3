"""The settings audit log: one control-table item per change (who, when, parameter, old and new values)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.core.layout import control_audit_pk as audit_pk


def audit_sk(at: datetime, parameter: str) -> str:
    return f"{at.astimezone(UTC).isoformat(timespec='microseconds')}#{parameter}"


@dataclass(frozen=True)
class AuditEntry:
    tenant: str
    parameter: str
    at: str
    who: str
    action: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None


class AuditLog:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self.ddb = dynamodb
        self.table = table

    def item(
        self,
        tenant: str,
        parameter: str,
        who: str,
        action: str,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
        at: datetime,
    ) -> dict[str, Any]:
        return {
            "pk": {"S": audit_pk(tenant)},
            "sk": {"S": audit_sk(at, parameter)},
            "parameter": {"S": parameter},
            "at": {"S": at.astimezone(UTC).isoformat()},
            "who": {"S": who},
            "action": {"S": action},
            "old": {"S": json.dumps(old, default=str, sort_keys=True)},
            "new": {"S": json.dumps(new, default=str, sort_keys=True)},
        }

    def put_request(
        self,
        tenant: str,
        parameter: str,
        who: str,
        action: str,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
        at: datetime,
    ) -> dict[str, Any]:
        """The entry as a TransactWriteItems action, for a change that must be written together with its audit."""
        return {
            "Put": {
                "TableName": self.table,
                "Item": self.item(tenant, parameter, who, action, old, new, at),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def record(
        self,
        tenant: str,
        parameter: str,
        who: str,
        action: str,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
        at: datetime | None = None,
    ) -> AuditEntry:
        moment = at or datetime.now(UTC)
        entry = AuditEntry(tenant, parameter, moment.astimezone(UTC).isoformat(), who, action, old, new)
        self.ddb.put_item(
            TableName=self.table,
            Item=self.item(tenant, parameter, who, action, old, new, moment),
            # Two changes in the same microsecond must not hide one another.
            ConditionExpression="attribute_not_exists(pk)",
        )
        return entry

    def history(self, tenant: str, limit: int | None = None) -> list[AuditEntry]:
        """Newest first."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": audit_pk(tenant)}},
            "ScanIndexForward": False,
        }
        entries: list[AuditEntry] = []
        while True:
            response = self.ddb.query(**kwargs)
            for item in response.get("Items", []):
                entries.append(
                    AuditEntry(
                        tenant=tenant,
                        parameter=item["parameter"]["S"],
                        at=item["at"]["S"],
                        who=item["who"]["S"],
                        action=item["action"]["S"],
                        old=json.loads(item["old"]["S"]),
                        new=json.loads(item["new"]["S"]),
                    )
                )
                if limit is not None and len(entries) >= limit:
                    return entries
            if "LastEvaluatedKey" not in response:
                return entries
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
