"""The per-record shortcuts of the mappings give what the general code gives, and copy no item that needs no change."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import partial
from typing import Any, cast

import pytest
from pydantic import ValidationError

from functions.core.layout import Vendor
from functions.core.models import (
    CanonicalRecord,
    Discount,
    LoyaltyBalance,
    Product,
    Shopper,
    dollars_to_cents,
    record_of,
)
from functions.pull_flourish.mapping import FlourishCustomer
from functions.pull_thsuite.mapping import ThsuitePatient


def before(model: type[Any], name: str) -> Callable[[Any], Any]:
    """A model's before-validator, called as pydantic calls it."""
    return cast(Callable[[Any], Any], getattr(model, name))


def decimal_cents(value: Any) -> int:
    """dollars_to_cents as it was: every value through str() and Decimal."""
    return int((Decimal(str(value)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_dollars_to_cents_is_the_decimal_conversion_for_every_kind_of_amount() -> None:
    rng = random.Random(5)
    values: list[Any] = [0, 1, -1, 10**20, -(10**20), 0.005, 1.005, 2.675, -2.675, "1.005", "-0.005", "7", "1e2"]
    values += [Decimal("1.005"), Decimal("-0.005"), Decimal("1E+2"), Decimal("12.3456789"), Decimal("-0")]
    for _ in range(3000):
        cents = rng.randint(-(10**7), 10**7)
        values += [
            cents,
            cents / 100,
            cents / 1000,
            f"{cents / 100:.2f}",
            Decimal(cents) / 1000,
            Decimal(cents).scaleb(-2),
        ]
    for value in values:
        assert dollars_to_cents(value) == decimal_cents(value), repr(value)


@pytest.mark.parametrize("bad", [True, "abc", "", None, Decimal("NaN")])
def test_dollars_to_cents_fails_as_before(bad: Any) -> None:
    with pytest.raises((InvalidOperation, ValueError, TypeError)) as new:
        dollars_to_cents(bad)
    with pytest.raises(type(new.value)):
        decimal_cents(bad)


def test_a_flourish_item_is_copied_only_when_a_field_takes_an_alternative() -> None:
    complete = {
        "id": "c1",
        "created_timestamp": "2026-01-01T00:00:00.000Z",
        "last_updated_timestamp": "2026-01-02T00:00:00.000Z",
        "sms_opt_out": False,
        "sms_opt_in": True,
    }
    assert set(FlourishCustomer.ALTERNATIVES) <= set(complete)
    assert before(FlourishCustomer, "_take_alternatives")(complete) is complete
    legacy = {**complete, "sms_opt_in": " ", "opt_in_sms": True}
    del legacy["sms_opt_out"]
    taken = before(FlourishCustomer, "_take_alternatives")(legacy)
    assert taken is not legacy and taken["sms_opt_in"] is True and taken["sms_opt_out"] is None
    assert legacy["sms_opt_in"] == " " and "sms_opt_out" not in legacy  # the item itself is left as read


def test_a_thsuite_item_without_blanks_is_not_copied_and_one_with_blanks_is() -> None:
    clean = {"id": "p1", "first_name": "Ann", "updated_at": "2026-01-01T00:00:00Z"}
    assert before(ThsuitePatient, "_blank_is_absent")(clean) is clean
    blank = {**clean, "email": "  "}
    fixed = before(ThsuitePatient, "_blank_is_absent")(blank)
    assert fixed is not blank and fixed["email"] is None and blank["email"] == "  "


def decimal_outcome(convert: Callable[[Any], int], value: Any) -> tuple[str, Any]:
    try:
        return "cents", convert(value)
    except Exception as exc:  # noqa: BLE001 - the failure itself is what is compared
        return type(exc).__name__, str(exc)


def test_dollars_to_cents_of_hostile_decimals_is_the_quantized_conversion_or_its_error() -> None:
    values: list[Any] = [Decimal(x) for x in ("NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "-0", "0E+5", "0E-40")]
    values += [
        Decimal(f"{sign}{digits}E{exp:+d}")
        for sign in ("", "-")
        for digits in ("1", "5", "15", "25", "9" * 28)
        for exp in range(-32, 30, 3)
    ]
    values += [Decimal(f"0.{'0' * n}5") for n in range(0, 30, 4)] + [Decimal("1.005"), Decimal("-2.675")]
    values += [Decimal(10) ** n - Decimal("0.005") for n in (24, 25, 26, 27)]
    values += [float("nan"), float("inf"), 1e300, -1e-300, "1e30", "-1E+26", "9.999999999999999999999999995E+24"]
    for value in values:
        assert decimal_outcome(dollars_to_cents, value) == decimal_outcome(decimal_cents, value), repr(value)


def record_outcome(build: Callable[[], Any]) -> Any:
    try:
        record = build()
    except ValidationError as exc:
        return "error", exc.title, exc.errors(include_url=False, include_context=False), str(exc)
    return "record", type(record), record.model_dump(), record.model_fields_set, record.stored_form()


def test_record_of_is_the_model_called_with_the_fields_records_and_errors_alike() -> None:
    # Given each record kind's fields, valid and with a value its validator refuses or converts
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    origin = {"tenant": "t", "vendor": Vendor.POSABIT, "credential_id": "c", "pos_id": "1", "source_updated_at": moment}
    cases: list[tuple[type[CanonicalRecord], dict[str, Any]]] = [
        (Shopper, {**origin, "phone": "+12065550147", "email": "A@B.COM", "birth_date": "2000-01-02"}),
        (Shopper, {**origin, "phone": "206-555-0147"}),
        (Shopper, {**origin, "pos_created_at": datetime(2026, 1, 2)}),
        (Shopper, {**origin, "pos_id": ""}),
        (Product, {**origin, "name": "N", "price_cents": "12", "quantity_on_hand": 2}),
        (Product, {**origin, "name": None}),
        (LoyaltyBalance, {**origin, "customer_pos_id": "1", "points": 3, "as_of": moment}),
        (LoyaltyBalance, {**origin, "customer_pos_id": "1", "points": 1.5, "as_of": moment, "extra": 1}),
        (Discount, {**origin, "name": "10% off", "discount_type": "percent", "value": "10"}),
        (Discount, {**origin, "name": "x", "discount_type": "coupon"}),
    ]
    for model, fields in cases:
        # Then record_of gives exactly what the model's constructor gives
        assert record_outcome(partial(record_of, model, dict(fields))) == record_outcome(partial(model, **fields))
    assert record_outcome(lambda: record_of(Shopper, {**origin, "phone": "206"}))[0] == "error"
