"""The mapping's cache of applied discounts built before gives exactly what building them again gives: the same
values, the same errors."""

from __future__ import annotations

from typing import cast

import pytest
from pydantic import ValidationError

from functions.core import models
from functions.core.models import (
    AppliedDiscount,
    applied_discount,
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


def test_the_applied_discount_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_discounts", {})
    for n in range(models._CACHE_LIMIT + 5):
        assert applied_discount(str(n), None) == AppliedDiscount(pos_discount_id=str(n))
    assert 0 < len(models._discounts) <= models._CACHE_LIMIT
