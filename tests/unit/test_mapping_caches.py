"""The mapping's caches of values built before (applied discounts, cents) give exactly what building them again
gives: the same values, the same errors."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, cast

import pytest
from pydantic import ValidationError

from functions.core import models
from functions.core.models import (
    AppliedDiscount,
    applied_discount,
    dollars_to_cents,
)


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
        assert dollars_to_cents(value) == reference_cents(value)
    assert Decimal("1.1") in models._CENTS_OF[Decimal] and 2.675 in models._CENTS_OF[float]


def reference_cents(value: Any) -> int:
    return int((Decimal(str(value)) * 100).quantize(Decimal(1), rounding="ROUND_HALF_UP"))


@pytest.mark.parametrize("bad", [Decimal("sNaN"), Decimal("NaN"), float("nan"), float("inf"), True], ids=repr)
def test_cents_of_amounts_that_are_no_number_fail_as_the_conversion_does_every_time(bad: Any) -> None:
    with pytest.raises((InvalidOperation, ValueError, TypeError, OverflowError)) as reference:
        reference_cents(bad)
    for _ in range(2):  # nothing cached for them
        with pytest.raises(type(reference.value)):
            dollars_to_cents(bad)


def test_the_cents_caches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_CENTS_OF", {Decimal: {}, float: {}})
    for n in range(models._CACHE_LIMIT + 5):
        assert dollars_to_cents(n / 8) == reference_cents(n / 8)
    assert 0 < len(models._CENTS_OF[float]) <= models._CACHE_LIMIT
