"""`make help` lists every documented target with its description in one column, however long a target's name."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_help_aligns_the_descriptions() -> None:
    documented = re.findall(r"^([a-z-]+):.*## ", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)

    shown = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    rows = [re.fullmatch(r"  make (\S+)( +)(\S.*)", line) for line in shown.splitlines()]
    assert all(rows), shown
    assert [row[1] for row in rows if row] == documented
    starts = {len(row[1]) + len(row[2]) for row in rows if row}
    assert len(starts) == 1, shown  # every description starts in the same column
    assert min(len(row[2]) for row in rows if row) >= 2, shown  # and never touches its target's name
