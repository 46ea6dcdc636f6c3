"""`settings set --dry-run` counts whom a change would enroll or text; `settings show` flags invalid settings."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest

from functions.core.layout import Vendor
from functions.core.loyalty.values import Persona
from functions.core.models import Sale
from functions.core.store import RecordStore
from possync.admin.audit import AuditLog
from possync.admin.impact import matchable_phone, texts
from possync.admin.tenants import AUDIT_PARAMETER as TENANT_AUDIT_PARAMETER
from possync.target import Target
from tests.cli.conftest import Invoke, PersonaSeeder

PHONE = "+12065550143"


def sale(
    customer: str | None,
    local_day: str,
    *,
    credential: str = "store-1",
    status: str = "completed",
    vendor: Vendor = Vendor.POSABIT,
    tenant: str = "t1",
    ordered_at: datetime | None = None,
    pos_id: str | None = None,
) -> Sale:
    day = date.fromisoformat(local_day)
    moment = ordered_at or datetime(day.year, day.month, day.day, 19, 0, tzinfo=UTC)
    return Sale(
        tenant=tenant,
        vendor=vendor,
        credential_id=credential,
        pos_id=pos_id or f"{credential}-{customer}-{local_day}-{status}",
        source_updated_at=moment + timedelta(minutes=5),
        customer_pos_id=customer,
        ordered_at=moment,
        local_date=day,
        timezone="America/Los_Angeles",
        status=status,  # type: ignore[arg-type]
        subtotal_cents=2500,
        total_cents=2700,
    )


@pytest.fixture
def seeded(target: Target, personas: PersonaSeeder) -> PersonaSeeder:
    """Sales in the records table and the personas they resolved to, as the rules would have left them."""
    sales = [
        sale("A", "2026-05-03"),  # persona pA: not a member, phone, consent unknown
        sale("A2", "2026-05-07", credential="store-2"),  # pA again through another credential: counted once
        sale("B", "2026-05-10"),  # pB: a member already
        sale("C", "2026-04-20"),  # pC: only before the date
        sale("D", "2026-05-05", status="cancelled"),  # pD: a cancelled sale does not count
        sale("E", "2026-05-06"),  # no persona yet
        sale("G", "2026-05-02"),  # pG: placeholder phone
        sale("H", "2026-05-02"),  # pH: answered (opted out)
        # pI: 03:00 UTC on May 1st is still April 30th in the store: the local date decides
        sale("I", "2026-04-30", ordered_at=datetime(2026, 5, 1, 3, 0, tzinfo=UTC)),
        sale(None, "2026-05-08"),  # an anonymous sale
        sale("C", "2026-05-20", vendor=Vendor.FLOURISH, credential="fl-1"),  # another POS's sale
        sale("A", "2026-05-20", tenant="t2"),  # another tenant's sale
    ]
    stats = RecordStore(boto3.client("dynamodb", region_name="us-east-1"), target.records_table).upsert_changed(
        sales, "raw/test"
    )
    assert stats.changed == len(sales)
    people: dict[str, dict[str, Any]] = {
        "pA": {"phone": PHONE},
        "pB": {"phone": "+12065550111", "member": True, "member_since": "2026-01-01T00:00:00+00:00"},
        "pC": {"phone": "+12065550122"},
        "pD": {"phone": "+12065550133"},
        "pG": {"phone": "+11234567890"},
        "pH": {"phone": "+12065550155", "consent": {"sms": "opted_out"}},
        "pI": {"phone": "+12065550166"},
    }
    for persona_id, attributes in people.items():
        personas.persona("t1", persona_id, first_name=persona_id, sources=["posabit"], **attributes)
    for customer, persona_id in {"A": "pA", "B": "pB", "C": "pC", "D": "pD", "G": "pG", "H": "pH", "I": "pI"}.items():
        personas.pos_claim("t1", Vendor.POSABIT, "store-1", customer, persona_id)
    personas.pos_claim("t1", Vendor.POSABIT, "store-2", "A2", "pA")
    personas.pos_claim("t1", Vendor.FLOURISH, "fl-1", "C", "pC")
    return personas


def dry_run(cli: Invoke, *pairs: str, command: str = "set") -> Any:
    return cli("settings", command, "--tenant", "t1", "--vendor", "posabit", "--dry-run", *pairs)


def stored(target: Target) -> str | None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    try:
        return str(
            ssm.get_parameter(Name=target.names.integration_settings_parameter("t1", Vendor.POSABIT))["Parameter"][
                "Value"
            ]
        )
    except ssm.exceptions.ParameterNotFound:
        return None


def audit(target: Target) -> list[Any]:
    """t1's settings changes (its creation, audited too, is left out)."""
    entries = AuditLog(boto3.client("dynamodb", region_name="us-east-1"), target.control_table).history("t1")
    return [e for e in entries if e.parameter != TENANT_AUDIT_PARAMETER]


