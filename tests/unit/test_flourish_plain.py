"""Flourish retail orders mapped from plain data (functions.pull_flourish.plain): the same sale, the same error, as the
payload model's path gives, for every order; the money taken in integers only where it is the Decimals' value."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, field_validator, model_validator

from functions.core.connector import MappingContext, MappingError
from functions.core.layout import Stream, Vendor
from functions.core.models import dollars_to_cents
from functions.pull_flourish import mapping, plain
from functions.pull_flourish.plain import MAX_DOLLARS, MAX_QUANTITY, UnprovenError, cents, milli, units

CTX = MappingContext(
    tenant="t1",
    vendor=Vendor.FLOURISH,
    credential_id="c1",
    timezone="America/Los_Angeles",
    extra={mapping.FACILITY_TIMEZONES: {"101": "America/Los_Angeles", "7": "America/Denver"}},
)


# --- the numbers ----------------------------------------------------------------------------------------------------


def decimal_of(value: int | float) -> Decimal:
    """What a payload model's Decimal field holds for a JSON number (pydantic-core: Decimal(str(float)))."""
    return Decimal(value) if isinstance(value, int) else Decimal(str(value))


def test_every_cent_amount_is_taken_as_its_decimal() -> None:
    # Given every amount of whole cents around zero, and some near the largest taken, as floats and as ints
    amounts = [c / 100 for c in range(-30_000, 30_001)]
    amounts += [(MAX_DOLLARS * 100 - k) / 100 for k in range(2_000)] + [-(MAX_DOLLARS * 100 - k) / 100 for k in (0, 7)]
    amounts += [0.0, -0.0, 12345678.91, 999999999.99, 0.07, 0.3, 2.68]
    # When each is taken in units, Then it is exactly its Decimal, and its cents are dollars_to_cents'
    for value in [*amounts, *range(-300, 301), MAX_DOLLARS, -MAX_DOLLARS]:
        assert Decimal(units(value)) / 100_000 == decimal_of(value), value
        assert cents(units(value)) == dollars_to_cents(decimal_of(value)), value


@pytest.mark.parametrize(
    "value",
    [0.001, 1.005, 10.999, 1e-7, 5e-324, 0.1 + 0.2, 1 / 3, 2.675000001, MAX_DOLLARS + 0.01, 1e300, -1e16, 10**9 + 1],
)
def test_an_amount_that_is_not_whole_cents_within_the_bound_is_refused(value: float) -> None:
    with pytest.raises(UnprovenError):
        units(value)


@settings(max_examples=400, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(min_value=-(2**70), max_value=2**70))
def test_any_number_taken_is_its_decimal(value: float) -> None:
    for take, scale in ((units, 100_000), (milli, 1_000)):
        try:
            taken = take(value)
        except UnprovenError:
            continue
        assert Decimal(taken) / scale == decimal_of(value)


def test_quantities_in_thousandths_are_their_decimals_and_finer_ones_are_refused() -> None:
    for q in range(-5_000, 5_001):
        assert milli(q / 1000) == q and Decimal(q) / 1000 == decimal_of(q / 1000)
    assert milli(MAX_QUANTITY) == MAX_QUANTITY * 1000 and milli(-MAX_QUANTITY + 0.5) == -MAX_QUANTITY * 1000 + 500
    for refused in (0.0005, 1.2345, MAX_QUANTITY + 1, MAX_QUANTITY + 0.5, 1e-9):
        with pytest.raises(UnprovenError):
            milli(refused)


def test_cents_round_half_away_from_zero_as_dollars_to_cents_does() -> None:
    for amount in range(-100_000, 100_001, 7):
        assert cents(amount) == dollars_to_cents(Decimal(amount) / 100_000), amount
    for amount in (500, -500, 1500, -1500, 499, -499, 1499, -1501):
        assert cents(amount) == dollars_to_cents(Decimal(amount) / 100_000)


# --- the sale -------------------------------------------------------------------------------------------------------


@contextmanager
def model_path_only() -> Iterator[None]:
    with (
        mock.patch.object(mapping, "plain_retail_order", return_value=None),
        mock.patch.object(mapping, "plain_customer", return_value=None),
    ):
        yield


def outcome(item: dict[str, Any], stream: Stream) -> tuple[str, Any]:
    try:
        record = mapping.map_record(stream, item, CTX)
    except MappingError as exc:
        return "error", (exc.pos_id, exc.reason, exc.field)
    return "record", (record.stored_form(), repr(record.model_dump()))  # repr: types too (1 and 1.0 differ)


