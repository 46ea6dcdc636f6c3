"""`sale_with_lines` (a sale's lines validated by the Sale's own validator) gives exactly the Sale, stored JSON and
digest that the line-by-line construction `Sale(**fields, lines=(SaleLine(**line), ...))` gives, and raises what it
raises, for every vendor's simulator sales and for hostile values."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, cast

import pytest
from pydantic import ValidationError

from functions.core.layout import Stream, Vendor
from functions.core.models import Sale, SaleLine, SaleLineFields, sale_of, sale_with_lines
from tests.mapping_corpus import simulator_pages


def line_by_line(lines: tuple[dict[str, Any], ...], fields: dict[str, Any]) -> Sale:
    """The construction every mapping used before `sale_with_lines`."""
    return Sale(**fields, lines=tuple(SaleLine(**line) for line in lines))


def with_lines(lines: tuple[dict[str, Any], ...], fields: dict[str, Any]) -> Sale:
    return sale_with_lines(lines=cast(tuple[SaleLineFields, ...], lines), **dict(fields))


def from_one_dict(lines: tuple[dict[str, Any], ...], fields: dict[str, Any]) -> Sale:
    """`sale_of`: the same construction from one dict of the sale's fields and its lines."""
    return sale_of({**fields, "lines": lines})


def split(sale: Sale) -> tuple[tuple[dict[str, Any], ...], dict[str, Any]]:
    fields = {name: getattr(sale, name) for name in type(sale).model_fields if name != "lines"}
    return tuple(line.model_dump() for line in sale.lines), fields


@pytest.fixture(scope="module")
def simulator_sales() -> dict[Vendor, list[Sale]]:
    sales: dict[Vendor, list[Sale]] = {}
    for vendor in Vendor:
        found = sales.setdefault(vendor, [])
        for connector, stream, items, ctx in simulator_pages(vendor, 100):
            if stream is Stream.SALES:
                for item in items:
                    record = connector.map_record(stream, item, ctx)
                    assert isinstance(record, Sale)
                    found.append(record)
    return sales


@pytest.mark.parametrize("vendor", list(Vendor))
def test_every_simulator_sale_is_the_same_sale_same_json_same_digest(
    vendor: Vendor, simulator_sales: dict[Vendor, list[Sale]]
) -> None:
    sales = simulator_sales[vendor]
    assert sales and any(sale.lines for sale in sales)
    for sale in sales:
        lines, fields = split(sale)
        old, new = line_by_line(lines, fields), with_lines(lines, fields)
        assert new == old == sale
        assert new.stored_form() == old.stored_form()
        assert all(type(line) is SaleLine for line in new.lines)


GOOD_LINE: dict[str, Any] = {
    "product_id": "p1",
    "sku": "SKU-1",
    "name": "Gelato 7g",
    "category": "Flower",
    "brand": "Cookies",
    "quantity": 2.0,
    "total_cents": 3300,
    "discount_cents": 0,
    "is_refund": False,
}
GOOD_SALE: dict[str, Any] = {
    "tenant": "t",
    "vendor": Vendor.POSABIT,
    "credential_id": "c",
    "pos_id": "s1",
    "location_id": "3221",
    "source_updated_at": "2026-04-17T09:35:33.864Z",
    "customer_pos_id": None,
    "ordered_at": "2026-04-17T09:34:41Z",
    "local_date": "2026-04-17",
    "timezone": "America/Los_Angeles",
    "status": "completed",
    "subtotal_cents": 3000,
    "discount_cents": 0,
    "tax_cents": 300,
    "total_cents": 3300,
    "refunded_cents": 0,
    "tenders": ({"method": "cash", "amount_cents": 3300},),
}


def line_with(**changes: Any) -> dict[str, Any]:
    line = {**GOOD_LINE, **changes}
    return {k: v for k, v in line.items() if v is not _DROP}


_DROP = object()

# Values coerced (the same way by both) and values refused, on a line and on the sale.
LINE_CASES: list[dict[str, Any]] = [
    line_with(),
    line_with(quantity=2),
    line_with(quantity="2.5"),
    line_with(quantity=float("inf")),
    line_with(quantity=float("nan")),
    line_with(quantity=-1.0, total_cents=-3300, is_refund=True),
    line_with(quantity="abc"),
    line_with(quantity=None),
    line_with(quantity=True),
    line_with(total_cents=1.5),
    line_with(total_cents="12"),
    line_with(total_cents=10**30),
    line_with(total_cents=True),
    line_with(is_refund="maybe"),
    line_with(is_refund="yes"),
    line_with(name=" \u00e9\u200b\U0001f600 "),
    line_with(name=7),
    line_with(sku=""),
    line_with(product_id=_DROP),
    line_with(total_cents=_DROP),
    {**GOOD_LINE, "unknown": 1},
]
SALE_CASES: list[dict[str, Any]] = [
    {},
    {"status": "bogus"},
    {"pos_id": ""},
    {"source_updated_at": "2026-04-17T09:35:33"},
    {"total_cents": "lots"},
    {"extra_field": 1},
]


def outcome(build: Callable[[], Sale]) -> tuple[str, Any]:
    try:
        sale = build()
    except ValidationError as exc:
        return "error", (exc.title, exc.errors(include_url=False, include_context=False), str(exc))
    return "sale", (sale, sale.stored_form())


@pytest.mark.parametrize("sale_change", SALE_CASES, ids=lambda c: ",".join(c) or "good-sale")
def test_hostile_lines_and_sales_give_the_same_sale_or_the_same_error(sale_change: dict[str, Any]) -> None:
    fields = {**GOOD_SALE, **sale_change}
    for index, line in enumerate(LINE_CASES):
        for lines in ((line,), (GOOD_LINE, line), ()):
            old = outcome(partial(line_by_line, lines, fields))
            new = outcome(partial(with_lines, lines, fields))
            if old[0] == "sale" and new[0] == "sale":
                same_nan = [str(x.quantity) for x in old[1][0].lines] == [str(x.quantity) for x in new[1][0].lines]
                assert new[1][1] == old[1][1] and same_nan, (index, sale_change)
            else:
                assert new == old, (index, sale_change)


@pytest.mark.parametrize("vendor", list(Vendor))
def test_sale_of_one_dict_is_the_same_sale_same_json_same_digest(
    vendor: Vendor, simulator_sales: dict[Vendor, list[Sale]]
) -> None:
    for sale in simulator_sales[vendor]:
        lines, fields = split(sale)
        old, new = line_by_line(lines, fields), from_one_dict(lines, fields)
        assert new == old == sale
        assert new.stored_form() == old.stored_form()
        assert all(type(line) is SaleLine for line in new.lines)


@pytest.mark.parametrize("sale_change", SALE_CASES, ids=lambda c: ",".join(c) or "good-sale")
def test_sale_of_hostile_lines_and_sales_give_the_same_sale_or_the_same_error(sale_change: dict[str, Any]) -> None:
    fields = {**GOOD_SALE, **sale_change}
    for index, line in enumerate(LINE_CASES):
        for lines in ((line,), (GOOD_LINE, line), ()):
            old = outcome(partial(line_by_line, lines, fields))
            new = outcome(partial(from_one_dict, lines, fields))
            if old[0] == "sale" and new[0] == "sale":
                same_nan = [str(x.quantity) for x in old[1][0].lines] == [str(x.quantity) for x in new[1][0].lines]
                assert new[1][1] == old[1][1] and same_nan, (index, sale_change)
            else:
                assert new == old, (index, sale_change)
