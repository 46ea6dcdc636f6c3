"""Reevaluate Lambda: re-evaluation jobs (and settings-change events) from its SQS queue, one message at a time."""

from __future__ import annotations

import functools
from typing import Any

from functions.core.observability import logger
from functions.core.reevaluation import ReevaluationService, handle_reevaluation_event


@functools.cache
def service() -> ReevaluationService:
    return ReevaluationService.from_env()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_reevaluation_event(event, context, service)