def same_as_the_model_path(item: dict[str, Any], stream: Stream = Stream.SALES) -> bool:
    """Map `item` both ways and compare; True when the plain path gave the record (it was not handed to the model)."""
    taken: list[Any] = []
    real_sale, real_customer = mapping._plain_sale, mapping.plain_customer

    def sale(order: dict[str, Any], ctx: MappingContext) -> Any:
        taken.append(real_sale(order, ctx))
        return taken[-1]

    def customer(item: Any) -> Any:
        fields = real_customer(item)
        if fields is not None:
            taken.append(fields)
        return fields

    with mock.patch.object(mapping, "_plain_sale", sale), mock.patch.object(mapping, "plain_customer", customer):
        new = outcome(item, stream)
    with model_path_only():
        old = outcome(item, stream)
    assert new == old
    return bool(taken)


AMOUNTS = st.one_of(
    st.integers(min_value=0, max_value=40_000).map(lambda c: c / 100),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=40_000).map(lambda c: c / 1000),
    st.sampled_from([0.0, -0.0, 1e-5, 1.5e-7, 10.0, -3.25, 2**53, MAX_DOLLARS + 0.5, 1e20]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["10.99", "", " ", True]),
)
QUANTITIES = st.one_of(
    st.integers(min_value=-3, max_value=5),
    st.integers(min_value=-3000, max_value=5000).map(lambda q: q / 1000),
    st.sampled_from([0.5, -0.0, 1e-4, 2.5e-7, 1e7, "2", None, False]),
)
TEXT = st.one_of(st.none(), st.sampled_from(["", "  ", "Flower", " Kiva ", "Loyalty $5 Off"]), st.integers(0, 99))
TIMES = st.one_of(
    st.sampled_from(
        ["2026-05-01T18:30:00Z", "2026-05-01T11:30:00", "2026-05-02T01:00:00-07:00", "2026-03-08T02:30:00"]
    ),
    st.sampled_from([None, "", " ", "yesterday", 5]),
)


DISCOUNT_VALUES = (0.0, 0.5, 1.0, 5.4, 7.13, 10.6)


