"""What a POS that writes naive local wall-clock times can express, for comparing with its timestamped twin.

A naive wall time in the hour a DST fall-back repeats names two instants; the mappings take the earlier one
(Python's `fold=0`). So a record whose true instant is the second occurrence comes back one hour early from a
naive page, and no mapping can do better. `as_wall_clock` turns the truth into exactly that, and nothing else:
for every other instant it is the identity, so comparing with it is as strict as comparing with the truth.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def wall_clock_instant(value: datetime, zone: ZoneInfo) -> datetime:
    """The instant a naive local rendering of `value` is read back as (earlier occurrence when ambiguous)."""
    if value.tzinfo is None:
        return value
    naive = value.astimezone(zone).replace(tzinfo=None)
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _convert(value: Any, zone: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        return wall_clock_instant(value, zone)
    if isinstance(value, BaseModel):
        return as_wall_clock(value, zone)
    if isinstance(value, list | tuple):
        return type(value)(_convert(v, zone) for v in value)
    return value


def as_wall_clock(record: M, zone: ZoneInfo | str) -> M:
    """`record` with every timestamp (nested ones too) as a naive wall clock in `zone` can express it."""
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    changes = {name: _convert(getattr(record, name), zone) for name in type(record).model_fields}
    return record.model_copy(update={k: v for k, v in changes.items() if v != getattr(record, k)})
