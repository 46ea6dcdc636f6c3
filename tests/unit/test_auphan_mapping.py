"""Auphan mapping on recorded pages: unlinked sales, refunds two ways, timestamp forms, a record that fails."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from functions.core.connector import MappingContext, MappingError
from functions.core.layout import Stream, Vendor
from functions.core.models import Product, Sale, Shopper
from functions.pull_onprem.auphan import mapping

FIXTURES = Path(__file__).parents[1] / "fixtures" / "auphan"
CTX = MappingContext(tenant="t1", vendor=Vendor.AUPHAN, credential_id="c1", timezone="America/Los_Angeles")


def page(name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / name).read_text())["items"]


def by_field(items: list[dict[str, Any]], key: str, value: Any) -> dict[str, Any]:
    return next(item for item in items if item[key] == value)


# --- customers ----------------------------------------------------------------------------------------------------


def test_customer_with_extra_fields_maps_with_address_and_consent() -> None:
    item = by_field(page("customers_page.json"), "customerId", "0f0b9752-2634-416f-5f7c-c5d86f3f0240")
    assert {"externalRef", "_links", "metadata"} <= item.keys()

    shopper = mapping.map_record(Stream.CUSTOMERS, item, CTX)

    assert isinstance(shopper, Shopper)
    assert (shopper.pos_id, shopper.location_id) == ("0f0b9752-2634-416f-5f7c-c5d86f3f0240", "1001")
    assert shopper.source_updated_at == datetime(2024, 1, 24, 15, 48, 0, 308000, tzinfo=UTC)
    assert (shopper.phone, shopper.phone_raw) == ("+13605596748", "+1 360 559 6748")
    assert (shopper.email, shopper.birth_date) == ("jude.brown3@example.com", date(1969, 7, 21))
    assert (shopper.state, shopper.postal_code, shopper.customer_type) == ("WA", "99054", "adult-use")
    assert (shopper.loyalty_member, shopper.marketing_opt_in, shopper.sms_opt_in, shopper.sms_opt_out) == (
        True,
        False,
        True,
        False,
    )


def test_unknown_sms_consent_says_nothing_either_way() -> None:
    item = by_field(page("customers_page.json"), "customerId", "d4042c36-f000-4eb0-bce2-40c658780d0a")
    assert item["smsConsent"] == "unknown"

    shopper = mapping.map_record(Stream.CUSTOMERS, item, CTX)

    assert isinstance(shopper, Shopper)
    assert (shopper.sms_opt_in, shopper.sms_opt_out) == (None, None)


@pytest.mark.parametrize(
    ("consent", "flags"), [("opted_in", (True, False)), ("OPTED_OUT", (False, True)), (None, (None, None))]
)
def test_sms_flags(consent: str | None, flags: tuple[bool | None, bool | None]) -> None:
    assert mapping.sms_flags(consent) == flags


def test_customer_with_an_unreadable_update_time_is_quarantined_by_id() -> None:
    item = page("customers_page.json")[0]
    assert item["updatedAt"] == "yesterday"

    with pytest.raises(MappingError) as caught:
        mapping.map_record(Stream.CUSTOMERS, item, CTX)

    assert caught.value.pos_id == "78573797-4a80-4546-4627-31417aa286ac"
    assert "updatedAt" in caught.value.reason and "yesterday" not in caught.value.reason


def test_naive_timestamps_are_the_store_wall_clock() -> None:
    naive = by_field(page("customers_page_naive.json"), "customerId", "d4042c36-f000-4eb0-bce2-40c658780d0a")
    utc = by_field(page("customers_page.json"), "customerId", "d4042c36-f000-4eb0-bce2-40c658780d0a")
    assert naive["updatedAt"] == "2024-01-20T23:04:21.047"

    from_naive = mapping.map_record(Stream.CUSTOMERS, naive, CTX)
    from_utc = mapping.map_record(Stream.CUSTOMERS, utc, CTX)

    assert from_naive.source_updated_at == datetime(2024, 1, 21, 7, 4, 21, 47000, tzinfo=UTC)
    assert from_naive.content_hash() == from_utc.content_hash()


def test_customer_without_address_or_optional_fields() -> None:
    shopper = mapping.map_record(
        Stream.CUSTOMERS,
        {"customerId": "c-1", "updatedAt": "2024-07-04T12:00:00", "birthDate": "not a date", "address": None},
        CTX,
    )
    assert isinstance(shopper, Shopper)
    assert (shopper.state, shopper.postal_code, shopper.birth_date) == (None, None, None)
    assert shopper.source_updated_at == datetime(2024, 7, 4, 19, 0, tzinfo=UTC)  # PDT in July


# --- sales --------------------------------------------------------------------------------------------------------


def test_a_sale_auphan_could_not_link_to_a_shopper_has_no_customer() -> None:
    item = by_field(page("sales_page.json"), "receiptNumber", 40002)
    assert item["customerId"] is None

    sale = mapping.map_record(Stream.SALES, item, CTX)

    assert isinstance(sale, Sale)
    assert sale.customer_pos_id is None
    assert sale.status == "completed"
    assert (sale.subtotal_cents, sale.discount_cents, sale.tax_cents, sale.total_cents) == (12500, 560, 1194, 13134)
    assert [(line.quantity, line.total_cents, line.discount_cents) for line in sale.lines] == [
        (2.0, 2240, 560),
        (3.0, 4200, 0),
        (1.0, 5500, 0),
    ]
    assert sale.tenders == ({"type": "gift_card", "amount_cents": 13134},)


def test_linked_sale_with_offset_timestamps_gets_the_local_date() -> None:
    item = by_field(page("sales_page.json"), "receiptNumber", 40003)

    sale = mapping.map_record(Stream.SALES, item, CTX)

    assert isinstance(sale, Sale)
    assert sale.customer_pos_id == "b5530d8e-f8f2-4944-7ac5-69924a9f6396"
    assert sale.ordered_at == datetime(2024, 1, 22, 22, 56, 16, 501000, tzinfo=UTC)
    assert sale.local_date == date(2024, 1, 22)
    assert sale.source_updated_at == datetime(2024, 1, 22, 23, 4, 37, 501000, tzinfo=UTC)


def test_a_sale_refunded_afterwards_counts_the_refunded_amount() -> None:
    sale = mapping.map_record(Stream.SALES, by_field(page("sales_page.json"), "receiptNumber", 40005), CTX)
    assert isinstance(sale, Sale)
    assert (sale.status, sale.total_cents, sale.refunded_cents, sale.net_cents) == ("refunded", 6160, 6160, 0)
    assert not any(line.is_refund for line in sale.lines)


def test_a_partly_refunded_sale_counts_only_the_refunded_part() -> None:
    sale = mapping.map_record(Stream.SALES, by_field(page("sales_page.json"), "receiptNumber", 40006), CTX)
    assert isinstance(sale, Sale)
    assert (sale.status, sale.total_cents, sale.refunded_cents, sale.net_cents) == (
        "partially_refunded",
        4620,
        4200,
        420,
    )


def test_a_return_at_the_till_has_refund_lines_netted_in_its_total() -> None:
    item = by_field(page("sales_page.json"), "receiptNumber", 40008)
    assert item["type"] == "return"

    sale = mapping.map_record(Stream.SALES, item, CTX)

    assert isinstance(sale, Sale)
    assert (sale.status, sale.total_cents, sale.refunded_cents) == ("refunded", -13860, 0)
    assert [(line.quantity, line.total_cents, line.is_refund) for line in sale.lines] == [
        (-3.0, -4200, True),
        (-3.0, -8400, True),
    ]


def test_refunded_without_an_amount_refunds_the_whole_total() -> None:
    item = {**by_field(page("sales_page.json"), "receiptNumber", 40010), "refundedAmount": None}
    sale = mapping.map_record(Stream.SALES, item, CTX)
    assert isinstance(sale, Sale) and sale.refunded_cents == 6050


def test_sale_with_an_unreadable_total_is_quarantined_by_id() -> None:
    item = by_field(page("sales_page.json"), "receiptNumber", 40001)

    with pytest.raises(MappingError) as caught:
        mapping.map_record(Stream.SALES, item, CTX)

    assert caught.value.pos_id == "fe7a436f-2276-4780-e514-a97ab662b035"
    assert "total" in caught.value.reason


@pytest.mark.parametrize(("status", "expected"), [("voided", "cancelled"), ("Open", "pending"), ("parked", "pending")])
def test_other_statuses(status: str, expected: str) -> None:
    item = {**by_field(page("sales_page.json"), "receiptNumber", 40009), "status": status}
    sale = mapping.map_record(Stream.SALES, item, CTX)
    assert isinstance(sale, Sale) and sale.status == expected


def test_an_unknown_status_is_quarantined() -> None:
    item = {**by_field(page("sales_page.json"), "receiptNumber", 40009), "status": "layaway"}
    with pytest.raises(MappingError) as caught:
        mapping.map_record(Stream.SALES, item, CTX)
    assert "layaway" in caught.value.reason


# --- products -----------------------------------------------------------------------------------------------------


def test_products_page() -> None:
    items = page("products_page.json")

    product = mapping.map_record(Stream.INVENTORY, items[3], CTX)
    with pytest.raises(MappingError) as caught:
        mapping.map_record(Stream.INVENTORY, items[0], CTX)

    assert isinstance(product, Product)
    assert (product.pos_id, product.name, product.price_cents, product.quantity_on_hand, product.active) == (
        "9e115e4b-9e30-491c-2386-42ea126a1e48",
        "OG Kush Cart 1g",
        2800,
        32.0,
        True,
    )
    assert "retailPrice" in caught.value.reason


def test_a_discontinued_product_is_inactive() -> None:
    item = {**page("products_page.json")[3], "status": "Discontinued"}
    product = mapping.map_record(Stream.INVENTORY, item, CTX)
    assert isinstance(product, Product) and product.active is False


# --- ids ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "item", "expected"),
    [
        (Stream.CUSTOMERS, {"customerId": "abc"}, "abc"),
        (Stream.SALES, {"saleId": " s-1 "}, "s-1"),
        (Stream.INVENTORY, {"productId": ""}, None),
        (Stream.LOYALTY, {"customerId": "abc"}, None),  # Auphan has no loyalty stream
    ],
)
def test_item_id(stream: Stream, item: dict[str, Any], expected: str | None) -> None:
    assert mapping.item_id(stream, item) == expected


def test_the_loyalty_stream_is_not_offered() -> None:
    with pytest.raises(MappingError):
        mapping.map_record(Stream.LOYALTY, {"customerId": "abc"}, CTX)
