"""THSuite connector against its simulator over loopback HTTP: auth, paging, filters, resume, faults, retries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from functions.core.connector import ConnectorConfig, MappingContext, MappingError, RawPage, Window
from functions.core.credentials import parse_credential
from functions.core.errors import CredentialError, VendorUnavailableError
from functions.core.layout import Stream, Vendor
from functions.core.models import CanonicalRecord, Sale
from functions.pull_thsuite.connector import ThsuiteConnector, open_connector
from simulators.base import Faults
from simulators.thsuite import ThsuiteSimulator
from tests.wallclock import wall_clock_instant

PAGE_SIZE = 9


@pytest.fixture(scope="module")
def shared() -> Iterator[ThsuiteSimulator]:
    """One server for tests that do not change data (stopping a server takes half a second)."""
    with ThsuiteSimulator(seed=21, store_count=2, customers_per_store=40, sales_per_store=60) as simulator:
        yield simulator


@pytest.fixture
def sim(shared: ThsuiteSimulator) -> Iterator[ThsuiteSimulator]:
    yield shared
    shared.faults = Faults()


@pytest.fixture
def fresh() -> Iterator[ThsuiteSimulator]:
    """A server of its own for a test that changes data."""
    with ThsuiteSimulator(seed=22, store_count=1, customers_per_store=30, sales_per_store=45) as simulator:
        yield simulator


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def connect(
    sim: ThsuiteSimulator,
    store: str | None = None,
    *,
    credential: dict[str, Any] | None = None,
    sleep: Sleeps | None = None,
    **config: Any,
) -> ThsuiteConnector:
    raw = credential or sim.credential_for(store or sim.stores[0])
    options = {
        "page_size": PAGE_SIZE,
        "connect_timeout": 1.0,
        "read_timeout": 2.0,
        "retry_attempts": 4,
        "retry_wait_initial": 0.001,
        "retry_wait_max": 0.005,
        **config,
    }
    return open_connector(
        parse_credential(raw, Vendor.THSUITE, "c1"),
        ConnectorConfig(base_url=sim.url, **options),
        tenant="t1",
        credential_id="c1",
        sleep=sleep if sleep is not None else Sleeps(),
    )


def everything() -> Window:
    return Window(None, datetime.now(UTC) + timedelta(minutes=1))


def drain(
    connector: ThsuiteConnector, stream: Stream, window: Window, token: dict[str, Any] | None = None
) -> list[RawPage]:
    return list(connector.pages(stream, window, token))


def ids(pages: list[RawPage], stream: Stream) -> list[str]:
    key = "patient_id" if stream is Stream.LOYALTY else "id"
    return [str(item[key]) for page in pages for item in page.items]


def mapped(connector: ThsuiteConnector, ctx: MappingContext, stream: Stream, pages: list[RawPage]) -> dict[str, Any]:
    """pos_id -> canonical record, or the MappingError for an item that failed."""
    out: dict[str, Any] = {}
    for page in pages:
        for item in page.items:
            try:
                record: CanonicalRecord | MappingError = connector.map_record(stream, item, ctx)
            except MappingError as exc:
                record = exc
            out[str(connector.item_id(stream, item))] = record
    return out


def in_store(sim: ThsuiteSimulator, store: str, stream: Stream) -> set[str]:
    return {pos_id for sid, pos_id in sim.all_ids(stream) if sid == store}


# --- auth ------------------------------------------------------------------------------------------------------


def test_prepare_checks_the_token_and_learns_each_stores_zone(sim: ThsuiteSimulator) -> None:
    for store in sim.stores:
        connector = connect(sim, store)
        ctx = connector.prepare()
        connector.close()

        assert ctx.timezone == sim.store_timezone(store)  # one store reports a Windows zone name
        assert (ctx.tenant, ctx.vendor, ctx.credential_id) == ("t1", Vendor.THSUITE, "c1")
        assert ctx.extra["store_id"] == store
    assert sim.request_log[-1][1] == "/api/v1/store"


def test_a_wrong_token_is_a_credential_error_that_does_not_leak_it(sim: ThsuiteSimulator) -> None:
    wrong = {"vendor": "thsuite", "integration_token": "ths_wrong_token_0000"}
    connector = connect(sim, credential=wrong)

    with pytest.raises(CredentialError, match="HTTP 401") as prepared:
        connector.prepare()
    with pytest.raises(CredentialError) as paged:
        drain(connector, Stream.CUSTOMERS, everything())
    for error in (prepared.value, paged.value):
        assert "ths_wrong_token_0000" not in str(error)
        assert sim.credential_for(sim.stores[0])["integration_token"] not in str(error)
    connector.close()


def test_the_request_record_never_carries_the_token(sim: ThsuiteSimulator) -> None:
    connector = connect(sim)
    [page, *_] = drain(connector, Stream.SALES, everything())

    assert set(page.request) == {"method", "path", "params"}
    assert sim.credential_for(sim.stores[0])["integration_token"] not in repr(page.request)


# --- paging and incremental windows ----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", list(Stream))
def test_a_full_pull_returns_every_record_of_the_store_once_in_update_order(
    sim: ThsuiteSimulator, stream: Stream
) -> None:
    store = sim.stores[1]
    connector = connect(sim, store)
    ctx = connector.prepare()

    pages = drain(connector, stream, everything())
    records = mapped(connector, ctx, stream, pages)

    expected = in_store(sim, store, stream)
    assert sorted(ids(pages, stream)) == sorted(expected)
    assert all(len(p.items) == PAGE_SIZE for p in pages[:-1])
    assert len(pages) == -(-len(expected) // PAGE_SIZE)
    assert {p.total_records for p in pages} == {len(expected)}
    assert [p.next_token for p in pages[:-1]] == [{"page": n, "limit": PAGE_SIZE} for n in range(2, len(pages) + 1)]
    assert pages[-1].next_token is None
    order = [(r.source_updated_at, int(k)) for k, r in records.items()]
    assert order == sorted(order)
    assert all(isinstance(r, CanonicalRecord) and r.location_id == store for r in records.values())
    connector.close()


def test_stores_are_isolated_by_token(sim: ThsuiteSimulator) -> None:
    first, second = (
        set(ids(drain(connect(sim, s), Stream.CUSTOMERS, everything()), Stream.CUSTOMERS)) for s in sim.stores
    )

    assert first == in_store(sim, sim.stores[0], Stream.CUSTOMERS)
    assert second == in_store(sim, sim.stores[1], Stream.CUSTOMERS)
    assert first.isdisjoint(second)


def test_window_start_is_inclusive_and_end_exclusive(sim: ThsuiteSimulator) -> None:
    connector = connect(sim)
    ctx = connector.prepare()
    records = list(mapped(connector, ctx, Stream.SALES, drain(connector, Stream.SALES, everything())).values())
    start, end = records[10].source_updated_at, records[30].source_updated_at

    window_ids = ids(drain(connector, Stream.SALES, Window(start, end)), Stream.SALES)

    assert window_ids == [r.pos_id for r in records if start <= r.source_updated_at < end]
    assert records[10].pos_id in window_ids
    assert records[30].pos_id not in window_ids


def test_an_incremental_window_sees_only_new_and_changed_records(fresh: ThsuiteSimulator) -> None:
    store = fresh.stores[0]
    connector = connect(fresh, store)
    connector.prepare()
    cursor = datetime.now(UTC) - timedelta(seconds=1)

    new_sales = fresh.add_sales(store, 12)
    edited = fresh.update_customers(store, 5)
    window = Window(cursor, datetime.now(UTC) + timedelta(seconds=1))

    assert sorted(ids(drain(connector, Stream.SALES, window), Stream.SALES)) == sorted(new_sales)
    assert sorted(ids(drain(connector, Stream.CUSTOMERS, window), Stream.CUSTOMERS)) == sorted(edited)
    assert ids(drain(connector, Stream.INVENTORY, window), Stream.INVENTORY) == []


def test_a_pull_resumes_from_a_token_without_gaps_or_repeats(sim: ThsuiteSimulator) -> None:
    window = everything()
    interrupted = connect(sim)
    pages = interrupted.pages(Stream.CUSTOMERS, window, None)
    before = [next(pages), next(pages)]
    interrupted.close()

    resumed = connect(sim, page_size=500)  # a new run with another page size keeps the token's own
    after = drain(resumed, Stream.CUSTOMERS, window, before[-1].next_token)

    assert after[0].request["params"]["page"] == 3
    assert after[0].request["params"]["limit"] == PAGE_SIZE
    together = ids(before, Stream.CUSTOMERS) + ids(after, Stream.CUSTOMERS)
    assert len(together) == len(set(together))
    assert set(together) == in_store(sim, sim.stores[0], Stream.CUSTOMERS)


# --- data-shaped faults ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", list(Stream))
def test_an_invalid_record_fails_alone(sim: ThsuiteSimulator, stream: Stream) -> None:
    sim.faults.invalid_record = True
    store = sim.stores[0]
    connector = connect(sim, store)
    ctx = connector.prepare()

    records = mapped(connector, ctx, stream, drain(connector, stream, everything()))

    failed = {k: v for k, v in records.items() if isinstance(v, MappingError)}
    assert set(failed) == {sim.invalid_record_id(store, stream)}
    assert failed[sim.invalid_record_id(store, stream)].pos_id == sim.invalid_record_id(store, stream)
    assert len(records) - len(failed) == len(in_store(sim, store, stream)) - 1


@pytest.mark.parametrize("stream", list(Stream))
def test_extra_fields_change_nothing(sim: ThsuiteSimulator, stream: Stream) -> None:
    connector = connect(sim)
    ctx = connector.prepare()
    clean = mapped(connector, ctx, stream, drain(connector, stream, everything()))

    sim.faults.extra_fields = True
    noisy_pages = drain(connector, stream, everything())
    noisy = mapped(connector, ctx, stream, noisy_pages)

    assert "x_internal" in noisy_pages[0].items[0]
    assert {k: r.content_hash() for k, r in noisy.items()} == {k: r.content_hash() for k, r in clean.items()}


def test_the_same_record_on_two_pages_is_served_twice_and_nothing_is_lost(sim: ThsuiteSimulator) -> None:
    sim.faults.duplicate_across_pages = True
    connector = connect(sim)

    pages = drain(connector, Stream.CUSTOMERS, everything())

    served = ids(pages, Stream.CUSTOMERS)
    assert set(served) == in_store(sim, sim.stores[0], Stream.CUSTOMERS)
    assert len(served) - len(set(served)) == len(pages) - 1
    assert [ids([p], Stream.CUSTOMERS)[0] for p in pages[1:]] == [ids([p], Stream.CUSTOMERS)[-1] for p in pages[:-1]]


def test_records_changing_while_paging_show_in_the_total_and_a_reread_loses_nothing(fresh: ThsuiteSimulator) -> None:
    # Given a window fixed before the pull, as the engine fixes it (its end a little in the past)
    store = fresh.stores[0]
    connector = connect(fresh, store)
    window = Window(None, datetime.now(UTC) - timedelta(seconds=1))
    fresh.faults.update_while_paging = 4

    # When four records served on the first page change after it
    first_pass = drain(connector, Stream.SALES, window)

    # Then the window's total drops between its first and last page (the engine's cue to read it again)
    assert first_pass[0].total_records == 45
    assert first_pass[-1].total_records == 41
    # and the re-read window plus the next window hold every record
    reread = drain(connector, Stream.SALES, window)
    later = drain(connector, Stream.SALES, Window(window.end, datetime.now(UTC) + timedelta(seconds=1)))
    assert len(ids(later, Stream.SALES)) == 4
    assert set(ids(reread, Stream.SALES)) | set(ids(later, Stream.SALES)) == in_store(fresh, store, Stream.SALES)


@pytest.mark.parametrize("stream", [Stream.CUSTOMERS, Stream.SALES, Stream.LOYALTY])
def test_offset_timestamps_map_to_the_same_instants(sim: ThsuiteSimulator, stream: Stream) -> None:
    connector = connect(sim, sim.stores[1])
    ctx = connector.prepare()
    truth = mapped(connector, ctx, stream, drain(connector, stream, everything()))

    sim.faults.offset_timestamps = True
    odd_pages = drain(connector, stream, everything())
    odd = mapped(connector, ctx, stream, odd_pages)

    assert any(str(item["updated_at"]).endswith("+09:30") for page in odd_pages for item in page.items)
    assert {k: r.source_updated_at for k, r in odd.items()} == {k: r.source_updated_at for k, r in truth.items()}
    if stream is Stream.SALES:
        assert {k: r.local_date for k, r in odd.items()} == {k: r.local_date for k, r in truth.items()}


@pytest.mark.parametrize("store_index", [0, 1])
def test_naive_timestamps_are_read_in_the_store_zone(sim: ThsuiteSimulator, store_index: int) -> None:
    store = sim.stores[store_index]
    connector = connect(sim, store)
    ctx = connector.prepare()
    truth = mapped(connector, ctx, Stream.SALES, drain(connector, Stream.SALES, everything()))

    sim.faults.naive_timestamps = True
    naive = mapped(connector, ctx, Stream.SALES, drain(connector, Stream.SALES, everything()))

    assert naive.keys() == truth.keys()
    # Only a wall time the DST fall-back repeats is ambiguous; the earlier instant is taken (tests/wallclock.py).
    zone = ZoneInfo(sim.store_timezone(store))
    for key, record in naive.items():
        assert isinstance(record, Sale)
        expected = truth[key]
        assert record.local_date == expected.local_date
        assert record.source_updated_at == wall_clock_instant(expected.source_updated_at, zone)


def test_mixed_naive_and_offset_timestamps_in_one_page(sim: ThsuiteSimulator) -> None:
    connector = connect(sim)
    ctx = connector.prepare()
    truth = mapped(connector, ctx, Stream.CUSTOMERS, drain(connector, Stream.CUSTOMERS, everything()))

    sim.faults.naive_timestamps = sim.faults.offset_timestamps = True
    pages = drain(connector, Stream.CUSTOMERS, everything())
    mixed = mapped(connector, ctx, Stream.CUSTOMERS, pages)

    naive_ids = {str(i["id"]) for p in pages for i in p.items if datetime.fromisoformat(i["updated_at"]).tzinfo is None}
    assert mixed.keys() == truth.keys()
    assert naive_ids and naive_ids != set(mixed)  # both forms on the pages
    # Offset times are exact; naive ones as the store's wall clock can express them (tests/wallclock.py).
    zone = ZoneInfo(sim.store_timezone(sim.stores[0]))
    for key, record in mixed.items():
        expected = truth[key].source_updated_at
        assert record.source_updated_at == (wall_clock_instant(expected, zone) if key in naive_ids else expected)


def test_refunds_map_to_refunded_sales_with_refund_lines(sim: ThsuiteSimulator) -> None:
    sim.faults.refunds = True
    connector = connect(sim)
    ctx = connector.prepare()

    pages = drain(connector, Stream.SALES, everything())
    sales = mapped(connector, ctx, Stream.SALES, pages)
    raw_totals = {str(i["id"]): i["total"] for p in pages for i in p.items}

    statuses = {s.status for s in sales.values()}
    assert {"refunded", "partially_refunded", "completed"} <= statuses
    for pos_id, sale in sales.items():
        assert isinstance(sale, Sale)
        refund_lines = [line for line in sale.lines if line.is_refund]
        assert sale.refunded_cents == -sum(line.total_cents for line in refund_lines)
        assert sale.net_cents == round(float(raw_totals[pos_id]) * 100)
        if sale.status == "refunded":
            assert refund_lines == list(sale.lines)
            assert sale.total_cents == 0
        if sale.status == "partially_refunded":
            assert 0 < len(refund_lines) < len(sale.lines)


# --- transport faults ------------------------------------------------------------------------------------------


def clean_ids(sim: ThsuiteSimulator) -> list[str]:
    return ids(drain(connect(sim), Stream.INVENTORY, everything()), Stream.INVENTORY)


@pytest.mark.parametrize(
    ("fault", "count"),
    [
        ("rate_limit_without_retry_after", 2),
        ("server_error", 3),
        ("malformed_json", 2),
        ("timeout", 1),
    ],
)
def test_transient_failures_are_retried(sim: ThsuiteSimulator, fault: str, count: int) -> None:
    expected = clean_ids(sim)
    sim.faults.timeout_seconds = 1.0
    setattr(sim.faults, fault, count)
    connector = connect(sim, read_timeout=0.25)

    pages = drain(connector, Stream.INVENTORY, everything())

    assert ids(pages, Stream.INVENTORY) == expected
    assert getattr(sim.faults, fault) == 0
    assert connector.client.http.stats.retries == count


def test_retry_after_is_honoured(sim: ThsuiteSimulator) -> None:
    expected = clean_ids(sim)
    sim.faults.rate_limit_with_retry_after = 2
    sleeps = Sleeps()
    connector = connect(sim, sleep=sleeps)

    assert ids(drain(connector, Stream.INVENTORY, everything()), Stream.INVENTORY) == expected
    assert sleeps == [1.0, 1.0]


def test_a_server_that_stays_down_is_unavailable_not_a_crash(sim: ThsuiteSimulator) -> None:
    sim.faults.server_error = 10
    connector = connect(sim, retry_attempts=3)

    with pytest.raises(VendorUnavailableError, match="HTTP 503"):
        drain(connector, Stream.SALES, everything())
    assert sim.faults.server_error == 7


def test_a_refused_connection_is_unavailable(sim: ThsuiteSimulator) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connector = open_connector(
        parse_credential(sim.credential_for(sim.stores[0]), Vendor.THSUITE, "c1"),
        ConnectorConfig(base_url=f"http://127.0.0.1:{port}", retry_attempts=2, retry_wait_initial=0.001),
    )

    with pytest.raises(VendorUnavailableError, match="could not be reached") as caught:
        connector.prepare()
    assert sim.credential_for(sim.stores[0])["integration_token"] not in str(caught.value)
