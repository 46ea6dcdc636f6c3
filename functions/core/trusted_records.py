"""A canonical Sale built from values already of the types its validator would return, without validating again.

Every mapping builds a Sale from values it has just made: ints from validated payloads, aware UTC datetimes, text,
line dicts of exact types. pydantic's validator of the Sale (with its SaleLines) checks each of them once more and
hands each on unchanged; that check was about a fifth of a THSuite receipt's mapping. `trusted_sale` looks at each
value's exact type instead (a subclass, a coercible value, a naive or non-UTC datetime, a missing or unknown field:
anything the validator would convert, refuse, or might treat differently) and returns None for the validator to
decide. The checks are derived from the models' own fields when this module is imported; a field of a kind they do
not cover (a new validator, a constraint, a type) raises TypeError there, so a change to the models cannot be skipped
silently.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import MinLen
from pydantic import AfterValidator, BaseModel, PlainSerializer
from pydantic_core import PydanticUndefined

from functions.core import models

Check = Callable[[Any], bool]
_set = object.__setattr__


def _is_utc_datetime(value: Any) -> bool:
    return value.__class__ is datetime and value.tzinfo is UTC


def _utf8(text: str) -> bool:
    """Whether the text is valid Unicode (no lone surrogate): a constrained str schema refuses it otherwise."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _exact(kind: type) -> Check:
    def check(value: Any) -> bool:
        return value.__class__ is kind

    return check


def _nullable(inner: Check) -> Check:
    def check(value: Any) -> bool:
        return value is None or inner(value)

    return check


def _check_of(name: str, annotation: Any, metadata: list[Any]) -> Check:
    """What the validator hands on unchanged for a field of this annotation, as a check of a value's exact type."""
    utc = False
    min_length = 0
    for meta in metadata:
        if isinstance(meta, AfterValidator) and meta.func is models._utc:
            utc = True
        elif isinstance(meta, MinLen):
            min_length = meta.min_length
        elif not (isinstance(meta, PlainSerializer) and meta.when_used == "json"):  # serializing only
            raise TypeError(f"{name}: {meta!r} is not covered by the trusted construction")
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        choices = [choice for choice in get_args(annotation) if choice is not type(None)]
        if len(choices) != 1 or len(get_args(annotation)) != 2 or utc or min_length:
            raise TypeError(f"{name}: {annotation!r} is not covered by the trusted construction")
        return _nullable(_check_of(name, choices[0], []))
    if origin is Literal:
        allowed = frozenset(get_args(annotation))
        classes = frozenset(type(choice) for choice in allowed)
        return lambda value: value.__class__ in classes and value in allowed
    if annotation is datetime and utc:
        return _is_utc_datetime
    if annotation is str and min_length:
        return lambda value: value.__class__ is str and len(value) >= min_length and _utf8(value)
    if annotation in (str, int, float, bool, date) or (isinstance(annotation, type) and issubclass(annotation, Enum)):
        if utc or min_length:
            raise TypeError(f"{name}: {annotation!r} with a constraint is not covered by the trusted construction")
        return _exact(annotation)
    raise TypeError(f"{name}: {annotation!r} is not covered by the trusted construction")


def _checks(model: type[BaseModel], *, skip: frozenset[str] = frozenset()) -> dict[str, Check]:
    decorators = model.__pydantic_decorators__
    if any(
        (decorators.validators, decorators.field_validators, decorators.root_validators, decorators.model_validators)
    ):
        raise TypeError(f"{model.__name__} has validators of its own: not covered by the trusted construction")
    if model.model_config.get("extra") != "forbid" or model.__pydantic_post_init__ or model.__private_attributes__:
        raise TypeError(f"{model.__name__}'s configuration is not covered by the trusted construction")
    return {
        name: _check_of(name, info.annotation, list(info.metadata))
        for name, info in model.model_fields.items()
        if name not in skip
    }


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if info.default_factory is not None:
            raise TypeError(f"{model.__name__}.{name}: a default factory is not covered by the trusted construction")
        found[name] = info.default
    return found


def _tuple_of(model: type[BaseModel], name: str) -> None:
    annotation = models.Sale.model_fields[name].annotation
    if annotation != tuple[model, ...]:  # type: ignore[valid-type]
        raise TypeError(f"Sale.{name}: {annotation!r} is not covered by the trusted construction")


_SALE_LISTS = frozenset({"lines", "tenders", "discounts"})
_SALE_CHECKS = _checks(models.Sale, skip=_SALE_LISTS)
_SALE_DEFAULTS = _defaults(models.Sale)
_LINE_CHECKS = tuple(_checks(models.SaleLine).items())
_LINE_FIELDS = frozenset(name for name, _ in _LINE_CHECKS)
_tuple_of(models.SaleLine, "lines")
_tuple_of(models.AppliedDiscount, "discounts")
if models.Sale.model_fields["tenders"].annotation != tuple[dict[str, Any], ...]:
    raise TypeError("Sale.tenders is not covered by the trusted construction")
if _checks(models.AppliedDiscount).keys() != models.AppliedDiscount.model_fields.keys():
    raise TypeError("AppliedDiscount is not covered by the trusted construction")
if any(model.model_config.get("revalidate_instances", "never") != "never" for model in (models.Sale, models.SaleLine)):
    raise TypeError("a Sale built again from its instances is not covered by the trusted construction")


def _line(fields: Any) -> models.SaleLine | None:
    if fields.__class__ is not dict or fields.keys() != _LINE_FIELDS:
        return None
    for name, check in _LINE_CHECKS:
        if not check(fields[name]):
            return None
    line = object.__new__(models.SaleLine)
    _set(line, "__dict__", {name: fields[name] for name, _ in _LINE_CHECKS})  # in field order, as validated
    _set(line, "__pydantic_fields_set__", set(_LINE_FIELDS))
    _set(line, "__pydantic_extra__", None)
    _set(line, "__pydantic_private__", None)
    return line


def trusted_sale(fields: dict[str, Any]) -> models.Sale | None:
    """The Sale `Sale.model_validate(fields)` gives, built without validating, when each value is already exactly
    what the validator would hand on (lines as dicts of every SaleLine field); None otherwise."""
    values: dict[str, Any] = {}
    for name, default in _SALE_DEFAULTS.items():
        if name in fields:
            value = fields[name]
            check = _SALE_CHECKS.get(name)
            if check is not None:
                if not check(value):
                    return None
            elif value.__class__ is not tuple:
                return None
            values[name] = value
        elif default is PydanticUndefined:
            return None  # a required field is missing: the validator says so
        else:
            values[name] = default
    if len(fields) != sum(1 for name in fields if name in _SALE_DEFAULTS):
        return None  # an unknown field: the validator refuses it
    lines = []
    for fields_of_line in values["lines"]:
        line = _line(fields_of_line)
        if line is None:
            return None
        lines.append(line)
    values["lines"] = tuple(lines)
    for tender in values["tenders"]:
        if tender.__class__ is not dict or any(key.__class__ is not str for key in tender):
            return None
    values["tenders"] = tuple(dict(tender) for tender in values["tenders"])  # the validator's copies
    for discount in values["discounts"]:
        if discount.__class__ is not models.AppliedDiscount:
            return None
    sale = object.__new__(models.Sale)
    _set(sale, "__dict__", values)
    _set(sale, "__pydantic_fields_set__", set(fields))
    _set(sale, "__pydantic_extra__", None)
    _set(sale, "__pydantic_private__", None)
    return sale
