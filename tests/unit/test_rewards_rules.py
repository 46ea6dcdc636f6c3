"""Reward rules: catalogue validation, the name key, which rewards a sale redeems, and the mirror check."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from functions.core.layout import Vendor
from functions.core.loyalty.rewards import (
    Catalogue,
    PosDiscount,
    Redemption,
    Reward,
    RewardError,
    check_mirrors,
    clash,
    name_key,
    new_reward,
    redemptions_of,
)
from functions.core.models import AppliedDiscount, Sale


def reward(
    name: str = "10 Off", *, cost: int = 50, vendors: tuple[Vendor, ...] = (Vendor.POSABIT,), **kw: object
) -> Reward:
    return new_reward(tenant="t1", name=name, kind="flat", value="10", points_cost=cost, vendors=vendors, **kw)  # type: ignore[arg-type]


def sale(vendor: Vendor, *discounts: AppliedDiscount, status: str = "completed") -> Sale:
    at = datetime(2026, 3, 2, 19, 30, tzinfo=UTC)
    return Sale(
        tenant="t1",
        vendor=vendor,
        credential_id="c1",
        pos_id="s1",
        source_updated_at=at,
        customer_pos_id="1",
        ordered_at=at,
        local_date=date(2026, 3, 2),
        timezone="America/Los_Angeles",
        status=status,  # type: ignore[arg-type]
        subtotal_cents=1_000,
        total_cents=1_000,
        discounts=discounts,
    )


def test_names_differing_only_by_case_or_spacing_share_one_key() -> None:
    assert name_key("10% Off") == name_key(" 10 %  off ") == name_key("10%OFF")
    assert name_key("10% Off") != name_key("15% Off")


@pytest.mark.parametrize(
    ("kind", "value", "cost", "vendors", "flourish_id", "says"),
    [
        ("percent", "101", 10, (Vendor.POSABIT,), None, "at most 100%"),
        ("flat", "5", -1, (Vendor.POSABIT,), None, "cannot be negative"),
        ("flat", "0", 1, (Vendor.POSABIT,), None, "more than 0"),
        ("flat", "5.005", 1, (Vendor.POSABIT,), None, "two decimals"),
        ("dollars", "5", 1, (Vendor.POSABIT,), None, "flat ($) or percent (%)"),
        ("flat", "5", 1, (Vendor.FLOURISH,), None, "--flourish-discount-id"),
        ("flat", "5", 1, (Vendor.POSABIT,), "d-1", "only for a reward that applies to flourish"),
        ("flat", "5", 1, (), None, "name the integrations"),
    ],
)
def test_invalid_rewards_are_refused_saying_what_to_do(
    kind: str, value: str, cost: int, vendors: tuple[Vendor, ...], flourish_id: str | None, says: str
) -> None:
    with pytest.raises(RewardError, match=said(says)):
        new_reward(
            tenant="t1",
            name="Deal",
            kind=kind,
            value=value,
            points_cost=cost,
            vendors=vendors,
            flourish_discount_id=flourish_id,
        )


def said(text: str) -> str:
    import re

    return re.escape(text)


def test_a_valid_reward_keeps_its_value_and_tidies_its_name() -> None:
    r = new_reward(
        tenant="t1", name="  Half   Off ", kind="percent", value="50%", points_cost=0, vendors=[Vendor.THSUITE]
    )
    assert (r.name, r.value, r.points_cost, r.value_text()) == ("Half Off", Decimal("50"), 0, "50%")


def test_a_name_clash_by_case_or_spacing_is_refused_and_an_exact_one_too() -> None:
    existing = [reward("10 Off")]
    assert "only by case or spacing" in str(clash(reward("10  OFF"), existing))
    assert "exists already" in str(clash(reward("10 Off"), existing))
    assert clash(reward("15 Off"), existing) is None
    flourish = [reward("A", vendors=(Vendor.FLOURISH,), flourish_discount_id="d-1")]
    assert "linked to reward 'A'" in str(
        clash(reward("B", vendors=(Vendor.FLOURISH,), flourish_discount_id="d-1"), flourish)
    )


def test_a_sale_redeems_each_mirrored_discount_once_by_name_or_by_flourish_id() -> None:
    catalogue = Catalogue(
        [reward("10 Off"), reward("Vip", cost=20, vendors=(Vendor.FLOURISH,), flourish_discount_id="d-9")]
    )
    # POSaBIT: by name, case and spacing ignored; the same coupon on two lines is one redemption
    posabit = sale(
        Vendor.POSABIT, AppliedDiscount(name="10 OFF"), AppliedDiscount(name="10off"), AppliedDiscount(name="x")
    )
    assert redemptions_of(posabit, catalogue) == (Redemption("10off", "10 Off", "10off", 50),)
    # Flourish: by the POS discount id; a name alone links nothing there
    flourish = sale(
        Vendor.FLOURISH, AppliedDiscount(pos_discount_id="d-9", name="whatever"), AppliedDiscount(name="10 Off")
    )
    assert redemptions_of(flourish, catalogue) == (Redemption("vip", "Vip", "d-9", 20),)
    # a reward not for this POS is not redeemed there
    assert redemptions_of(sale(Vendor.THSUITE, AppliedDiscount(name="10 Off")), catalogue) == ()


def test_a_refunded_or_cancelled_sale_redeems_nothing_and_a_booked_one_keeps_its_cost() -> None:
    catalogue = Catalogue([reward("10 Off", cost=50)])
    assert redemptions_of(sale(Vendor.POSABIT, AppliedDiscount(name="10 Off"), status="refunded"), catalogue) == ()
    assert redemptions_of(sale(Vendor.POSABIT, AppliedDiscount(name="10 Off"), status="cancelled"), catalogue) == ()
    booked = (Redemption("10off", "10 Off", "10off", 40),)  # booked when the reward cost 40; since removed
    assert redemptions_of(sale(Vendor.POSABIT, AppliedDiscount(name="10 Off")), Catalogue(), booked) == booked


# --- the mirror check, one case per matching rule ------------------------------------------------------------


def problems(findings: list[object]) -> list[tuple[str, str | None, str | None]]:
    return [(f.problem, f.reward, f.pos_discount) for f in findings]  # type: ignore[attr-defined]


def test_name_linked_mirror_cases() -> None:
    rewards = [reward("10 Off"), reward("Half Off"), reward("Birthday"), reward("Gone")]
    discounts = [
        PosDiscount(Vendor.POSABIT, "c1", "1", "10 Off"),  # mirrored exactly
        PosDiscount(Vendor.POSABIT, "c1", "2", "half  OFF"),  # only case and spacing differ
        PosDiscount(Vendor.POSABIT, "c1", "3", "Birthday", active=False),  # mirrored but inactive
        PosDiscount(Vendor.POSABIT, "c1", "4", "Staff 20%"),  # no reward here
    ]
    found = check_mirrors(rewards, Vendor.POSABIT, "c1", discounts)
    assert problems(found) == [
        ("name_differs", "Half Off", "half  OFF"),
        ("inactive", "Birthday", "Birthday"),
        ("missing", "Gone", None),
        ("no_reward", None, "Staff 20%"),
    ]
    assert [f.reward for f in found if f.unmirrored] == ["Birthday", "Gone"]


def test_flourish_mirror_cases_by_discount_id() -> None:
    rewards = [
        reward("A", vendors=(Vendor.FLOURISH,), flourish_discount_id="d-1"),
        reward("B", vendors=(Vendor.FLOURISH,), flourish_discount_id="d-2"),
        reward("C", vendors=(Vendor.FLOURISH,), flourish_discount_id="d-404"),
        reward("Posabit only"),
    ]
    discounts = [
        PosDiscount(Vendor.FLOURISH, "c1", "d-1", "a different name is fine"),
        PosDiscount(Vendor.FLOURISH, "c1", "d-2", "B", active=False),
        PosDiscount(Vendor.FLOURISH, "c1", "d-3", "Unlinked"),
    ]
    assert problems(check_mirrors(rewards, Vendor.FLOURISH, "c1", discounts)) == [
        ("inactive", "B", "B (d-2)"),
        ("unknown_id", "C", "d-404"),
        ("no_reward", None, "Unlinked (d-3)"),
    ]


def test_a_reward_redeems_no_sale_ordered_before_it_was_created() -> None:
    # the sale was ordered 2026-03-02 19:30 UTC
    before = Catalogue([reward("10 Off", created_at="2026-03-02T19:30:01+00:00")])
    after = Catalogue([reward("10 Off", created_at="2026-03-02T19:30:00+00:00")])
    coupon = sale(Vendor.POSABIT, AppliedDiscount(name="10 Off"))
    assert redemptions_of(coupon, before) == ()
    assert [r.name for r in redemptions_of(coupon, after)] == ["10 Off"]
