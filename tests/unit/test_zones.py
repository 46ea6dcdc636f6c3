"""Store zones: one Windows table, one state table and one conversion in functions/core, used by every vendor."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from functions.core import zones
from functions.pull_onprem.profitek import constants as profitek
from functions.pull_thsuite import constants as thsuite

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


@pytest.mark.parametrize("iana", sorted({*zones.WINDOWS_ZONES.values(), *zones.US_STATE_ZONES.values()}))
def test_every_zone_in_the_tables_exists_in_tzdata(iana: str) -> None:
    assert ZoneInfo(iana).key == iana


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("  us mountain standard time ", "America/Phoenix"),
        ("America/Detroit", "America/Detroit"),
        ("UTC", "UTC"),
        ("Etc/UTC", "Etc/UTC"),
        ("Pacific Daylight Time", None),
        ("PST", None),
        ("EST", None),
        ("Mars/Olympus_Mons", None),
        ("../../etc/passwd", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_windows_ids_and_iana_names_convert_and_nothing_else_does(name: object, expected: str | None) -> None:
    assert zones.to_iana(name, zones.WINDOWS_ZONES) == expected


def test_without_a_vendor_table_only_iana_names_are_zones() -> None:
    assert zones.to_iana("Pacific Standard Time") is None
    assert zones.to_iana(" America/Denver ") == "America/Denver"


def test_a_vendor_table_is_read_exactly_then_ignoring_case() -> None:
    names = {"Mountain Time (US & Canada)": "America/Denver", "mountain time (us & canada)": "America/Boise"}

    assert zones.to_iana("Mountain Time (US & Canada)", names) == "America/Denver"
    assert zones.to_iana("MOUNTAIN TIME (US & CANADA)", names) in ("America/Denver", "America/Boise")


@pytest.mark.parametrize(("state", "expected"), [("wa", "America/Los_Angeles"), (" MI ", "America/Detroit")])
def test_a_state_code_gives_its_fallback_zone(state: str, expected: str) -> None:
    assert zones.state_zone(state) == expected


@pytest.mark.parametrize("state", [None, "", "ZZ", "Washington", 7])
def test_anything_but_a_state_code_gives_no_fallback(state: object) -> None:
    assert zones.state_zone(state) is None


def test_the_windows_vendors_read_the_one_table() -> None:
    assert thsuite.STORE_ZONE_NAMES is zones.WINDOWS_ZONES
    assert profitek.STORE_ZONE_NAMES is zones.WINDOWS_ZONES


def test_no_vendor_folder_keeps_its_own_copy_of_a_shared_zone_table() -> None:
    copies = [
        str(path.relative_to(FUNCTIONS))
        for path in FUNCTIONS.glob("pull_*/**/*.py")
        if '"Pacific Standard Time"' in path.read_text() or '"WA": "America/Los_Angeles"' in path.read_text()
    ]
    assert copies == []
