"""Store time zones as POSes name them, made IANA: the Windows zone table, the US state table, one conversion."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Windows zone ids (what .NET / SQL Server store software reports) of the zones where cannabis is sold in North
# America, with the IANA zone CLDR's windowsZones maps each to for its territory "001".
WINDOWS_ZONES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Hawaiian Standard Time": "Pacific/Honolulu",
        "Alaskan Standard Time": "America/Anchorage",
        "Pacific Standard Time": "America/Los_Angeles",
        "Mountain Standard Time": "America/Denver",
        "US Mountain Standard Time": "America/Phoenix",
        "Central Standard Time": "America/Chicago",
        "Canada Central Standard Time": "America/Regina",
        "Eastern Standard Time": "America/New_York",
        "US Eastern Standard Time": "America/Indiana/Indianapolis",
        "Atlantic Standard Time": "America/Halifax",
        "Newfoundland Standard Time": "America/St_Johns",
        "SA Western Standard Time": "America/Puerto_Rico",
        "UTC": "UTC",
    }
)

# When a store's own zone cannot be read, its state's zone is the next best answer (the zone most of the state
# keeps; split states use their most populous part). A fallback only: callers log when they use it.
US_STATE_ZONES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "AK": "America/Anchorage",
        "AL": "America/Chicago",
        "AR": "America/Chicago",
        "AZ": "America/Phoenix",
        "CA": "America/Los_Angeles",
        "CO": "America/Denver",
        "CT": "America/New_York",
        "DC": "America/New_York",
        "DE": "America/New_York",
        "FL": "America/New_York",
        "GA": "America/New_York",
        "HI": "Pacific/Honolulu",
        "IA": "America/Chicago",
        "ID": "America/Boise",
        "IL": "America/Chicago",
        "IN": "America/Indiana/Indianapolis",
        "KS": "America/Chicago",
        "KY": "America/New_York",
        "LA": "America/Chicago",
        "MA": "America/New_York",
        "MD": "America/New_York",
        "ME": "America/New_York",
        "MI": "America/Detroit",
        "MN": "America/Chicago",
        "MO": "America/Chicago",
        "MS": "America/Chicago",
        "MT": "America/Denver",
        "NC": "America/New_York",
        "ND": "America/Chicago",
        "NE": "America/Chicago",
        "NH": "America/New_York",
        "NJ": "America/New_York",
        "NM": "America/Denver",
        "NV": "America/Los_Angeles",
        "NY": "America/New_York",
        "OH": "America/New_York",
        "OK": "America/Chicago",
        "OR": "America/Los_Angeles",
        "PA": "America/New_York",
        "PR": "America/Puerto_Rico",
        "RI": "America/New_York",
        "SC": "America/New_York",
        "SD": "America/Chicago",
        "TN": "America/Chicago",
        "TX": "America/Chicago",
        "UT": "America/Denver",
        "VA": "America/New_York",
        "VT": "America/New_York",
        "WA": "America/Los_Angeles",
        "WI": "America/Chicago",
        "WV": "America/New_York",
        "WY": "America/Denver",
    }
)

_NO_NAMES: Final[Mapping[str, str]] = MappingProxyType({})


@lru_cache(maxsize=128)
def zone(name: str) -> ZoneInfo:
    """The tzdata zone of an IANA name (ZoneInfoNotFoundError or ValueError for anything else)."""
    return ZoneInfo(name)


def to_iana(name: object, names: Mapping[str, str] = _NO_NAMES) -> str | None:
    """The IANA zone a POS's zone name denotes, or None when it denotes none we know.

    A name the vendor uses (`names`: Windows ids, Rails names; exact, then ignoring case) maps through its table;
    otherwise the name itself is accepted when it is an IANA `Area/Location` name (or `UTC`) that tzdata knows.
    Bare abbreviations ("PST", "EST") are refused: they are ambiguous or obsolete and no POS means them as IANA.
    """
    if not isinstance(name, str) or not name.strip():
        return None
    text = name.strip()
    mapped = names.get(text)
    if mapped is None:
        folded = text.casefold()
        mapped = next((iana for known, iana in names.items() if known.casefold() == folded), None)
    candidate = mapped if mapped is not None else text
    if "/" not in candidate and candidate != "UTC":
        return None
    try:
        zone(candidate)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return candidate


def state_zone(state: object) -> str | None:
    """The fallback zone of a US state or territory given as its USPS code (any case), else None."""
    if not isinstance(state, str):
        return None
    return US_STATE_ZONES.get(state.strip().upper())


def daily_window(day: date, start: time, end: time, zone_name: str) -> tuple[datetime, datetime]:
    """A daily window given on a store's wall clock (say 16:00-18:00 "happy hour") as UTC instants on `day`, by that
    day's own offset, so it stays 16:00-18:00 local across a DST change. An end at or before the start runs past
    midnight into the next day. A wall time that does not exist (skipped by spring-forward) is read with the offset
    before the change (fold 0), one that occurs twice (fall-back) as its first occurrence."""
    tz = zone(zone_name)
    opens = datetime.combine(day, start, tzinfo=tz)
    closes = datetime.combine(day if end > start else day + timedelta(days=1), end, tzinfo=tz)
    return opens.astimezone(UTC), closes.astimezone(UTC)


def in_daily_window(at: datetime, start: time, end: time, zone_name: str) -> bool:
    """Whether an instant falls in a daily wall-clock window of the store (the window that opened that local day or,
    for one running past midnight, the day before)."""
    local_day = at.astimezone(zone(zone_name)).date()
    for day in (local_day, local_day - timedelta(days=1)):
        opens, closes = daily_window(day, start, end, zone_name)
        if opens <= at < closes:
            return True
    return False
