"""Profitek's and Auphan's sales and inventory pages read their amounts as floats in one call
(functions.pull_onprem.values.amounts_as_floats) and map to exactly what the per-item path's decimals give: the same
cents (rounded half away from zero, ties and all), quantities, refunds, stored JSON and digests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.core.layout import Stream, Vendor
from functions.core.models import dollars_to_cents
from functions.pull_onprem.auphan import mapping as auphan_mapping
from functions.pull_onprem.profitek import mapping as profitek_mapping
from functions.pull_onprem.values import amounts_as_floats, cents
from tests.mapping_corpus import raw_pages, seeded_connector
from tests.unit.test_vendor_page_fastpath import SHAPES, _page_with_raw, _same_as_item_by_item

# An amount's field, by the path `_page_with_raw` takes, in a sale's header, its first line and its first tender.
AMOUNT_PATHS = {
    (Vendor.PROFITEK, Stream.SALES): [("Total",), ("SubTotal",), ("Lines", 0, "Qty"), ("Lines", 0, "ExtPrice"),
                                      ("Lines", 0, "Discount"), ("Tenders", 0, "Amount")],
    (Vendor.PROFITEK, Stream.INVENTORY): [("Price",), ("QtyOnHand",)],
    (Vendor.AUPHAN, Stream.SALES): [("total",), ("refundedAmount",), ("lines", 0, "quantity"), ("lines", 0, "amount"),
                                    ("lines", 0, "discount"), ("payments", 0, "amount")],
    (Vendor.AUPHAN, Stream.INVENTORY): [("retailPrice",), ("onHand",)],
}  # fmt: skip

# Ties at the half cent (1.005 is a float a little below it, its text exactly on it), signs, zeros, the bounds of
# the fast reading (1e9 dollars, 1e15, 15 digits of text), exponents, and texts the plain-text reading refuses.
EDGE_AMOUNTS = (
    "1.005",
    "2.675",
    "0.125",
    "-0.005",
    "-1.005",
    "21.89",
    "0.1",
    "-0",
    "-0.0",
    "0.0049999999999999",
    "999999999.995",
    "1000000000.005",
    "99999999999.995",
    "1e15",
    "1000000000000001",
    "-1e15",
    "1.5e2",
    "1E-2",
    "5e-324",
    '"1.005"',
    '"0.125"',
    '"-0.005"',
    '"-0.00"',
    '"000000001.50"',
    '"123456789.123456"',
    '"1234567890.5"',
    '"12.000"',
    '"-3"',
    '"1.0000005"',
    '" 1.00"',
    '"1e2"',
    '"+1.00"',
    '".5"',
    '"1."',
    '"\u0661.00"',
)


@pytest.fixture(scope="module")
def pulled() -> dict[Vendor, Any]:
    found = {}
    for vendor in (Vendor.PROFITEK, Vendor.AUPHAN):
        with seeded_connector(vendor, 60, page_size=50) as (connector, ctx):
            found[vendor] = (connector, ctx, list(raw_pages(connector)))
    return found


def test_cents_of_a_float_are_the_cents_of_its_decimal_text() -> None:
    # Ties, both signs, and floats on either side of the fast reading's bound
    for text in ("1.005", "2.675", "0.125", "-0.125", "1.115", "-2.5e-3", "999999999.995", "1e9", "1000000000.01"):
        value = float(text)
        assert cents(value) == dollars_to_cents(Decimal(repr(value))), text
    assert (cents(1.005), cents(0.125), cents(-0.125), cents(21.89), cents(-0.0)) == (101, 13, -13, 2189, 0)
    assert type(cents(19.9)) is int


@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.floats(min_value=-1e10, max_value=1e10),
        st.decimals(min_value=-(10**9), max_value=10**9, places=3).map(float),
        st.integers(min_value=-(10**12), max_value=10**12).map(lambda n: n / 1000),
    )
)
def test_generated_floats_give_the_cents_of_their_decimal_text(value: float) -> None:
    # The per-item path reads a JSON float as the decimal of its shortest text (one past 28 digits of cents raises)
    assert _outcome(cents, value) == _outcome(dollars_to_cents, Decimal(repr(value)))


def _outcome(convert: Any, value: Any) -> Any:
    try:
        return convert(value)
    except ArithmeticError as exc:
        return type(exc)


@pytest.mark.parametrize(("vendor", "stream"), list(AMOUNT_PATHS), ids=lambda x: x.value)
def test_simulator_pages_hold_float_amounts_and_map_as_item_by_item(
    pulled: Any, vendor: Vendor, stream: Stream
) -> None:
    connector, ctx, pages = pulled[vendor]
    bodies = [page.body for s, page in pages if s is stream and page.items]
    assert bodies
    for body in bodies:
        # Given a page of the simulator, When it is validated in one call
        validated = SHAPES[vendor].validators[stream](body)
        # Then it is taken, its amounts are floats (Auphan's sales: in their page form, dicts keeping the simulator's
        # two-place texts, values.page_form)
        assert validated is not None
        first = validated.payloads[0]
        fields = first if type(first) is dict else vars(first)
        names = ("sub_total", "subtotal", "price", "retail_price")
        expected = str if (vendor, stream) == (Vendor.AUPHAN, Stream.SALES) else float
        assert [type(fields[name]) for name in names if name in fields] == [expected]
        # And it maps to the records, stored JSON and digests the per-item path gives
        assert _same_as_item_by_item(vendor, connector, stream, body, ctx)


@pytest.mark.parametrize(("vendor", "stream"), list(AMOUNT_PATHS), ids=lambda x: x.value)
def test_edge_amounts_map_as_item_by_item(pulled: Any, vendor: Vendor, stream: Stream) -> None:
    connector, ctx, pages = pulled[vendor]
    page = next(page for s, page in pages if s is stream and page.items)
    lines = "lines" if vendor is Vendor.AUPHAN else "Lines"
    item = next(i for i in SHAPES[vendor].items(stream, page.body) if stream is not Stream.SALES or i[lines])
    taken = 0
    for path in AMOUNT_PATHS[vendor, stream]:
        for raw in EDGE_AMOUNTS:
            # Given a one-item page with that JSON text as an amount, When a pull maps it
            # Then its records and quarantine entries are the per-item path's (taken in one call or refused whole)
            try:
                taken += _same_as_item_by_item(vendor, connector, stream, _page_with_raw(vendor, item, path, raw), ctx)
            except AssertionError as exc:
                raise AssertionError(f"{'.'.join(map(str, path))}={raw}") from exc
    assert taken > len(EDGE_AMOUNTS)


def test_only_unbounded_decimals_are_read_as_floats() -> None:
    # A bounded decimal (loyalty points) and models without decimals are left as they are
    assert amounts_as_floats(profitek_mapping.ProfitekLoyaltyBalance) is profitek_mapping.ProfitekLoyaltyBalance
    assert amounts_as_floats(auphan_mapping.AuphanCustomer) is auphan_mapping.AuphanCustomer
    # And the page model of sales is the payload model's subclass, with the same fields in the same order and aliases
    for page_model, model in (
        (profitek_mapping.PAGE_MODELS[Stream.SALES], profitek_mapping.ProfitekTransaction),
        (auphan_mapping.PAGE_MODELS[Stream.SALES], auphan_mapping.AuphanSale),
    ):
        assert issubclass(page_model, model) and page_model is not model
        assert [(n, f.alias, f.default) for n, f in page_model.model_fields.items()] == [
            (n, f.alias, f.default) for n, f in model.model_fields.items()
        ]
