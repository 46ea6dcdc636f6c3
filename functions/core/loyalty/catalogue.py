"""The reward catalogue in the control table (one item per reward of a tenant), and a short-lived cache of it for
the rules."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from functions.core import layout
from functions.core.layout import Vendor
from functions.core.loyalty.codecs import ledger_from_item
from functions.core.loyalty.rewards import Catalogue, Reward, RewardError, name_key
from functions.core.loyalty.values import LedgerEntry
from functions.core.store import call_table

# How long the rules trust a catalogue they read (an added reward redeems on sales booked after this at most).
CATALOGUE_CACHE_SECONDS = 60.0


def reward_item(reward: Reward) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": layout.control_rewards_pk(reward.tenant)},
        "sk": {"S": layout.control_reward_sk(reward.key)},
        "tenant": {"S": reward.tenant},
        "name": {"S": reward.name},
        "reward_kind": {"S": reward.kind},
        "value": {"S": str(reward.value)},
        "points_cost": {"N": str(reward.points_cost)},
        "vendors": {"L": [{"S": v.value} for v in reward.vendors]},
        "created_at": {"S": reward.created_at},
    }
    if reward.flourish_discount_id:
        item["flourish_discount_id"] = {"S": reward.flourish_discount_id}
    return item


def reward_from_item(item: dict[str, Any]) -> Reward:
    kind = item["reward_kind"]["S"]
    return Reward(
        tenant=item["tenant"]["S"],
        name=item["name"]["S"],
        kind="percent" if kind == "percent" else "flat",
        value=Decimal(item["value"]["S"]),
        points_cost=int(item["points_cost"]["N"]),
        vendors=tuple(Vendor(v["S"]) for v in item.get("vendors", {}).get("L", []) if v["S"] in set(Vendor)),
        flourish_discount_id=item.get("flourish_discount_id", {}).get("S"),
        created_at=item.get("created_at", {}).get("S", ""),
    )


class RewardCatalogue:
    """A tenant's rewards: added once per name (names equal but for case or spacing are one reward), removed."""

    def __init__(self, dynamodb: Any, control_table: str) -> None:
        self.ddb = dynamodb
        self.table = control_table

    def rewards(self, tenant: str) -> list[Reward]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": layout.control_rewards_pk(tenant)}},
            "ConsistentRead": True,
        }
        out: list[Reward] = []
        while True:
            response = call_table(self.ddb, self.table, "query", **kwargs)
            out.extend(reward_from_item(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return sorted(out, key=lambda r: r.key)
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get(self, tenant: str, name: str) -> Reward | None:
        response = call_table(
            self.ddb,
            self.table,
            "get_item",
            TableName=self.table,
            Key={"pk": {"S": layout.control_rewards_pk(tenant)}, "sk": {"S": layout.control_reward_sk(name_key(name))}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return reward_from_item(item) if item else None

    def add(self, reward: Reward) -> None:
        """Store a new reward; RewardError when its name (as the POS matches it) is taken meanwhile."""
        try:
            call_table(
                self.ddb,
                self.table,
                "put_item",
                TableName=self.table,
                Item=reward_item(reward),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError:
            raise RewardError(
                f"a reward named like {reward.name!r} was added meanwhile: see `possync rewards list`"
            ) from None

    def remove(self, tenant: str, name: str) -> Reward | None:
        response = call_table(
            self.ddb,
            self.table,
            "delete_item",
            TableName=self.table,
            Key={"pk": {"S": layout.control_rewards_pk(tenant)}, "sk": {"S": layout.control_reward_sk(name_key(name))}},
            ReturnValues="ALL_OLD",
        )
        old = response.get("Attributes")
        return reward_from_item(old) if old else None


class CachedCatalogues:
    """Each tenant's catalogue, read at most once a minute per warm Lambda (one query per tenant per batch at most)."""

    def __init__(self, catalogue: RewardCatalogue, clock: Callable[[], float] = time.monotonic) -> None:
        self.catalogue = catalogue
        self.clock = clock
        self._read: dict[str, tuple[float, Catalogue]] = {}

    def __call__(self, tenant: str) -> Catalogue:
        held = self._read.get(tenant)
        if held is not None and self.clock() - held[0] < CATALOGUE_CACHE_SECONDS:
            return held[1]
        catalogue = Catalogue(self.catalogue.rewards(tenant))
        self._read[tenant] = (self.clock(), catalogue)
        return catalogue


def overdrawn_redemptions(dynamodb: Any, personas_table: str, tenant: str) -> list[tuple[str, LedgerEntry]]:
    """(persona id, ledger entry) of each sale whose redemption took its persona's balance below zero. A filtered scan
    of the personas table: for the admin's `possync rewards check`, never on a rule's path."""
    prefix = layout.persona_pk(tenant, "")
    kwargs: dict[str, Any] = {
        "TableName": personas_table,
        "FilterExpression": "begins_with(pk, :prefix) AND overdrawn = :yes",
        "ExpressionAttributeValues": {":prefix": {"S": prefix}, ":yes": {"BOOL": True}},
    }
    found: list[tuple[str, LedgerEntry]] = []
    while True:
        response = call_table(dynamodb, personas_table, "scan", **kwargs)
        for item in response.get("Items", []):
            found.append((item["pk"]["S"].removeprefix(prefix), ledger_from_item(item)))
        if "LastEvaluatedKey" not in response:
            return sorted(found, key=lambda f: (f[0], f[1].at))
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
