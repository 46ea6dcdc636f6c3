from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tests.wallclock import wall_clock_instant

DENVER = ZoneInfo("America/Denver")


def test_an_unambiguous_instant_is_unchanged() -> None:
    instant = datetime(2026, 7, 4, 18, 30, tzinfo=UTC)
    assert wall_clock_instant(instant, DENVER) == instant


def test_the_second_occurrence_of_a_repeated_hour_reads_back_as_the_first() -> None:
    first = datetime(2026, 11, 1, 7, 30, tzinfo=UTC)  # 01:30 MDT
    second = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)  # 01:30 MST, the repeat
    assert wall_clock_instant(first, DENVER) == first
    assert wall_clock_instant(second, DENVER) == first
