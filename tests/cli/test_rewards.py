"""`possync rewards` against moto: the catalogue with its validation, the mirror check per store with its notices,
flagged redemptions, and redemptions in `possync personas show`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest

from functions.core import layout, metrics
from functions.core.layout import Vendor
from functions.core.loyalty.rewards import Redemption
from functions.core.loyalty.values import LedgerEntry
from functions.core.models import Discount
from functions.core.store import ControlStore, RecordStore, RegisteredCredential
from possync.target import Target
from tests.cli.conftest import Invoke, PersonaSeeder

AT = datetime(2026, 3, 1, 10, tzinfo=UTC)


def add(cli: Invoke, *args: str) -> str:
    result = cli("rewards", "add", *args)
    assert result.exit_code == 0, result.output
    return result.output


def test_add_list_show_remove(cli: Invoke) -> None:
    out = add(
        cli, "Loyalty $5 Off", "--tenant", "t1", "--flat", "5", "--points", "50", "-v", "posabit", "-v", "thsuite"
    )
    assert "Mirror it in posabit, thsuite as a discount named exactly 'Loyalty $5 Off'" in out
    add(cli, "VIP 10%", "--tenant", "t1", "--percent", "10", "--points", "80", "-v", "flourish",
        "--flourish-discount-id", "15")  # fmt: skip
    listed = json.loads(cli("rewards", "list", "--tenant", "t1", "--output", "json").output)
    assert [(r["name"], r["value"], r["points_cost"], r["vendors"], r["flourish_discount_id"]) for r in listed] == [
        ("Loyalty $5 Off", "$5.00", 50, "posabit, thsuite", None),
        ("VIP 10%", "10%", 80, "flourish", "15"),
    ]
    assert cli("rewards", "list", "--tenant", "t2").output.strip() == "tenant t2 has no rewards yet"
    shown = cli("rewards", "show", "loyalty $5  OFF", "--tenant", "t1")  # found however it is spelled
    assert shown.exit_code == 0 and "Loyalty $5 Off" in shown.output
    removed = cli("rewards", "remove", "Loyalty $5 Off", "--tenant", "t1")
    assert removed.exit_code == 0 and "redemptions already booked keep their points" in removed.output
    assert [r["name"] for r in json.loads(cli("rewards", "list", "-t", "t1", "--output", "json").output)] == ["VIP 10%"]
    gone = cli("rewards", "remove", "Loyalty $5 Off", "--tenant", "t1")
    assert gone.exit_code == 1 and "has no reward named like" in gone.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["Half", "--percent", "150", "--points", "5", "-v", "posabit"], "at most 100%"),
        (["Half", "--flat", "5", "--points", "-5", "-v", "posabit"], "cannot be negative"),
        (["Half", "--flat", "5", "--points", "5", "-v", "flourish"], "create the discount in Flourish first"),
        (["Half", "--flat", "5", "--percent", "5", "--points", "5", "-v", "posabit"], "exactly one of --flat"),
        (["Half", "--flat", "5", "--points", "5", "-v", "square"], "unknown vendor 'square'"),
        (["  loyalty $5   off", "--flat", "5", "--points", "5", "-v", "posabit"], "only by case or spacing"),
    ],
)
def test_invalid_rewards_are_refused_and_nothing_is_stored(cli: Invoke, args: list[str], says: str) -> None:
    add(cli, "Loyalty $5 Off", "--tenant", "t1", "--flat", "5", "--points", "50", "-v", "posabit")
    result = cli("rewards", "add", "--tenant", "t1", *args)
    assert result.exit_code == 1
    assert says in " ".join(result.output.split())
    assert len(json.loads(cli("rewards", "list", "--tenant", "t1", "--output", "json").output)) == 1


def test_an_unknown_tenant_is_refused(cli: Invoke) -> None:
    result = cli("rewards", "list", "--tenant", "t3")
    assert result.exit_code == 1 and "tenant 't3' does not exist" in result.output


def discount(vendor: Vendor, cred: str, pos_id: str, name: str, active: bool = True) -> Discount:
    return Discount(tenant="t1", vendor=vendor, credential_id=cred, pos_id=pos_id, source_updated_at=AT, name=name,
                    active=active)  # fmt: skip


def test_check_lists_each_stores_mirror_problems_and_raises_one_notice_per_store(
    cli: Invoke, target: Target, control: ControlStore
) -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    for vendor, cred in ((Vendor.POSABIT, "p1"), (Vendor.POSABIT, "p2"), (Vendor.FLOURISH, "f1")):
        control.register_credential(RegisteredCredential("t1", vendor, cred, True, f"possync/t1/{vendor.value}/{cred}"))
    add(cli, "Loyalty $5 Off", "-t", "t1", "--flat", "5", "--points", "50", "-v", "posabit")
    add(cli, "Loyalty 10% Off", "-t", "t1", "--percent", "10", "--points", "80", "-v", "posabit")
    add(
        cli,
        "Flourish Deal",
        "-t",
        "t1",
        "--flat",
        "3",
        "--points",
        "30",
        "-v",
        "flourish",
        "--flourish-discount-id",
        "99",
    )
    RecordStore(ddb, target.records_table).upsert_changed(
        [
            discount(Vendor.POSABIT, "p1", "1", "Loyalty $5 Off"),
            discount(Vendor.POSABIT, "p1", "2", "loyalty 10%  OFF"),
            discount(Vendor.POSABIT, "p1", "3", "Staff 20%"),
            discount(Vendor.POSABIT, "p2", "1", "Loyalty $5 Off"),
            discount(Vendor.FLOURISH, "f1", "14", "Happy Hour"),
        ],
        "raw/test",
    )
    result = cli("rewards", "check", "--tenant", "t1", "--output", "json")
    assert result.exit_code == 0, result.output
    found = {
        (r["vendor"], r["credential"], r["problem"], r["reward"] or r["pos_discount"])
        for r in json.loads(result.output)
    }
    assert found == {
        ("posabit", "p1", "name differs (case/spacing)", "Loyalty 10% Off"),
        ("posabit", "p1", "POS discount, no reward", "Staff 20%"),
        ("posabit", "p2", "missing in the POS", "Loyalty 10% Off"),
        ("flourish", "f1", "Flourish id does not exist", "Flourish Deal"),
        ("flourish", "f1", "POS discount, no reward", "Happy Hour (14)"),
    }
    # one notice per store and unmirrored reward: p2's missing reward and f1's unknown id, raised once, counted once
    notices = ddb.query(
        TableName=target.control_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": layout.control_unmirrored_pk("t1")}},
    )["Items"]
    assert sorted(i["sk"]["S"] for i in notices) == ["flourish#f1#flourishdeal", "posabit#p2#loyalty10%off"]
    again = cli("rewards", "check", "--tenant", "t1")
    assert again.exit_code == 0 and "Raised" not in again.output
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    data = cloudwatch.get_metric_statistics(
        Namespace=target.names.metrics_namespace,
        MetricName=metrics.REWARDS_UNMIRRORED,
        StartTime=datetime(2020, 1, 1, tzinfo=UTC),
        EndTime=datetime(2100, 1, 1, tzinfo=UTC),
        Period=86400 * 365 * 10,
        Statistics=["Sum"],
    )["Datapoints"]
    assert [d["Sum"] for d in data] == [2.0]
    # once p2 lists the discount, its notice is cleared
    RecordStore(ddb, target.records_table).upsert_changed(
        [discount(Vendor.POSABIT, "p2", "2", "Loyalty 10% Off")], "raw/t"
    )
    cli("rewards", "check", "--tenant", "t1")
    notices = ddb.query(
        TableName=target.control_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": layout.control_unmirrored_pk("t1")}},
    )["Items"]
    assert [i["sk"]["S"] for i in notices] == ["flourish#f1#flourishdeal"]


def overdrawn_entry() -> LedgerEntry:
    return LedgerEntry(
        sk=layout.ledger_sk(Vendor.POSABIT, "p1", "s-9"),
        kind="sale",
        vendor="posabit",
        credential_id="p1",
        source_id="s-9",
        record_version=1,
        source_updated_at="2026-05-04T12:00:00.000000+00:00",
        points=10 - 500,
        net_cents=1_000,
        local_date="2026-05-04",
        status="completed",
        at="2026-05-04T12:00:00.000000+00:00",
        redemptions=(Redemption("bigone", "Big One", "bigone", 500),),
        overdrawn=True,
    )


def test_check_lists_redemptions_that_overdrew_and_personas_show_lists_redemptions(
    cli: Invoke, personas: PersonaSeeder
) -> None:
    personas.persona("t1", "a1", first_name="Ana", points=-490)
    personas.ledger("t1", "a1", overdrawn_entry())
    rows = json.loads(cli("rewards", "check", "--tenant", "t1", "--output", "json").output)
    assert [(r["kind"], r["persona"], r["reward"], r["points"], r["sale"]) for r in rows] == [
        ("overdrawn", "a1", "Big One", 500, "s-9")
    ]
    shown = json.loads(cli("personas", "show", "a1", "--tenant", "t1", "--output", "json").output)
    assert [(r["reward"], r["points"], r["sale"], r["overdrawn"]) for r in shown["redemptions"]] == [
        ("Big One", 500, "s-9", True)
    ]
    table = cli("personas", "show", "a1", "--tenant", "t1").output
    assert "Redemptions" in table and "Big One" in table and "yes (flagged)" in table
