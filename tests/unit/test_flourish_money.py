"""Flourish order money: the discount double-count quirk taken once, and ASSUMED fields that degrade gracefully.

Flourish's own WooCommerce plugin (flourishsoftware/flourish-woocommerce-b2c, HandlerOrdersRetail.php) says the
Flourish API "double-counts: it applies the discount to line totals AND subtracts it from the order total". The
orders below are built that way: each line's total has its applied discounts taken off, and the order total takes
them off again. What the shopper paid is the lines plus tax.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from functions.core.connector import MappingContext, MappingError
from functions.core.layout import Stream, Vendor
from functions.core.models import Product, Sale, Shopper
from functions.pull_flourish import mapping

CTX = MappingContext(
    tenant="t1",
    vendor=Vendor.FLOURISH,
    credential_id="c1",
    timezone="America/Los_Angeles",
    extra={mapping.FACILITY_TIMEZONES: {"101": "America/Los_Angeles"}},
)
CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def cents(value: Decimal) -> int:
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class Line:
    qty: int
    unit: str
    discounts: tuple[str, ...] = ()
    refunded_qty: int = 0

    @property
    def gross(self) -> Decimal:
        return self.qty * Decimal(self.unit)

    @property
    def discount(self) -> Decimal:
        return sum((Decimal(d) for d in self.discounts), Decimal(0))

    @property
    def paid(self) -> Decimal:
        return self.gross - self.discount


@dataclass
class Order:
    """An order as the quirk is publicly described, plus what the shopper really paid (the truth to compare with)."""

    lines: list[Line]
    tax_rate: str = "0.10"
    payment: str = "Paid"
    refunded: str | None = None  # total_refunded as Flourish reports it, when it does
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def discounts(self) -> Decimal:
        return sum((line.discount for line in self.lines), Decimal(0))

    @property
    def tax(self) -> Decimal:
        return (sum((line.paid for line in self.lines), Decimal(0)) * Decimal(self.tax_rate)).quantize(CENT)

    @property
    def paid(self) -> Decimal:
        return sum((line.paid for line in self.lines), Decimal(0)) + self.tax

    def raw(self, *, quirk: bool = True) -> dict[str, Any]:
        lines = [
            {
                "id": 900 + n,
                "item_id": 3000 + n,
                "sku": f"SKU-{n}",
                "item_name": f"Item {n}",
                "order_qty": line.qty,
                "unit_price": line.unit,
                # the quirk: the applied discounts are already off the line total
                "total_price": money(line.paid if quirk else line.gross),
                "refunded_qty": line.refunded_qty,
                "applied_discounts": [{"discount_id": 14, "discount_value": d} for d in line.discounts],
            }
            for n, line in enumerate(self.lines)
        ]
        line_totals = sum((Decimal(line["total_price"]) for line in lines), Decimal(0))
        # ...and taken off the order total again
        total = line_totals - self.discounts + self.tax
        return {
            "id": 700100,
            "customer_id": 10001,
            "facility_id": 101,
            "order_status": "Completed",
            "order_payment_status": self.payment,
            "order_timestamp": "2026-03-14T02:10:00.000Z",
            "created_timestamp": "2026-03-14T02:10:00.000Z",
            "completed_timestamp": "2026-03-14T02:30:00.000Z",
            "last_updated_timestamp": "2026-03-14T02:30:01.000Z",
            "subtotal": money(line_totals),
            "total_discounts": money(self.discounts),
            "total_tax": money(self.tax),
            "total_price": money(total),
            "total_paid": money(self.paid),
            **({"total_refunded": self.refunded} if self.refunded is not None else {}),
            "order_lines": lines,
            **self.extra,
        }


def sale(raw: dict[str, Any]) -> Sale:
    record = mapping.map_record(Stream.SALES, raw, CTX)
    assert isinstance(record, Sale)
    return record


ONE_DISCOUNT = Order([Line(2, "12.50", ("2.50",)), Line(1, "19.99")])
TWO_DISCOUNTS_ONE_LINE = Order([Line(3, "10.00", ("3.00", "1.50")), Line(2, "8.25")])
DISCOUNTS_ON_TWO_LINES = Order([Line(1, "45.00", ("4.50",)), Line(4, "5.00", ("2.00",)), Line(1, "12.00")])


# --- the double count, taken once --------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [ONE_DISCOUNT, TWO_DISCOUNTS_ONE_LINE, DISCOUNTS_ON_TWO_LINES])
def test_a_discounted_order_is_stored_at_what_was_paid_not_low_by_its_discount(order: Order) -> None:
    result = sale(order.raw())

    assert result.total_cents == cents(order.paid)
    assert result.net_cents == cents(order.paid)
    assert result.discount_cents == cents(order.discounts) > 0
    assert result.tax_cents == cents(order.tax)
    assert result.subtotal_cents == cents(sum((line.gross for line in order.lines), Decimal(0)))
    assert [(line.total_cents, line.discount_cents) for line in result.lines] == [
        (cents(line.paid), cents(line.discount)) for line in order.lines
    ]


@pytest.mark.parametrize("order", [ONE_DISCOUNT, TWO_DISCOUNTS_ONE_LINE, DISCOUNTS_ON_TWO_LINES])
def test_the_documented_shape_without_the_double_count_gives_the_same_cents(order: Order) -> None:
    quirky, plain = sale(order.raw()), sale(order.raw(quirk=False))

    assert plain.total_cents == quirky.total_cents == cents(order.paid)
    assert plain.lines == quirky.lines


def test_an_order_without_discounts_is_taken_as_reported() -> None:
    order = Order([Line(2, "10.00"), Line(1, "5.55")], tax_rate="0.37")

    result = sale(order.raw())

    assert result.total_cents == cents(order.paid) and result.discount_cents == 0


@pytest.mark.parametrize("reported", ["paid", "quirky total", "not reported"])
def test_a_fully_refunded_discounted_order_nets_zero(reported: str) -> None:
    order = Order([Line(1, "45.00", ("4.50",)), Line(4, "5.00", ("2.00",))], payment="Refunded")
    raw = order.raw()
    raw["total_refunded"] = {"paid": money(order.paid), "quirky total": raw["total_price"]}.get(reported)

    result = sale(raw)

    assert result.status == "refunded"
    assert result.total_cents == cents(order.paid)
    assert result.refunded_cents == cents(order.paid)
    assert result.net_cents == 0


def test_a_partly_refunded_discounted_line_refunds_what_its_units_were_paid() -> None:
    order = Order([Line(3, "10.00", ("3.00", "1.50"), refunded_qty=1), Line(2, "8.25")], payment="Partially Refunded")

    result = sale(order.raw())

    paid_each = order.lines[0].paid / 3  # 8.50: the unit's share of the line after both discounts
    assert result.status == "partially_refunded"
    assert result.total_cents == cents(order.paid)
    assert result.refunded_cents == cents(paid_each) == 850
    assert result.net_cents == cents(order.paid) - 850
    refund = [line for line in result.lines if line.is_refund]
    assert [(line.quantity, line.total_cents) for line in refund] == [(-1.0, -850)]


def test_a_reported_partial_refund_is_used_but_never_more_than_the_sale() -> None:
    order = Order([Line(1, "45.00", ("4.50",))], payment="Partially Refunded", refunded="12.00")
    assert sale(order.raw()).refunded_cents == 1200

    too_much = Order([Line(1, "45.00", ("4.50",))], payment="Partially Refunded", refunded="999.00")
    assert sale(too_much.raw()).net_cents == 0


# --- ASSUMED fields degrade gracefully ----------------------------------------------------------------------------


def without(raw: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k not in names}


def renamed(raw: dict[str, Any], **names: str) -> dict[str, Any]:
    return {names.get(k, k): v for k, v in raw.items()}


@pytest.mark.parametrize(
    "variant",
    [
        lambda raw: renamed(raw, total_price="total"),
        lambda raw: without(raw, "total_price"),  # total_paid is next in line
        lambda raw: without(raw, "total_price", "total_paid"),  # the line totals plus tax
        lambda raw: without(raw, "total_price", "total_paid", "subtotal", "total_discounts"),
    ],
    ids=["total", "total_paid", "lines_plus_tax", "lines_plus_tax_bare"],
)
def test_the_order_total_is_found_under_its_alternatives_or_added_up(variant: Any) -> None:
    order = DISCOUNTS_ON_TWO_LINES

    result = sale(variant(order.raw()))

    assert result.total_cents == cents(order.paid)
    assert result.discount_cents == cents(order.discounts)
    assert result.tax_cents == cents(order.tax)


def test_alternative_names_of_the_other_assumed_order_and_line_fields() -> None:
    order = TWO_DISCOUNTS_ONE_LINE
    raw = renamed(
        without(order.raw(), "total_price", "total_paid"),
        subtotal="sub_total",
        total_tax="tax",
        total_discounts="discount_total",
        created_timestamp="created_at",
        completed_timestamp="completed_at",
        last_updated_timestamp="updated_at",
    )
    raw["order_lines"] = [
        renamed(line, item_name="name", total_price="line_total", item_category="category")
        for line in raw["order_lines"]
    ]

    result = sale(raw)

    assert result.total_cents == cents(order.paid) and result.tax_cents == cents(order.tax)
    assert result.ordered_at == datetime(2026, 3, 14, 2, 30, tzinfo=UTC)
    assert result.source_updated_at == datetime(2026, 3, 14, 2, 30, 1, tzinfo=UTC)
    assert [line.name for line in result.lines] == ["Item 0", "Item 1"]


def test_an_order_without_a_total_or_lines_to_add_up_names_the_missing_field() -> None:
    raw = without(ONE_DISCOUNT.raw(), "total_price", "total_paid")
    raw["order_lines"] = []

    with pytest.raises(MappingError) as caught:
        mapping.map_record(Stream.SALES, raw, CTX)

    assert caught.value.reason.startswith("missing field: total_price")
    assert caught.value.pos_id == "700100"


def test_an_order_with_only_its_documented_timestamp_maps_and_one_with_none_names_it() -> None:
    timestamps = ("created_timestamp", "completed_timestamp", "last_updated_timestamp")
    result = sale(without(ONE_DISCOUNT.raw(), *timestamps))
    assert result.ordered_at == result.source_updated_at == datetime(2026, 3, 14, 2, 10, tzinfo=UTC)

    with pytest.raises(MappingError) as caught:
        mapping.map_record(Stream.SALES, without(ONE_DISCOUNT.raw(), "order_timestamp", *timestamps), CTX)
    assert caught.value.reason.startswith("missing field: order_timestamp")


def test_a_missing_documented_field_is_named_as_missing() -> None:
    with pytest.raises(MappingError) as caught:
        mapping.map_record(Stream.SALES, without(ONE_DISCOUNT.raw(), "order_status"), CTX)

    assert caught.value.reason == "missing field: order_status"


CUSTOMER = {"id": 10001, "first_name": "Ava", "last_name": "Nguyen", "email": "ava@example.com", "dob": "1988-11-02"}
ITEM = {"id": 3001, "item_name": "Blue Dream 3.5g", "sku": "FLO-1", "price": 35.0}


def test_records_without_any_timestamp_map_with_a_fixed_update_time_so_rereads_change_nothing() -> None:
    first = mapping.map_record(Stream.CUSTOMERS, CUSTOMER, CTX)
    again = mapping.map_record(Stream.CUSTOMERS, dict(CUSTOMER), CTX)
    product = mapping.map_record(Stream.INVENTORY, ITEM, CTX)

    assert isinstance(first, Shopper) and isinstance(product, Product)
    assert first.source_updated_at == product.source_updated_at == mapping.UNKNOWN_UPDATE_TIME
    assert first.content_hash() == again.content_hash()
    edited = mapping.map_record(Stream.CUSTOMERS, {**CUSTOMER, "email": "ava.n@example.com"}, CTX)
    assert edited.content_hash() != first.content_hash()


def test_customer_and_item_timestamps_and_names_under_their_alternatives() -> None:
    shopper = mapping.map_record(
        Stream.CUSTOMERS,
        renamed({**CUSTOMER, "created_timestamp": "2025-10-01T17:04:05.000Z"}, created_timestamp="created_at")
        | {"updated_at": "2026-03-10T15:04:05.000Z"},
        CTX,
    )
    product = mapping.map_record(
        Stream.INVENTORY,
        renamed({**ITEM, "item_category": "Flower"}, item_name="name", item_category="category")
        | {"updated_at": "2026-03-01T10:00:00Z"},
        CTX,
    )

    assert isinstance(shopper, Shopper) and isinstance(product, Product)
    assert shopper.source_updated_at == datetime(2026, 3, 10, 15, 4, 5, tzinfo=UTC)
    assert shopper.pos_created_at == datetime(2025, 10, 1, 17, 4, 5, tzinfo=UTC)
    assert (product.name, product.category) == ("Blue Dream 3.5g", "Flower")
    assert product.source_updated_at == datetime(2026, 3, 1, 10, tzinfo=UTC)
