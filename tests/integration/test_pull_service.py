"""PullService outcomes that need no POS: offline stores, leases, the continuation cap."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import pytest

from functions.core import pull_runtime
from functions.core.archive import S3Archive
from functions.core.errors import LeaseHeldError, StoreOfflineError
from functions.core.layout import Stream, Vendor
from functions.core.pull_runtime import PullJob, PullService, RuntimeConfig
from functions.core.sources import CredentialSource, SettingsSource
from functions.core.store import ControlStore, RecordStore, RegisteredCredential
from tests.fakes import FakeConnector, item

# Also run against unpatched moto by `make test` (see tests/conftest.py).
pytestmark = pytest.mark.moto_store

CREDENTIAL = {"vendor": "posabit", "store_name": "Main", "integrator_token": "integrator-1", "venue_token": "venue-123"}


class OfflineConnector(FakeConnector):
    def pages(self, stream: Stream, window: Any, token: Any) -> Any:
        raise StoreOfflineError("the store's server at 203.0.113.7:8080 refused the connection 3 times")


def service(resources: Any, connector: FakeConnector) -> PullService:
    ddb = boto3.client("dynamodb")
    config = RuntimeConfig(
        names=resources.names,
        records_table=resources.records_table,
        control_table=resources.control_table,
        archive_bucket=resources.archive_bucket,
        queue_url=resources.queue_urls["pull_posabit"],
        allow_private_hosts=False,
        lookback=timedelta(minutes=10),
        settle=timedelta(seconds=0),
        read_timeout=5,
        base_urls={Vendor.POSABIT: "https://pos.invalid"},
    )
    secrets = boto3.client("secretsmanager")
    import json

    secrets.create_secret(
        Name=resources.names.credential_secret("t1", Vendor.POSABIT, "c1"), SecretString=json.dumps(CREDENTIAL)
    )
    control = ControlStore(ddb, resources.control_table)
    control.register_credential(RegisteredCredential("t1", Vendor.POSABIT, "c1", True, "x"))
    return PullService(
        config=config,
        open_connector=lambda credential, config, *, tenant, credential_id: connector,
        records=RecordStore(ddb, resources.records_table),
        control=control,
        archive=S3Archive(boto3.client("s3"), resources.archive_bucket),
        settings=SettingsSource(resources.names),
        credentials=CredentialSource(resources.names),
        sqs=boto3.client("sqs"),
    )


def queued(resources: Any) -> list[dict[str, Any]]:
    import json

    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=resources.queue_urls["pull_posabit"], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_a_switched_off_store_is_recorded_offline_not_failed(resources: Any) -> None:
    svc = service(resources, OfflineConnector([item(1)]))
    outcome = svc.run_job(PullJob(tenant="t1", vendor=Vendor.POSABIT, credential_id="c1"), lambda: 900)
    assert outcome.status == "offline"
    status = svc.control.get_status("t1", Vendor.POSABIT, "c1")
    assert status["last_outcome"] == "offline"
    assert "refused" in status["last_error"]
    assert queued(resources) == []  # retried by the next tick, not by a message storm


def test_a_scheduled_job_is_skipped_while_another_pull_holds_the_lease(resources: Any) -> None:
    svc = service(resources, FakeConnector([item(1)]))
    svc.control.acquire_lease("t1", Vendor.POSABIT, "c1", "someone-else", 900)
    outcome = svc.run_job(PullJob(tenant="t1", vendor=Vendor.POSABIT, credential_id="c1"), lambda: 900)
    assert outcome.status == "skipped"
    with pytest.raises(LeaseHeldError):  # a continuation must not be dropped: SQS redelivers it later
        svc.run_job(PullJob(tenant="t1", vendor=Vendor.POSABIT, credential_id="c1", reason="continuation"), lambda: 900)


def test_continuations_are_enqueued_until_the_cap(resources: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    connector = FakeConnector([item(n) for n in range(1, 40)], page_size=5)
    svc = service(resources, connector)
    looks = {"n": 0}

    def remaining() -> float:  # one page per invocation
        looks["n"] += 1
        return 1000.0 if looks["n"] % 2 else 0.0

    job = PullJob(tenant="t1", vendor=Vendor.POSABIT, credential_id="c1")
    first = svc.run_job(job, remaining)
    assert first.status == "continued"
    [message] = queued(resources)
    assert message["reason"] == "continuation"
    assert message["continuation"] == 1
    assert message["streams"] == ["inventory"]

    monkeypatch.setattr(pull_runtime, "MAX_CONTINUATIONS", 1)
    capped = svc.run_job(PullJob.model_validate(message), remaining)
    assert capped.status == "failed"
    assert "continuations" in svc.control.get_status("t1", Vendor.POSABIT, "c1")["last_error"]


def test_every_job_metric_is_emitted_once_without_dimensions_and_once_per_credential(
    resources: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from functions.core import metrics as names
    from tests.aws_faults import metrics

    svc = service(resources, FakeConnector([item(n) for n in range(1, 13)], page_size=5))
    assert svc.run_job(PullJob(tenant="t1", vendor=Vendor.POSABIT, credential_id="c1"), lambda: 900).status == "ok"

    emitted = metrics(capsys.readouterr().out)
    per_credential = (("credential", "t1/c1"), ("vendor", "posabit"))
    for name in (names.PULL_DURATION, names.PAGES_PULLED, names.RECORDS_PULLED, names.RECORDS_CHANGED):
        assert sorted(m.dimensions for m in emitted if m.name == name) == [(), per_credential], name
    assert {m.value for m in emitted if m.name == names.RECORDS_PULLED} == {12.0}
    assert {m.value for m in emitted if m.name == names.PAGES_PULLED} == {3.0}


def test_requests_the_lean_paths_sent_again_through_botocore_are_counted_once_per_job(
    resources: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from functions.core import ddb_lean
    from functions.core import metrics as names
    from tests.aws_faults import metrics

    svc = service(resources, FakeConnector([item(n) for n in range(1, 6)], page_size=5))
    ddb_lean.take_resent()
    assert svc.run_job(PullJob(tenant="t1", vendor=Vendor.POSABIT, credential_id="c1"), lambda: 900).status == "ok"
    assert not [m for m in metrics(capsys.readouterr().out) if m.name == names.LEAN_REQUESTS_RESENT]

    ddb_lean.count_resent()
    ddb_lean.count_resent()
    assert svc.run_job(PullJob(tenant="t1", vendor=Vendor.POSABIT, credential_id="c1"), lambda: 900).status == "ok"
    resent = [m for m in metrics(capsys.readouterr().out) if m.name == names.LEAN_REQUESTS_RESENT]
    assert sorted(m.dimensions for m in resent) == [(), (("credential", "t1/c1"), ("vendor", "posabit"))]
    assert {m.value for m in resent} == {2.0}
    assert ddb_lean.take_resent() == 0  # taken by the job's metrics


def test_a_failed_job_reports_the_requests_its_lean_paths_sent_again(
    resources: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from functions.core import ddb_lean
    from functions.core import metrics as names
    from functions.core.pull_runtime import PullAttemptFailedError
    from tests.aws_faults import metrics

    class Broken(FakeConnector):
        def pages(self, *args: Any, **kwargs: Any) -> Any:
            ddb_lean.count_resent()  # a throttled request resent through botocore, then the pull fails
            raise RuntimeError("boom")

    svc = service(resources, Broken([item(1)], page_size=5))
    ddb_lean.take_resent()
    with pytest.raises(PullAttemptFailedError):
        svc.run_job(PullJob(tenant="t1", vendor=Vendor.POSABIT, credential_id="c1"), lambda: 900)
    resent = [m for m in metrics(capsys.readouterr().out) if m.name == names.LEAN_REQUESTS_RESENT]
    assert {m.value for m in resent} == {1.0}
    assert ddb_lean.take_resent() == 0
