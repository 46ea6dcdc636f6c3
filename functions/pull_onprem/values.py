"""Value rules both on-premises mappings share: store-zone timestamps, money, points and safe validation reasons."""

from __future__ import annotations

import copy
import types
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Annotated, Any, Protocol, TypeVar, Union, cast, get_args, get_origin
from zoneinfo import ZoneInfo

from pydantic import BaseModel, GetPydanticSchema, ValidationError, create_model

from functions.core import zones
from functions.core.connector import MappingError
from functions.core.models import AppliedDiscount, applied_discount, dollars_to_cents
from functions.core.page_fastpath import model_as_typed_dict
from functions.core.payload_fastpath import IdentityOn, fast_validator

PayloadT = TypeVar("PayloadT", bound=BaseModel)

EARLIEST_BIRTH_YEAR = 1900


@lru_cache(maxsize=128)
def store_zone(name: str) -> ZoneInfo:
    """The store's IANA zone; an unknown name is a mapping error, never a silent UTC."""
    iana = zones.to_iana(name)
    if iana is None:
        raise MappingError(None, f"unknown store time zone {name.strip()[:64]!r}")
    return zones.zone(iana)


def to_utc(value: datetime, zone: ZoneInfo) -> datetime:
    """A naive timestamp is the store's wall-clock time; one with an offset is converted to UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


class LineDiscount(Protocol):
    @property
    def discount_id(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...


class DiscountedLine(Protocol):
    @property
    def discounts(self) -> Sequence[LineDiscount]: ...


def line_discounts(lines: Sequence[DiscountedLine]) -> tuple[AppliedDiscount, ...]:
    """Each discount a sale's lines name (by id or name), once, in the order they first name it."""
    found = [
        applied_discount(d.discount_id, d.name) for line in lines for d in line.discounts if d.discount_id or d.name
    ]
    return tuple(dict.fromkeys(found)) if found else ()


def page_line_discounts(lines: Sequence[Mapping[str, Any]]) -> tuple[AppliedDiscount, ...]:
    """`line_discounts` of a sale's lines in their page form (`page_form`: dicts)."""
    found = [
        applied_discount(d["discount_id"], d["name"])
        for line in lines
        for d in line["discounts"]
        if d["discount_id"] or d["name"]
    ]
    return tuple(dict.fromkeys(found)) if found else ()


def cents(value: Decimal | float | None) -> int:
    """Exact cents, half away from zero, of a decimal or of a page's amount read as a float (`amounts_as_floats`).

    A float's decimal value D (its shortest text, which the decimal the per-item path reads equals) is within half
    an ulp of it: below 1e9 dollars that and the product's rounding move 100·D by less than 2e-5 from `scaled`, so
    when `scaled` is within a quarter of a whole number, that number is 100·D rounded (either way, no tie). Any
    other float is converted through its text, as the per-item path's decimal is."""
    if type(value) is float:
        scaled = value * 100
        if -1e11 < scaled < 1e11:
            whole = round(scaled)
            if -0.25 <= scaled - whole <= 0.25:
                return whole
    return 0 if value is None else dollars_to_cents(value)


def whole_points(value: Decimal) -> int:
    """Point balances are whole numbers; a fractional balance keeps its whole part (points are never rounded up)."""
    return int(value.to_integral_value(rounding=ROUND_DOWN))


