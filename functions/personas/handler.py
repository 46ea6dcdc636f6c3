"""Personas Lambda: shopper records from the records table's stream become personas (partial batch responses)."""

from __future__ import annotations

import functools
from typing import Any

from functions.core import metrics
from functions.core.layout import RecordKind
from functions.core.loyalty.service import LoyaltyService
from functions.core.observability import logger
from functions.core.streams import read_batch

FUNCTION = "personas"
KINDS = frozenset({RecordKind.SHOPPER})
OUTCOME_METRICS = {
    "created": metrics.PERSONAS_CREATED,
    "updated": metrics.PERSONAS_UPDATED,
    "moved": metrics.PERSONA_SOURCES_MOVED,
}


@functools.cache
def service() -> LoyaltyService:
    return LoyaltyService.from_env()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rules = service()
    batch = read_batch(event, KINDS)
    outcomes = rules.shopper_batch(batch.changes, batch.failures)
    rules.notifier.counts({metric: outcomes[o] for o, metric in OUTCOME_METRICS.items()})
    logger.info(
        "shopper batch processed",
        outcomes=dict(outcomes),
        ignored=batch.ignored,
        failed=len(batch.failures),
        failures=batch.failures.reasons(),
    )
    return batch.failures.response()
