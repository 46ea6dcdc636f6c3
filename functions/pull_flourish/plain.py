"""Flourish payloads validated as plain dicts, their money as exact whole numbers: the common case of a payload model.

A payload model instance costs more than its fields (about 14 µs of a retail order's 22 to validate it, measured:
four frozen models an order, and a Decimal per amount made through its text by pydantic-core). `plain_validator`
compiles the model's own fast schema (functions.core.payload_fastpath) with each model read as a dict of the same
fields and each Decimal field as the JSON number it was sent as (an int, or a finite float: every value the Decimal
field takes from JSON but text). What it refuses, the model decides, as before. The money is then taken exactly in
integers (`units`, `milli`) where the number is proven to be the Decimal's value, and refused otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaValidator

from functions.core.payload_fastpath import IdentityOn, fast_schema

# The number a JSON document holds where a Decimal field reads it: an int that is no bool, or a finite float. The
# Decimal field makes Decimal(value) of the one and Decimal(repr(value)) of the other.
_JSON_NUMBER: Final[dict[str, Any]] = {
    "type": "union",
    "mode": "left_to_right",
    "choices": [{"type": "int", "strict": True}, {"type": "float", "strict": True, "allow_inf_nan": False}],
}


# A before-validator's replacement in a plain schema: given the `function-before` schema, the schema that takes the
# values it hands on unchanged and refuses the rest.
Replacement = Callable[[dict[str, Any]], dict[str, Any]]


def plain_validator(
    model: type[BaseModel],
    identity_on: Mapping[Callable[[Any], Any], IdentityOn],
    replacements: Mapping[Callable[[Any], Any], Replacement] | None = None,
) -> Callable[[Any], dict[str, Any] | None]:
    """The fields `fast_validator(model, identity_on)` would give, as dicts (nested models too) holding each Decimal
    field's JSON number; None for an item it refuses (the model's to validate: its values, or its error). A
    before-validator in `replacements` (by its function) is replaced by what that gives for it."""
    validate = SchemaValidator(plain_schema(model, identity_on, replacements or {})).validate_python

    def plain(data: Any) -> dict[str, Any] | None:
        try:
            fields: dict[str, Any] = validate(data)
        except ValidationError:
            return None
        return fields

    return plain


def plain_schema(
    model: type[BaseModel],
    identity_on: Mapping[Callable[[Any], Any], IdentityOn],
    replacements: Mapping[Callable[[Any], Any], Replacement] | None = None,
) -> Any:
    """`fast_schema(model, identity_on)` with every model a typed dict of the same fields (its config kept) and every
    Decimal field the JSON number it reads. Raises TypeError for what it cannot carry over unchanged (a Decimal
    with constraints, a model with a validator or init of its own): a programming error, found at import."""
    return _plain(fast_schema(model, identity_on), replacements or {})


_MODEL_KEYS: Final = frozenset({"type", "cls", "schema", "config", "ref", "metadata", "custom_init", "root_model"})
_FIELDS_KEYS: Final = frozenset({"type", "fields", "model_name", "computed_fields"})
_FIELD_KEYS: Final = frozenset({"type", "schema", "validation_alias", "serialization_alias", "frozen", "metadata"})


def _plain(schema: Any, replacements: Mapping[Callable[[Any], Any], Replacement]) -> Any:
    if isinstance(schema, list):
        return [_plain(part, replacements) for part in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind == "decimal":
        if set(schema) != {"type"}:
            raise TypeError("a Decimal field with constraints cannot be read as its JSON number")
        return _JSON_NUMBER
    if kind == "model":
        return _typed_dict(schema, replacements)
    if kind in ("function-after", "function-wrap") and _holds_model(schema["schema"]):
        raise TypeError("a validator that is given a model instance cannot be given a dict instead")
    replaced = _replaced(schema, replacements)
    if replaced is not schema:
        return _plain(replaced, replacements)
    return {key: _plain(value, replacements) for key, value in schema.items()}


def _holds_model(schema: Any) -> bool:
    if isinstance(schema, list):
        return any(_holds_model(part) for part in schema)
    return isinstance(schema, dict) and (
        schema.get("type") == "model" or any(_holds_model(value) for value in schema.values())
    )


def _replaced(schema: dict[str, Any], replacements: Mapping[Callable[[Any], Any], Replacement]) -> dict[str, Any]:
    if schema.get("type") != "function-before":
        return schema
    function = schema["function"].get("function")
    replace = replacements.get(getattr(function, "__func__", function))  # a model's validator: a bound classmethod
    return schema if replace is None else replace(schema)


def _typed_dict(model: dict[str, Any], replacements: Mapping[Callable[[Any], Any], Replacement]) -> dict[str, Any]:
    fields = _replaced(model["schema"], replacements)  # the model's own before-validator, when replaced
    if (
        set(model) - _MODEL_KEYS
        or model.get("custom_init")
        or model.get("root_model")
        or fields.get("type") != "model-fields"
        or set(fields) - _FIELDS_KEYS
        or fields.get("computed_fields")
    ):
        raise TypeError(f"{model['cls'].__name__}: only a model of plain fields can be read as a dict")
    typed: dict[str, Any] = {}
    for name, field in fields["fields"].items():
        if set(field) - _FIELD_KEYS:
            raise TypeError(f"{model['cls'].__name__}.{name}: a field of that kind cannot be read as a dict's")
        inner = _plain(field["schema"], replacements)
        entry = {"type": "typed-dict-field", "schema": inner, "required": inner.get("type") != "default"}
        if field.get("validation_alias") is not None:
            entry["validation_alias"] = field["validation_alias"]
        typed[name] = entry
    typed_dict = {"type": "typed-dict", "fields": typed, "config": model.get("config", {})}
    return typed_dict if "ref" not in model else {**typed_dict, "ref": model["ref"]}


class UnprovenError(Exception):
    """A number whose Decimal the integer arithmetic cannot be proven to follow: the model's path decides."""


