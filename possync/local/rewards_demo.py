"""The demo's rewards: each tenant's catalogue (mirrored by the simulators, one name mis-mirrored), and what the
mirror check and the rules made of it."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from functions.core.layout import Vendor
from functions.core.loyalty.catalogue import RewardCatalogue
from functions.core.loyalty.rewards import RewardError, clash, new_reward
from functions.core.notify import PutMetricCounts
from functions.core.reward_mirrors import UnmirroredNotices, check_tenant
from functions.core.store import ControlStore, RecordStore
from possync.local.runtime import LocalRuntime
from simulators.base import DEMO_REWARDS

DEMO_REWARDS_SINCE = "2020-01-01T00:00:00+00:00"


@dataclass
class RewardsSummary:
    """Per tenant: rewards, store mirrors that work, mirror problems, redemptions (and the overdrawn ones)."""

    rewards: Counter[str] = field(default_factory=Counter)
    mirrors: Counter[str] = field(default_factory=Counter)  # (reward, store) pairs the POS can redeem
    problems: Counter[str] = field(default_factory=Counter)
    redemptions: Counter[str] = field(default_factory=Counter)
    overdrawn: Counter[str] = field(default_factory=Counter)
    notices: int = 0  # unmirrored-reward notices standing (raised by the pulls or by this check)


def tenants_of(rt: LocalRuntime) -> list[str]:
    return sorted({t for t, _ in rt.assignments})


def add_demo_rewards(rt: LocalRuntime) -> int:
    """Every tenant's catalogue gets the demo rewards for all five integrations (added once; a rerun adds none)."""
    assert rt.resources is not None
    catalogue = RewardCatalogue(rt.client("dynamodb"), rt.resources.control_table)
    added = 0
    for tenant in tenants_of(rt):
        held = catalogue.rewards(tenant)
        for spec in DEMO_REWARDS:
            reward = new_reward(
                tenant=tenant,
                name=spec.name,
                kind=spec.kind,
                value=spec.value,
                points_cost=spec.points,
                vendors=list(Vendor),
                flourish_discount_id=spec.flourish_discount_id,
                # dated before the simulators' history, as if the rewards had existed all along (a reward redeems
                # no sale ordered before it was created)
                created_at=DEMO_REWARDS_SINCE,
            )
            if clash(reward, held) is None:
                try:
                    catalogue.add(reward)
                except RewardError:
                    continue
                added += 1
    return added


def rewards_summary(rt: LocalRuntime) -> RewardsSummary:
    """The mirror check of each tenant (raising its unmirrored-reward notices) and the redemptions booked."""
    assert rt.resources is not None
    resources = rt.resources
    ddb = rt.client("dynamodb")
    catalogue = RewardCatalogue(ddb, resources.control_table)
    control = ControlStore(ddb, resources.control_table)
    records = RecordStore(ddb, resources.records_table)
    notices = UnmirroredNotices(ddb, resources.control_table)
    summary = RewardsSummary()
    for tenant in tenants_of(rt):
        rewards = catalogue.rewards(tenant)
        credentials = [c for v in Vendor for c in control.credentials(v, tenant) if c.active]
        findings = check_tenant(rewards, credentials, records, tenant)
        counter = PutMetricCounts(rt.client("cloudwatch"), resources.names.metrics_namespace)
        notices.raise_notices(tenant, findings, rt.client("events"), counter)  # the pulls raised most already
        summary.notices += notices.standing(tenant)
        unmirrored = {(f.vendor, f.credential_id, f.reward) for f in findings if f.unmirrored}
        summary.rewards[tenant] = len(rewards)
        summary.problems[tenant] = len(findings)
        summary.mirrors[tenant] = sum(
            (c.vendor, c.credential_id, r.name) not in unmirrored
            for c in credentials
            for r in rewards
            if r.applies_to(c.vendor)
        )
    kwargs: dict[str, Any] = {
        "TableName": resources.personas_table,
        "FilterExpression": "attribute_exists(redemptions)",
        "ProjectionExpression": "pk, redemptions, overdrawn",
    }
    for page in ddb.get_paginator("scan").paginate(**kwargs):
        for item in page["Items"]:
            tenant = item["pk"]["S"].split("#")[1]  # layout.persona_pk: P#<tenant>#<persona id>
            count = len(json.loads(item["redemptions"]["S"]))
            summary.redemptions[tenant] += count
            if item.get("overdrawn", {}).get("BOOL"):
                summary.overdrawn[tenant] += count
    return summary
