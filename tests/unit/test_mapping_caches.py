"""The mapping's caches of values built before (sale lines, applied discounts, cents) give exactly what building them
again gives: the same records, the same stored JSON, the same errors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, cast

import pytest
from pydantic import ValidationError

from functions.core import models
from functions.core.layout import Vendor
from functions.core.models import (
    LINE_FIELDS,
    AppliedDiscount,
    Sale,
    SaleLine,
    SaleLineFields,
    applied_discount,
    dollars_to_cents,
    sale_with_lines,
)

MOMENT = datetime(2026, 4, 17, 9, 34, 41, tzinfo=UTC)
SALE: dict[str, Any] = {
    "tenant": "t",
    "vendor": Vendor.POSABIT,
    "credential_id": "c",
    "pos_id": "s1",
    "source_updated_at": MOMENT,
    "ordered_at": MOMENT,
    "local_date": date(2026, 4, 17),
    "timezone": "America/Los_Angeles",
    "status": "completed",
    "subtotal_cents": 3300,
    "total_cents": 3300,
}
LINE: dict[str, Any] = {
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


def sale_of(*lines: dict[str, Any]) -> Sale:
    return sale_with_lines(lines=cast(tuple[SaleLineFields, ...], lines), **dict(SALE))


def line_by_line(*lines: dict[str, Any]) -> Sale:
    return Sale(**SALE, lines=tuple(SaleLine(**line) for line in lines))


def test_the_line_fields_are_the_sale_lines_fields_in_order() -> None:
    assert LINE_FIELDS == tuple(SaleLine.model_fields) == tuple(SaleLineFields.__annotations__)


def test_a_line_seen_before_is_the_same_sale_line_and_the_same_sale() -> None:
    first, again = sale_of(LINE), sale_of(dict(LINE), {**LINE, "quantity": 1.0})
    assert again.lines[0] is first.lines[0]  # built once
    assert again == line_by_line(LINE, {**LINE, "quantity": 1.0})
    assert again.stored_form() == line_by_line(LINE, {**LINE, "quantity": 1.0}).stored_form()


class Text(StrEnum):
    FLOWER = "Flower"


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": -0.0},  # equal to 0.0 as a key, written "-0.0"
        {"quantity": 2},  # equal to 2.0, an int
        {"total_cents": 3300.0},
        {"discount_cents": False},  # equal to 0
        {"is_refund": 0},  # equal to False
        {"category": Text.FLOWER},  # equal to "Flower", a subclass
    ],
    ids=repr,
)
def test_a_line_equal_to_one_seen_before_but_not_the_same_values_is_built_from_its_own(change: dict[str, Any]) -> None:
    # Given the line seen before, and a zero quantity (cached nowhere: -0.0 == 0.0)
    sale_of(LINE, {**LINE, "quantity": 0.0})
    changed = {**LINE, **change}
    # When a line whose values equal its own but are of another type (or sign) is mapped
    outcome = outcome_of(lambda: sale_of(changed))
    # Then it is what the line-by-line construction gives, record (and stored JSON) or error
    assert outcome == outcome_of(lambda: line_by_line(changed))


def outcome_of(build: Any) -> Any:
    try:
        sale = build()
    except ValidationError as exc:
        return "error", exc.errors(include_url=False)
    return "sale", sale, sale.stored_form(), [type(v) for line in sale.lines for v in line.__dict__.values()]


@pytest.mark.parametrize(
    "line",
    [
        {**LINE, "total_cents": 10**16},  # out of range: the sale's error names lines.0.total_cents
        {**LINE, "extra": 1},
        {k: v for k, v in LINE.items() if k != "brand"},
        {**LINE, "quantity": float("nan")},
    ],
    ids=["out_of_range", "extra_key", "missing_key", "nan"],
)
def test_a_line_that_is_not_cached_gives_the_line_by_line_sale_or_error(line: dict[str, Any]) -> None:
    assert outcome_of(lambda: sale_of(line))[:2] == outcome_of(lambda: line_by_line(line))[:2]


def test_the_line_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_lines", {})
    for n in range(models._CACHE_LIMIT + 5):
        sale_of({**LINE, "total_cents": n})
    assert 0 < len(models._lines) <= models._CACHE_LIMIT


def test_an_applied_discount_is_built_once_for_the_same_text() -> None:
    first = applied_discount("d1", "Ten off")
    assert applied_discount("d1", "Ten off") is first
    assert first == AppliedDiscount(pos_discount_id="d1", name="Ten off")
    assert applied_discount(None, "x") == AppliedDiscount(name="x")
    with pytest.raises(ValidationError) as new:
        applied_discount(cast(str, 7), "x")
    with pytest.raises(ValidationError) as old:
        AppliedDiscount(pos_discount_id=cast(str, 7), name="x")
    assert new.value.errors() == old.value.errors()


def test_cents_of_amounts_seen_before_are_their_own() -> None:
    # A float and the Decimal of its exact value are equal but convert to other cents: 1.005 is 1.00499999...
    assert dollars_to_cents(1.005) == 101
    exact = Decimal(1.005)  # noqa: RUF032 - the float's exact value is the point
    assert exact == 1.005 and dollars_to_cents(exact) == 100
    assert dollars_to_cents(1.005) == 101
    for value in (-0.0, 0.0, Decimal("-0"), Decimal("1.10"), Decimal("1.1"), 2.675, 2.675, Decimal("2.675")):
        expected = (Decimal(str(value)) * 100).quantize(Decimal(1), rounding="ROUND_HALF_UP")
        assert dollars_to_cents(value) == int(expected)
    assert Decimal("1.1") in models._CENTS_OF[Decimal] and 2.675 in models._CENTS_OF[float]


@pytest.mark.parametrize("bad", [Decimal("sNaN"), Decimal("NaN"), float("nan"), float("inf"), True])
def test_cents_of_amounts_that_are_no_number_fail_as_before_every_time(bad: Any) -> None:
    for _ in range(2):
        with pytest.raises((InvalidOperation, ValueError, TypeError, OverflowError)):
            dollars_to_cents(bad)
