"""The mapping of every vendor's simulator data is pinned: the same stored JSON and digests, the same quarantine
decisions (field and reason) for items with one bad field, as the code gave before the mapping was made faster.

The golden fingerprints were computed from main's code (before the per-record speed-ups) with
`python -m tests.mapping_corpus`; a changed digest would make every stored record look changed on the next pull.
To see which records differ, dump the corpora before and after (`python -m tests.mapping_corpus --dump DIR`) and diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.core.layout import Vendor
from tests.mapping_corpus import fingerprint

GOLDEN = json.loads((Path(__file__).parent.parent / "fixtures" / "mapping_golden.json").read_text())


@pytest.mark.parametrize("vendor", list(Vendor), ids=lambda v: v.value)
def test_stored_forms_and_quarantine_decisions_are_unchanged(vendor: Vendor) -> None:
    # Given the vendor's seeded simulator store (fixed clock), read page by page through its real connector
    # When every item, and copies of some with one field made bad, are mapped as a pull maps them
    # Then the stored JSON digests and the quarantine field/reason of each are exactly the golden ones
    assert fingerprint(vendor) == GOLDEN[vendor.value]
