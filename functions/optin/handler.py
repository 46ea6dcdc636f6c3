"""Opt-in Lambda: sales and shoppers from the records table's stream -> one opt-in request per persona, POS consent."""

from __future__ import annotations

import functools
from typing import Any

from functions.core.layout import RecordKind
from functions.core.observability import logger
from functions.core.sms.service import OptinService
from functions.core.streams import read_batch

FUNCTION = "optin"
KINDS = frozenset({RecordKind.SALE, RecordKind.SHOPPER})


@functools.cache
def service() -> OptinService:
    return OptinService.from_env()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rules = service()
    batch = read_batch(event, KINDS)
    outcomes = rules.batch(batch.changes, batch.failures)
    rules.count(outcomes)
    logger.info(
        "opt-in batch processed",
        outcomes=dict(outcomes),
        ignored=batch.ignored,
        failed=len(batch.failures),
        failures=batch.failures.reasons(),
    )
    return batch.failures.response()
