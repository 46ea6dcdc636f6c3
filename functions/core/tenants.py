"""The tenant registry in the control table: which tenants exist, so a mistyped tenant id configures nothing."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.core import layout
from functions.core.errors import PossyncError
from functions.core.layout import Vendor, check_id
from functions.core.store import ControlStore, StoreError

TENANT_NAME_MAX = 100


class TenantExistsError(PossyncError):
    """The tenant is already registered: creating it again would silently join someone else's tenant."""


@dataclass(frozen=True)
class Tenant:
    tenant: str
    name: str | None = None
    created_at: str | None = None
    created_by: str | None = None
    # False: known only from its registered credentials (added before tenants were registered explicitly).
    registered: bool = True
    credentials: int | None = None  # None: not counted


def check_tenant_name(name: str) -> str:
    """A display name: printable, trimmed, at most TENANT_NAME_MAX characters."""
    value = name.strip()
    if not value or len(value) > TENANT_NAME_MAX or not value.isprintable():
        raise ValueError(f'a tenant name is 1-{TENANT_NAME_MAX} printable characters, e.g. "Green Leaf"')
    return value


def closest(tenant: str, known: Sequence[str]) -> str | None:
    """The known tenant id a mistyped one most likely meant, if any is close."""
    found = difflib.get_close_matches(tenant, list(known), n=1, cutoff=0.6)
    return found[0] if found else None


class TenantRegistry:
    """Registered tenants, plus those known only from their credentials (data from before the registry)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.ddb = dynamodb
        self.table = table
        self.control = ControlStore(dynamodb, table)

    @staticmethod
    def key(tenant: str) -> dict[str, Any]:
        return {"pk": {"S": layout.CONTROL_TENANT_PK}, "sk": {"S": layout.control_tenant_sk(tenant)}}

    def put_request(self, tenant: str, name: str | None, who: str, at: datetime) -> dict[str, Any]:
        """The TransactWriteItems action that registers a tenant, refused if it is already registered."""
        item: dict[str, Any] = {
            **self.key(check_id(tenant, "tenant")),
            "tenant": {"S": tenant},
            "created_at": {"S": at.astimezone(UTC).isoformat(timespec="seconds")},
            "created_by": {"S": who},
        }
        if name:
            item["name"] = {"S": check_tenant_name(name)}
        return {
            "Put": {
                "TableName": self.table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def add(
        self,
        tenant: str,
        *,
        who: str,
        name: str | None = None,
        at: datetime | None = None,
        also: Sequence[Mapping[str, Any]] = (),
    ) -> Tenant:
        """Register a tenant, together with `also` (e.g. its audit entry) in one transaction: all or nothing.

        TenantExistsError when it is registered already.
        """
        moment = at or datetime.now(UTC)
        request = self.put_request(tenant, name, who, moment)
        try:
            self.ddb.transact_write_items(TransactItems=[request, *also])
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                raise TenantExistsError(f"tenant {tenant} already exists") from None
            code = exc.response.get("Error", {}).get("Code")
            raise StoreError(f"registering tenant {tenant} in {self.table} failed: {code}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"registering tenant {tenant} in {self.table} failed: {type(exc).__name__}") from exc
        return self._tenant(request["Put"]["Item"])

    def get(self, tenant: str, *, count_credentials: bool = False) -> Tenant | None:
        """The tenant if it is registered or has credentials; None when possync knows no such tenant.

        A registered tenant costs one read; its credentials are counted only when asked.
        """
        try:
            item = self.ddb.get_item(TableName=self.table, Key=self.key(tenant), ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"reading tenant {tenant} from {self.table} failed: {_code(exc)}") from exc
        if item is not None:
            return self._tenant(item, self._credential_count(tenant) if count_credentials else None)
        count = self._credential_count(tenant)
        return Tenant(tenant, registered=False, credentials=count) if count else None

    def all(self) -> list[Tenant]:
        """Every tenant, registered or known from its credentials, by id."""
        counts = self._credential_counts()
        found = {t.tenant: t for t in (self._tenant(i, counts.get(i["tenant"]["S"], 0)) for i in self._items())}
        for tenant, count in counts.items():
            found.setdefault(tenant, Tenant(tenant, registered=False, credentials=count))
        return [found[t] for t in sorted(found)]

    def _items(self) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": layout.CONTROL_TENANT_PK}},
            "ConsistentRead": True,
        }
        while True:
            try:
                response = self.ddb.query(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise StoreError(f"listing tenants in {self.table} failed: {_code(exc)}") from exc
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _credential_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for vendor in Vendor:
            for entry in self.control.credentials(vendor):
                counts[entry.tenant] = counts.get(entry.tenant, 0) + 1
        return counts

    def _credential_count(self, tenant: str) -> int:
        return sum(len(self.control.credentials(vendor, tenant)) for vendor in Vendor)

    @staticmethod
    def _tenant(item: Mapping[str, Any], credentials: int | None = None) -> Tenant:
        return Tenant(
            tenant=item["tenant"]["S"],
            name=item.get("name", {}).get("S"),
            created_at=item.get("created_at", {}).get("S"),
            created_by=item.get("created_by", {}).get("S"),
            registered=True,
            credentials=credentials,
        )


def _code(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code"))
    return type(exc).__name__
