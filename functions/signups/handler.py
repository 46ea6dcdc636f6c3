"""Signups Lambda: POST /tenants/{tenant}/signups (and its CORS preflight) behind the HTTP API."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from functions.core import metrics
from functions.core.observability import alarm_metrics, logger
from functions.core.signups.endpoint import FUNCTION, SignupEndpoint
from functions.core.signups.service import SignupService

__all__ = ["FUNCTION", "handler"]
OUTCOME_METRICS = {
    "created": metrics.SIGNUPS_ACCEPTED,
    "duplicate": metrics.SIGNUPS_DUPLICATE,
    "rejected": metrics.SIGNUPS_REJECTED,
    "unauthorized": metrics.SIGNUPS_UNAUTHORIZED,
    "failed": metrics.SIGNUPS_FAILED,
}


@functools.cache
def service() -> SignupService:
    return SignupService.from_env()


endpoint = SignupEndpoint(service)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response, outcome = endpoint.handle(event)
    name = OUTCOME_METRICS.get(outcome)
    if name is not None:
        emitted = alarm_metrics()
        emitted.add_metric(name=name, unit=MetricUnit.Count, value=1)
        emitted.flush_metrics()
    logger.info("signup request handled", status=response.status, outcome=outcome)
    return response.as_event()
