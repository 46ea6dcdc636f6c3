"""POSaBIT venue time zones: Rails zone names to IANA, and the fallback when a venue's zone is unreadable."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from functions.core.zones import US_STATE_ZONES
from functions.pull_posabit.constants import RAILS_TIME_ZONE_ALIASES, RAILS_TIME_ZONES
from functions.pull_posabit.mapping import resolve_timezone, venue_timezone


@pytest.mark.parametrize("zone", sorted(set(RAILS_TIME_ZONES.values()) | set(RAILS_TIME_ZONE_ALIASES.values())))
def test_every_mapped_zone_exists_in_tzdata(zone: str) -> None:
    assert ZoneInfo(zone).key == zone


@pytest.mark.parametrize(
    ("rails", "iana"),
    [
        ("Pacific Time (US & Canada)", "America/Los_Angeles"),
        ("Mountain Time (US & Canada)", "America/Denver"),
        ("Arizona", "America/Phoenix"),
        ("Central Time (US & Canada)", "America/Chicago"),
        ("Eastern Time (US & Canada)", "America/New_York"),
        ("Indiana (East)", "America/Indiana/Indianapolis"),
        ("Alaska", "America/Juneau"),
        ("Hawaii", "Pacific/Honolulu"),
        ("Puerto Rico", "America/Puerto_Rico"),
        ("American Samoa", "Pacific/Pago_Pago"),
        ("Guam", "Pacific/Guam"),
        ("Atlantic Time (Canada)", "America/Halifax"),
        ("Saskatchewan", "America/Regina"),
        ("UTC", "Etc/UTC"),
        ("London", "Europe/London"),
    ],
)
def test_rails_names_map_to_their_iana_zone(rails: str, iana: str) -> None:
    assert resolve_timezone(rails) == iana


def test_the_table_covers_all_of_rails_zones() -> None:
    # ActiveSupport::TimeZone::MAPPING has 151 entries in Rails 7.1.
    assert len(RAILS_TIME_ZONES) >= 151


@pytest.mark.parametrize(
    ("name", "iana"),
    [
        ("(GMT-08:00) Pacific Time (US & Canada)", "America/Los_Angeles"),
        ("  eastern time (us & canada) ", "America/New_York"),
        ("America/Boise", "America/Boise"),
        ("Kyev", "Europe/Kyiv"),
    ],
)
def test_display_forms_case_and_iana_names_are_understood(name: str, iana: str) -> None:
    assert resolve_timezone(name) == iana


@pytest.mark.parametrize("name", [None, "", "Pacific", "Mars/Olympus_Mons", "PST"])
def test_unknown_names_resolve_to_nothing(name: str | None) -> None:
    assert resolve_timezone(name) is None


def test_venue_zone_prefers_the_venue_then_its_state_then_the_credential_market() -> None:
    assert venue_timezone({"timezone": "Arizona", "state": "WA"}) == ("America/Phoenix", True)
    assert venue_timezone({"timezone": "Nowhere", "state": "co"}) == ("America/Denver", False)
    assert venue_timezone({}, market="MI") == ("America/Detroit", False)
    with pytest.raises(ValueError, match="timezone"):
        venue_timezone({"timezone": None, "state": "ZZ"})


def test_every_state_fallback_zone_exists() -> None:
    assert len(US_STATE_ZONES) >= 51
    for zone in US_STATE_ZONES.values():
        ZoneInfo(zone)
