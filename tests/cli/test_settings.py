"""`possync settings show/set/unset/history` under moto: validation, consequences, dry run, audit log."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest

from functions.core.layout import Vendor
from functions.core.settings import IntegrationSettings
from functions.core.sms.templates import DEFAULT_PROGRAM
from possync.admin.audit import AuditLog
from possync.admin.tenants import AUDIT_PARAMETER as TENANT_AUDIT_PARAMETER
from possync.target import Target
from tests.cli.conftest import TENANT_CREATOR, Invoke

MOTO_CALLER = "arn:aws:sts::123456789012:user/moto"


def stored(target: Target, tenant: str = "t1", vendor: Vendor | None = Vendor.POSABIT) -> dict[str, Any] | None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    name = (
        target.names.integration_settings_parameter(tenant, vendor)
        if vendor
        else target.names.tenant_settings_parameter(tenant)
    )
    try:
        return json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


def audit(target: Target, tenant: str = "t1") -> list[Any]:
    """The tenant's settings changes (its creation, audited too, is left out)."""
    entries = AuditLog(boto3.client("dynamodb", region_name="us-east-1"), target.control_table).history(tenant)
    return [e for e in entries if e.parameter != TENANT_AUDIT_PARAMETER]


def put_raw(target: Target, value: str, vendor: Vendor = Vendor.POSABIT) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=target.names.integration_settings_parameter("t1", vendor), Value=value, Type="String", Overwrite=True
    )


def set_posabit(cli: Invoke, *pairs: str, input: str | None = None) -> Any:
    return cli("settings", "set", "--tenant", "t1", "--vendor", "posabit", *pairs, input=input)


def test_show_without_a_parameter_shows_the_defaults(cli: Invoke) -> None:
    result = cli("settings", "show", "--tenant", "t1", "--vendor", "posabit")
    as_json = cli("settings", "show", "--tenant", "t1", "--vendor", "posabit", "-o", "json")

    assert result.exit_code == 0, result.output
    assert "Not set yet" in result.output and "pull_interval_minutes" in result.output
    shown = json.loads(as_json.stdout)
    assert shown["stored"] is False and shown["enroll_after"] is None and shown["pull_interval_minutes"] == 180


def test_set_validates_writes_and_audits(cli: Invoke, target: Target) -> None:
    result = set_posabit(
        cli, "age_gate_attested=true", "enroll_after=2026-05-01", "store_mappings.store-1=downtown", "--yes"
    )

    assert result.exit_code == 0, result.output
    value = stored(target)
    assert value is not None
    settings = IntegrationSettings.model_validate(value)  # what the Lambdas will read
    assert settings.age_gate_attested and str(settings.enroll_after) == "2026-05-01"
    assert settings.store_mappings == {"store-1": "downtown"}
    [entry] = audit(target)
    assert entry.who == MOTO_CALLER and entry.action == "set"
    assert entry.parameter == "/possync/tenants/t1/integrations/posabit"
    assert entry.old["enroll_after"] is None and entry.new["enroll_after"] == "2026-05-01"

    shown = json.loads(cli("settings", "show", "--tenant", "t1", "--vendor", "posabit", "-o", "json").stdout)
    assert shown["stored"] is True and shown["enroll_after"] == "2026-05-01"


def test_invalid_value_is_refused_and_nothing_is_written(cli: Invoke, target: Target) -> None:
    result = set_posabit(cli, "age_gate_attested=true", "enroll_after=someday")

    assert result.exit_code == 1
    assert (
        "enroll_after: not a date: use YYYY-MM-DD, e.g. 2026-05-01" in result.output
        and "nothing was written" in result.output
    )
    assert stored(target) is None and audit(target) == []


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("pull_interval_minutes=5", "pull_interval_minutes: must be at least 15"),
        ("enroll_after=2026-05-01", "enroll_after needs age_gate_attested"),
        ("use_last_backup=perhaps", "use_last_backup: use true or false"),
    ],
)
def test_rule_breaking_values_are_refused(cli: Invoke, target: Target, pair: str, message: str) -> None:
    result = set_posabit(cli, pair)

    assert result.exit_code == 1
    assert message in result.output
    assert stored(target) is None


