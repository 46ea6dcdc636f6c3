"""Opt-in deferral Lambda: requests held for quiet hours or the 24 h cap, from the SQS delay queue, sent when due."""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

from functions.core.errors import AwsServiceError
from functions.core.observability import logger
from functions.core.sms.deferral import Deferred
from functions.core.sms.service import OptinService

FUNCTION = "optin_deferred"


@functools.cache
def service() -> OptinService:
    return OptinService.from_env()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rules = service()
    outcomes: Counter[str] = Counter()
    failures: list[dict[str, str]] = []
    for message in event.get("Records") or []:
        message_id = str(message.get("messageId", ""))
        try:
            request = Deferred.parse(str(message.get("body", "")))
        except ValueError as exc:
            # Not a message this version can read: a deferred opt-in request that is dropped is a text never sent,
            # so it is failed instead. SQS gives it back a few times (a message written by a newer version during a
            # rollout reads once that version runs here), then moves it to the deferral dead-letter queue, which is
            # alarmed and can be redriven.
            logger.error(
                "deferral message unreadable; failed to its dead-letter queue",
                error=str(exc)[:200],
                message_id=message_id,
            )
            outcomes["unreadable"] += 1
            failures.append({"itemIdentifier": message_id})
            continue
        try:
            outcomes[rules.deferred(request)] += 1
        except AwsServiceError as exc:
            logger.warning("deferred request failed; retried", error=str(exc), tenant=request.tenant)
            failures.append({"itemIdentifier": message_id})
    rules.count(outcomes)
    logger.info("deferred requests processed", outcomes=dict(outcomes), failed=len(failures))
    return {"batchItemFailures": failures}
