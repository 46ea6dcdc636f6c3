"""What persona -> POS sync did in a local run: sync outcomes per POS, and how many created customers came back."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from functions.core import layout
from functions.core.loyalty.codecs import persona_from_item, persona_key
from functions.core.pos_sync.records import record_from_item


@dataclass
class PosSyncSummary:
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (vendor, state) -> personas
    merged_back: int = 0  # created or found customers a later pull brought back into the same persona
    linked: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcomes": {f"{v}:{s}": n for (v, s), n in sorted(self.outcomes.items())},
            "linked": self.linked,
            "merged_back": self.merged_back,
        }


def pos_sync_summary(ddb: Any, personas_table: str) -> PosSyncSummary:
    summary = PosSyncSummary()
    for page in ddb.get_paginator("scan").paginate(
        TableName=personas_table,
        FilterExpression="begins_with(pk, :sync)",
        ExpressionAttributeValues={":sync": {"S": "SYNC#"}},
    ):
        for item in page["Items"]:
            record = record_from_item(item)
            summary.outcomes[(record.vendor.value, record.state)] += 1
            if record.state not in ("created", "matched") or record.pos_id is None:
                continue
            summary.linked += 1
            profile = ddb.get_item(
                TableName=personas_table, Key=persona_key(record.tenant, record.persona_id), ConsistentRead=True
            ).get("Item")
            source = layout.pos_identity_value(record.vendor, record.credential_id, record.pos_id)
            if profile is not None and source in persona_from_item(profile).source_records:
                summary.merged_back += 1
    return summary
