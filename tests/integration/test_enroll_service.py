"""Enroll consumer under moto, driven by real-shaped stream events: exactly-once points, stickiness, fail-safe."""

from __future__ import annotations

import json
import random
from datetime import date
from typing import Any

import boto3
import pytest

from functions.core import layout
from functions.core.layout import Vendor
from functions.core.loyalty.codecs import persona_from_item
from functions.core.notify import UNMAPPED_STORE_DETAIL_TYPE
from tests.integration import test_personas_service as personas_tests
from tests.integration.test_personas_service import PHONE, TENANT, World, balance, sale, shopper, stream_record

# Also run against unpatched moto by `make test` (see tests/conftest.py).
pytestmark = pytest.mark.moto_store

# the same moto world as the personas consumer's tests
aws_resources = personas_tests.aws_resources
world = personas_tests.world

POSABIT_SETTINGS: dict[str, Any] = {
    "age_gate_attested": True,
    "enroll_after": "2026-03-01",
    "store_mappings": {"c1": "store-a", "loc-2": "store-b"},
}


def ledger(world: World, persona_id: str) -> dict[str, int]:
    entries = world.store.ledger_entries(TENANT, persona_id)
    return {e.sk.removeprefix("LEDGER#"): e.points for e in entries}


# --- enrollment and points -------------------------------------------------------------------------------------


def test_a_sale_on_or_after_enroll_after_enrolls_and_earns(world: World) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.loyalty(points_per_dollar=2)
    world.shoppers(shopper("1", phone=PHONE))
    world.sales(
        sale("s0", "1", date(2026, 2, 28), 5000),  # before the date: no enrollment, no points
        sale("s1", "1", date(2026, 3, 1), 1999),
    )
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert persona.member is True
    assert persona.member_how == "enroll_after:posabit"
    assert persona.member_since == "2026-03-01T19:30:00.000000+00:00"
    assert persona.points == 39  # floor(19.99 * 2)
    assert ledger(world, persona.persona_id) == {"posabit#c1#s0": 0, "posabit#c1#s1": 39}


def test_refunds_take_points_back_by_the_difference(world: World) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.loyalty(points_per_dollar=1)
    world.shoppers(shopper("1", phone=PHONE))
    world.sales(sale("s1", "1", date(2026, 3, 2), 10_050), sale("s2", "1", date(2026, 3, 3), 2_000))
    assert world.persona_of(Vendor.POSABIT, "c1", "1").points == 100 + 20
    # s1 partly refunded ($40.25 back), then fully refunded
    world.sales((sale("s1", "1", date(2026, 3, 2), 10_050, status="partially_refunded", refunded=4025, minutes=60), 2))
    assert world.persona_of(Vendor.POSABIT, "c1", "1").points == 60 + 20
    world.sales((sale("s1", "1", date(2026, 3, 2), 10_050, status="refunded", refunded=10_050, minutes=120), 3))
    # a return recorded as its own sale (negative total) takes back what it returns
    world.sales(sale("r9", "1", date(2026, 3, 4), -1_000, status="refunded"))
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert persona.points == 0 + 20 - 10
    assert persona.member is True  # a refund never ends a membership


def test_accrual_start_date_holds_points_back_until_it(world: World) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.loyalty(points_per_dollar=1, accrual_start_date="2026-03-05")
    world.shoppers(shopper("1", phone=PHONE))
    world.sales(sale("s1", "1", date(2026, 3, 2), 1_000), sale("s2", "1", date(2026, 3, 5), 2_000))
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert (persona.member, persona.points) == (True, 20)


def test_a_sale_before_its_shopper_is_applied_when_the_persona_appears(world: World) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    # Given a sale whose customer has no persona yet
    response = world.sales(sale("s1", "77", date(2026, 3, 3), 4_200, location="loc-2"))
    assert response == {"batchItemFailures": []}
    pending = [i for i in world.items() if i["pk"]["S"].startswith("PENDING#")]
    # the parked sale, and the customer's marker the personas consumer looks for
    assert sorted(i["sk"]["S"] for i in pending) == sorted([layout.pending_sk("s1"), layout.PENDING_MARKER_SK])
    assert world.profiles() == []
    # When the shopper arrives
    world.shoppers(shopper("77", email="late@example.com"))
    # Then the sale is applied: enrolled, points, visit, favourite store; nothing stays parked
    persona = world.persona_of(Vendor.POSABIT, "c1", "77")
    assert (persona.member, persona.points, persona.favourite_store) == (True, 42, "store-b")
    assert not [i for i in world.items() if i["pk"]["S"].startswith("PENDING#")]


