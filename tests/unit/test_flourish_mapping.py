"""Flourish mapping on recorded pages: customers, retail orders (refunds, cancellations) and items."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.core.connector import MappingContext, MappingError
from functions.core.layout import Stream, Vendor
from functions.core.models import Product, Sale, Shopper
from functions.pull_flourish import mapping
from functions.pull_flourish.connector import FlourishConnector

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "flourish"
CTX = MappingContext(
    tenant="t1",
    vendor=Vendor.FLOURISH,
    credential_id="c1",
    timezone="America/Los_Angeles",
    extra={mapping.FACILITY_TIMEZONES: {"101": "America/Los_Angeles", "102": "America/Denver"}},
)


def page(name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / name).read_text())["data"]


def by_id(name: str) -> dict[str, dict[str, Any]]:
    return {str(item.get("id")): item for item in page(name)}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- customers ----------------------------------------------------------------------------------------------------


CUSTOMERS = by_id("customers_page.json")


def customer(pos_id: str) -> Shopper:
    record = mapping.map_record(Stream.CUSTOMERS, CUSTOMERS[pos_id], CTX)
    assert isinstance(record, Shopper)
    return record


def test_customer_maps_contact_fields_and_times() -> None:
    shopper = customer("10001")

    assert shopper.pos_id == "10001"
    assert (shopper.tenant, shopper.vendor, shopper.credential_id) == ("t1", Vendor.FLOURISH, "c1")
    assert (shopper.first_name, shopper.last_name) == ("Ava", "Nguyen")
    assert shopper.phone == "+12067841234"
    assert shopper.phone_raw == "(206) 784-1234"
    assert shopper.email == "ava.nguyen@example.com"
    assert shopper.birth_date == date(1988, 11, 2)
    assert (shopper.state, shopper.postal_code) == ("WA", "98402")
    assert shopper.customer_type == "recreational"
    assert shopper.source_updated_at == datetime(2026, 3, 10, 15, 4, 5, 123000, tzinfo=UTC)
    assert shopper.pos_created_at == utc(2025, 10, 1, 17, 4, 5)
    assert shopper.location_id is None  # customers are company-wide in Flourish


def test_naive_customer_times_are_read_in_the_store_zone_and_state_names_become_codes() -> None:
    shopper = customer("10002")

    assert shopper.source_updated_at == utc(2026, 3, 1, 17)  # 09:00 PST
    assert shopper.pos_created_at == utc(2025, 12, 24, 16)
    assert shopper.state == "WA"
    assert shopper.postal_code is None


def test_offset_times_placeholders_and_medical_patients() -> None:
    shopper = customer("10003")

    assert shopper.source_updated_at == utc(2026, 3, 2, 4, 30)
    assert shopper.phone is None and shopper.phone_raw == "1234567890"
    assert shopper.email == "test@test.com" and shopper.matchable_email is None
    assert shopper.state == "CO"
    assert shopper.customer_type == "medical"


def test_customer_without_update_time_uses_creation_and_blanks_are_none() -> None:
    shopper = customer("10005")

    assert shopper.pos_id == "10005"
    assert shopper.source_updated_at == utc(2026, 3, 4, 12)
    assert shopper.first_name == "Zoe"
    assert shopper.email is None and shopper.phone is None and shopper.phone_raw is None
    assert shopper.birth_date is None
    assert shopper.state is None  # not a US state


def test_extra_fields_are_ignored_and_address_may_be_one_object() -> None:
    shopper = customer("10006")

    assert shopper.birth_date == date(1985, 7, 4)
    assert shopper.postal_code == "80301"
    assert shopper.phone == "+13038614477"


@pytest.mark.parametrize(
    ("pos_id", "expected_id", "field"),
    [("10004", "10004", "dob"), ("None", None, "id"), ("10008", "10008", "last_updated_timestamp")],
)
def test_invalid_customers_raise_mapping_errors_that_name_fields_not_values(
    pos_id: str, expected_id: str | None, field: str
) -> None:
    with pytest.raises(MappingError) as caught:
        mapping.map_record(Stream.CUSTOMERS, CUSTOMERS[pos_id], CTX)

    assert caught.value.pos_id == expected_id
    assert field in caught.value.reason
    for value in ("1990-02-30", "last Tuesday", "ruby.brown@example.com"):
        assert value not in caught.value.reason


# --- retail orders ------------------------------------------------------------------------------------------------


ORDERS = by_id("retail_orders_page.json")


def sale(pos_id: str) -> Sale:
    record = mapping.map_record(Stream.SALES, ORDERS[pos_id], CTX)
    assert isinstance(record, Sale)
    return record


def test_completed_order_is_a_completed_sale_in_cents_with_its_local_date() -> None:
    result = sale("700001")

    assert result.status == "completed"
    assert result.ordered_at == datetime(2026, 3, 14, 2, 30, 0, 250000, tzinfo=UTC)
    assert result.local_date == date(2026, 3, 13)  # 19:30 PDT the evening before
    assert result.timezone == "America/Los_Angeles"
    assert result.location_id == "101" and result.customer_pos_id == "10001"
    assert (result.subtotal_cents, result.discount_cents, result.tax_cents) == (4499, 250, 935)
    assert result.total_cents == 5184
    assert result.refunded_cents == 0 and result.net_cents == 5184
    assert result.source_updated_at == utc(2026, 3, 14, 2, 30, 1)
    first, second = result.lines
    assert (first.product_id, first.sku, first.name, first.brand, first.category) == (
        "3001",
        "FLO-FLO-3001",
        "Blue Dream 3.5g",
        "Evergreen",
        "Flower",
    )
    assert (first.quantity, first.total_cents, first.discount_cents, first.is_refund) == (2.0, 2250, 250, False)
    assert (second.quantity, second.total_cents, second.discount_cents) == (1.0, 1999, 0)


def test_refunded_payment_status_makes_a_refunded_sale_in_its_facility_zone() -> None:
    result = sale("700002")

    assert result.status == "refunded"
    assert result.refunded_cents == 3010 == result.total_cents
    assert result.ordered_at == utc(2026, 3, 15, 16)  # naive 10:00 MDT
    assert (result.timezone, result.local_date, result.location_id) == ("America/Denver", date(2026, 3, 15), "102")
    assert result.source_updated_at == utc(2026, 3, 16, 17)


def test_partial_refund_by_refunded_quantity_adds_a_refund_line() -> None:
    result = sale("700003")

    assert result.status == "partially_refunded"
    assert result.ordered_at == datetime(2026, 3, 16, 15, 15, 0, 500000, tzinfo=UTC)
    assert result.total_cents == 3300 and result.refunded_cents == 1000
    sold, refund = result.lines
    assert (sold.quantity, sold.total_cents, sold.is_refund) == (3.0, 3000, False)
    assert (refund.quantity, refund.total_cents, refund.is_refund, refund.sku) == (-1.0, -1000, True, "FLO-PRE-3005")


def test_return_line_on_a_paid_order_is_a_partial_refund() -> None:
    result = sale("700007")  # order_status in capitals: statuses are matched case-insensitively

    assert result.status == "partially_refunded"
    assert result.refunded_cents == 1500 and result.total_cents == 3500
    assert [line.is_refund for line in result.lines] == [False, True]
    assert result.lines[1].total_cents == -1500


@pytest.mark.parametrize(
    ("pos_id", "status", "ordered_at"),
    [
        ("700004", "cancelled", utc(2026, 3, 16, 18)),
        ("700005", "cancelled", utc(2026, 3, 17, 18)),  # Undeliverable: nothing was sold
        ("700006", "pending", utc(2026, 3, 18, 18)),
    ],
)
def test_orders_that_did_not_complete_are_not_completed_sales(pos_id: str, status: str, ordered_at: datetime) -> None:
    result = sale(pos_id)

    assert result.status == status
    assert result.ordered_at == ordered_at
    assert result.refunded_cents == 0


@pytest.mark.parametrize(("pos_id", "field"), [("700008", "order_status"), ("700009", "total_price")])
def test_invalid_orders_raise_mapping_errors(pos_id: str, field: str) -> None:
    with pytest.raises(MappingError) as caught:
        mapping.map_record(Stream.SALES, ORDERS[pos_id], CTX)

    assert caught.value.pos_id == pos_id
    assert field in caught.value.reason
    assert "Teleported" not in caught.value.reason and "ten dollars" not in caught.value.reason


@given(cents=st.integers(min_value=-10_000_000, max_value=10_000_000), as_text=st.booleans())
def test_dollar_amounts_become_exact_cents(cents: int, as_text: bool) -> None:
    dollars = Decimal(cents) / 100
    order = dict(ORDERS["700004"], total_price=f"{dollars:.2f}" if as_text else float(dollars))

    assert mapping.map_retail_order(order, CTX).total_cents == cents


def test_a_credential_facility_gives_the_zone_when_an_order_names_none() -> None:
    order = {k: v for k, v in ORDERS["700002"].items() if k != "facility_id"}
    ctx = MappingContext(
        tenant="t1",
        vendor=Vendor.FLOURISH,
        credential_id="c1",
        timezone="America/Denver",
        extra={mapping.FACILITY_TIMEZONES: {"102": "America/Denver"}, mapping.FACILITY_ID: "102"},
    )

    result = mapping.map_retail_order(order, ctx)

    assert (result.location_id, result.timezone, result.ordered_at) == ("102", "America/Denver", utc(2026, 3, 15, 16))


# --- items --------------------------------------------------------------------------------------------------------


ITEMS = by_id("items_page.json")


def product(pos_id: str) -> Product:
    record = mapping.map_record(Stream.INVENTORY, ITEMS[pos_id], CTX)
    assert isinstance(record, Product)
    return record


def test_item_maps_to_a_product() -> None:
    result = product("3001")

    assert (result.pos_id, result.product_id, result.name) == ("3001", "3001", "Blue Dream 3.5g")
    assert result.sku == "FLO-FLO-3001"
    assert (result.brand, result.category, result.price_cents, result.active) == ("Evergreen", "Flower", 3500, True)
    assert result.quantity_on_hand is None
    assert result.source_updated_at == utc(2026, 3, 1, 10)


def test_item_prices_are_exact_and_blanks_and_offsets_are_handled() -> None:
    assert product("3002").price_cents == 1235  # "12.345" rounds half up, exactly
    assert product("3002").source_updated_at == utc(2026, 3, 2, 18)  # naive, PST
    retired = product("3003")
    assert (retired.active, retired.price_cents, retired.sku) == (False, None, None)
    assert retired.source_updated_at == utc(2026, 3, 3, 15)


def test_item_without_a_name_fails_validation() -> None:
    with pytest.raises(MappingError) as caught:
        mapping.map_record(Stream.INVENTORY, ITEMS["3004"], CTX)

    assert caught.value.pos_id == "3004" and "item_name" in caught.value.reason


# --- facilities, ids, dispatch ------------------------------------------------------------------------------------


def test_facility_zones_come_from_the_timezone_field_then_the_state() -> None:
    zones = {str(f["id"]): mapping.facility_timezone(f) for f in page("facilities_page.json")}

    assert zones == {"101": "America/Los_Angeles", "102": "America/Denver", "103": "America/Detroit", "104": "UTC"}


def test_item_ids_and_streams_without_a_mapping() -> None:
    assert mapping.item_id({"id": 42}) == "42"
    assert mapping.item_id({"id": ""}) is None
    assert mapping.item_id({"id": {"nested": 1}}) is None
    assert set(FlourishConnector.streams) == {Stream.CUSTOMERS, Stream.SALES, Stream.INVENTORY, Stream.DISCOUNTS}
    assert Stream.LOYALTY not in FlourishConnector.streams  # no loyalty points
    with pytest.raises(MappingError, match="no loyalty stream"):
        mapping.map_record(Stream.LOYALTY, {"id": 1}, CTX)


def test_every_recorded_record_maps_or_raises_a_mapping_error() -> None:
    outcomes: dict[Stream, tuple[int, int]] = {}
    for stream, name in (
        (Stream.CUSTOMERS, "customers_page.json"),
        (Stream.SALES, "retail_orders_page.json"),
        (Stream.INVENTORY, "items_page.json"),
    ):
        ok = failed = 0
        for raw in page(name):
            try:
                mapping.map_record(stream, raw, CTX)
                ok += 1
            except MappingError:
                failed += 1
        outcomes[stream] = (ok, failed)

    assert outcomes == {Stream.CUSTOMERS: (5, 3), Stream.SALES: (7, 2), Stream.INVENTORY: (3, 1)}
