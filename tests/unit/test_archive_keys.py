"""The S3 raw key layout is written and read in one place: layout.parse_archive_key inverts layout.archive_key."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.core.layout import ArchiveKey, Stream, Vendor, archive_key, archive_prefix, parse_archive_key

IDS = st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True)
RUN_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,40}", fullmatch=True)


@given(
    tenant=IDS,
    vendor=st.sampled_from(Vendor),
    credential_id=IDS,
    stream=st.sampled_from(Stream),
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2999, 12, 31)),
    run_id=RUN_IDS,
    page=st.integers(min_value=1, max_value=10_000_000),
)
def test_parse_inverts_archive_key(
    tenant: str, vendor: Vendor, credential_id: str, stream: Stream, day: date, run_id: str, page: int
) -> None:
    key = archive_key(tenant, vendor, credential_id, stream, day, run_id, page)

    parsed = parse_archive_key(key)

    assert parsed == ArchiveKey(tenant, vendor, credential_id, stream, day, run_id, page)
    assert parsed is not None and parsed.key == key
    assert key.startswith(archive_prefix(tenant, vendor, credential_id))


@pytest.mark.parametrize(
    "key",
    [
        "",
        "raw/",
        "other/tenant=t1/vendor=flourish/credential=c1/stream=sales/date=2026-11-23/run=r/page-000001.json.gz",
        "raw/tenant=t1/vendor=nowhere/credential=c1/stream=sales/date=2026-11-23/run=r/page-000001.json.gz",
        "raw/tenant=t1/vendor=flourish/credential=c1/stream=orders/date=2026-11-23/run=r/page-000001.json.gz",
        "raw/tenant=t1/vendor=flourish/credential=c1/stream=sales/date=2026-13-23/run=r/page-000001.json.gz",
        "raw/tenant=t1/vendor=flourish/credential=c1/stream=sales/date=2026-11-23/run=r/page-000001.json",
        "raw/tenant=t1/vendor=flourish/credential=c1/stream=sales/date=2026-11-23/run=r/page-x.json.gz",
        "raw/tenant=t1/vendor=flourish/credential=c1/stream=sales/date=2026-11-23/page-000001.json.gz",
        "raw/tenant=t1/vendor=flourish/credential=c1/stream=sales/date=2026-11-23/run=r/extra/page-000001.json.gz",
        "raw/tenant=/vendor=flourish/credential=c1/stream=sales/date=2026-11-23/run=r/page-000001.json.gz",
        "raw/tenant=T1/vendor=flourish/credential=c1/stream=sales/date=2026-11-23/run=r/page-000001.json.gz",
        "raw/tenant=t1/vendor=flourish/credential=c1/stream=sales/date=20261123/run=r/page-000001.json.gz",
        "raw/tenant=t1/vendor=flourish/credential=c1/stream=sales/date=2026-11-23/run=r/page-0000001.json.gz",
        "raw/tenant=t1/vendor=flourish/credential=c1/stream=sales/date=2026-11-23/run=r/page-000000.json.gz",
    ],
)
def test_keys_outside_the_layout_are_not_archived_pages(key: str) -> None:
    assert parse_archive_key(key) is None