def test_a_refund_parked_first_does_not_hide_that_the_sale_was_a_purchase(world: World) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    # the refund (version 2) reaches the consumer before the purchase (version 1), both before the shopper
    world.sales((sale("s1", "5", date(2026, 3, 2), 1_000, status="refunded", refunded=1_000, minutes=60), 2))
    world.sales((sale("s1", "5", date(2026, 3, 2), 1_000), 1))
    world.shoppers(shopper("5", phone=PHONE))
    persona = world.persona_of(Vendor.POSABIT, "c1", "5")
    # a member since the purchase (sticky, as when the versions arrive in order), with no points for it
    assert (persona.member, persona.member_since, persona.points) == (True, "2026-03-02T19:30:00.000000+00:00", 0)


def test_removing_the_enroll_date_keeps_members(world: World) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.shoppers(shopper("1", phone=PHONE), shopper("2", email="two@example.com"))
    world.sales(sale("s1", "1", date(2026, 3, 2), 1_000))
    before = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert before.member is True
    # When the admin removes enroll_after (and even the whole parameter)
    world.settings(Vendor.POSABIT, {"age_gate_attested": True, "store_mappings": POSABIT_SETTINGS["store_mappings"]})
    world.sales(sale("s2", "1", date(2026, 3, 9), 500), sale("s3", "2", date(2026, 3, 9), 500))
    world.remove_settings(Vendor.POSABIT)
    world.sales((sale("s1", "1", date(2026, 3, 2), 1_000, minutes=5), 2))
    # Then the member stays a member since the same sale and keeps earning; nobody new is enrolled
    after = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert (after.member, after.member_since, after.member_how) == (True, before.member_since, before.member_how)
    assert after.points == 10 + 5
    assert world.persona_of(Vendor.POSABIT, "c1", "2").member is False


