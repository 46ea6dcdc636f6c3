"""The POS discounts a sale carries, as each vendor mapping reads them: each applied discount once."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from functions.core.connector import MappingContext, MappingError
from functions.core.layout import Stream, Vendor
from functions.core.models import AppliedDiscount, Discount, Sale, discount_type_of
from functions.pull_flourish import mapping as flourish
from functions.pull_onprem.auphan import mapping as auphan
from functions.pull_onprem.profitek import mapping as profitek
from functions.pull_posabit import mapping as posabit
from functions.pull_thsuite import mapping as thsuite
from simulators.base import APPLIED_DISCOUNTS, SIM_DISCOUNTS
from tests.unit import test_auphan_mapping as auphan_tests
from tests.unit import test_flourish_mapping as flourish_tests
from tests.unit import test_posabit_mapping as posabit_tests
from tests.unit import test_profitek_mapping as profitek_tests
from tests.unit import test_thsuite_mapping as thsuite_tests

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_posabit_coupons_of_the_discount_list_are_the_sale_discounts_each_once() -> None:
    item = copy.deepcopy(
        next(i for i in posabit_tests.page_items("sales_histories_page.json", Stream.SALES) if i["id"] == 5001)
    )
    # the same coupon on a second line, and a coupon given by name alone
    item["items"][1]["discount_list"] = [{"coupon_id": 47370, "coupon_name": "B - Student 5% Off"}, "Birthday $5"]
    sale = posabit.map_record(Stream.SALES, item, posabit_tests.CTX)
    assert isinstance(sale, Sale)
    assert sale.discounts == (
        AppliedDiscount(pos_discount_id="47370", name="B - Student 5% Off"),
        AppliedDiscount(name="Birthday $5"),
    )


def test_flourish_applied_discounts_are_taken_once_however_many_lines_list_them() -> None:
    order: dict[str, Any] = copy.deepcopy(flourish_tests.ORDERS["700001"])
    happy_hour = order["order_lines"][0]["applied_discounts"][0]
    order["order_lines"][1]["applied_discounts"] = [{**happy_hour, "discount_value": 2.0}]
    sale = flourish.map_record(Stream.SALES, order, flourish_tests.CTX)
    assert isinstance(sale, Sale)
    assert sale.discounts == (AppliedDiscount(pos_discount_id="14", name="Happy Hour"),)
    # and the discount money is still taken once (the double-count quirk handling is unchanged)
    assert sale.discount_cents == 450


def test_thsuite_line_discounts_are_the_sale_discounts() -> None:
    receipt = copy.deepcopy(json.loads((FIXTURES / "thsuite" / "receipts_page.json").read_text())["data"][0])
    receipt["lines"][0]["discounts"] = [{"discount_id": 77, "name": " Loyalty $5 "}]
    receipt["lines"][1]["discounts"] = [{"discount_id": 77, "name": "Loyalty $5"}]
    store = thsuite.ThsuiteStore.model_validate(thsuite_tests.load("store_iana_bare.json"))
    sale = thsuite.map_record(Stream.SALES, receipt, thsuite.mapping_context(store, tenant="t1", credential_id="c1"))
    assert isinstance(sale, Sale)
    assert sale.discounts == (AppliedDiscount(pos_discount_id="77", name="Loyalty $5"),)


# --- discount lists ----------------------------------------------------------------------------------------------

HAPPY_HOUR = {
    "id": 15,
    "discount_name": "Happy Hour 10%",
    "discount_type": "percentage",
    "amount": 10.0,
    "active": True,
    "start_date": "2026-01-01",
    "end_date": "2026-12-31",
    "start_time": "16:00:00",
    "end_time": "18:00:00",
    "last_updated_timestamp": "2026-01-01T00:00:00.000Z",
}


def flourish_discount(**changes: Any) -> Discount:
    ctx = MappingContext(tenant="t1", vendor=Vendor.FLOURISH, credential_id="c1", timezone="America/Los_Angeles")
    record = flourish.map_record(Stream.DISCOUNTS, {**HAPPY_HOUR, **changes}, ctx)
    assert isinstance(record, Discount)
    return record


def test_a_flourish_discount_keeps_its_daily_window_on_the_facility_wall_clock() -> None:
    d = flourish_discount()
    assert (d.pos_id, d.name, d.discount_type, d.value) == ("15", "Happy Hour 10%", "percent", "10.0")
    assert (d.daily_start, d.daily_end, d.timezone) == ("16:00", "18:00", "America/Los_Angeles")
    assert d.starts_at == datetime(2026, 1, 1, 8, tzinfo=UTC)  # midnight Pacific (PST)
    assert d.ends_at == datetime(2027, 1, 1, 8, tzinfo=UTC)  # the end date is included whole


@pytest.mark.parametrize(
    ("instant", "open_"),
    [
        # Saturday 7 March 2026, PST (UTC-8): 16:00-18:00 local is 00:00-02:00 UTC the next day
        (datetime(2026, 3, 8, 0, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 8, 1, 59, tzinfo=UTC), True),
        (datetime(2026, 3, 8, 2, 0, tzinfo=UTC), False),
        (datetime(2026, 3, 7, 23, 30, tzinfo=UTC), False),  # 15:30 PST
        # Sunday 8 March 2026, DST began at 02:00 (PDT, UTC-7): 16:00-18:00 local is 23:00-01:00 UTC
        (datetime(2026, 3, 8, 23, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 9, 0, 59, tzinfo=UTC), True),
        (datetime(2026, 3, 9, 1, 0, tzinfo=UTC), False),  # 18:00 PDT: closed, though 17:00 by the winter offset
        (datetime(2026, 3, 8, 22, 30, tzinfo=UTC), False),  # 15:30 PDT
        # Sunday 1 November 2026, DST ended at 02:00 (PST again): 16:00 local is 00:00 UTC on the 2nd
        (datetime(2026, 11, 1, 23, 30, tzinfo=UTC), False),  # 15:30 PST, though 16:30 by the summer offset
        (datetime(2026, 11, 2, 0, 0, tzinfo=UTC), True),
    ],
)
def test_a_daily_window_follows_the_local_clock_across_dst(instant: datetime, open_: bool) -> None:
    assert flourish_discount().available_at(instant) is open_


def test_a_window_past_midnight_an_inactive_discount_and_the_dates_bound_it() -> None:
    late = flourish_discount(start_time="22:00", end_time="02:00")
    assert late.available_at(datetime(2026, 3, 8, 9, 30, tzinfo=UTC))  # 01:30 PDT on the 8th, opened on the 7th
    assert not late.available_at(datetime(2026, 3, 8, 10, 30, tzinfo=UTC))  # 03:30 PDT
    assert not flourish_discount(active=False).available_at(datetime(2026, 3, 8, 0, 30, tzinfo=UTC))
    assert not flourish_discount().available_at(datetime(2025, 12, 31, 0, 30, tzinfo=UTC))  # before start_date
    with pytest.raises(MappingError, match="start_time"):
        flourish_discount(start_time="4pm")


def test_posabit_coupons_and_thsuite_discounts_are_discount_records() -> None:
    coupon = posabit.map_record(
        Stream.DISCOUNTS,
        {"coupon": {"id": 4714, "name": "Loyalty $5 Off", "discount_type": "dollar", "amount": 500, "active": True,
                    "updated_at": "2026-03-01T10:00:00.000Z"}},
        posabit_tests.CTX,
    )  # fmt: skip
    assert isinstance(coupon, Discount)
    assert (coupon.pos_id, coupon.name, coupon.discount_type, coupon.value, coupon.active) == (
        "4714",
        "Loyalty $5 Off",
        "flat",
        "5.00",
        True,
    )
    store = thsuite.ThsuiteStore.model_validate(thsuite_tests.load("store_iana_bare.json"))
    ctx = thsuite.mapping_context(store, tenant="t1", credential_id="c1")
    row = {"id": 7, "name": " Loyalty $5 Off ", "discount_type": "amount", "amount": "5.00", "active": False,
           "updated_at": "2026-03-01T10:00:00Z"}  # fmt: skip
    found = thsuite.map_record(Stream.DISCOUNTS, row, ctx)
    assert isinstance(found, Discount)
    assert (found.name, found.discount_type, found.active) == ("Loyalty $5 Off", "flat", False)


def test_onprem_discounts_and_their_line_discounts_as_the_simulators_serve_them() -> None:
    """Profitek and Auphan (ASSUMED contracts): a discount list, and discounted lines naming the discount applied."""
    from simulators.auphan import AuphanSimulator
    from simulators.profitek import ProfitekSimulator

    for simulator, ctx in (
        (ProfitekSimulator(customers_per_store=5, sales_per_store=40), profitek_tests.CTX),
        (AuphanSimulator(customers_per_store=5, sales_per_store=40), auphan_tests.CTX),
    ):
        module = profitek if isinstance(simulator, ProfitekSimulator) else auphan
        store = simulator.stores[0]
        listed = [
            module.map_record(Stream.DISCOUNTS, item, ctx) for item in _served(simulator, store, Stream.DISCOUNTS)
        ]
        assert sorted(d.name for d in listed if isinstance(d, Discount)) == sorted(d.name for d in SIM_DISCOUNTS)
        sales = [module.map_record(Stream.SALES, item, ctx) for item in _served(simulator, store, Stream.SALES)]
        applied = {d.name for s in sales if isinstance(s, Sale) for d in s.discounts}
        assert applied == {d.name for d in APPLIED_DISCOUNTS}, type(simulator).__name__


def _served(simulator: Any, store: str, stream: Stream) -> list[dict[str, Any]]:
    """Every record of a store's stream as the simulator's API renders it (no HTTP needed)."""
    held = simulator._stores[store]
    return [simulator._render(held, stream, row, None) for row in held.tables[stream].window(None, None)]


@pytest.mark.parametrize(
    ("word", "flat_word", "expected"),
    [
        (" Amount ", "amount", "flat"),
        ("PERCENT", "amount", "percent"),
        ("dollar", "amount", "other"),
        ("Dollar", "dollar", "flat"),
        ("amount", "dollar", "other"),
        (None, "amount", "other"),
        ("bogo", "amount", "other"),
    ],
)
def test_one_rule_names_the_discount_type_for_every_pos(word: str | None, flat_word: str, expected: str) -> None:
    assert discount_type_of(word, flat_word=flat_word) == expected
