"""Flourish offset paging: records that leave, move or repeat while pages are read are never skipped."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.core.errors import MalformedPageError, VendorUnavailableError
from functions.pull_flourish.client import ListPage
from functions.pull_flourish.constants import OVERLAP, RECENT_IDS
from functions.pull_flourish.paging import Cursor, _remember, read_listing, served_key


def row(n: int, version: int = 0) -> dict[str, Any]:
    return {"id": n, "last_updated_timestamp": f"2026-03-01T00:{n // 60:02d}:{n % 60:02d}.{version:03d}Z"}


@dataclass
class FakeListing:
    """A server-side filtered set read by limit/offset; `after_fetch` mutates it between requests."""

    rows: list[dict[str, Any]]
    after_fetch: Callable[[FakeListing, int], None] | None = None
    repeat_previous: bool = False  # the duplicate_across_pages fault
    requests: list[dict[str, Any]] = field(default_factory=list)
    meta_next: bool = True  # False: pages say nothing about a next page (no meta.next)
    meta_total: bool = True
    cap: int | None = None  # the server serves at most this many records per page, whatever the limit asked

    def fetch(self, params: Mapping[str, Any]) -> ListPage:
        self.requests.append(dict(params))
        limit, offset = min(params["limit"], self.cap or params["limit"]), params["offset"]
        items = self.rows[offset : offset + limit]
        if self.repeat_previous and 0 < offset <= len(self.rows):
            items = [self.rows[offset - 1], *items]
        more = offset + limit < len(self.rows) if self.meta_next else None
        page = ListPage(b"{}", [dict(i) for i in items], more, len(self.rows) if self.meta_total else None)
        if self.after_fetch is not None:
            self.after_fetch(self, len(self.requests))
        return page


def read_all(listing: FakeListing, limit: int = 10, cursor: Cursor | None = None) -> list[dict[str, Any]]:
    return [item for served in read_listing(listing.fetch, {"f": "x"}, limit, cursor) for item in served.fresh]


def ids(items: list[dict[str, Any]]) -> list[int]:
    return [item["id"] for item in items]


def test_a_stable_listing_is_read_once_with_an_overlap_and_filters_kept() -> None:
    listing = FakeListing([row(n) for n in range(47)])

    served = read_all(listing)

    assert ids(served) == list(range(47))
    # each request re-reads the last OVERLAP records of the previous one
    assert [r["offset"] for r in listing.requests] == list(range(0, 41, 10 - OVERLAP))
    assert all(r["f"] == "x" and r["limit"] == 10 for r in listing.requests)


def test_records_leaving_the_set_before_the_offset_do_not_push_others_past_it() -> None:
    # Given: after the first page, 8 served records change and leave the window (more than the overlap)
    def leave(listing: FakeListing, request: int) -> None:
        if request == 1:
            listing.rows = [r for r in listing.rows if r["id"] not in range(1, 9)]

    listing = FakeListing([row(n) for n in range(40)], after_fetch=leave)

    served = read_all(listing)

    # Then: every record still in the set was served, none twice
    assert set(ids(served)) == set(range(40))
    assert len(ids(served)) == len(set(ids(served)))


def test_records_moving_to_the_end_are_served_again_and_nothing_is_skipped() -> None:
    # Given: ordered by update time, 7 served records change and move to the end after the first page
    def move(listing: FakeListing, request: int) -> None:
        if request == 1:
            moved = [row(r["id"], version=1) for r in listing.rows if r["id"] < 7]
            listing.rows = [r for r in listing.rows if r["id"] >= 7] + moved

    listing = FakeListing([row(n) for n in range(35)], after_fetch=move)

    served = read_all(listing)

    assert set(ids(served)) == set(range(35))
    assert {i for i in ids(served) if ids(served).count(i) == 2} == set(range(7))  # their new versions


def test_a_record_repeated_on_the_next_page_is_served_once() -> None:
    listing = FakeListing([row(n) for n in range(33)], repeat_previous=True)

    assert ids(read_all(listing)) == list(range(33))


def test_resuming_from_a_token_reads_the_rest() -> None:
    listing = FakeListing([row(n) for n in range(30)])
    first = next(iter(read_listing(listing.fetch, {}, 10)))
    assert first.next_cursor is not None
    token = first.next_cursor.to_token()

    rest = read_all(FakeListing(listing.rows), cursor=Cursor.from_token(token))

    assert ids(first.fresh) + ids(rest) == list(range(30))
    assert len(token["recent"]) <= RECENT_IDS


def test_old_tokens_without_recent_records_resume_at_their_offset() -> None:
    cursor = Cursor.from_token({"offset": 20})

    assert cursor == Cursor(offset=20)
    assert ids(read_all(FakeListing([row(n) for n in range(30)]), cursor=cursor)) == list(range(20, 30))


def test_a_listing_that_never_settles_fails_the_run_instead_of_skipping() -> None:
    # Every request after the first sees a set whose records all changed: nothing served is ever found again.
    def churn(listing: FakeListing, request: int) -> None:
        listing.rows = [row(r["id"], version=request % 999) for r in listing.rows]

    listing = FakeListing([row(n) for n in range(100)], after_fetch=churn)

    with pytest.raises(VendorUnavailableError, match="kept moving"):
        read_all(listing)


def test_a_page_that_does_not_advance_is_malformed() -> None:
    # Given: a server that says more records follow but only ever returns the records we asked to re-read
    class Stuck(FakeListing):
        def fetch(self, params: Mapping[str, Any]) -> ListPage:
            self.requests.append(dict(params))
            offset = params["offset"]
            return ListPage(b"{}", [row(n) for n in range(offset, offset + OVERLAP)], True, None)

    served_before = tuple((str(n), row(n)["last_updated_timestamp"]) for n in range(10))

    with pytest.raises(MalformedPageError):
        read_all(Stuck([]), limit=10, cursor=Cursor(offset=10, recent=served_before))


def test_the_last_page_has_no_next_cursor_even_when_empty() -> None:
    pages = list(read_listing(FakeListing([]).fetch, {}, 10))

    assert len(pages) == 1 and pages[0].fresh == [] and pages[0].next_cursor is None


# --- servers that leave out meta.next -----------------------------------------------------------------------------


@pytest.mark.parametrize("meta_total", [True, False])
def test_without_meta_next_the_listing_is_paged_by_offset_to_its_end(meta_total: bool) -> None:
    listing = FakeListing([row(n) for n in range(47)], meta_next=False, meta_total=meta_total)

    served = read_all(listing)

    assert ids(served) == list(range(47))
    assert [r["offset"] for r in listing.requests] == list(range(0, 41, 10 - OVERLAP))


def test_without_meta_next_or_total_a_server_page_cap_below_the_limit_is_not_the_end() -> None:
    # Given: we ask for 200 per page, the server serves at most 60 and says nothing about what follows
    listing = FakeListing([row(n) for n in range(250)], meta_next=False, meta_total=False, cap=60)

    served = read_all(listing, limit=200)

    assert ids(served) == list(range(250))


def test_without_meta_next_a_page_shorter_than_the_documented_default_is_the_last() -> None:
    listing = FakeListing([row(n) for n in range(30)], meta_next=False, meta_total=False)

    assert ids(read_all(listing, limit=200)) == list(range(30))
    assert len(listing.requests) == 1


def test_without_meta_next_a_short_first_page_above_the_default_is_confirmed_by_one_more_request() -> None:
    listing = FakeListing([row(n) for n in range(80)], meta_next=False, meta_total=False)

    assert ids(read_all(listing, limit=200)) == list(range(80))
    assert [r["offset"] for r in listing.requests] == [0, 80 - OVERLAP]


def test_without_meta_next_records_leaving_the_set_are_still_not_skipped() -> None:
    def leave(listing: FakeListing, request: int) -> None:
        if request == 1:
            listing.rows = [r for r in listing.rows if r["id"] not in range(1, 9)]

    listing = FakeListing([row(n) for n in range(40)], after_fetch=leave, meta_next=False, meta_total=False)

    served = read_all(listing)

    assert set(ids(served)) == set(range(40))
    assert len(ids(served)) == len(set(ids(served)))


def test_the_learnt_page_size_survives_a_resume_token() -> None:
    cursor = Cursor(offset=120, recent=(("1", None),), restarts=1, longest=60)

    assert Cursor.from_token(cursor.to_token()) == cursor
    assert Cursor.from_token({"offset": 5}).longest == 0  # a token from an older deployment


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 2)), max_size=RECENT_IDS + 5),
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 2)), max_size=3 * RECENT_IDS),
)
def test_the_records_remembered_are_the_last_distinct_ones_served(
    recent: list[tuple[int, int]], served: list[tuple[int, int]]
) -> None:
    # Given records served before (a token's) and a page's, with repeats of the same record and of its versions
    before = tuple(served_key(row(n, v)) for n, v in recent)
    page = [row(n, v) for n, v in served]
    # When the cursor remembers them, Then it holds the last RECENT_IDS distinct ones, each at its latest position
    everything = [*before, *(served_key(item) for item in page)]
    latest = [key for i, key in enumerate(everything) if key not in everything[i + 1 :]]
    assert _remember(before, page) == tuple(latest[-RECENT_IDS:])
