"""Profitek and Auphan pull Lambda: a schedule tick fans out one job per credential; each SQS job pulls one."""

from __future__ import annotations

from typing import Any

from functions.core.observability import logger
from functions.core.pull_runtime import PullService, handle_pull_event, warm_up
from functions.pull_onprem.connector import DEFAULT_BASE_URLS, open_connector

FUNCTION = "pull_onprem"
warm_up()  # Lambda's init phase: see warm_up


def _service() -> PullService:
    return PullService.from_env(open_connector, DEFAULT_BASE_URLS)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_pull_event(event, context, FUNCTION, _service)
