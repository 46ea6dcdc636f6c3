"""Profitek mapping on recorded pages: timestamps in three forms, refunds, extra fields, a record that fails."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from functions.core.connector import MappingContext, MappingError
from functions.core.layout import Stream, Vendor
from functions.core.models import LoyaltyBalance, Product, Sale, Shopper
from functions.pull_onprem.profitek import mapping

FIXTURES = Path(__file__).parents[1] / "fixtures" / "profitek"
CTX = MappingContext(
    tenant="t1", vendor=Vendor.PROFITEK, credential_id="c1", timezone="America/Los_Angeles", extra={"store_id": "101"}
)


def page(name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / name).read_text())["Data"]


def by_id(items: list[dict[str, Any]], key: str, value: int) -> dict[str, Any]:
    return next(item for item in items if item[key] == value)


# --- customers ----------------------------------------------------------------------------------------------------


def test_customer_with_extra_fields_maps_to_a_shopper_in_utc_with_e164_phone() -> None:
    item = by_id(page("customers_page.json"), "CustomerID", 1024)
    assert "LegacyCode" in item and "AuditInfo" in item  # the recorded page carries unknown fields

    shopper = mapping.map_record(Stream.CUSTOMERS, item, CTX)

    assert isinstance(shopper, Shopper)
    assert (shopper.pos_id, shopper.location_id) == ("1024", "101")
    assert (shopper.tenant, shopper.vendor, shopper.credential_id) == ("t1", Vendor.PROFITEK, "c1")
    assert shopper.source_updated_at == datetime(2024, 1, 24, 13, 22, 55, 874000, tzinfo=UTC)
    assert shopper.phone == "+14253212837" and shopper.phone_raw == "+1 425 321 2837"
    assert shopper.birth_date == date(1963, 4, 18)
    assert (shopper.loyalty_member, shopper.marketing_opt_in, shopper.sms_opt_in, shopper.sms_opt_out) == (
        True,
        True,
        True,
        False,
    )
    assert shopper.pos_created_at == datetime(2023, 9, 11, 2, 26, 41, 874000, tzinfo=UTC)


def test_customer_whose_modified_date_is_unreadable_fails_with_its_id_and_no_personal_data() -> None:
    item = by_id(page("customers_page.json"), "CustomerID", 1022)

    with pytest.raises(MappingError) as caught:
        mapping.map_record(Stream.CUSTOMERS, item, CTX)

    assert caught.value.pos_id == "1022"
    assert "ModifiedDate" in caught.value.reason
    assert "last tuesday" not in caught.value.reason and "Rivera" not in caught.value.reason


def test_every_other_customer_on_the_recorded_page_maps() -> None:
    items = page("customers_page.json")
    mapped = [mapping.map_record(Stream.CUSTOMERS, item, CTX) for item in items if item["CustomerID"] != 1022]
    assert [record.pos_id for record in mapped] == ["1024", "1021", "1020", "1015", "1010"]
    assert all(record.source_updated_at.tzinfo is UTC for record in mapped)


def test_naive_timestamps_are_the_store_wall_clock() -> None:
    item = by_id(page("customers_page_naive.json"), "CustomerID", 1020)
    assert item["ModifiedDate"] == "2024-01-25T17:27:52.819"  # no offset: Pacific standard time, UTC-8

    shopper = mapping.map_record(Stream.CUSTOMERS, item, CTX)

    assert shopper.source_updated_at == datetime(2024, 1, 26, 1, 27, 52, 819000, tzinfo=UTC)


def test_the_same_customer_maps_to_the_same_record_whatever_the_timestamp_form() -> None:
    utc_form = by_id(page("customers_page.json"), "CustomerID", 1020)
    naive_form = by_id(page("customers_page_naive.json"), "CustomerID", 1020)
    extras = {"LegacyCode", "AuditInfo"}

    first = mapping.map_record(Stream.CUSTOMERS, {k: v for k, v in utc_form.items() if k not in extras}, CTX)
    second = mapping.map_record(Stream.CUSTOMERS, naive_form, CTX)

    assert first.content_hash() == second.content_hash()


def test_customer_edge_values() -> None:
    item = {
        "CustomerID": " 2001 ",
        "Phone": "1234567890",
        "Email": "  Someone@Example.COM ",
        "Zip": 98101,
        "BirthDate": "0001-01-01T00:00:00",
        "ModifiedDate": "2024-03-10T10:00:00",
    }

    shopper = mapping.map_record(Stream.CUSTOMERS, item, CTX)

    assert isinstance(shopper, Shopper)
    assert shopper.pos_id == "2001"
    assert shopper.location_id == "101"  # from the store info when the record has no StoreID
    assert shopper.phone is None and shopper.phone_raw == "1234567890"  # a placeholder is kept, never matched
    assert shopper.email == "someone@example.com"
    assert shopper.postal_code == "98101"
    assert shopper.birth_date is None  # .NET's DateTime.MinValue means "none"
    assert shopper.source_updated_at == datetime(2024, 3, 10, 17, 0, tzinfo=UTC)  # 10:00 PDT, after the DST switch


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"CustomerID": 0, "ModifiedDate": "2024-03-10T10:00:00Z"}, "CustomerID"),
        ({"CustomerID": 7}, "ModifiedDate"),
        ({"CustomerID": 7, "ModifiedDate": "2024-03-10T10:00:00Z", "LoyaltyMember": "maybe"}, "LoyaltyMember"),
    ],
)
def test_customer_that_fails_validation_names_the_field(item: dict[str, Any], field: str) -> None:
    with pytest.raises(MappingError) as caught:
        mapping.map_record(Stream.CUSTOMERS, item, CTX)
    assert field in caught.value.reason


# --- transactions -------------------------------------------------------------------------------------------------


def test_completed_transaction_with_offset_timestamps() -> None:
    item = by_id(page("transactions_page.json"), "TransactionID", 200002)

    sale = mapping.map_record(Stream.SALES, item, CTX)

    assert isinstance(sale, Sale)
    assert sale.ordered_at == datetime(2024, 1, 22, 21, 10, 59, 423000, tzinfo=UTC)
    assert sale.source_updated_at == datetime(2024, 1, 22, 21, 11, 19, 423000, tzinfo=UTC)
    assert (sale.local_date, sale.timezone) == (date(2024, 1, 22), "America/Los_Angeles")
    assert (sale.status, sale.customer_pos_id, sale.location_id) == ("completed", "1018", "101")
    assert (sale.subtotal_cents, sale.discount_cents, sale.tax_cents, sale.total_cents) == (9984, 299, 968, 10653)
    assert sale.refunded_cents == 0
    assert [(line.quantity, line.total_cents, line.discount_cents) for line in sale.lines] == [
        (1.0, 2495, 0),
        (2.0, 2691, 299),
        (1.0, 4499, 0),
    ]
    assert not any(line.is_refund for line in sale.lines)
    assert sale.tenders == ({"type": "Cash", "amount_cents": 10653},)


def test_a_return_transaction_is_refunded_with_its_negative_total_already_netted() -> None:
    item = by_id(page("transactions_page.json"), "TransactionID", 200005)
    assert item["Status"] == "Return"

    sale = mapping.map_record(Stream.SALES, item, CTX)

    assert isinstance(sale, Sale)
    assert sale.status == "refunded"
    assert sale.total_cents == -5224
    assert sale.refunded_cents == 0 and sale.net_cents == -5224
    assert all(line.is_refund for line in sale.lines)


def test_an_exchange_with_one_negative_line_is_partially_refunded() -> None:
    item = by_id(page("transactions_page.json"), "TransactionID", 200006)

    sale = mapping.map_record(Stream.SALES, item, CTX)

    assert isinstance(sale, Sale)
    assert sale.status == "partially_refunded"
    assert [line.is_refund for line in sale.lines] == [False, False, False, True]
    assert sale.lines[-1].total_cents == -4499
    assert sale.total_cents == 15932


def test_transaction_with_an_unreadable_total_is_quarantined_by_id() -> None:
    item = by_id(page("transactions_page.json"), "TransactionID", 200001)

    with pytest.raises(MappingError) as caught:
        mapping.map_record(Stream.SALES, item, CTX)

    assert (caught.value.pos_id, "Total" in caught.value.reason) == ("200001", True)


def test_walk_in_void_and_missing_lines() -> None:
    item = {
        "TransactionID": 9,
        "CustomerID": 0,
        "TransactionDate": "2024-03-11T06:30:00Z",
        "Status": "Voided",
        "SubTotal": 10,
        "Total": 10.8,
        "Lines": None,
        "Tenders": None,
        "ModifiedDate": "2024-03-11T06:31:00Z",
    }

    sale = mapping.map_record(Stream.SALES, item, CTX)

    assert isinstance(sale, Sale)
    assert sale.customer_pos_id is None  # 0 is .NET's "no customer"
    assert sale.status == "cancelled"
    assert (sale.lines, sale.tenders) == ((), ())
    assert (sale.total_cents, sale.tax_cents) == (1080, 0)
    assert sale.local_date == date(2024, 3, 10)  # 23:30 PDT the evening before in the store


def test_unknown_status_is_quarantined_rather_than_guessed() -> None:
    item = {
        "TransactionID": 10,
        "TransactionDate": "2024-03-11T06:30:00Z",
        "Status": "Layaway",
        "SubTotal": 1,
        "Total": 1,
        "ModifiedDate": "2024-03-11T06:31:00Z",
    }
    with pytest.raises(MappingError) as caught:
        mapping.map_record(Stream.SALES, item, CTX)
    assert caught.value.pos_id == "10" and "Layaway" in caught.value.reason


# --- items and loyalty ---------------------------------------------------------------------------------------------


def test_items_page_maps_products_and_quarantines_the_unpriced_one() -> None:
    items = page("items_page.json")

    with pytest.raises(MappingError) as caught:
        mapping.map_record(Stream.INVENTORY, items[0], CTX)
    product = mapping.map_record(Stream.INVENTORY, items[2], CTX)

    assert caught.value.pos_id == "5001" and "Price" in caught.value.reason
    assert isinstance(product, Product)
    assert (product.pos_id, product.name, product.sku, product.price_cents) == (
        "5003",
        "Mango Gummies 100mg",
        "PT101-00002",
        5995,
    )
    assert (product.quantity_on_hand, product.active, product.brand) == (199.0, True, "Kiva")


def test_item_without_description_falls_back_to_sku_and_without_either_fails() -> None:
    base = {"ItemID": 1, "ModifiedDate": "2024-03-11T06:31:00Z"}
    named = mapping.map_record(Stream.INVENTORY, {**base, "SKU": "X-1"}, CTX)
    assert isinstance(named, Product) and named.name == "X-1"
    with pytest.raises(MappingError):
        mapping.map_record(Stream.INVENTORY, base, CTX)


def test_loyalty_balances_with_naive_timestamps_and_a_fractional_balance() -> None:
    items = page("loyalty_page.json")

    balance = mapping.map_record(Stream.LOYALTY, items[1], CTX)
    fractional = mapping.map_record(
        Stream.LOYALTY, {"CustomerID": 5, "PointsBalance": 120.75, "ModifiedDate": "2024-01-01T00:00:00Z"}, CTX
    )

    assert isinstance(balance, LoyaltyBalance)
    assert (balance.pos_id, balance.customer_pos_id, balance.points) == ("1024", "1024", 772)
    assert balance.as_of == balance.source_updated_at == datetime(2024, 1, 24, 13, 22, 55, 874000, tzinfo=UTC)
    assert isinstance(fractional, LoyaltyBalance) and fractional.points == 120
    with pytest.raises(MappingError):
        mapping.map_record(Stream.LOYALTY, items[0], CTX)  # "lots"


# --- ids and zones -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "item", "expected"),
    [
        (Stream.CUSTOMERS, {"CustomerID": 12}, "12"),
        (Stream.SALES, {"TransactionID": "T-9"}, "T-9"),
        (Stream.INVENTORY, {"ItemID": 0}, None),
        (Stream.LOYALTY, {"CustomerID": {"nested": 1}}, None),
        (Stream.CUSTOMERS, {}, None),
    ],
)
def test_item_id(stream: Stream, item: dict[str, Any], expected: str | None) -> None:
    assert mapping.item_id(stream, item) == expected


def test_a_non_object_item_is_a_mapping_error() -> None:
    with pytest.raises(MappingError):
        mapping.map_record(Stream.SALES, ["not", "an", "object"], CTX)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("US Mountain Standard Time", "America/Phoenix"),
        ("America/Chicago", "America/Chicago"),
        (" Eastern Standard Time ", "America/New_York"),
    ],
)
def test_store_timezone_translates_windows_ids(raw: str, expected: str) -> None:
    assert mapping.store_timezone(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "Pacific Time", "Mars/Olympus_Mons"])
def test_store_timezone_refuses_what_it_cannot_use(raw: str | None) -> None:
    with pytest.raises(MappingError):
        mapping.store_timezone(raw)