@st.composite
def orders(draw: st.DrawFn) -> dict[str, Any]:
    """Retail orders as Flourish may send them: mostly whole cents, the discount double-count quirk on some lines and
    totals (so that each branch of the money rules is taken), and any field now and then odd, missing or invalid."""

    def maybe(value: Any, odd: st.SearchStrategy[Any]) -> Any:
        return draw(odd) if draw(st.integers(0, 24)) == 0 else value

    lines = []
    paid_cents = discount_cents = 0
    for n in range(draw(st.integers(0, 4))):
        qty = draw(st.sampled_from([1, 1, 2, 3, -1, 0.5, 1.25]))
        unit_cents = draw(st.integers(0, 9_000))
        listed = round(qty * unit_cents)
        discounts = [
            {
                "discount_id": maybe(draw(st.sampled_from([14, 15, "D-3"])), TEXT),
                "discount_name": maybe(draw(st.sampled_from(["Loyalty $5 Off", "loyalty 10%  OFF "])), TEXT),
                "discount_value": maybe(draw(st.sampled_from(DISCOUNT_VALUES)), AMOUNTS | st.none()),
            }
            for _ in range(draw(st.sampled_from([0, 0, 1, 2])))
        ]
        off = sum(round(d["discount_value"] * 100) for d in discounts if d["discount_value"] in DISCOUNT_VALUES)
        total = draw(st.sampled_from([listed, listed - off, listed - off + 1, listed + 3]))
        if qty > 0:
            paid_cents, discount_cents = paid_cents + total, discount_cents + off
        line: dict[str, Any] = {
            "id": 900000 + n,
            "item_id": maybe(3000 + n, TEXT),
            "sku": maybe(f"FLO-{n}", TEXT),
            "item_name": maybe("Blue Dream 3.5g", TEXT),
            "brand": maybe("Evergreen", TEXT),
            "item_category": maybe("Flower", TEXT),
            "order_qty": maybe(qty, QUANTITIES),
            "unit_price": maybe(unit_cents / 100, AMOUNTS | st.none()),
            "total_price": maybe(total / 100, AMOUNTS | st.none()),
            "refunded_qty": maybe(draw(st.sampled_from([0, 0, 0, 0, 0, 0, 0.0, 1])), st.sampled_from([None, 2, 0.5])),
            "applied_discounts": maybe(discounts, st.sampled_from([None, [], [{"id": 9, "name": "Ten", "amount": 1}]])),
        }
        if draw(st.integers(0, 9)) == 0:
            del line[draw(st.sampled_from(sorted(line)))]
        lines.append(line)
    tax = round(paid_cents * 0.1)
    total_cents = paid_cents + tax + draw(st.sampled_from([0, -discount_cents, -discount_cents + 1, 1, -1, 7]))
    order: dict[str, Any] = {
        "id": maybe(500001, st.sampled_from(["", None, "A-1", 0])),
        "customer_id": maybe(10394, TEXT),
        "facility_id": maybe(101, st.sampled_from([None, 7, "999", ""])),
        "order_status": maybe("Completed", st.sampled_from(["Cancelled", " packed ", "Refunded", None, "Canceled"])),
        "order_payment_status": maybe("Paid", st.sampled_from(["Refunded", "Partially Refunded", None, " refunded"])),
        "order_timestamp": maybe("2026-05-01T18:30:00.136Z", TIMES),
        "created_timestamp": maybe("2026-05-01T18:29:00Z", TIMES),
        "completed_timestamp": maybe("2026-05-01T18:40:00.5Z", TIMES),
        "last_updated_timestamp": maybe("2026-05-01T18:40:00.5Z", TIMES),
        "subtotal": maybe(paid_cents / 100, AMOUNTS | st.none()),
        "total_discounts": maybe(discount_cents / 100, AMOUNTS | st.none()),
        "total_tax": maybe(tax / 100, AMOUNTS | st.none()),
        "delivery_fee": maybe(0.0, AMOUNTS | st.none()),
        "total_price": maybe(total_cents / 100, AMOUNTS | st.none()),
        "total_refunded": maybe(draw(st.sampled_from([0.0, 0, 5.25, total_cents / 100, 1e4])), AMOUNTS | st.none()),
        "order_lines": maybe(lines, st.sampled_from([None, [], "lines"])),
    }
    if draw(st.integers(0, 4)) == 0:
        del order[draw(st.sampled_from(sorted(order)))]
    if draw(st.integers(0, 5)) == 0:  # not completed (yet), or completed under the alternative name
        order["completed_timestamp"] = None
        if draw(st.booleans()):
            order["completed_at"] = draw(TIMES)
    return order


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders())
def test_any_order_maps_to_the_sale_or_the_error_the_model_path_gives(order: dict[str, Any]) -> None:
    same_as_the_model_path(order)


def test_orders_as_the_simulator_sends_them_are_mapped_from_plain_data(flourish_sales: list[dict[str, Any]]) -> None:
    # Given the Flourish simulator's retail orders (completed, cancelled, discounted, returns)
    # When each is mapped, Then the sale (stored JSON, every field) is the model path's, and every order was taken from
    # plain data, a pending one (no completion time) too
    assert all(same_as_the_model_path(order) for order in flourish_sales)
    assert any(order["completed_timestamp"] is None for order in flourish_sales) and len(flourish_sales) > 100


def test_the_plain_path_refuses_what_the_model_alone_reads() -> None:
    # Given an order the simulator would send, and variants only the model's own validators read
    base = {
        "id": 1,
        "order_status": "Completed",
        "order_timestamp": "2026-05-01T18:30:00Z",
        "created_timestamp": "2026-05-01T18:30:00Z",
        "completed_timestamp": "2026-05-01T18:30:00Z",
        "last_updated_timestamp": "2026-05-01T18:30:00Z",
        "subtotal": 10.0,
        "total_discounts": 0,
        "total_tax": 1,
        "total_price": 11.0,
        "total_refunded": 0,
        "order_lines": [
            {"item_name": "A", "brand": "B", "item_category": "C", "order_qty": 1, "total_price": 10, "refunded_qty": 0}
        ],
    }
    assert plain.plain_validator(mapping.FlourishRetailOrder, mapping.IDENTITY_ON)(base) is not None
    for change in ({"total_price": "11.00"}, {"total_tax": True}, {"total_price": None, "total": 11.0}):
        # When one of them is validated as plain data, Then it is refused (the model reads it)
        assert mapping.plain_retail_order({**base, **change}) is None
        same_as_the_model_path({**base, **change})


@pytest.fixture(scope="module")
def flourish_items() -> list[tuple[Stream, dict[str, Any]]]:
    from tests.mapping_corpus import raw_pages, seeded_connector

    with seeded_connector(Vendor.FLOURISH, 400) as (connector, _):
        return [(stream, item) for stream, page in raw_pages(connector) for item in page.items]


