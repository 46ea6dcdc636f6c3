"""Enroll Lambda: sales and loyalty balances from the records table's stream -> visits, members, points."""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from functions.core.layout import RecordKind
from functions.core.observability import logger
from functions.core.personas_store import record_change
from functions.enroll.service import EnrollService

FUNCTION = "enroll"
KINDS = frozenset({RecordKind.SALE, RecordKind.LOYALTY_BALANCE})
OUTCOME_METRICS = {
    "applied": "SalesApplied",
    "enrolled": "MembersEnrolled",
    "pending": "RecordsPending",
    "imported": "PointsImported",
}


@functools.cache
def service() -> EnrollService:
    return EnrollService.from_env()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rules = service()
    outcomes: Counter[str] = Counter()

    def process(record: DynamoDBRecord) -> str:
        change = record_change(record.raw_event)
        if change is None or change.kind not in KINDS:
            outcome = "ignored"  # the filter criteria should not have sent it
        else:
            outcome = rules.handle(change.record, change.version)
        outcomes[outcome] += 1
        return outcome

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    response = process_partial_response(event=event, record_handler=process, processor=processor, context=context)
    rules.notifier.counts({metric: outcomes[o] for o, metric in OUTCOME_METRICS.items()})
    logger.info("sale batch processed", outcomes=dict(outcomes), failed=len(response.get("batchItemFailures", [])))
    return dict(response)