def test_invalid_settings_fail_safe_and_say_which_parameter(
    world: World, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    world.shoppers(shopper("1", phone=PHONE))
    # enroll_after without the age gate attested: the settings model refuses it
    world.settings(Vendor.POSABIT, '{"vendor": "posabit", "enroll_after": "2026-03-01"}')
    response = world.sales(sale("s1", "1", date(2026, 3, 2), 1_000))
    # the record is not failed (no retry storm) but parked, nothing is enrolled or booked, an operator is told
    assert response == {"batchItemFailures": []}
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert (persona.member, persona.points) == (False, 0)
    assert ledger(world, persona.persona_id) == {}
    out = capsys.readouterr().out
    metric_lines = [json.loads(line) for line in out.splitlines() if '"SettingsInvalid"' in line and "_aws" in line]
    assert len(metric_lines) == 1
    parameter = world.names.integration_settings_parameter(TENANT, Vendor.POSABIT)
    [logged] = [r for r in caplog.records if "fail safe" in r.getMessage()]
    assert parameter in logged.error and "age_gate_attested" in logged.error  # type: ignore[attr-defined]
    # once fixed, the next sale's batch first applies the parked one: nothing was skipped
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.cold_start()
    world.sales(sale("s2", "1", date(2026, 3, 3), 1_000))
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert (persona.member, persona.member_since_date) == (True, "2026-03-02")
    assert ledger(world, persona.persona_id) == {"posabit#c1#s1": 10, "posabit#c1#s2": 10}


def test_posabit_points_are_imported_once_as_of_the_date(world: World) -> None:
    world.settings(Vendor.POSABIT, {**POSABIT_SETTINGS, "loyalty_points_imported_on": "2026-02-28"})
    world.loyalty(points_per_dollar=1, accrual_start_date="2026-03-01")
    world.shoppers(shopper("1", phone=PHONE))
    world.sales((balance("b1", "1", 150, date(2026, 2, 20)), 1))
    world.sales((balance("b1", "1", 175, date(2026, 2, 27)), 2), (balance("b1", "1", 175, date(2026, 2, 27)), 2))
    world.sales((balance("b1", "1", 900, date(2026, 3, 1)), 3))  # after the date: ours now, ignored
    world.sales((balance("b1", "1", 150, date(2026, 2, 20)), 1))  # an old change replayed
    world.sales(sale("s1", "1", date(2026, 3, 2), 1_000))
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert persona.points == 175 + 10
    assert ledger(world, persona.persona_id)["import#posabit#c1#b1"] == 175


def test_an_unknown_tenant_time_zone_fails_safe_naming_the_parameter(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.settings(Vendor.POSABIT, {**POSABIT_SETTINGS, "loyalty_points_imported_on": "2026-02-28"})
    world.loyalty(timezone="Mars/Olympus_Mons")
    world.shoppers(shopper("1", phone=PHONE))
    assert world.sales(balance("b1", "1", 150, date(2026, 2, 20))) == {"batchItemFailures": []}
    assert world.persona_of(Vendor.POSABIT, "c1", "1").points == 0
    [logged] = [r for r in caplog.records if "fail safe" in r.getMessage()]
    assert world.names.tenant_settings_parameter(TENANT) in logged.error  # type: ignore[attr-defined]


# --- favourite store and unmapped stores ----------------------------------------------------------------------


def test_favourite_store_is_the_most_visited_mapped_store_ties_to_the_most_recent(world: World) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.shoppers(shopper("1", phone=PHONE))
    world.sales(sale("s1", "1", date(2026, 3, 1), 100, location="loc-2"), sale("s2", "1", date(2026, 3, 2), 100))
    assert world.persona_of(Vendor.POSABIT, "c1", "1").favourite_store == "store-a"  # a tie: the latest visit
    world.sales(sale("s3", "1", date(2026, 3, 3), 100, location="loc-2"))
    world.sales(sale("s3", "1", date(2026, 3, 3), 100, location="loc-2"))  # redelivered: one visit still
    world.sales(sale("s4", "1", date(2026, 3, 4), 100, status="cancelled"))  # not a visit
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert persona.favourite_store == "store-b"
    visits = {v.store_id: v.count for v in persona.visits.values()}
    assert visits == {"store-a": 1, "store-b": 2}


def test_an_unmapped_store_raises_one_notice_event_and_metric(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    # an EventBridge rule on the default bus, as an operator would subscribe to the notices
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName=f"unmapped-{world.personas_table}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"unmapped-{world.personas_table}"
    events.put_rule(Name=rule, EventPattern=json.dumps({"detail-type": [UNMAPPED_STORE_DETAIL_TYPE]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.shoppers(shopper("1", cred="c9", phone=PHONE))
    # Given many sales from a credential nobody mapped, over several invocations (fresh Lambda instances too)
    world.sales(*(sale(f"s{n}", "1", date(2026, 3, 2), 100, cred="c9", location="L7") for n in range(3)))
    world.cold_start()  # new Lambda instances: no in-memory memory of the notice
    world.sales(sale("s9", "1", date(2026, 3, 2), 100, cred="c9", location="L7"))
    world.sales(sale("m1", "1", date(2026, 3, 2), 100, cred="c1"))  # a mapped one raises nothing
    # Then one notice, one event, one metric; and the persona's favourite store comes only from the mapped store
    [notice] = world.unmapped.list_unmapped(TENANT)
    assert (notice.vendor, notice.credential_id, notice.location_id, notice.notified) == (
        Vendor.POSABIT,
        "c9",
        "L7",
        True,
    )
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == 1
    detail = json.loads(messages[0]["Body"])["detail"]
    assert (detail["tenant"], detail["credential_id"], detail["location_id"]) == (TENANT, "c9", "L7")
    emitted = [line for line in capsys.readouterr().out.splitlines() if '"UnmappedStores"' in line]
    assert len(emitted) == 1
    assert world.persona_of(Vendor.POSABIT, "c9", "1").favourite_store is None
    # mapping the store deletes its notice (what `possync stores map` does)
    assert world.unmapped.clear(TENANT, Vendor.POSABIT, "c9", "L7") is True
    assert world.unmapped.list_unmapped(TENANT) == []


# --- redelivery and reordering ---------------------------------------------------------------------------------


def scenario() -> list[dict[str, Any]]:
    """Two people across POSaBIT and THSuite, with refunds, a cancelled sale, a balance, and record updates."""
    d = date
    return [
        stream_record(shopper("a1", phone=PHONE, first_name="Ava"), 1),
        stream_record(shopper("a1", minutes=10, phone=PHONE, first_name="Ava", email="ava@example.com"), 2),
        stream_record(shopper("t9", vendor=Vendor.THSUITE, cred="th1", phone=PHONE, last_name="Kim"), 1),
        stream_record(shopper("b1", email="bo@example.com", first_name="Bo"), 1),
        stream_record(sale("s1", "a1", d(2026, 2, 20), 1_000), 1),
        stream_record(sale("s2", "a1", d(2026, 3, 2), 2_599, location="loc-2"), 1),
        stream_record(
            sale(
                "s2",
                "a1",
                d(2026, 3, 2),
                2_599,
                location="loc-2",
                status="partially_refunded",
                refunded=1_000,
                minutes=30,
            ),
            2,
        ),
        stream_record(sale("s3", "t9", d(2026, 3, 5), 5_000, vendor=Vendor.THSUITE, cred="th1"), 1),
        stream_record(sale("s4", "b1", d(2026, 3, 3), 999, status="cancelled"), 1),
        stream_record(sale("s5", "b1", d(2026, 3, 4), 1_500, location="loc-2"), 1),
        stream_record(sale("s6", "a1", d(2026, 3, 6), 700), 1),
        stream_record(balance("bal-a1", "a1", 40, d(2026, 2, 27)), 1),
    ]


def final_state(world: World) -> dict[Any, Any]:
    """Everything the rules decided, keyed so two runs compare (persona ids are random; write counts differ)."""
    items = world.items()
    label = {}
    for item in items:
        if item["sk"]["S"] == layout.PERSONA_PROFILE_SK:
            p = persona_from_item(item)
            label[p.persona_id] = min(p.source_records)
    state: dict[Any, Any] = {}
    for item in items:
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        if sk == layout.PERSONA_PROFILE_SK:
            p = persona_from_item(item)
            state[("profile", label[p.persona_id])] = (
                p.first_name,
                p.last_name,
                p.email,
                p.phone,
                sorted(p.sources),
                sorted(p.source_records),
                p.favourite_store,
                p.member,
                p.member_since,
                p.member_how,
                p.points,
            )
        elif sk == layout.IDENTITY_SK:
            state[("claim", pk)] = label[item["persona_id"]["S"]]
        elif pk.startswith("P#"):
            owner = label[pk.split("#", 2)[2]]
            kept = {k: v for k, v in item.items() if k not in ("pk", "applied_at")}
            state[(owner, sk)] = json.dumps(kept, sort_keys=True)
        else:
            state[(pk, sk)] = "unexpected"
    return state


def test_redelivered_and_reordered_batches_give_the_same_final_state(world: World) -> None:
    world.settings(
        Vendor.POSABIT,
        {
            **POSABIT_SETTINGS,
            "sync_personas": True,
            "sync_personas_enabled_on": "2026-01-01",
            "loyalty_points_imported_on": "2026-02-28",
        },
    )
    world.settings(Vendor.THSUITE, {"store_mappings": {"th1": "store-c"}})
    world.loyalty(points_per_dollar=2)
    records = scenario()
    # Given the records delivered once, in order
    world.deliver(records)
    in_order = final_state(world)
    # When the same records go to fresh personas tables in reverse (every sale before its shopper, refunds before
    # purchases, newer versions before older) and shuffled with a third of them delivered twice
    rng = random.Random(7)
    redelivered = records + rng.sample(records, len(records) // 3)
    rng.shuffle(redelivered)
    for n, order in enumerate((records[::-1], redelivered)):
        world.use_personas_table(f"{world.personas_table}-{n}")
        world.deliver(order)
        # Then the final state is the same
        assert final_state(world) == in_order
    # and it is the right one
    ava = in_order[("profile", "posabit#c1#a1")]
    assert ava[:4] == ("Ava", "Kim", "ava@example.com", PHONE)
    assert ava[4:7] == (["posabit", "thsuite"], ["posabit#c1#a1", "thsuite#th1#t9"], "store-a")
    assert ava[7:10] == (True, "2026-03-02T19:30:00.000000+00:00", "enroll_after:posabit")
    assert ava[10] == 31 + 100 + 14 + 40  # s2 after its refund, s3 (THSuite, once a member), s6, the import
    bo = in_order[("profile", "posabit#c1#b1")]
    assert (bo[6], bo[7], bo[10]) == ("store-b", True, 30)