def test_dry_run_counts_whom_enroll_after_and_sms_optin_after_would_reach(
    cli: Invoke, target: Target, seeded: PersonaSeeder
) -> None:
    result = dry_run(cli, "age_gate_attested=true", "enroll_after=2026-05-01", "sms_optin_after=2026-05-01")

    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    # pA (once, across two credentials), pG and pH; pB is a member; pC, pD and pI do not qualify
    assert "Would enroll: 3 personas" in out and "1 with such a sale are members already" in out
    assert "1 more shopper with such a sale has no persona yet" in out
    # pA and pB; pG's number is a placeholder; pH answered already
    assert "Would text: 2 personas" in out
    assert "1 with such a sale have no usable phone, 1 already answered" in out
    assert "counted from 10 stored posabit sales of t1" in out
    assert "nothing was written" in out
    assert stored(target) is None and audit(target) == []


def test_a_later_date_reaches_fewer(cli: Invoke, seeded: PersonaSeeder) -> None:
    result = dry_run(cli, "age_gate_attested=true", "enroll_after=2026-05-04")

    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "Would enroll: 1 persona " in out  # only pA (May 7th through store-2)
    assert "Would text" not in out  # sms_optin_after did not change


def test_the_store_local_date_decides(cli: Invoke, seeded: PersonaSeeder) -> None:
    # pI's sale was on April 30th in the store, though May 1st in UTC
    on_the_30th = " ".join(dry_run(cli, "age_gate_attested=true", "enroll_after=2026-04-30").output.split())

    # pA, pG, pH, pI (and pC's April 20th sale is still too early)
    assert "Would enroll: 4 personas" in on_the_30th


def test_sms_only_change_counts_texts_only(cli: Invoke, seeded: PersonaSeeder) -> None:
    result = dry_run(cli, "sms_optin_after=2026-05-08")

    out = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "Would text: 1 persona " in out  # pB (May 10th); pA's latest posabit sale is May 7th
    assert "Would enroll" not in out


def test_removing_enroll_after_enrolls_nobody_and_keeps_the_sticky_note(
    cli: Invoke, target: Target, seeded: PersonaSeeder
) -> None:
    setup = cli(
        "settings", "set", "-t", "t1", "-v", "posabit", "age_gate_attested=true", "enroll_after=2026-05-01", "--yes"
    )
    assert setup.exit_code == 0, setup.output
    before = stored(target)

    result = dry_run(cli, "enroll_after", command="unset")

    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "enrollment is sticky" in out and "already enrolled stay members" in out
    assert "Would enroll: nobody new (enroll_after is not set)" in out
    assert "Apply this change?" not in out  # a dry run asks nothing
    assert stored(target) == before and len(audit(target)) == 1


def test_other_changes_have_no_impact_to_count(cli: Invoke, seeded: PersonaSeeder) -> None:
    result = dry_run(cli, "pull_interval_minutes=60")

    assert result.exit_code == 0, result.output
    assert "Would" not in result.output and "the whole preview" in result.output


def test_without_a_personas_table_the_dry_run_says_it_cannot_count(cli: Invoke, target: Target) -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    if target.personas_table in ddb.list_tables()["TableNames"]:
        ddb.delete_table(TableName=target.personas_table)

    result = dry_run(cli, "age_gate_attested=true", "enroll_after=2026-05-01")

    assert result.exit_code == 0, result.output
    assert "cannot be counted" in result.output and "does not exist yet" in result.output


