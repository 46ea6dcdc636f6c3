"""`possync personas list/show` under moto: the marketer's columns, filters, formats, and masked personal data."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from functions.core import layout
from functions.core.layout import ResourceNames, Vendor
from functions.core.loyalty.values import LedgerEntry
from infra import outputs
from possync.admin.personas import mask_email, mask_phone
from possync.target import stack_target
from tests.cli.conftest import Invoke, PersonaSeeder

ANA_PHONE = "+12065550143"
ANA_EMAIL = "ana.lopez@example.com"
ANA_BIRTH = "1990-04-12"


def sale_entry(sale_id: str, points: int, at: str) -> LedgerEntry:
    return LedgerEntry(
        sk=layout.ledger_sk(Vendor.POSABIT, "store-1", sale_id),
        kind="sale",
        vendor="posabit",
        credential_id="store-1",
        source_id=sale_id,
        record_version=1,
        source_updated_at=at,
        points=points,
        net_cents=points * 100,
        local_date=at[:10],
        status="completed",
        at=at,
        applied_at=at,
    )


@pytest.fixture
def seeded(personas: PersonaSeeder) -> PersonaSeeder:
    personas.persona(
        "t1",
        "a1",
        first_name="Ana",
        last_name="Lopez",
        phone=ANA_PHONE,
        email=ANA_EMAIL,
        birth_date=ANA_BIRTH,
        sources=["posabit", "flourish"],
        source_records=["posabit#store-1#c-17", "flourish#fl-1#99"],
        field_sources={
            "phone": {"vendor": "posabit", "credential_id": "store-1", "pos_id": "c-17", "source_updated_at": "x"},
            "email": {"vendor": "flourish", "credential_id": "fl-1", "pos_id": "99", "source_updated_at": "y"},
        },
        favourite_store="downtown",
        member=True,
        # the enrolling sale: May 3rd, 19:20 in Seattle, which is already May 4th in UTC
        member_since="2026-05-04T02:20:00.000000+00:00",
        member_since_date="2026-05-03",
        member_how="enroll_after:posabit",
        points=42,
        created_at="2026-04-01T10:00:00+00:00",
        updated_at="2026-05-03T18:20:00+00:00",
    )
    personas.persona(
        "t1",
        "b2",
        first_name="Ben",
        last_name="Baker",
        phone="+12065550188",
        email="ben@example.org",
        birth_date="1985-01-01",
        sources=["thsuite"],
        source_records=["thsuite#th-1#p-5"],
    )
    personas.persona("t1", "c3", first_name="Cy", sources=["posabit"], source_records=["posabit#store-1#c-3"])
    personas.persona("t10", "z9", first_name="Zed", last_name="OtherTenant", sources=["posabit"])  # prefix look-alike
    personas.claim("t1", "phone", ANA_PHONE, "a1")
    personas.claim("t1", "email", ANA_EMAIL, "a1")
    personas.pos_claim("t1", Vendor.POSABIT, "store-1", "c-17", "a1")
    personas.pos_claim("t1", Vendor.FLOURISH, "fl-1", "99", "b2")  # a claim another persona won
    personas.visit("t1", "a1", "downtown", 5, "2026-05-03T18:20:00+00:00")
    personas.visit("t1", "a1", "uptown", 2, "2026-04-20T18:20:00+00:00")
    for n in range(12):
        personas.ledger("t1", "a1", sale_entry(f"s-{n:02d}", points=n, at=f"2026-05-{n + 4:02d}T12:00:00.000000+00:00"))
    personas.ledger(
        "t1",
        "a1",
        LedgerEntry(
            sk=layout.ledger_import_sk(Vendor.POSABIT, "store-1", "c-17"),
            kind="import",
            vendor="posabit",
            credential_id="store-1",
            source_id="c-17",
            record_version=1,
            source_updated_at="2026-05-01T00:00:00.000000+00:00",
            points=30,
            at="2026-05-01T00:00:00.000000+00:00",
            applied_at="2026-05-02T00:00:00.000000+00:00",
        ),
    )
    return personas


def personas_list(cli: Invoke, *args: str) -> Any:
    return cli("personas", "list", "--tenant", "t1", *args)


def test_masking() -> None:
    assert mask_phone("+12065550143") == "+*******0143"
    assert mask_email("ana.lopez@example.com") == "a***@example.com"
    assert mask_phone(None) is None and mask_email("") == ""


def test_list_shows_the_marketers_columns_with_phone_and_email_masked(cli: Invoke, seeded: PersonaSeeder) -> None:
    result = personas_list(cli)

    assert result.exit_code == 0, result.output
    out = result.output
    assert "Ana Lopez" in out and "Ben Baker" in out and "Cy" in out
    assert "flourish, posabit" in out and "downtown" in out and "2026-05-03" in out and "42" in out
    assert "2026-05-04" not in out  # membership is dated by the enrolling sale's store-local day, not UTC
    assert "unknown" in out  # SMS consent until SMS lands
    assert "+*******0143" in out and "a***@example.com" in out
    for private in (ANA_PHONE, ANA_EMAIL, ANA_BIRTH, "1985-01-01", "+12065550188", "ben@example.org"):
        assert private not in out
    assert "Zed" not in out  # tenant t10 is another tenant
    assert "3 shown of 3 personas" in out
    # sorted by last name: Baker, Lopez, then Cy (no last name) first
    assert out.index("Cy") < out.index("Ben Baker") < out.index("Ana Lopez")


def test_list_json_and_csv_are_masked_too(cli: Invoke, seeded: PersonaSeeder) -> None:
    as_json = json.loads(personas_list(cli, "-o", "json").stdout)
    as_csv = list(csv.DictReader(io.StringIO(personas_list(cli, "--output", "csv").stdout)))

    ana = next(p for p in as_json if p["id"] == "a1")
    assert ana == {
        "id": "a1",
        "name": "Ana Lopez",
        "phone": "+*******0143",
        "email": "a***@example.com",
        "sourced_from": ["flourish", "posabit"],
        "favourite_store": "downtown",
        "member_since": "2026-05-03",
        "points": 42,
        "consent_sms": "unknown",
    }
    cy = next(p for p in as_json if p["id"] == "c3")
    assert cy["member_since"] is None and cy["phone"] is None
    assert [r["id"] for r in as_csv] == ["c3", "b2", "a1"]
    assert as_csv[2]["sourced_from"] == "flourish;posabit" and as_csv[2]["phone"] == "+*******0143"
    assert "birth" not in " ".join(as_csv[0]) and ANA_BIRTH not in personas_list(cli, "-o", "csv").stdout


def test_list_filters(cli: Invoke, seeded: PersonaSeeder) -> None:
    members = json.loads(personas_list(cli, "--member-only", "-o", "json").stdout)
    from_posabit = json.loads(personas_list(cli, "--sourced-from", "posabit", "-o", "json").stdout)
    from_thsuite_members = personas_list(cli, "--sourced-from", "THSuite", "--member-only")

    assert [p["id"] for p in members] == ["a1"]
    assert sorted(p["id"] for p in from_posabit) == ["a1", "c3"]
    assert from_thsuite_members.exit_code == 0
    assert "no members sourced from thsuite for tenant t1 yet" in from_thsuite_members.output


def test_list_limit_says_more_match(cli: Invoke, seeded: PersonaSeeder) -> None:
    limited = personas_list(cli, "--limit", "2")
    as_json = json.loads(personas_list(cli, "--limit", "2", "-o", "json").stdout)

    assert limited.exit_code == 0, limited.output
    assert "2 shown of 3 personas; raise --limit (now 2)" in limited.output
    assert [p["id"] for p in as_json] == ["c3", "b2"]  # the limit applies after sorting by name


def test_list_refuses_an_unknown_pos(offline_cli: Invoke) -> None:
    result = offline_cli("personas", "list", "--tenant", "t1", "--sourced-from", "clover")

    assert result.exit_code == 1 and "unknown vendor 'clover'" in result.output


def test_list_of_a_tenant_without_personas(cli: Invoke, personas: PersonaSeeder) -> None:
    result = cli("personas", "list", "--tenant", "t2")

    assert result.exit_code == 0
    assert "no personas for tenant t2 yet" in result.output


def test_show_prints_everything_in_full(cli: Invoke, seeded: PersonaSeeder) -> None:
    result = cli("personas", "show", "--tenant", "t1", "a1")

    assert result.exit_code == 0, result.output
    out = result.output
    for full in (ANA_PHONE, ANA_EMAIL, ANA_BIRTH, "Ana Lopez", "downtown", "enroll_after:posabit", "42"):
        assert full in out
    assert "posabit#store-1#c-17" in out and "flourish#fl-1#99" in out
    assert "this persona" in out and "persona b2" in out  # the flourish id is claimed by b2
    assert "Points ledger (latest 10 of 13)" in out
    assert "s-11" in out and "s-02" in out and "s-01" not in out  # the newest ten
    assert "import" not in out.split("Points ledger")[1]  # the May 1st import is older than the ten shown


def test_show_json_has_sources_claims_visits_and_ledger(cli: Invoke, seeded: PersonaSeeder) -> None:
    shown = json.loads(cli("personas", "show", "-t", "t1", "a1", "--ledger", "20", "-o", "json").stdout)

    assert shown["phone"] == ANA_PHONE and shown["birth_date"] == ANA_BIRTH
    assert shown["sources"] == [
        {"vendor": "flourish", "credential": "fl-1", "pos_id": "99", "fields": ["email"]},
        {"vendor": "posabit", "credential": "store-1", "pos_id": "c-17", "fields": ["phone"]},
    ]
    assert shown["field_sources"]["email"]["vendor"] == "flourish"
    assert {(c["kind"], c["held_by"]) for c in shown["identity_claims"]} == {
        ("phone", "this persona"),
        ("email", "this persona"),
        ("pos", "this persona"),
        ("pos", "persona b2"),
    }
    assert [v["store"] for v in shown["visits"]] == ["downtown", "uptown"]
    assert shown["ledger_entries"] == 13 and len(shown["ledger"]) == 13
    assert shown["ledger"][0]["pos_id"] == "s-11" and shown["ledger"][0]["points"] == 11
    imported = shown["ledger"][-1]
    assert (imported["entry"], imported["vendor"], imported["pos_id"], imported["points"]) == (
        "import",
        "posabit",
        "c-17",
        30,
    )
    assert shown["consent"] == {"sms": "unknown"} and shown["member_since"] == "2026-05-03"
    assert shown["member_since_at"] == "2026-05-04T02:20:00.000000+00:00"


@pytest.mark.parametrize("who", [ANA_PHONE, "(206) 555-0143", ANA_EMAIL.upper()])
def test_show_finds_a_persona_by_phone_or_email(cli: Invoke, seeded: PersonaSeeder, who: str) -> None:
    shown = cli("personas", "show", "--tenant", "t1", who, "-o", "json")

    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["id"] == "a1"


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("nobody", "tenant t1 has no persona nobody"),
        ("+12065550999", "no persona of tenant t1 has that phone number"),
        ("x@example.com", "no persona of tenant t1 has that email address"),
        ("a1; drop", "is not a persona id"),
    ],
)
def test_show_errors(cli: Invoke, seeded: PersonaSeeder, who: str, message: str) -> None:
    result = cli("personas", "show", "--tenant", "t1", who)

    assert result.exit_code == 1
    assert message in result.output


def test_show_of_another_tenants_persona_is_not_found(cli: Invoke, seeded: PersonaSeeder) -> None:
    result = cli("personas", "show", "--tenant", "t1", "z9")

    assert result.exit_code == 1 and "tenant t1 has no persona z9" in result.output


def test_show_refuses_csv(offline_cli: Invoke) -> None:
    result = offline_cli("personas", "show", "--tenant", "t1", "a1", "-o", "csv")

    assert result.exit_code == 1 and "use --output table or json" in result.output


class FakeCloudFormation:
    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 - boto3's argument name
        return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]}]}


def test_a_stack_target_reads_the_personas_table_output(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {
        outputs.RESOURCE_PREFIX_OUTPUT: ResourceNames().prefix,
        outputs.RECORDS_TABLE_OUTPUT: "rec",
        outputs.CONTROL_TABLE_OUTPUT: "ctl",
        outputs.ARCHIVE_BUCKET_OUTPUT: "arc",
    }
    monkeypatch.setattr(
        "possync.target.boto3.client",
        lambda service, **_: FakeCloudFormation({**base, outputs.PERSONAS_TABLE_OUTPUT: "prod-personas"}),
    )
    with_output = stack_target("Possync", "us-west-2")
    monkeypatch.setattr("possync.target.boto3.client", lambda service, **_: FakeCloudFormation(base))
    older_stack = stack_target("Possync", "us-west-2")

    assert (with_output.records_table, with_output.personas_table) == ("rec", "prod-personas")
    assert older_stack.personas_table == ResourceNames().personas_table


def test_an_export_is_complete_streamed_and_counted_on_stderr(cli: Invoke, personas: PersonaSeeder) -> None:
    for n in range(130):
        personas.persona("t1", f"p{n:03d}", first_name="Pat", last_name=f"Name{n:03d}")

    exported = personas_list(cli, "-o", "csv")
    on_screen = personas_list(cli)

    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(rows) == 130 and rows[0]["id"] == "p000" and rows[-1]["id"] == "p129"
    assert "130 of 130 personas exported" in exported.stderr and "masked" in exported.stderr
    assert "100 shown of 130 personas" in on_screen.output


def test_unmask_is_explicit_for_exports_and_audited(cli: Invoke, seeded: PersonaSeeder) -> None:
    table = personas_list(cli, "--unmask")
    exported = personas_list(cli, "--unmask", "-o", "json")
    history = cli("settings", "history", "--tenant", "t1", "-o", "json")

    assert table.exit_code == 1 and "--unmask is for exports" in table.output
    ana = next(p for p in json.loads(exported.stdout) if p["id"] == "a1")
    assert (ana["phone"], ana["email"]) == (ANA_PHONE, ANA_EMAIL)
    assert "unmasked; audited" in exported.stderr
    [entry] = [e for e in json.loads(history.stdout) if e["action"] == "personas list --unmask"]
    assert entry["parameter"] == "personas export (unmasked)" and entry["new"]["rows"] == 3
    assert ANA_PHONE not in history.stdout  # the audit says who exported how many, not what
