"""SQS-fed handlers sent something other than their batch: an error that says what arrived, never a payload value."""

from __future__ import annotations

from typing import Any

import pytest

from functions.core.lambda_events import UnexpectedEventError, describe
from functions.core.pull_runtime import handle_pull_event
from functions.core.reevaluation import handle_reevaluation_event
from possync.local.lambda_shim import LambdaContext

# An EventBridge rule's schedule event, as AWS documents it (what an operator who wires a rule instead of the
# Scheduler's dispatch input would send); its detail carries a phone to show no payload value is echoed.
SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-10-08T16:53:06Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/possync-pull-posabit"],
    "detail": {"phone": "+12065550143"},
}


def _pull(event: Any) -> dict[str, Any]:
    return handle_pull_event(event, LambdaContext("possync-pull-posabit"), "pull_posabit", lambda: None)  # type: ignore[arg-type,return-value]


def _reevaluate(event: Any) -> dict[str, Any]:
    def no_service() -> Any:
        raise AssertionError("an event with nothing to do needs no service")

    return handle_reevaluation_event(event, LambdaContext("possync-reevaluate"), no_service)


@pytest.mark.parametrize(
    ("event", "said"),
    [
        (SCHEDULED_EVENT, "an EventBridge event (source 'aws.events', detail-type 'Scheduled Event')"),
        ({}, "an empty object"),
        ({"Records": None, "phone": "+12065550143"}, "an object with keys Records, phone and no Records list"),
        ([{"messageId": "m1"}], "a JSON array"),
        ("+12065550143", "a JSON string"),
        (None, "null"),
    ],
)
def test_an_event_that_is_no_sqs_batch_is_refused_with_what_it_is(event: Any, said: str) -> None:
    for handle, takes in (
        (_pull, 'pull_posabit takes its schedule\'s dispatch event ({"action": "dispatch"}) or an SQS batch'),
        (_reevaluate, "reevaluate takes an SQS batch of re-evaluation jobs"),
    ):
        with pytest.raises(UnexpectedEventError) as raised:
            handle(event)
        assert str(raised.value).startswith(takes) and str(raised.value).endswith(f"it was sent {said}")
        assert "2065550143" not in str(raised.value)


def test_an_empty_batch_is_nothing_to_do() -> None:
    assert _pull({"Records": []}) == {"batchItemFailures": []}
    assert _reevaluate({"Records": []}) == {"batchItemFailures": []}


def test_a_long_list_of_keys_is_cut_short() -> None:
    assert describe({f"k{i:02d}": i for i in range(12)}).endswith("k09, ... and no Records list")