def test_text_rule() -> None:
    fresh = Persona("t1", "p", phone=PHONE)
    answered = Persona("t1", "p", phone=PHONE, consent={"sms": "opted_in"})
    placeholder = Persona("t1", "p", phone="+11234567890")
    may1, may2 = date(2026, 5, 1), date(2026, 5, 2)
    on_may1 = sale("A", "2026-05-01")

    assert texts(fresh, on_may1, may1)
    assert not texts(fresh, on_may1, may2) and not texts(fresh, on_may1, None)
    assert not texts(fresh, sale("A", "2026-05-02", status="cancelled"), may1)
    assert not texts(answered, on_may1, may1) and not texts(placeholder, on_may1, may1)
    assert matchable_phone(PHONE) and not matchable_phone("2065550143") and not matchable_phone(None)


def put_raw(target: Target, value: str, vendor: Vendor = Vendor.POSABIT) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=target.names.integration_settings_parameter("t1", vendor), Value=value, Type="String", Overwrite=True
    )


def test_show_flags_invalid_settings_and_says_rules_fail_safe(cli: Invoke, target: Target) -> None:
    # enroll_after without the age gate: the model refuses it, so the rules use nothing of it
    put_raw(target, json.dumps({"vendor": "posabit", "enroll_after": "2026-05-01"}))

    shown = cli("settings", "show", "--tenant", "t1", "--vendor", "posabit")
    as_json = cli("settings", "show", "--tenant", "t1", "--vendor", "posabit", "-o", "json")

    assert shown.exit_code == 1
    out = " ".join(shown.output.split())
    assert "settings parameter /possync/tenants/t1/integrations/posabit is not valid" in out
    assert "enroll_after needs age_gate_attested" in out
    assert "rules fail safe: no enrollment, no texts until this is fixed" in out
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["problem"] is not None


def test_show_of_the_tenant_flags_an_invalid_integration(cli: Invoke, target: Target) -> None:
    put_raw(target, "{not json", vendor=Vendor.FLOURISH)
    put_raw(target, json.dumps({"vendor": "posabit", "age_gate_attested": True}))

    shown = cli("settings", "show", "--tenant", "t1")

    assert shown.exit_code == 1
    out = " ".join(shown.output.split())
    assert "Integrations with settings: flourish (NOT VALID), posabit." in out
    assert "/possync/tenants/t1/integrations/flourish is not valid JSON" in out
    assert "rules fail safe: no enrollment, no texts until this is fixed" in out


def test_show_of_valid_settings_exits_0(cli: Invoke, target: Target) -> None:
    put_raw(target, json.dumps({"vendor": "posabit", "age_gate_attested": True, "enroll_after": "2026-05-01"}))

    assert cli("settings", "show", "--tenant", "t1", "--vendor", "posabit").exit_code == 0
    shown = cli("settings", "show", "--tenant", "t1")
    assert shown.exit_code == 0 and "fail safe" not in shown.output


def test_setting_an_enroll_date_shows_the_impact_and_asks(cli: Invoke, target: Target, seeded: PersonaSeeder) -> None:
    change = ("settings", "set", "-t", "t1", "-v", "posabit", "age_gate_attested=true", "enroll_after=2026-05-01")
    preview = " ".join(dry_run(cli, "age_gate_attested=true", "enroll_after=2026-05-01").output.split())
    counted = re.search(r"Would enroll: \d+ persona", preview)
    assert counted is not None

    declined = cli(*change, input="n\n")
    assert declined.exit_code == 1
    assert counted.group(0) in " ".join(declined.output.split()) and "Apply this change?" in declined.output
    assert stored(target) is None and audit(target) == []

    confirmed = cli(*change, input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert json.loads(stored(target) or "{}")["enroll_after"] == "2026-05-01"


def test_yes_skips_the_question_for_scripts(cli: Invoke, target: Target, seeded: PersonaSeeder) -> None:
    result = cli("settings", "set", "-t", "t1", "-v", "posabit", "sms_optin_after=2026-05-08", "--yes", input="")

    assert result.exit_code == 0, result.output
    assert "Would text: 1 persona" in " ".join(result.output.split())
    assert "Apply this change?" not in result.output
    assert json.loads(stored(target) or "{}")["sms_optin_after"] == "2026-05-08"