def test_unknown_key_lists_the_settings(offline_cli: Invoke) -> None:
    result = set_posabit(offline_cli, "enrol_after=2026-05-01")

    assert result.exit_code == 1
    assert "unknown setting 'enrol_after'" in result.output and "enroll_after" in result.output


def test_not_key_value_is_refused(offline_cli: Invoke) -> None:
    result = set_posabit(offline_cli, "age_gate_attested")

    assert result.exit_code == 1
    assert "is not key=value" in result.output


def test_bad_vendor_is_refused(offline_cli: Invoke) -> None:
    result = offline_cli("settings", "set", "--tenant", "t1", "--vendor", "clover", "age_gate_attested=true")

    assert result.exit_code == 1
    assert "unknown vendor 'clover'" in result.output


def test_turning_sync_personas_on_records_the_day_it_starts(cli: Invoke, target: Target) -> None:
    result = set_posabit(cli, "sync_personas=on")

    assert result.exit_code == 0, result.output
    value = stored(target)
    assert value is not None
    assert value["sync_personas"] is True
    # tenant has no loyalty settings: the default zone decides what "today" is
    assert value["sync_personas_enabled_on"] == datetime.now(ZoneInfo("America/Los_Angeles")).date().isoformat()

    off = set_posabit(cli, "sync_personas=false")
    assert off.exit_code == 0, off.output
    value = stored(target)
    assert value is not None and value["sync_personas_enabled_on"] is None


def test_the_sync_start_day_cannot_be_set_by_hand(offline_cli: Invoke) -> None:
    result = set_posabit(offline_cli, "sync_personas=true", "sync_personas_enabled_on=2020-01-01")

    assert result.exit_code == 1
    assert "set for you" in result.output and "not retroactive" in result.output


def test_sync_personas_is_not_offered_for_thsuite(cli: Invoke) -> None:
    result = cli("settings", "set", "--tenant", "t1", "--vendor", "thsuite", "sync_personas=true")

    assert result.exit_code == 1
    assert "not offered for thsuite" in result.output


