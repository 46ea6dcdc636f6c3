"""SQS pull jobs that can never succeed go to the jobs dead-letter queue at once, with the reason; never retried."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from functions.core.errors import PossyncError
from functions.core.layout import Vendor
from functions.core.metrics import AWS_CALLS_FAILED, PULL_JOBS_REJECTED
from functions.core.pull_runtime import PullJob, handle_pull_event, parse_job
from possync.local.lambda_shim import LambdaContext, sqs_event
from tests.aws_faults import Faulty, logs, metrics, named
from tests.fakes import FakeConnector, item
from tests.integration.service import FUNCTION, make_service, queued, register

SECRET = "venue-token-SECRET-4242"
VALID = PullJob(tenant="t1", vendor=Vendor.POSABIT, credential_id="c1").model_dump()

NEVER = {
    "not JSON": ("{'tenant': 't1'", "not JSON"),
    "not an object": ("[1, 2, 3]", "not a valid pull job"),
    "a secret in an unknown field": (json.dumps({**VALID, "venue_token": SECRET}), "venue_token: Extra inputs"),
    "unknown vendor": (json.dumps({**VALID, "vendor": "square"}), "vendor: Input should be"),
    "a vendor this function does not pull": (json.dumps({**VALID, "vendor": "flourish"}), "does not pull flourish"),
    "a tenant id that escapes its key": (json.dumps({**VALID, "tenant": "../t1"}), "tenant: not a valid id"),
    "a credential id with a key separator": (json.dumps({**VALID, "credential_id": "c1#x"}), "credential_id: not a"),
    "missing credential": (json.dumps({"tenant": "t1", "vendor": "posabit"}), "credential_id: Field required"),
}


def event_for(resources: Any, body: str) -> dict[str, Any]:
    sqs = boto3.client("sqs")
    url = resources.queue_urls[FUNCTION]
    sqs.send_message(QueueUrl=url, MessageBody=body)
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs_event([message], arn)


def control_items(resources: Any) -> list[dict[str, Any]]:
    return boto3.client("dynamodb").scan(TableName=resources.control_table)["Items"]


@pytest.mark.parametrize("case", list(NEVER))
def test_a_job_that_can_never_succeed_goes_to_the_dead_letter_queue_at_once(
    resources: Any, case: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    body, why = NEVER[case]
    register(resources)
    before = control_items(resources)
    svc = make_service(resources, FakeConnector([item(1)]))
    event = event_for(resources, body)

    response = handle_pull_event(event, LambdaContext(FUNCTION), FUNCTION, lambda: svc)

    assert response == {"batchItemFailures": []}, "acknowledged: never redelivered"
    [dead] = queued(resources, "dlq")
    assert dead["body"] == body, "the job is kept as sent, for a person to inspect"
    assert why in dead["attributes"]["rejected_reason"]["StringValue"]
    assert control_items(resources) == before, "nothing written under an id that was never checked"
    emitted = metrics(capsys.readouterr().out)
    assert [m.dimensions for m in named(emitted, PULL_JOBS_REJECTED)] == [()]
    [line] = [line for line in logs(caplog) if "rejected" in line["message"]]
    assert line["levelname"] == "ERROR" and why in line["reason"]
    assert SECRET not in caplog.text and SECRET not in repr([vars(r) for r in caplog.records])


def test_a_rejected_job_that_cannot_reach_the_dead_letter_queue_is_retried_not_dropped(
    resources: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = Faulty(boto3.client("sqs"), "send_message", code="AWS.SimpleQueueService.RequestThrottled")
    svc = make_service(resources, sqs=sqs)
    event = event_for(resources, "not json at all")

    response = handle_pull_event(event, LambdaContext(FUNCTION), FUNCTION, lambda: svc)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    emitted = metrics(capsys.readouterr().out)
    assert named(emitted, AWS_CALLS_FAILED) and not named(emitted, PULL_JOBS_REJECTED)


def test_a_valid_job_is_still_pulled(resources: Any) -> None:
    register(resources)
    svc = make_service(resources, FakeConnector([item(1)]))
    event = event_for(resources, json.dumps(VALID))

    response = handle_pull_event(event, LambdaContext(FUNCTION), FUNCTION, lambda: svc)

    assert response == {"batchItemFailures": []}
    assert queued(resources, "dlq") == []
    assert svc.control.get_status("t1", Vendor.POSABIT, "c1")["last_outcome"] == "ok"


def test_the_pull_job_model_checks_ids_with_the_layout_rule() -> None:
    assert parse_job(json.dumps(VALID), FUNCTION).tenant == "t1"
    with pytest.raises(PossyncError, match="tenant: not a valid id: use 1-63 lower-case"):
        parse_job(json.dumps({**VALID, "tenant": "T1"}), FUNCTION)
    with pytest.raises(ValueError, match="credential_id"):
        PullJob(tenant="t1", vendor=Vendor.POSABIT, credential_id="")
