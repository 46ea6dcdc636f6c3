"""POSaBIT mapping on recorded pages: wrapped and bare items, extra fields, naive and offset times, refunds."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from functions.core.connector import MappingContext, MappingError
from functions.core.layout import Stream, Vendor
from functions.core.models import LoyaltyBalance, Product, Sale, Shopper
from functions.pull_posabit.client import parse_envelope
from functions.pull_posabit.mapping import item_id, map_record, sale_status, unwrap_item

FIXTURES = Path(__file__).parents[1] / "fixtures" / "posabit"
CTX = MappingContext(
    tenant="tenant-a",
    vendor=Vendor.POSABIT,
    credential_id="cred-1",
    timezone="America/Los_Angeles",
    default_region="US",
    extra={"venue_id": "3221"},
)


def page_items(name: str, stream: Stream) -> list[dict[str, Any]]:
    envelope = parse_envelope(stream, json.loads((FIXTURES / name).read_text()))
    return [unwrap_item(stream, item) for item in envelope.items]


def map_page(stream: Stream, name: str) -> tuple[dict[str, Any], dict[str | None, MappingError]]:
    """Records by POS id, and the failures by POS id: what the engine stores and what it quarantines."""
    records: dict[str, Any] = {}
    failures: dict[str | None, MappingError] = {}
    for item in page_items(name, stream):
        try:
            record = map_record(stream, item, CTX)
        except MappingError as exc:
            failures[exc.pos_id] = exc
        else:
            records[record.pos_id] = record
    return records, failures


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# --- customers -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def customers() -> tuple[dict[str, Shopper], dict[str | None, MappingError]]:
    return map_page(Stream.CUSTOMERS, "customers_page.json")


def test_customers_page_maps_every_valid_item_and_quarantines_the_two_broken_ones(customers: Any) -> None:
    records, failures = customers
    assert sorted(records) == ["101", "102", "103", "104", "107"]
    assert set(failures) == {"105", None}
    assert all(isinstance(r, Shopper) for r in records.values())


def test_wrapped_customer_maps_like_a_bare_one_with_origin_and_normalized_contact(customers: Any) -> None:
    ava: Shopper = customers[0]["101"]
    assert (ava.tenant, ava.vendor, ava.credential_id, ava.location_id) == (
        "tenant-a",
        Vendor.POSABIT,
        "cred-1",
        "3221",
    )
    assert ava.phone == "+12065550143"
    assert ava.phone_raw == "(206) 555-0143"
    assert ava.email == "ava.nguyen@example.com"
    assert ava.state == "WA"
    assert ava.birth_date == date(1988, 4, 12)
    assert (ava.loyalty_member, ava.marketing_opt_in, ava.sms_opt_in, ava.sms_opt_out) == (True, True, True, False)
    assert ava.source_updated_at == utc(2026, 9, 30, 17, 5, 42, 123000)
    assert ava.pos_created_at == utc(2024, 2, 1, 18, 22, 10)


def test_offset_timestamps_are_converted_and_aliases_and_string_flags_are_read(customers: Any) -> None:
    liam: Shopper = customers[0]["102"]
    assert liam.source_updated_at == utc(2026, 9, 30, 17, 5, 42, 500000)
    assert liam.pos_created_at == utc(2025, 6, 1, 16, 0)
    assert liam.first_name == "Liam"
    assert liam.phone == "+13605550178"
    assert liam.email == "liam.garcia@example.com"
    assert liam.loyalty_member is True  # sent as "loyalty": "1"
    assert liam.marketing_opt_in is False
    assert liam.sms_opt_in is None
    assert liam.postal_code == "98225"  # sent as zip_code


def test_naive_timestamps_are_the_venue_wall_clock_across_dst(customers: Any) -> None:
    mia: Shopper = customers[0]["103"]
    assert mia.source_updated_at == utc(2026, 9, 30, 16, 15)  # PDT, UTC-7
    assert mia.pos_created_at == utc(2026, 1, 15, 16, 0)  # PST, UTC-8


def test_placeholder_contact_is_kept_raw_but_never_matchable(customers: Any) -> None:
    mia: Shopper = customers[0]["103"]
    assert mia.phone is None
    assert mia.phone_raw == "1234567890"
    assert mia.email == "test@test.com"
    assert mia.matchable_email is None
    assert mia.birth_date is None  # "0000-00-00" typed at the till is dropped, not quarantined


def test_unknown_fields_numeric_phone_and_blank_email_do_not_break_a_record(customers: Any) -> None:
    noah: Shopper = customers[0]["104"]
    assert noah.phone == "+14255550199"
    assert noah.email is None


def test_extra_fields_do_not_change_the_canonical_record() -> None:
    item = page_items("customers_page.json", Stream.CUSTOMERS)[0]
    noisy = {**item, "loyalty_tier": {"name": "gold"}, "new_in_v3_1": [1, 2], "points_history": None}
    assert map_record(Stream.CUSTOMERS, noisy, CTX) == map_record(Stream.CUSTOMERS, item, CTX)


def test_quarantine_reasons_name_the_field_but_never_echo_the_value(customers: Any) -> None:
    failures = customers[1]
    assert failures["105"].reason == "updated_at is not a timestamp"
    assert "id" in failures[None].reason
    secret = "Jane Secret-Person"
    with pytest.raises(MappingError) as caught:
        map_record(Stream.CUSTOMERS, {"id": 9, "first_name": {"full": secret}, "updated_at": "2026-01-01Z"}, CTX)
    assert "first_name" in caught.value.reason
    assert secret not in caught.value.reason
    assert caught.value.pos_id == "9"


def test_a_non_object_list_item_is_quarantined_not_dropped() -> None:
    item = unwrap_item(Stream.CUSTOMERS, "garbage")
    with pytest.raises(MappingError) as caught:
        map_record(Stream.CUSTOMERS, item, CTX)
    assert caught.value.pos_id is None


# --- loyalty balances ----------------------------------------------------------------------------------------------


def test_loyalty_balances_come_from_the_customers_points() -> None:
    records, failures = map_page(Stream.LOYALTY, "customers_page.json")
    assert all(isinstance(r, LoyaltyBalance) for r in records.values())
    assert {pos_id: r.points for pos_id, r in records.items()} == {"101": 420, "102": 35, "103": 0, "104": 12}
    ava = records["101"]
    assert ava.customer_pos_id == "101"
    assert ava.as_of == ava.source_updated_at == utc(2026, 9, 30, 17, 5, 42, 123000)
    # 107 carries fractional points: its balance is quarantined, while its shopper record (above) is not.
    assert set(failures) == {"105", None, "107"}
    assert "points" in failures["107"].reason


# --- sales histories -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sales() -> tuple[dict[str, Sale], dict[str | None, MappingError]]:
    return map_page(Stream.SALES, "sales_histories_page.json")


def test_sales_page_quarantines_the_invalid_total_and_the_unknown_status(sales: Any) -> None:
    records, failures = sales
    assert sorted(records) == ["5001", "5002", "5003", "5004", "5005", "5008"]
    assert "total" in failures["5006"].reason
    assert "twelve" not in failures["5006"].reason
    assert failures["5007"].reason == "unknown sale status 'layaway'"


def test_sale_is_utc_with_the_venue_local_date_cents_lines_and_tenders(sales: Any) -> None:
    sale: Sale = sales[0]["5001"]
    assert sale.ordered_at == utc(2026, 9, 30, 3, 30)
    assert sale.local_date == date(2026, 9, 29)  # 20:30 the evening before in Kirkland
    assert sale.timezone == "America/Los_Angeles"
    assert sale.customer_pos_id == "101"
    assert (sale.subtotal_cents, sale.discount_cents, sale.tax_cents, sale.total_cents) == (9500, 350, 915, 10065)
    assert (sale.status, sale.refunded_cents, sale.net_cents) == ("completed", 0, 10065)
    assert sale.source_updated_at == utc(2026, 9, 30, 3, 31)
    first, second = sale.lines
    assert (first.product_id, first.sku, first.name, first.brand, first.category) == (
        "808542",
        "BD-35",
        "Blue Dream 3.5g",
        "Evergreen",
        "Flower",
    )
    assert (first.quantity, first.total_cents, first.discount_cents, first.is_refund) == (2.0, 7315, 350, False)
    assert (second.product_id, second.quantity, second.total_cents) == ("808600", 1.0, 2750)
    assert sale.tenders == ({"tender_id": "9001", "method": "Debit Card", "amount_cents": 10065},)


def test_sale_marked_refunded_gives_its_whole_total_back(sales: Any) -> None:
    sale: Sale = sales[0]["5002"]
    assert (sale.status, sale.total_cents, sale.refunded_cents, sale.net_cents) == ("refunded", 2200, 2200, 0)


def test_return_receipt_with_negative_lines_is_a_refund_already_netted_in_its_total(sales: Any) -> None:
    sale: Sale = sales[0]["5003"]
    assert sale.status == "refunded"
    assert (sale.total_cents, sale.refunded_cents, sale.net_cents) == (-2750, 0, -2750)
    assert [line.is_refund for line in sale.lines] == [True]
    assert sale.lines[0].quantity == -1.0


def test_exchange_with_one_returned_line_is_partially_refunded(sales: Any) -> None:
    sale: Sale = sales[0]["5004"]
    assert sale.status == "partially_refunded"
    assert [line.is_refund for line in sale.lines] == [False, True]
    assert sale.customer_pos_id is None
    assert sale.tenders == ()


def test_wrapped_sale_with_naive_order_time_aliases_and_offset_update(sales: Any) -> None:
    sale: Sale = sales[0]["5005"]
    assert sale.ordered_at == utc(2026, 9, 30, 19, 0)  # naive ordered_at, no local: venue wall clock
    assert sale.local_date == date(2026, 9, 30)
    assert sale.source_updated_at == utc(2026, 9, 30, 19, 5)
    assert sale.status == "completed"  # "Complete"
    assert sale.subtotal_cents == 4500  # sent as subtotal
    assert sale.customer_pos_id == "103"
    assert sale.lines[0].name == "Live Resin 1g"  # sent as name
    assert sale.tenders == ({"tender_id": "9005", "method": "POSaBIT Pay", "amount_cents": 4950},)


def test_local_order_time_is_read_as_the_wall_clock_even_with_a_false_utc_marker(sales: Any) -> None:
    sale: Sale = sales[0]["5008"]
    assert sale.ordered_at == utc(2026, 9, 30, 15, 0)  # "08:00:00.000Z" local means 08:00 PDT
    assert sale.status == "cancelled"  # "voided"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "completed"),
        ("closed", "completed"),
        ("Partially Refunded", "partially_refunded"),
        ("canceled", "cancelled"),
        ("open", "pending"),
        ("returned", "refunded"),
    ],
)
def test_sale_status_spellings(status: str | None, expected: str) -> None:
    assert sale_status("1", status, (), 1000)[0] == expected


# --- inventories ---------------------------------------------------------------------------------------------------


def test_inventory_rows_become_products_and_a_nameless_row_is_quarantined() -> None:
    records, failures = map_page(Stream.INVENTORY, "inventories_page.json")
    assert sorted(records) == ["901", "902", "903"]
    assert set(failures) == {"904"}
    assert "name" in failures["904"].reason
    blue: Product = records["901"]
    assert (blue.product_id, blue.name, blue.sku, blue.brand, blue.category) == (
        "808542",
        "Blue Dream 3.5g",
        "BD-35",
        "Evergreen",
        "Flower",
    )
    assert (blue.price_cents, blue.quantity_on_hand, blue.active) == (3500, 369.7, True)
    gummies: Product = records["902"]  # wrapped as {"inventory": {...}}
    assert (gummies.price_cents, gummies.quantity_on_hand, gummies.active) == (2500, 0.0, False)
    assert gummies.source_updated_at == utc(2026, 9, 30, 16, 45)
    house: Product = records["903"]
    assert (house.product_id, house.sku, house.price_cents, house.quantity_on_hand, house.active) == (
        None,
        None,
        None,
        None,
        True,
    )
    assert house.source_updated_at == utc(2026, 9, 30, 15, 0)


# --- ids -----------------------------------------------------------------------------------------------------------


def test_item_id_reads_wrapped_and_bare_items() -> None:
    assert item_id(Stream.CUSTOMERS, {"customer": {"id": 7}}) == "7"
    assert item_id(Stream.SALES, {"sales_history": {"id": "5005"}}) == "5005"
    assert item_id(Stream.INVENTORY, {"id": 3, "inventory": {"id": 4}}) == "3"
    assert item_id(Stream.CUSTOMERS, {"first_name": "no id"}) is None


def test_each_context_gives_its_own_origin_however_the_contexts_alternate() -> None:
    # Given two contexts of different tenants and venues, and one whose venue changes, used in turn
    item = {"id": 7, "updated_at": "2026-01-01T00:00:00Z", "points": 3}
    other = dataclasses.replace(CTX, tenant="other", extra={"venue_id": "99"})
    changing = dataclasses.replace(CTX, extra={"venue_id": "1"})
    seen = []
    for ctx in (CTX, other, CTX, other, changing):
        record = map_record(Stream.LOYALTY, item, ctx)
        seen.append((record.tenant, record.location_id))
    changing.extra["venue_id"] = "2"  # type: ignore[index]
    seen.append(
        (map_record(Stream.LOYALTY, item, changing).tenant, map_record(Stream.LOYALTY, item, changing).location_id)
    )
    # Then each record carries its own context's tenant and venue
    expected_ctx = (CTX.tenant, None if CTX.extra.get("venue_id") is None else str(CTX.extra["venue_id"]))
    assert seen == [expected_ctx, ("other", "99"), expected_ctx, ("other", "99"), (CTX.tenant, "1"), (CTX.tenant, "2")]


ZULU_TEXTS = [
    "2026-04-17T09:35:33.864Z",
    "2026-04-17T09:35:33Z",
    "2026-04-17 09:35:33.123456Z",
    "2026-04-17T09:35Z",
    "2026-04-17Z",
    " 2026-04-17T09:35:33.864Z",
    "\t2026-04-17T09:35:33Z",
    "2026-04-17T09:35:33.864Z ",
    "2026-04-17T09:35:33.864z",
    "2026-04-17T09:35:33+05:00",
    "2026-04-17T09:35:33",
    "2026-04-17 09:35:33 UTC",
    "2026-13-45T99:00:00Z",
    "0001-01-01T00:00:00Z",
    "Z",
    "",
    " ",
    None,
    7,
]


@pytest.mark.parametrize("text", ZULU_TEXTS, ids=repr)
def test_zulu_timestamps_read_directly_are_the_parsed_and_converted_moment(text: Any) -> None:
    from functions.pull_posabit.mapping import _timestamp, parse_timestamp, to_utc

    try:
        expected: Any = to_utc(parse_timestamp(text), CTX.timezone)
    except ValueError:
        expected = "not a timestamp"
    try:
        found: Any = _timestamp(text, CTX.timezone, "updated_at", "1")
    except MappingError as exc:
        found = "not a timestamp" if exc.reason == "updated_at is not a timestamp" else exc.reason
    assert found == expected
    if isinstance(expected, datetime):
        assert found.tzinfo is UTC and found.isoformat() == expected.isoformat()
