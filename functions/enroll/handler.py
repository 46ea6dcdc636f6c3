"""Enroll Lambda: sales and loyalty balances from the records table's stream -> visits, members, points."""

from __future__ import annotations

import functools
from typing import Any

from functions.core import metrics
from functions.core.layout import RecordKind
from functions.core.loyalty.service import LoyaltyService
from functions.core.observability import logger
from functions.core.streams import read_batch

FUNCTION = "enroll"
KINDS = frozenset({RecordKind.SALE, RecordKind.LOYALTY_BALANCE})
OUTCOME_METRICS = {
    "applied": metrics.SALES_APPLIED,
    "enrolled": metrics.MEMBERS_ENROLLED,
    "pending": metrics.RECORDS_PENDING,
    "imported": metrics.POINTS_IMPORTED,
}


@functools.cache
def service() -> LoyaltyService:
    return LoyaltyService.from_env()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rules = service()
    batch = read_batch(event, KINDS)
    outcomes = rules.sale_batch(batch.changes, batch.failures)
    rules.notifier.counts({metric: outcomes[o] for o, metric in OUTCOME_METRICS.items()})
    logger.info(
        "sale batch processed",
        outcomes=dict(outcomes),
        ignored=batch.ignored,
        failed=len(batch.failures),
        failures=batch.failures.reasons(),
    )
    return batch.failures.response()
