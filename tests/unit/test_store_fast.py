"""The record store's fast paths write exactly what the general code wrote."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from functions.core.store import _iso


class _Moment(datetime):
    """A datetime subclass (as some libraries hand out): written by isoformat itself."""


def test_iso_is_isoformat_with_microseconds_for_every_time() -> None:
    # Given times across every year DynamoDB items may hold, a third of them on a whole second (orjson then writes no
    # fraction at all), some in other zones, a fold, and a datetime subclass
    rng = random.Random(13)
    span = int((datetime.max - datetime.min).total_seconds()) * 10**6
    start = datetime.min.replace(tzinfo=UTC)
    times = [start + timedelta(microseconds=rng.randrange(span)) for _ in range(3000)]
    times += [t.replace(microsecond=0) for t in times[:1000]]
    times += [
        start,
        datetime.max.replace(tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
        datetime(2026, 12, 1, 4, 5, 6, tzinfo=UTC, fold=1),
        datetime(2026, 12, 1, 4, 5, 6, 70, tzinfo=timezone(timedelta(hours=-8))),
        datetime(2026, 3, 8, 2, 30, tzinfo=ZoneInfo("America/Los_Angeles")),
        _Moment(2026, 12, 1, 4, 5, 6, tzinfo=UTC),
    ]
    # When each is written, Then it is the text isoformat writes for it in UTC, with six digits of microseconds
    for moment in times:
        expected = moment.astimezone(UTC).isoformat(timespec="microseconds")
        assert _iso(moment) == expected, moment
        assert len(expected) == 32


def test_a_page_index_lists_each_record_by_its_records_table_key() -> None:
    # Given a page index of ids with separators, quotes, non-ASCII and astral text, under a tenant and credential so
    from functions.core import layout
    from functions.core.layout import RecordKind, Vendor
    from functions.core.record_index import PageIndex

    ids = ("1", "a#b", 'q"\\', "caf\u00e9", "\U0001f600", " lead")
    index = PageIndex("t#\u00e9", Vendor.POSABIT, RecordKind.SHOPPER, "store-1", ids)
    # When its records' keys are listed, Then each is the key the record is stored under, in the index's order
    assert index.record_pks() == [
        layout.record_pk("t#\u00e9", Vendor.POSABIT, "store-1", RecordKind.SHOPPER, pos_id) for pos_id in ids
    ]
