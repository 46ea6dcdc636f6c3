"""The schedule's dispatch: each credential pulled at its own interval, freshness measured, one bad tenant isolated."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from functions.core.errors import AwsServiceError, SettingsUnavailableError
from functions.core.layout import Vendor
from functions.core.metrics import CREDENTIALS_STALE, SECONDS_SINCE_LAST_SUCCESSFUL_PULL
from functions.core.settings import IntegrationSettings
from functions.core.sources import clear_caches
from tests.aws_faults import Faulty, metrics, named
from tests.integration.service import make_service, queued, register

T = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
VENDORS = (Vendor.POSABIT,)


class Clock:
    def __init__(self) -> None:
        self.now = T

    def __call__(self) -> datetime:
        return self.now

    def epoch(self) -> float:
        return self.now.timestamp()

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def settings(resources: Any, tenant: str, **values: Any) -> None:
    boto3.client("ssm").put_parameter(
        Name=resources.names.integration_settings_parameter(tenant, Vendor.POSABIT),
        Value=IntegrationSettings(vendor=Vendor.POSABIT, **values).model_dump_json(),
        Type="String",
        Overwrite=True,
    )
    clear_caches()


def tenants(resources: Any) -> list[str]:
    return sorted(json.loads(m["body"])["tenant"] for m in queued(resources))


def test_each_credential_is_enqueued_once_per_its_own_interval(resources: Any, clock: Clock) -> None:
    register(resources, "fast")
    register(resources, "slow")
    settings(resources, "fast", pull_interval_minutes=15)  # "slow" keeps the default: 180 minutes
    svc = make_service(resources, now=clock, control_clock=clock.epoch)

    svc.dispatch(VENDORS)
    assert tenants(resources) == ["fast", "slow"], "never pulled: due at once"

    clock.advance(minutes=10)
    svc.dispatch(VENDORS)
    assert tenants(resources) == [], "nobody's interval has passed"

    clock.advance(minutes=5)
    svc.dispatch(VENDORS)
    assert tenants(resources) == ["fast"]

    for _ in range(10):  # 15-minute ticks up to 180 minutes after the first
        clock.advance(minutes=15)
        svc.dispatch(VENDORS)
    assert tenants(resources).count("fast") == 10
    clock.advance(minutes=15)
    outcome = svc.dispatch(VENDORS)
    assert [j.tenant for j in outcome.enqueued] == ["fast", "slow"]


def test_a_failing_store_is_retried_at_its_interval_not_at_every_tick(resources: Any, clock: Clock) -> None:
    register(resources, "t1", secret=False)  # every pull of it fails
    svc = make_service(resources, now=clock, control_clock=clock.epoch)
    svc.dispatch(VENDORS)
    [job] = queued(resources)
    from functions.core.pull_runtime import PullJob

    assert svc.run_job(PullJob.model_validate_json(job["body"]), lambda: 900).status == "failed"

    for _ in range(11):
        clock.advance(minutes=15)
        svc.dispatch(VENDORS)
        assert queued(resources) == []
    clock.advance(minutes=15)
    svc.dispatch(VENDORS)
    assert len(queued(resources)) == 1


def test_a_manual_dispatch_pulls_every_active_credential_now(resources: Any, clock: Clock) -> None:
    register(resources, "t1")
    register(resources, "t2")
    settings(resources, "t2", use_last_backup=True)
    svc = make_service(resources, now=clock, control_clock=clock.epoch)
    svc.dispatch(VENDORS)
    queued(resources)

    clock.advance(minutes=1)
    outcome = svc.dispatch(VENDORS, reason="manual")

    assert [(j.tenant, j.reason) for j in outcome.enqueued] == [("t1", "manual")]
    assert outcome.frozen == ["t2/posabit/c1"], "'use last backup' still stops every call"


def test_freshness_is_measured_at_every_tick(resources: Any, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    register(resources, "fresh")
    register(resources, "old")
    register(resources, "frozen")
    settings(resources, "frozen", use_last_backup=True)
    svc = make_service(resources, now=clock, control_clock=clock.epoch)

    svc.dispatch(VENDORS)
    first = metrics(capsys.readouterr().out)
    assert [m.value for m in named(first, CREDENTIALS_STALE)] == [0.0], "a gauge: 0 is emitted too"
    assert named(first, CREDENTIALS_STALE)[0].dimensions == ()

    for tenant, hours_ago in (("fresh", 1), ("old", 7), ("frozen", 48)):
        svc.control.save_status(
            tenant, Vendor.POSABIT, "c1", {"last_success_at": (clock.now - timedelta(hours=hours_ago)).isoformat()}
        )
    clock.advance(minutes=15)
    outcome = svc.dispatch(VENDORS)
    emitted = metrics(capsys.readouterr().out)

    assert outcome.stale == ["old/posabit/c1"], "7 h > 2 x 180 min; a frozen integration is never stale"
    assert [m.value for m in named(emitted, CREDENTIALS_STALE)] == [1.0]
    ages = {m.dimensions: m.value for m in named(emitted, SECONDS_SINCE_LAST_SUCCESSFUL_PULL)}
    assert ages[(("credential", "old/c1"), ("vendor", "posabit"))] == 7 * 3600 + 15 * 60
    assert ages[(("credential", "fresh/c1"), ("vendor", "posabit"))] == 3600 + 15 * 60


def test_a_credential_that_never_succeeded_turns_stale_two_intervals_after_its_first_dispatch(
    resources: Any, clock: Clock
) -> None:
    register(resources, "t1", secret=False)
    svc = make_service(resources, now=clock, control_clock=clock.epoch)
    svc.dispatch(VENDORS)

    clock.advance(hours=6)
    assert svc.dispatch(VENDORS).stale == []
    clock.advance(minutes=1)
    assert svc.dispatch(VENDORS).stale == ["t1/posabit/c1"]


def test_settings_that_cannot_be_read_for_one_tenant_do_not_stop_the_others(
    resources: Any, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    register(resources, "broken")
    register(resources, "fine")
    svc = make_service(resources, now=clock, control_clock=clock.epoch)
    real = svc.settings.integration

    def integration(tenant: str, vendor: Vendor) -> IntegrationSettings:
        if tenant == "broken":
            raise SettingsUnavailableError("could not read settings parameter /possync/tenants/broken/...; retried")
        return real(tenant, vendor)

    svc.settings.integration = integration  # type: ignore[method-assign]

    outcome = svc.dispatch(VENDORS)

    assert [j.tenant for j in outcome.enqueued] == ["fine"]
    assert outcome.settings_unavailable == ["broken/posabit/c1"]
    problem = svc.control.get_status("broken", Vendor.POSABIT, "c1")["dispatch_problem"]
    assert "could not read settings" in problem["error"]
    assert named(metrics(capsys.readouterr().out), "AwsCallsFailed")

    # Once the settings can be read again the credential is dispatched and the problem cleared
    svc.settings.integration = real  # type: ignore[method-assign]
    assert [j.tenant for j in svc.dispatch(VENDORS).enqueued] == ["broken"]
    assert svc.control.get_status("broken", Vendor.POSABIT, "c1")["dispatch_problem"] is None


def test_invalid_settings_are_a_failed_outcome_on_the_status(resources: Any, clock: Clock) -> None:
    register(resources, "t1")
    boto3.client("ssm").put_parameter(
        Name=resources.names.integration_settings_parameter("t1", Vendor.POSABIT),
        Value=json.dumps({"pull_interval_minutes": 5}),
        Type="String",
    )
    svc = make_service(resources, now=clock, control_clock=clock.epoch)

    outcome = svc.dispatch(VENDORS)

    assert outcome.enqueued == [] and outcome.invalid_settings == ["t1/posabit/c1"]
    status = svc.control.get_status("t1", Vendor.POSABIT, "c1")
    assert status["last_outcome"] == "failed" and "pull_interval_minutes" in status["last_error"]


def test_a_held_lease_is_reported_by_the_tick_that_skips_it(resources: Any, clock: Clock) -> None:
    register(resources, "t1")
    svc = make_service(resources, now=clock, control_clock=clock.epoch)
    svc.control.acquire_lease("t1", Vendor.POSABIT, "c1", "someone", 600, holder="continuation job")

    outcome = svc.dispatch(VENDORS)

    assert outcome.enqueued == [] and outcome.lease_held == ["t1/posabit/c1"]
    skip = svc.control.get_status("t1", Vendor.POSABIT, "c1")["lease_skip"]
    assert skip["holder"] == "continuation job" and skip["by"] == "dispatch"
    assert skip["since"] == T.isoformat() and skip["until"] == (T + timedelta(seconds=600)).isoformat()

    clock.advance(seconds=601)  # the lease expired: the next tick takes it over
    assert [j.tenant for j in svc.dispatch(VENDORS).enqueued] == ["t1"]


def test_jobs_sqs_refused_are_not_stamped_so_the_retried_dispatch_sends_them(resources: Any, clock: Clock) -> None:
    register(resources, "t1")
    sqs = Faulty(boto3.client("sqs"), "send_message_batch", code="AWS.SimpleQueueService.RequestThrottled", times=1)
    svc = make_service(resources, now=clock, control_clock=clock.epoch, sqs=sqs)

    with pytest.raises(AwsServiceError):
        svc.dispatch(VENDORS)
    assert "last_enqueued_at" not in svc.control.get_status("t1", Vendor.POSABIT, "c1")

    assert [j.tenant for j in svc.dispatch(VENDORS).enqueued] == ["t1"]
