"""`possync pull`: the schedule's job for one tenant's stores, now; `--wait` reports each pull's outcome."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from functions.core.layout import PULL_FUNCTION, Vendor
from functions.core.pull_runtime import PullJob, parse_job
from functions.core.settings import IntegrationSettings
from functions.core.store import ControlStore
from possync.admin import pull
from possync.target import Target
from tests.cli.conftest import Invoke
from tests.cli.test_status import register


def queued(target: Target, vendor: Vendor) -> list[str]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = target.queue_urls[PULL_FUNCTION[vendor]]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [m["Body"] for m in messages]


def test_pull_enqueues_the_dispatch_job_for_each_store_of_the_tenant(
    cli: Invoke, control: ControlStore, target: Target
) -> None:
    register(control, "store-1")
    register(control, "store-2")
    register(control, "other", tenant="t2")

    result = cli("pull", "--tenant", "t1", "--vendor", "posabit")

    assert result.exit_code == 0, result.output
    bodies = queued(target, Vendor.POSABIT)
    jobs = sorted((parse_job(b, PULL_FUNCTION[Vendor.POSABIT]) for b in bodies), key=lambda j: j.credential_id)
    assert jobs == [
        PullJob(tenant="t1", vendor=Vendor.POSABIT, credential_id=c, reason="manual") for c in ("store-1", "store-2")
    ]
    assert control.get_status("t1", Vendor.POSABIT, "store-1")["last_enqueued_at"]
    assert "possync status --tenant t1" in result.output


def test_pull_one_credential_of_any_vendor(cli: Invoke, control: ControlStore, target: Target) -> None:
    register(control, "store-1")
    register(control, "fl-1", Vendor.FLOURISH)

    result = cli("pull", "--tenant", "t1", "--credential", "fl-1")

    assert result.exit_code == 0, result.output
    assert [json.loads(b)["credential_id"] for b in queued(target, Vendor.FLOURISH)] == ["fl-1"]
    assert queued(target, Vendor.POSABIT) == []


def test_pull_of_a_credential_that_does_not_exist_says_where_to_look(cli: Invoke, control: ControlStore) -> None:
    register(control, "store-1")

    result = cli("pull", "--tenant", "t1", "--vendor", "posabit", "--credential", "nope")

    text = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "Error: tenant t1 has no posabit credential 'nope' Hint:" in text
    assert "its posabit credentials are store-1;" in text
    assert "`possync credentials list --tenant t1 --vendor posabit` lists them" in text


def test_pull_of_an_unknown_tenant_is_refused(cli: Invoke) -> None:
    result = cli("pull", "--tenant", "t11")

    assert result.exit_code == 1 and "did you mean t1?" in result.output


def test_a_frozen_integration_is_not_pulled(cli: Invoke, control: ControlStore, target: Target) -> None:
    register(control, "store-1")
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=target.names.integration_settings_parameter("t1", Vendor.POSABIT),
        Value=IntegrationSettings(vendor=Vendor.POSABIT, use_last_backup=True).model_dump_json(),
        Type="String",
    )

    result = cli("pull", "--tenant", "t1")

    assert result.exit_code == 1
    assert "use_last_backup is on" in result.output and "nothing was queued" in result.output
    assert queued(target, Vendor.POSABIT) == []


def finishing_with(control: ControlStore, update: dict[str, Any]) -> Any:
    """A `sleep` during which the pull Lambda runs the job: it writes the status as PullService does."""

    def run_job(seconds: float) -> None:
        control.save_status(
            "t1", Vendor.POSABIT, "store-1", {"last_attempt_at": datetime.now(UTC).isoformat(), **update}
        )

    return run_job


@pytest.mark.parametrize(
    ("update", "exit_code", "shown"),
    [
        ({"last_outcome": "ok", "last_records": 40, "last_changed": 3, "last_quarantined": 0}, 0, "40 records read"),
        ({"last_outcome": "failed", "last_error": "POSaBIT refused the credential (401)"}, 1, "refused the credential"),
        ({"last_outcome": "contract_mismatch", "last_error": "sales: field total missing"}, 1, "contract_mismatch"),
    ],
)
def test_wait_reports_the_outcome_and_exits_nonzero_unless_ok(
    cli: Invoke,
    control: ControlStore,
    monkeypatch: pytest.MonkeyPatch,
    update: dict[str, Any],
    exit_code: int,
    shown: str,
) -> None:
    register(control, "store-1")
    # An older attempt must not count as this pull's outcome.
    control.save_status(
        "t1", Vendor.POSABIT, "store-1", {"last_outcome": "ok", "last_attempt_at": "2026-01-01T00:00:00+00:00"}
    )
    monkeypatch.setattr(pull, "sleep", finishing_with(control, update))

    result = cli("pull", "--tenant", "t1", "--wait")

    assert result.exit_code == exit_code, result.output
    assert shown in result.output


def test_wait_gives_up_after_the_timeout(cli: Invoke, control: ControlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    register(control, "store-1")
    clock = iter(range(0, 10_000, 5))
    monkeypatch.setattr(pull.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(pull, "sleep", lambda seconds: None)

    result = cli("pull", "--tenant", "t1", "--wait", "--timeout", "20")

    assert result.exit_code == 1
    assert "still running after 20 s" in result.output


def test_outcome_of_ignores_continuations_and_reports_a_lease_skip() -> None:
    since = datetime(2026, 11, 1, 12, tzinfo=UTC)
    later = "2026-11-01T12:00:05+00:00"
    assert pull.outcome_of({"last_outcome": "continued", "last_attempt_at": later}, since) is None
    assert pull.outcome_of({"last_outcome": "ok", "last_attempt_at": "2026-11-01T11:00:00+00:00"}, since) is None
    assert pull.outcome_of({"lease_skip": {"at": later}}, since) == "skipped"
