"""POSaBIT pull Lambda: a schedule tick fans out one job per credential; each SQS job pulls one credential."""

from __future__ import annotations

from typing import Any

from functions.core.layout import Vendor
from functions.core.observability import logger
from functions.core.pull_runtime import PullService, handle_pull_event, warm_up
from functions.pull_posabit.connector import open_connector
from functions.pull_posabit.constants import DEFAULT_BASE_URL

FUNCTION = "pull_posabit"
warm_up()  # Lambda's init phase: see warm_up


def _service() -> PullService:
    return PullService.from_env(open_connector, {Vendor.POSABIT: DEFAULT_BASE_URL})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_pull_event(event, context, FUNCTION, _service)