def test_removing_enroll_after_explains_and_asks(cli: Invoke, target: Target) -> None:
    assert set_posabit(cli, "age_gate_attested=true", "enroll_after=2026-05-01", "--yes").exit_code == 0

    declined = cli("settings", "unset", "--tenant", "t1", "--vendor", "posabit", "enroll_after", input="n\n")
    assert declined.exit_code == 1
    assert "enrollment is sticky" in declined.output and "nobody new is enrolled" in declined.output
    value = stored(target)
    assert value is not None and value["enroll_after"] == "2026-05-01"
    assert len(audit(target)) == 1

    confirmed = cli("settings", "unset", "--tenant", "t1", "--vendor", "posabit", "enroll_after", input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    value = stored(target)
    assert value is not None and value["enroll_after"] is None and value["age_gate_attested"] is True
    latest = audit(target)[0]
    assert (
        latest.action == "unset" and latest.old["enroll_after"] == "2026-05-01" and latest.new["enroll_after"] is None
    )


def test_removing_sms_optin_after_explains_and_yes_skips_the_question(cli: Invoke, target: Target) -> None:
    assert set_posabit(cli, "sms_optin_after=2026-06-01", "--yes").exit_code == 0

    result = cli("settings", "set", "--tenant", "t1", "--vendor", "posabit", "--yes", "sms_optin_after=", input="")
    assert result.exit_code == 1  # an empty date is not a date: unset is the way to remove it
    removed = cli("settings", "unset", "--tenant", "t1", "--vendor", "posabit", "sms_optin_after", "--yes")

    assert removed.exit_code == 0, removed.output
    assert "nobody new gets an opt-in text" in removed.output
    value = stored(target)
    assert value is not None and value["sms_optin_after"] is None


def test_use_last_backup_warns_of_the_freeze_and_asks(cli: Invoke, target: Target) -> None:
    declined = set_posabit(cli, "use_last_backup=true", input="n\n")
    assert declined.exit_code == 1
    assert "stops calling the POS" in declined.output and "data already pulled is kept" in declined.output
    assert stored(target) is None

    confirmed = set_posabit(cli, "use_last_backup=true", input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    value = stored(target)
    assert value is not None and value["use_last_backup"] is True


def test_dry_run_prints_the_diff_and_writes_nothing(cli: Invoke, target: Target) -> None:
    result = set_posabit(cli, "--dry-run", "age_gate_attested=true", "sms_optin_after=2026-06-01")

    assert result.exit_code == 0, result.output
    assert "sms_optin_after" in result.output and "2026-06-01" in result.output
    assert "nothing was written" in result.output and "persona rules" in result.output
    assert stored(target) is None and audit(target) == []


def test_store_mappings_are_set_and_removed_one_at_a_time(cli: Invoke, target: Target) -> None:
    assert set_posabit(cli, "store_mappings.store-1=downtown", "store_mappings.store-2=uptown").exit_code == 0
    assert cli("settings", "unset", "--tenant", "t1", "--vendor", "posabit", "store_mappings.store-1").exit_code == 0

    value = stored(target)
    assert value is not None and value["store_mappings"] == {"store-2": "uptown"}
    missing = cli("settings", "unset", "--tenant", "t1", "--vendor", "posabit", "store_mappings.store-9")
    assert missing.exit_code == 1 and "no store mapping for 'store-9'" in missing.output


def test_tenant_settings_without_vendor(cli: Invoke, target: Target) -> None:
    assert cli("settings", "set", "--tenant", "t1", "brand_name=Green Leaf", "timezone=America/Denver").exit_code == 0
    bad_zone = cli("settings", "set", "--tenant", "t1", "timezone=Mars/Base")
    shown = cli("settings", "show", "--tenant", "t1")

    assert stored(target, vendor=None) == {
        "brand_name": "Green Leaf",
        "points_per_dollar": 1,
        "accrual_start_date": None,
        "timezone": "America/Denver",
        # the SMS opt-in texts (functions.core.sms.templates), at their defaults
        "sms_program": DEFAULT_PROGRAM,
        "sms_templates": {},
        "sms_template_version": 1,
    }
    assert bad_zone.exit_code == 1 and "not an IANA time zone" in bad_zone.output
    assert shown.exit_code == 0 and "Green Leaf" in shown.output


def test_invalid_stored_settings_are_reported_and_can_be_repaired(cli: Invoke, target: Target) -> None:
    put_raw(target, json.dumps({"vendor": "posabit", "enroll_after": "2026-05-01", "colour": "green"}))

    shown = cli("settings", "show", "--tenant", "t1", "--vendor", "posabit")
    assert shown.exit_code == 1
    assert "not valid" in shown.output and "/possync/tenants/t1/integrations/posabit" in shown.output

    repaired = cli("settings", "unset", "--tenant", "t1", "--vendor", "posabit", "colour", "enroll_after", "--yes")
    assert repaired.exit_code == 0, repaired.output
    assert cli("settings", "show", "--tenant", "t1", "--vendor", "posabit").exit_code == 0


def test_nothing_to_change_writes_nothing(cli: Invoke, target: Target) -> None:
    assert set_posabit(cli, "age_gate_attested=true").exit_code == 0

    again = set_posabit(cli, "age_gate_attested=yes")

    assert again.exit_code == 0 and "Nothing to change" in again.output
    assert len(audit(target)) == 1


def test_history_lists_changes_newest_first(cli: Invoke) -> None:
    assert set_posabit(cli, "age_gate_attested=true").exit_code == 0
    assert set_posabit(cli, "pull_interval_minutes=60").exit_code == 0
    assert cli("settings", "set", "--tenant", "t1", "points_per_dollar=2").exit_code == 0

    table = cli("settings", "history", "--tenant", "t1")
    only_posabit = json.loads(cli("settings", "history", "--tenant", "t1", "--vendor", "posabit", "-o", "json").stdout)

    assert table.exit_code == 0, table.output
    assert "pull_interval_minutes: 180 -> 60" in table.output and MOTO_CALLER in table.output
    assert [e["changes"][0]["setting"] for e in only_posabit] == ["pull_interval_minutes", "age_gate_attested"]
    # t2's history holds its own creation only, none of t1's changes.
    other = json.loads(cli("settings", "history", "--tenant", "t2", "-o", "json").stdout)
    assert [(e["parameter"], e["action"], e["who"]) for e in other] == [("tenant", "tenants add", TENANT_CREATOR)]
