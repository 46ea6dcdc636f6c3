"""Personas Lambda: shopper records from the records table's stream become personas (partial batch responses)."""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from functions.core.layout import RecordKind
from functions.core.models import Shopper
from functions.core.observability import logger
from functions.core.personas_store import record_change
from functions.personas.service import PersonaService

FUNCTION = "personas"
OUTCOME_METRICS = {"created": "PersonasCreated", "updated": "PersonasUpdated", "moved": "PersonaSourcesMoved"}


@functools.cache
def service() -> PersonaService:
    return PersonaService.from_env()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rules = service()
    outcomes: Counter[str] = Counter()

    def process(record: DynamoDBRecord) -> str:
        change = record_change(record.raw_event)
        if change is None or change.kind is not RecordKind.SHOPPER or not isinstance(change.record, Shopper):
            outcome = "ignored"  # the filter criteria should not have sent it
        else:
            outcome = rules.handle_shopper(change.record, change.version)
        outcomes[outcome] += 1
        return outcome

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    response = process_partial_response(event=event, record_handler=process, processor=processor, context=context)
    rules.notifier.counts({metric: outcomes[o] for o, metric in OUTCOME_METRICS.items()})
    logger.info("shopper batch processed", outcomes=dict(outcomes), failed=len(response.get("batchItemFailures", [])))
    return dict(response)
