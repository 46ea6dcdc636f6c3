"""Opt-in reply Lambda: inbound texts (End User Messaging two-way SMS, published to SNS) -> YES / STOP / HELP."""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

from functions.core.errors import AwsServiceError
from functions.core.observability import logger
from functions.core.sms.inbound import InboundError, parse_sns_record
from functions.core.sms.service import OptinService

FUNCTION = "optin_reply"


@functools.cache
def service() -> OptinService:
    return OptinService.from_env()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rules = service()
    outcomes: Counter[str] = Counter()
    failed = 0
    for record in event.get("Records") or []:
        try:
            inbound = parse_sns_record(record)
        except InboundError as exc:
            logger.error("inbound SMS message rejected", error=str(exc))
            outcomes["malformed"] += 1
            continue
        try:
            outcomes[rules.reply(inbound.number, inbound.body, inbound.inbound_id)] += 1
        except AwsServiceError as exc:
            logger.warning("reply not applied", error=str(exc), inbound_id=inbound.inbound_id)
            failed += 1
    rules.count(outcomes)
    logger.info("inbound SMS processed", outcomes=dict(outcomes), failed=failed)
    if failed:
        # SNS invokes asynchronously: raising makes Lambda retry the event (every decision is conditional, and
        # answers already sent are recorded, so a retry answers nothing twice) and then its on-failure queue.
        raise AwsServiceError(f"{failed} inbound messages not applied; retried")
    return {"processed": sum(outcomes.values())}
