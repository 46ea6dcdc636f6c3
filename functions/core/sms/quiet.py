"""Quiet hours: texts go out only between 8:00 and 20:00 in every time zone the recipient may be in."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_zones

from functions.core import zones as zone_tables

WINDOW_OPENS = time(8, 0)
WINDOW_CLOSES = time(20, 0)
# How far ahead a window is looked for; zones 12 h or more apart have none in common.
SEARCH_DAYS = 3


def area_code_zones(number: str) -> tuple[str, ...]:
    """The IANA zones the number's area code covers (phonenumbers' geocoding tables), known ones only."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    found = [z for z in phone_zones.time_zones_for_number(parsed) if zone_tables.to_iana(z) is not None]
    return tuple(found)


def recipient_zones(*, state: str | None, store_zone: str | None, number: str) -> tuple[str, ...]:
    """Every zone the recipient may be in: the shopper's state, the store's zone, the area code's zones, each that
    is known. Where they disagree the text must fit all of them (the strictest wins); with none known, the area
    code of a US number still places it, and an empty answer means no zone is known (never texted)."""
    found: list[str] = []
    by_state = zone_tables.state_zone(state)
    if by_state:
        found.append(by_state)
    store = zone_tables.to_iana(store_zone) if store_zone else None
    if store:
        found.append(store)
    found.extend(area_code_zones(number))
    return tuple(dict.fromkeys(found))


def within_window(moment: datetime, zones: Iterable[str]) -> bool:
    """Whether `moment` is between 8:00 and 20:00 local in every zone (local clock time, so DST-correct)."""
    names = tuple(zones)
    if not names:
        return False
    for name in names:
        local = moment.astimezone(ZoneInfo(name)).time()
        if not WINDOW_OPENS <= local < WINDOW_CLOSES:
            return False
    return True


def next_window(moment: datetime, zones: Iterable[str]) -> datetime | None:
    """The first instant at or after `moment` when every zone is inside its window, or None when they share none
    within a few days. Candidates are `moment` and each zone's next 8:00 local (built on the local calendar, so a
    DST change in between moves it correctly)."""
    names = tuple(zones)
    if not names:
        return None
    if within_window(moment, names):
        return moment
    candidates: list[datetime] = []
    for name in names:
        zone = ZoneInfo(name)
        local_day = moment.astimezone(zone).date()
        for offset in range(SEARCH_DAYS + 1):
            opens = datetime.combine(local_day + timedelta(days=offset), WINDOW_OPENS, tzinfo=zone)
            if opens > moment:
                candidates.append(opens)
    for candidate in sorted(candidates):
        if within_window(candidate, names):
            return candidate
    return None
