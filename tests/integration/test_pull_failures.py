"""AWS failing mid-pull (S3 or DynamoDB throttled or down): recorded, counted, retried, the lease let go."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from functions.core.errors import AwsServiceError, CredentialError
from functions.core.layout import Stream, Vendor
from functions.core.metrics import AWS_CALLS_FAILED, LEASE_RELEASE_FAILED, PULLS_FAILED
from functions.core.pull_runtime import PullAttemptFailedError, PullJob, handle_pull_event
from functions.core.store import ControlStore
from possync.local.lambda_shim import LambdaContext, sqs_event
from tests.aws_faults import Faulty, logs, metrics, named
from tests.fakes import FakeConnector, item
from tests.integration.service import FUNCTION, make_service, register, stored

JOB = PullJob(tenant="t1", vendor=Vendor.POSABIT, credential_id="c1")
PER_CREDENTIAL = (("credential", "t1/c1"), ("vendor", "posabit"))


def control(resources: Any) -> ControlStore:
    return ControlStore(boto3.client("dynamodb"), resources.control_table)


def status(resources: Any) -> dict[str, Any]:
    return control(resources).get_status("t1", Vendor.POSABIT, "c1")


def handler_event(resources: Any, job: PullJob = JOB) -> dict[str, Any]:
    sqs = boto3.client("sqs")
    url = resources.queue_urls[FUNCTION]
    sqs.send_message(QueueUrl=url, MessageBody=job.model_dump_json())
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs_event([message], arn)


def failed_ids(response: dict[str, Any]) -> set[str]:
    return {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}


def test_s3_throttled_mid_pull_is_recorded_counted_and_retried_and_the_retry_loses_nothing(
    resources: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    register(resources)
    # Given S3 takes the first page and then answers SlowDown (past botocore's own retries)
    s3 = Faulty(boto3.client("s3"), "put_object", code="SlowDown", after=1)
    connector = FakeConnector([item(n) for n in range(1, 31)], page_size=10)
    svc = make_service(resources, connector, s3=s3)

    # When the job runs
    with pytest.raises(PullAttemptFailedError) as raised:
        svc.run_job(JOB, lambda: 900)

    # Then the failure is on the credential's status, with a reason that names S3's answer
    now = status(resources)
    assert now["last_outcome"] == "failed"
    assert "SlowDown" in now["last_error"] and "retries" in now["last_error"]
    assert "SlowDown" in str(raised.value)
    assert "last_success_at" not in now
    # ... it is counted, once without dimensions (the alarm) and once for the credential (the dashboard)
    emitted = metrics(capsys.readouterr().out)
    for name in (PULLS_FAILED, AWS_CALLS_FAILED):
        assert {m.dimensions for m in named(emitted, name)} == {(), PER_CREDENTIAL}, name
    # ... the lease is let go, so the retry is not skipped
    assert control(resources).get_lease("t1", Vendor.POSABIT, "c1") is None
    assert stored(resources) == 10  # the first page, kept by the checkpoint

    # When S3 recovers and SQS redelivers the job
    s3.times = s3.failures
    outcome = svc.run_job(JOB, lambda: 900)

    # Then the pull resumes from its checkpoint and completes
    assert outcome.status == "ok"
    assert stored(resources) == 30
    assert status(resources)["last_outcome"] == "ok" and status(resources)["last_error"] is None


def test_dynamodb_throttled_mid_pull_fails_the_sqs_message_after_recording_it(
    resources: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    register(resources)
    records_ddb = Faulty(boto3.client("dynamodb"), "batch_write_item", code="ProvisionedThroughputExceededException")
    svc = make_service(resources, FakeConnector([item(n) for n in range(1, 31)]), records_ddb=records_ddb)
    event = handler_event(resources)

    response = handle_pull_event(event, LambdaContext(FUNCTION), FUNCTION, lambda: svc)

    assert failed_ids(response) == {event["Records"][0]["messageId"]}, "transient: SQS must retry it"
    now = status(resources)
    assert now["last_outcome"] == "failed"
    assert "ProvisionedThroughputExceededException" in now["last_error"]
    assert control(resources).get_lease("t1", Vendor.POSABIT, "c1") is None
    assert named(metrics(capsys.readouterr().out), AWS_CALLS_FAILED)


def test_a_failure_that_a_retry_cannot_fix_is_recorded_and_acknowledged(resources: Any) -> None:
    register(resources, secret=False)  # no secret: the credential does not exist
    svc = make_service(resources, FakeConnector([item(1)]))
    event = handler_event(resources)

    response = handle_pull_event(event, LambdaContext(FUNCTION), FUNCTION, lambda: svc)

    assert failed_ids(response) == set()
    assert status(resources)["last_outcome"] == "failed"
    assert "possync credentials add" in status(resources)["last_error"]


def test_an_unexpected_error_is_recorded_without_its_message_and_retried(
    resources: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(FakeConnector):
        def map_record(self, stream: Stream, raw: dict[str, Any], ctx: Any) -> Any:
            raise RuntimeError("shopper +12065550123 jane@example.com broke the mapping")  # personal data

    register(resources)
    svc = make_service(resources, Broken([item(1)]))
    # RuntimeError is not one the engine quarantines: it escapes the engine like a bug would
    with pytest.raises(PullAttemptFailedError) as raised:
        svc.run_job(JOB, lambda: 900)

    now = status(resources)
    out = capsys.readouterr().out
    assert now["last_outcome"] == "failed"
    assert "unexpected RuntimeError at" in now["last_error"] and "map_record" in now["last_error"]
    for text in (now["last_error"], str(raised.value), out, caplog.text, repr([vars(r) for r in caplog.records])):
        assert "12065550123" not in text and "jane@" not in text
    assert named(metrics(out), PULLS_FAILED) and not named(metrics(out), AWS_CALLS_FAILED)
    assert control(resources).get_lease("t1", Vendor.POSABIT, "c1") is None


def test_a_lease_that_cannot_be_released_is_reported_without_hiding_the_pull(
    resources: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    register(resources)
    ddb = Faulty(boto3.client("dynamodb"), "delete_item", code="InternalServerError")
    svc = make_service(resources, FakeConnector([item(n) for n in range(1, 6)]), control_ddb=ddb)

    outcome = svc.run_job(JOB, lambda: 900)

    assert outcome.status == "ok", "the pull itself succeeded"
    now = status(resources)
    assert now["last_outcome"] == "ok"
    problem = now["lease_release_failed"]
    assert "InternalServerError" in problem["error"] and problem["lease_until"]
    out = capsys.readouterr().out
    assert {m.dimensions for m in named(metrics(out), LEASE_RELEASE_FAILED)} == {(), PER_CREDENTIAL}
    assert any("lease not released" in line["message"] for line in logs(caplog))

    # Once the left-behind lease has expired, the next pull takes it over, lets go of it and clears the report
    ddb.times = ddb.failures
    left = control(resources).get_lease("t1", Vendor.POSABIT, "c1")
    assert left is not None
    svc.control.clock = lambda: left.until.timestamp() + 1
    assert svc.run_job(JOB, lambda: 900).status == "ok"
    assert control(resources).get_lease("t1", Vendor.POSABIT, "c1") is None
    assert status(resources)["lease_release_failed"] is None


def test_a_failed_release_does_not_mask_the_error_that_came_first(resources: Any) -> None:
    register(resources)
    ddb = Faulty(boto3.client("dynamodb"), "delete_item", code="InternalServerError")
    s3 = Faulty(boto3.client("s3"), "put_object", code="ServiceUnavailable")
    svc = make_service(resources, FakeConnector([item(1)]), control_ddb=ddb, s3=s3)

    with pytest.raises(PullAttemptFailedError) as raised:
        svc.run_job(JOB, lambda: 900)

    assert "ServiceUnavailable" in str(raised.value)
    now = status(resources)
    assert "ServiceUnavailable" in now["last_error"]
    assert "InternalServerError" in now["lease_release_failed"]["error"]


def test_a_status_that_cannot_be_written_fails_the_message_loudly(
    resources: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    register(resources, secret=False)  # a failure that is normally recorded and acknowledged
    ddb = Faulty(boto3.client("dynamodb"), "update_item", code="InternalServerError")
    svc = make_service(resources, FakeConnector([item(1)]), control_ddb=ddb)
    event = handler_event(resources)

    response = handle_pull_event(event, LambdaContext(FUNCTION), FUNCTION, lambda: svc)

    assert failed_ids(response) == {event["Records"][0]["messageId"]}, "unrecorded: SQS must retry it"
    out = capsys.readouterr().out
    lines = [line for line in logs(caplog) if line["message"] == "pull status could not be recorded"]
    assert lines and "does not exist" in lines[0]["what"], "the log names the failure it could not record"
    assert named(metrics(out), AWS_CALLS_FAILED)


def test_a_scheduled_job_that_finds_the_lease_held_says_who_holds_it_until_when(resources: Any) -> None:
    register(resources)
    svc = make_service(resources, FakeConnector([item(1)]))
    svc.control.acquire_lease("t1", Vendor.POSABIT, "c1", "other", 900, holder="schedule job, Lambda request r-1")

    outcome = svc.run_job(JOB, lambda: 900)

    assert outcome.status == "skipped"
    skip = status(resources)["lease_skip"]
    assert skip["holder"] == "schedule job, Lambda request r-1"
    assert skip["since"] and skip["until"] > skip["since"]
    assert "last_outcome" not in status(resources), "a skip is not an outcome of the pull holding the lease"


def test_an_aws_failure_taking_the_lease_is_recorded_and_retried(resources: Any) -> None:
    register(resources)
    ddb = Faulty(boto3.client("dynamodb"), "put_item", code="ThrottlingException")
    svc = make_service(resources, FakeConnector([item(1)]), control_ddb=ddb)

    with pytest.raises(PullAttemptFailedError):
        svc.run_job(JOB, lambda: 900)

    assert status(resources)["last_outcome"] == "failed"
    assert "ThrottlingException" in status(resources)["last_error"]


def test_secrets_manager_throttled_is_retried_not_reported_as_a_missing_credential(resources: Any) -> None:
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
    from aws_lambda_powertools.utilities.parameters.secrets import SecretsProvider

    register(resources)
    faulty = Faulty(boto3.client("secretsmanager"), "get_secret_value", code="ThrottlingException")
    DEFAULT_PROVIDERS["secrets"] = SecretsProvider(boto3_client=faulty)
    svc = make_service(resources, FakeConnector([item(1)]))
    try:
        with pytest.raises(AwsServiceError) as raised:
            svc.credentials.get("t1", Vendor.POSABIT, "c1")
        assert not isinstance(raised.value, CredentialError)
        assert "ThrottlingException" in str(raised.value) and "venue-123" not in str(raised.value)

        event = handler_event(resources)
        response = handle_pull_event(event, LambdaContext(FUNCTION), FUNCTION, lambda: svc)
        assert failed_ids(response) == {event["Records"][0]["messageId"]}
        assert "ThrottlingException" in status(resources)["last_error"]
    finally:
        DEFAULT_PROVIDERS.pop("secrets", None)
