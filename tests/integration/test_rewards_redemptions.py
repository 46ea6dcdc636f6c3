"""Redemptions through the enroll consumer under moto: a mirrored discount on a sale costs its reward's points once,
in the sale's own ledger write, whatever the redelivery or order; a refund gives them back; an overdraw is flagged."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from functions.core import metrics
from functions.core.layout import Vendor
from functions.core.loyalty.catalogue import RewardCatalogue
from functions.core.loyalty.rewards import new_reward
from functions.core.models import AppliedDiscount, Sale
from tests.integration import test_personas_service as personas_tests
from tests.integration.test_enroll_service import POSABIT_SETTINGS
from tests.integration.test_loyalty_batches import emitted
from tests.integration.test_personas_service import PHONE, TENANT, World, sale, shopper, stream_record

aws_resources = personas_tests.aws_resources
world = personas_tests.world


def with_coupon(record: Sale, *names: str) -> Sale:
    return record.model_copy(update={"discounts": tuple(AppliedDiscount(name=n) for n in names)})


def setup(world: World, cost: int = 50) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.loyalty(points_per_dollar=1)
    RewardCatalogue(world.ddb, world.resources.control_table).add(
        new_reward(tenant=TENANT, name="10 Off", kind="flat", value="10", points_cost=cost, vendors=[Vendor.POSABIT])
    )
    world.shoppers(shopper("1", phone=PHONE))
    world.sales(sale("s0", "1", date(2026, 3, 1), 100_00))  # 100 points to spend


def entry(world: World, sale_id: str) -> Any:
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    return {e.source_id: e for e in world.store.ledger_entries(TENANT, persona.persona_id)}[sale_id]


def test_a_redemption_costs_its_points_once_under_redelivery_and_reordering(world: World) -> None:
    setup(world)
    first = with_coupon(sale("s1", "1", date(2026, 3, 2), 10_00), "10  off")  # case and spacing as the POS typed it
    later = with_coupon(sale("s1", "1", date(2026, 3, 2), 12_00, minutes=30), "10 Off")
    # Given the sale's newer version first, then redelivered, then its older version (reordered)
    assert world.sales(stream_record(later, 2)) == {"batchItemFailures": []}
    assert world.persona_of(Vendor.POSABIT, "c1", "1").points == 100 + 12 - 50
    world.sales(stream_record(later, 2))
    world.sales(stream_record(first, 1))
    world.cold_start()
    world.sales(stream_record(later, 2), stream_record(first, 1))
    # Then the reward cost 50 points exactly once, recorded on the sale's ledger entry beside its earnings
    assert world.persona_of(Vendor.POSABIT, "c1", "1").points == 100 + 12 - 50
    booked = entry(world, "s1")
    assert ([r.name for r in booked.redemptions], booked.points, booked.overdrawn) == (["10 Off"], 12 - 50, False)


def test_a_refund_gives_the_points_back_and_an_older_version_after_it_changes_nothing(world: World) -> None:
    setup(world)
    bought = with_coupon(sale("s1", "1", date(2026, 3, 2), 10_00), "10 Off")
    refunded = with_coupon(
        sale("s1", "1", date(2026, 3, 2), 10_00, status="refunded", refunded=10_00, minutes=60), "10 Off"
    )
    world.sales(stream_record(bought, 1))
    assert world.persona_of(Vendor.POSABIT, "c1", "1").points == 100 + 10 - 50
    world.sales(stream_record(refunded, 2))
    assert world.persona_of(Vendor.POSABIT, "c1", "1").points == 100
    world.sales(stream_record(bought, 1))  # the purchase redelivered after its refund
    assert world.persona_of(Vendor.POSABIT, "c1", "1").points == 100
    assert entry(world, "s1").redemptions == ()


def test_a_redemption_below_zero_is_booked_flagged_and_counted(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    setup(world, cost=500)
    capsys.readouterr()
    world.sales(stream_record(with_coupon(sale("s1", "1", date(2026, 3, 2), 10_00), "10 Off")))
    # Then the redemption stands (the POS gave the discount), the balance shows the debt, and it is flagged
    assert world.persona_of(Vendor.POSABIT, "c1", "1").points == 100 + 10 - 500
    assert entry(world, "s1").overdrawn is True
    out = capsys.readouterr().out
    assert emitted(out, metrics.REDEMPTIONS_OVERDRAWN) == [1.0]
    assert emitted(out, metrics.REWARDS_REDEEMED) == [1.0]


def test_a_discount_with_no_reward_redeems_nothing(world: World) -> None:
    setup(world)
    world.sales(stream_record(with_coupon(sale("s1", "1", date(2026, 3, 2), 10_00), "Staff 20%")))
    assert world.persona_of(Vendor.POSABIT, "c1", "1").points == 110
    assert entry(world, "s1").redemptions == ()
