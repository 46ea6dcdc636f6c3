"""The re-evaluation's pure parts: settings parameter names and their one parser, messages, the settings digest."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from functions.core import reevaluation
from functions.core.layout import ResourceNames, SettingsParameter, Vendor
from functions.core.reevaluation import (
    JobRejectedError,
    ReevaluationJob,
    RunStatus,
    SettingsChange,
    parse_message,
    rules_fingerprint,
    settings_change_pattern,
)
from functions.core.settings import IntegrationSettings, TenantSettings

EVENT = Path(__file__).parents[1] / "fixtures" / "events" / "ssm_parameter_store_change.json"
STAGES = [ResourceNames(), ResourceNames.for_stage("prod"), ResourceNames.for_stage("staging-eu")]


@pytest.mark.parametrize("names", STAGES, ids=lambda n: n.prefix)
@pytest.mark.parametrize("vendor", list(Vendor))
def test_every_integration_parameter_name_parses_back_to_its_tenant_and_pos(
    names: ResourceNames, vendor: Vendor
) -> None:
    name = names.integration_settings_parameter("acme-2", vendor)

    assert names.parse_settings_parameter(name) == SettingsParameter("acme-2", vendor)
    assert names.parse_settings_parameter(name.lstrip("/")) == SettingsParameter("acme-2", vendor)
    assert name.startswith(names.settings_parameter_root)


@pytest.mark.parametrize("names", STAGES, ids=lambda n: n.prefix)
def test_the_tenant_parameter_name_parses_back_to_its_tenant(names: ResourceNames) -> None:
    assert names.parse_settings_parameter(names.tenant_settings_parameter("acme")) == SettingsParameter("acme", None)


@pytest.mark.parametrize(
    "name",
    [
        "/possync-prod/tenants/acme/integrations/posabit",  # another stage (the parser's is possync-dev)
        "/possync-dev/tenants/acme/integrations/square",
        "/possync-dev/tenants/acme/integrations/posabit/extra",
        "/possync-dev/tenants/acme/integrations",
        "/possync-dev/tenants/acme",
        "/possync-dev/tenants//loyalty",
        "/possync-dev/tenants/Acme/loyalty",
        "/possync-dev/tenants/acme/loyalty/",
        "/possync-dev/other/acme/loyalty",
        "/possync-devx/tenants/acme/loyalty",
    ],
)
def test_names_the_builders_never_write_parse_to_nothing(name: str) -> None:
    assert ResourceNames.for_stage("dev").parse_settings_parameter(name) is None


def test_the_rule_matches_the_stages_settings_parameters_with_and_without_the_leading_slash() -> None:
    pattern = settings_change_pattern(ResourceNames.for_stage("prod"))

    assert pattern == {
        "source": ["aws.ssm"],
        "detail-type": ["Parameter Store Change"],
        "detail": {"name": [{"prefix": "/possync-prod/tenants/"}, {"prefix": "possync-prod/tenants/"}]},
    }


def test_the_aws_sample_event_is_read_as_a_settings_change() -> None:
    change = parse_message(EVENT.read_text())

    assert change == SettingsChange("/possync/tenants/t1/integrations/posabit", "Update", "2026-11-30T16:44:48Z")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not JSON"),
        ('{"tenant": "t1"}', "vendor: Field required"),
        ('{"tenant": "T 1", "vendor": "posabit"}', "not a valid id"),
        ('{"tenant": "t1", "vendor": "posabit", "extra": 1}', "extra: Extra inputs are not permitted"),
        ('{"source": "aws.ssm", "detail-type": "Parameter Store Policy Action", "detail": {}}', "not a"),
        ('{"source": "aws.ssm", "detail-type": "Parameter Store Change", "detail": {}}', "without a parameter"),
    ],
)
def test_messages_that_can_never_be_a_job_say_why(body: str, reason: str) -> None:
    with pytest.raises(JobRejectedError, match=reason):
        parse_message(body)


def test_a_job_round_trips_through_its_message() -> None:
    job = ReevaluationJob(tenant="t1", vendor=Vendor.FLOURISH, trigger="stores map", run_id="m-1", continuation=3)

    assert parse_message(job.model_dump_json()) == job


def test_the_settings_digest_changes_with_what_the_rules_read_and_only_with_that() -> None:
    base = IntegrationSettings(vendor=Vendor.POSABIT)
    tenant = TenantSettings()
    digest = rules_fingerprint(base, tenant)

    pull_only = base.model_copy(update={"pull_interval_minutes": 30, "use_last_backup": True})
    assert rules_fingerprint(pull_only, tenant) == digest
    for changed, loyalty in [
        (base.model_copy(update={"age_gate_attested": True, "enroll_after": date(2026, 11, 20)}), tenant),
        (base.model_copy(update={"store_mappings": {"c1": "downtown"}}), tenant),
        (base.model_copy(update={"loyalty_points_imported_on": date(2026, 11, 1)}), tenant),
        (base, TenantSettings(points_per_dollar=2)),
        (base, TenantSettings(timezone="America/Denver")),
    ]:
        assert rules_fingerprint(changed, loyalty) != digest


def test_what_status_shows_of_a_run() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    later, earlier = now + timedelta(minutes=5), now - timedelta(minutes=5)
    status = RunStatus("t1", Vendor.POSABIT)

    assert status.shown_state(now) == "queued"  # a request recorded, no run yet
    assert RunStatus("t1", Vendor.POSABIT, state="running", lease_until=later).shown_state(now) == "running"
    assert RunStatus("t1", Vendor.POSABIT, state="running", lease_until=earlier).shown_state(now) == "stalled"
    assert RunStatus("t1", Vendor.POSABIT, state="done", requests=2, handled_requests=1).shown_state(now) == "queued"
    assert RunStatus("t1", Vendor.POSABIT, state="failed", requests=1, handled_requests=1).shown_state(now) == "failed"
    assert {"failed", "stalled"} == reevaluation.FAILED_STATES
    assert json.loads(EVENT.read_text())["detail-type"] == reevaluation.SSM_CHANGE_DETAIL_TYPE