def validation_reason(exc: ValidationError) -> str:
    """Names the fields and what is wrong with them, never the (possibly personal) values."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'record'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    )


def parse_payload(
    model: type[PayloadT], item: dict[str, Any], item_id: Callable[[dict[str, Any]], str | None]
) -> PayloadT:
    """Validate one vendor item, turning a pydantic error into a MappingError that quarantines just this item."""
    validate = _FAST_VALIDATORS.get(model)
    if validate is None:  # one per payload model: a fixed handful
        validate = _FAST_VALIDATORS[model] = fast_validator(model, IDENTITY_ON)
    try:
        return cast(PayloadT, validate(item))
    except ValidationError as exc:
        raise MappingError(item_id(item), validation_reason(exc)) from None


def text_or_none(value: Any) -> str | None:
    """A vendor id or code as text; blanks become None."""
    if value.__class__ is str:  # the common case first
        return value.strip() or None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def text_field(value: Any) -> Any:
    """Free text that may arrive as a number (phones, postal codes); blanks become None."""
    if value.__class__ is str:  # the common case first
        return value.strip() or None
    return text_or_none(value) if isinstance(value, str | int) and not isinstance(value, bool) else value


def optional_birth_date(value: Any) -> Any:
    """Optional: an unreadable birth date or a pre-1900 placeholder (.NET's 0001-01-01) is dropped, not quarantined."""
    if value is None or isinstance(value, date):
        return value
    try:
        parsed = date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        return None
    return parsed if parsed.year >= EARLIEST_BIRTH_YEAR else None


def list_or_empty(value: Any) -> Any:
    return [] if value is None else value


# The before-validators above that hand on unchanged (or, ints, turn into text) what nearly every item sends: a
# payload is validated without calling them unless one of its values needs them (payload_fastpath).
IDENTITY_ON: Mapping[Callable[[Any], Any], IdentityOn] = MappingProxyType(
    {text_field: "id_text", list_or_empty: "strict"}
)
_FAST_VALIDATORS: dict[type[BaseModel], Callable[[Any], BaseModel]] = {}


# A page's amount (`amounts_as_floats`): a JSON number whose whole values are exact as floats, as a float; a plain
# decimal text of at most 15 digits (a float's shortest text then has its value), as the float nearest it; anything
# else as the model's decimal reads it. Each is a value the decimal takes too, so a page holds what the model takes.
_FLOAT_AMOUNT: dict[str, Any] = {"type": "float", "strict": True, "ge": -1e15, "le": 1e15}
_TEXT_AMOUNT: dict[str, Any] = {
    "type": "chain",
    "steps": [{"type": "str", "strict": True, "pattern": r"\A-?[0-9]{1,9}(?:\.[0-9]{1,6})?\z"}, {"type": "float"}],
}


def amounts_as_floats(model: type[PayloadT], *, texts_first: bool = False) -> type[PayloadT]:
    """`model` for a page's one call (functions.core.page_fastpath): a subclass whose every decimal without bounds (its
    own, and those of the models it holds) takes a JSON number or a plain decimal text as a float (`texts_first`: a
    vendor that sends amounts as text). A decimal from a float cost a text, a Decimal and a check to validate and
    half a microsecond to turn into cents. Only for a model whose mapping reads its decimals only through `cents`,
    `float` and comparisons, which give for such a float exactly what they give for the decimal."""
    choices = [_TEXT_AMOUNT, _FLOAT_AMOUNT] if texts_first else [_FLOAT_AMOUNT, _TEXT_AMOUNT]
    schema = {"type": "union", "mode": "left_to_right", "choices": [*choices, {"type": "decimal"}]}
    amount = Annotated[float | Decimal, GetPydanticSchema(lambda _source, _handler: schema)]
    return _with_amounts(model, amount, {})


def _with_amounts(model: type[PayloadT], amount: Any, built: dict[type, type]) -> type[PayloadT]:
    if model not in built:
        overrides: dict[str, Any] = {}
        for name, field in model.model_fields.items():
            if field.metadata and Decimal in (field.annotation, *get_args(field.annotation)):
                continue  # a bounded decimal (its bounds are the field's metadata): left as the model reads it
            annotation = _amounts_in(field.annotation, amount, built)
            if annotation is not field.annotation:
                changed = copy.copy(field)
                changed.annotation = annotation
                overrides[name] = (annotation, changed)
        built[model] = (
            create_model(model.__name__, __base__=model, __module__=model.__module__, **overrides)
            if overrides
            else model
        )
    return cast(type[PayloadT], built[model])


def _amounts_in(annotation: Any, amount: Any, built: dict[type, type]) -> Any:
    """`annotation` with `amount` for each Decimal in it (in a union or a list) and each model holding one rebuilt."""
    if annotation is Decimal:
        return amount
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _with_amounts(annotation, amount, built)
    args = get_args(annotation)
    changed = tuple(_amounts_in(arg, amount, built) for arg in args)
    if changed == args:
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        return Union[changed]  # noqa: UP007 - built from a tuple
    if get_origin(annotation) is list:
        return list[changed]  # type: ignore[valid-type]
    raise TypeError(f"{annotation!r} holds a decimal that amounts_as_floats cannot replace")


# A money amount as a page sends it (Auphan: a decimal text of two places, ASSUMED): its cents need no float or
# Decimal (`money_cents`). At most 13 whole digits: every such text is one the amount's decimal takes.
MONEY_TEXT = r"\A-?[0-9]{1,13}\.[0-9]{2}\z"
_MONEY_TEXT: dict[str, Any] = {"type": "str", "strict": True, "pattern": MONEY_TEXT}
# A timestamp as a page sends it: date, time to the second, up to six digits of fraction (the model keeps six), then
# "Z", an offset of less than a day, or none (the store's wall clock).
STAMP_TEXT = (
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?\z"
)
_STAMP_TEXT: dict[str, Any] = {"type": "str", "strict": True, "pattern": STAMP_TEXT}


def page_form(schema: Any, money: frozenset[str], stamps: frozenset[str] = frozenset()) -> Any:
    """An `amounts_as_floats` model's compiled schema as its pages are validated with (functions.core.page_fastpath's
    `rewrite`): each model an object of the same fields (a dict, no instance to build), and each amount of a field
    named in `money` taking a decimal text of two places (MONEY_TEXT) first, kept as that text (`money_cents`), and
    each timestamp of a field named in `stamps` taking an ISO 8601 text of STAMP_TEXT's form first, kept as that text
    (`stamp_utc`); anything else is read as before. It takes exactly what the model takes, with the same values but
    for those texts. An Auphan sale's instances (sale, lines, payments) were about 30% of its page validation
    (measured). Raises TypeError for a schema it has no such form of."""
    if isinstance(schema, list):
        return [page_form(part, money, stamps) for part in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if isinstance(kind, str) and (kind.startswith("function-") or kind.startswith("definition")):
        raise TypeError(f"a {kind} schema would read the page form's dicts and texts")
    if kind == "model":
        return model_as_typed_dict(
            schema, lambda name, field: _field_form(name, page_form(field, money, stamps), money, stamps)
        )
    return {
        key: value if key in ("function", "serialization", "metadata") else page_form(value, money, stamps)
        for key, value in schema.items()
    }


def _field_form(name: str, schema: Any, money: frozenset[str], stamps: frozenset[str]) -> Any:
    if name in money:
        return _money_first(schema)
    if name in stamps:
        return _stamp_first(schema)
    return schema


def _money_first(schema: Any) -> Any:
    """A money field's schema (its amount, maybe nullable, maybe with a default) with MONEY_TEXT tried first."""
    kind = schema.get("type")
    if kind in ("default", "nullable"):
        return {**schema, "schema": _money_first(schema["schema"])}
    choices = schema.get("choices")
    if kind != "union" or not choices or choices[-1] != {"type": "decimal"} or _FLOAT_AMOUNT not in choices:
        raise TypeError("a money field of the page form must be an amounts_as_floats amount")
    return {**schema, "choices": [_MONEY_TEXT, *choices]}


def _stamp_first(schema: Any) -> Any:
    """A timestamp field's schema (maybe nullable, maybe with a default) with STAMP_TEXT tried first."""
    kind = schema.get("type")
    if kind in ("default", "nullable"):
        return {**schema, "schema": _stamp_first(schema["schema"])}
    if kind != "datetime" or set(schema) - {"type", "microseconds_precision", "metadata", "serialization"}:
        raise TypeError("a timestamp field of the page form must be a datetime without constraints")
    return {"type": "union", "mode": "left_to_right", "choices": [_STAMP_TEXT, schema]}


def stamp_utc(value: str | datetime, zone: ZoneInfo) -> datetime:
    """`to_utc` of a timestamp of a `page_form` page: its text (STAMP_TEXT) read by `datetime.fromisoformat`, which
    gives for such a text the datetime the model reads (or raises ValueError where the model may not: the item is
    then mapped by the per-item path), one in UTC directly; any other timestamp by `to_utc`. A pydantic datetime's
    `astimezone` cost about 0.5 µs, `fromisoformat` about 0.16 (measured)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
        if value.tzinfo is UTC:
            return value
    return to_utc(value, zone)


def money_cents(value: str | Decimal | float) -> int:
    """Exact cents of an amount of a `page_form` page: its text of two places (MONEY_TEXT) as a whole number of
    cents, as `cents` gives for the decimal of that text; any other amount by `cents`."""
    if isinstance(value, str):  # not cast(): a call per amount
        return int(value.replace(".", ""))
    return cents(value)