@pytest.fixture
def flourish_sales(flourish_items: list[tuple[Stream, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [item for stream, item in flourish_items if stream is Stream.SALES]


# --- the shopper ----------------------------------------------------------------------------------------------------


@st.composite
def customers(draw: st.DrawFn) -> dict[str, Any]:
    """Customers as Flourish documents them (no SMS consent fields), with the ASSUMED fields and their alternative
    names now and then, and any field now and then odd, blank, missing or invalid."""

    def maybe(value: Any, odd: st.SearchStrategy[Any]) -> Any:
        return draw(odd) if draw(st.integers(0, 7)) == 0 else value

    odd_text: st.SearchStrategy[Any] = st.sampled_from([None, "", "  ", 7, True, " x ", [], {}])
    times = st.sampled_from(["2026-02-05T15:22:44.885Z", "2026-02-05T07:22:44", "", " ", None, "soon", 3])
    flags = st.sampled_from([True, False, None, "", " ", "yes", "no", 1, 0, "maybe"])
    customer: dict[str, Any] = {
        "id": maybe(10001, st.sampled_from(["", None, "C-1", 0, 1.5])),
        "first_name": maybe("Iris", odd_text),
        "last_name": maybe("Scott", odd_text),
        "email": maybe("Iris.Scott@Example.com", odd_text),
        "phone": maybe("425-662-8320", st.sampled_from(["+1 (206) 555-0100", "1234567890", "", None, 4256628320])),
        "dob": maybe("1967-01-14", st.sampled_from(["1967-01-14T00:00:00Z", "", None, "Tuesday", "1967-13-01", 0])),
        "state": maybe("WA", st.sampled_from(["Washington", " wa ", "", None, "XX", 5])),
        "patient_id": maybe(None, st.sampled_from(["MMJ-1", "", 0, 77])),
        "address": maybe(
            [{"id": 1, "address_line_1": "8353 Pine St", "city": "Tacoma", "state": "WA", "postcode": "98379"}],
            st.sampled_from([None, [], {"postcode": "98101"}, [{"postcode": ""}, {"postcode": 98101}], "home"]),
        ),
        "created_timestamp": maybe("2026-02-05T15:22:44.885Z", times),
        "last_updated_timestamp": maybe("2026-04-16T19:10:40.885Z", times),
    }
    for name in ("sms_opt_in", "sms_opt_out", "opt_in_sms", "text_opt_out", "created_at", "updated_at"):
        if draw(st.integers(0, 5)) == 0:
            customer[name] = draw(times if name.endswith("_at") else flags)
    if draw(st.integers(0, 4)) == 0:
        del customer[draw(st.sampled_from(sorted(customer)))]
    if draw(st.integers(0, 9)) == 0:
        customer["addresses"] = customer.pop("address", None)
    return customer


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(customers())
def test_any_customer_maps_to_the_shopper_or_the_error_the_model_path_gives(customer: dict[str, Any]) -> None:
    same_as_the_model_path(customer, Stream.CUSTOMERS)


def test_customers_as_the_simulator_sends_them_are_validated_as_plain_data(
    flourish_items: list[tuple[Stream, dict[str, Any]]],
) -> None:
    # Given the Flourish simulator's customers (its documented shape: no SMS consent fields under any name)
    customers = [item for stream, item in flourish_items if stream is Stream.CUSTOMERS]
    # When each is mapped, Then the shopper is the model path's and every one was validated as plain data
    assert all(same_as_the_model_path(customer, Stream.CUSTOMERS) for customer in customers) and len(customers) > 50


class _Line(BaseModel):
    amount: Decimal


class _Checked(BaseModel):
    lines: list[_Line]

    @model_validator(mode="after")
    def _lines_add_up(self) -> _Checked:
        return self


class _LinesChecked(BaseModel):
    lines: list[_Line]

    @field_validator("lines")
    @classmethod
    def _some(cls, value: list[_Line]) -> list[_Line]:
        return value


class _Bounded(BaseModel):
    amount: Decimal = Field(ge=0)


@pytest.mark.parametrize("model", [_Checked, _LinesChecked, _Bounded])
def test_a_model_whose_plain_reading_could_differ_is_refused_at_import(model: type[BaseModel]) -> None:
    # A validator given the model (or its nested models) would be given dicts; a bounded Decimal its JSON number
    with pytest.raises(TypeError):
        plain.plain_schema(model, {})
