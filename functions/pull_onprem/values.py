"""Value rules both on-premises mappings share: store-zone timestamps, money, points and safe validation reasons."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from functions.core import zones
from functions.core.connector import MappingError
from functions.core.models import dollars_to_cents
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


def cents(value: Decimal | None) -> int:
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