# Amounts are taken within a billion dollars and quantities within a million units (any real order's are): there a
# float's spacing is far below a hundred-thousandth, which the proof below needs, and Decimal's 28 digits hold every
# product and sum of them exactly, as integers do.
MAX_DOLLARS: Final = 10**9
MAX_QUANTITY: Final = 10**6
UNITS_PER_CENT: Final = 1000  # `units` are 10^-5 dollars: a quantity's thousandths times a price's cents


def units(value: int | float) -> int:
    """The exact value of `Decimal(value)` (an int) or `Decimal(repr(value))` (a float) in 10^-5 dollars, for an
    amount of whole cents. A float is taken when it is the float nearest some whole number of cents c / 100: its
    shortest repr is then that amount (no shorter text falls within half its spacing of it, at these magnitudes),
    so the Decimal is exactly c / 100. Raises UnprovenError for any other (more decimals, beyond MAX_DOLLARS)."""
    if value.__class__ is int:
        if -MAX_DOLLARS <= value <= MAX_DOLLARS:
            return value * 100 * UNITS_PER_CENT
        raise UnprovenError
    if -MAX_DOLLARS <= value <= MAX_DOLLARS:
        cents = round(value * 100)
        if cents / 100 == value:  # exact ints over 100, correctly rounded: the float nearest cents / 100
            return cents * UNITS_PER_CENT
    raise UnprovenError


def milli(value: int | float) -> int:
    """The exact value of a quantity's Decimal in thousandths (as `units` proves a cent amount's), or UnprovenError."""
    if value.__class__ is int:
        if -MAX_QUANTITY <= value <= MAX_QUANTITY:
            return value * 1000
        raise UnprovenError
    if -MAX_QUANTITY <= value <= MAX_QUANTITY:
        thousandths = round(value * 1000)
        if thousandths / 1000 == value:
            return thousandths
    raise UnprovenError


def cents(amount: int) -> int:
    """`dollars_to_cents` of an amount in units: whole cents, half away from zero (ROUND_HALF_UP)."""
    if amount >= 0:
        return (amount + UNITS_PER_CENT // 2) // UNITS_PER_CENT
    return -((UNITS_PER_CENT // 2 - amount) // UNITS_PER_CENT)
