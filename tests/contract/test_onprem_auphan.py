"""The Auphan connector against its simulator over real HTTP on loopback: auth, cursors, filters, resume, faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.core.connector import Connector, ConnectorConfig, MappingError, RawPage, Window
from functions.core.credentials import parse_credential
from functions.core.errors import CredentialError, MalformedPageError, StoreOfflineError, VendorUnavailableError
from functions.core.http import RetryPolicy
from functions.core.layout import Stream, Vendor
from functions.core.models import Sale
from functions.pull_onprem.connector import open_connector
from simulators.auphan import AuphanSimulator
from simulators.base import Faults, Response
from tests.wallclock import as_wall_clock

FAST = RetryPolicy(attempts=4, timeout=20.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.0)


@pytest.fixture(scope="module")
def sim() -> Iterator[AuphanSimulator]:
    simulator = AuphanSimulator(seed=31, store_count=2, customers_per_store=110, sales_per_store=240)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def healthy(sim: AuphanSimulator) -> Iterator[None]:
    sim.faults = Faults()
    if not sim.powered:
        sim.power_on()
    yield
    sim.faults = Faults()
    if not sim.powered:
        sim.power_on()


def connect(
    sim: AuphanSimulator,
    store: str | None = None,
    *,
    via_ip_port: bool = True,
    page_size: int = 50,
    sleeps: list[float] | None = None,
    read_timeout: float = 2.0,
    **overrides: Any,
) -> Connector:
    raw = {**sim.credential_for(store or sim.stores[0], via_ip_port=via_ip_port), **overrides}
    credential = parse_credential(raw, Vendor.AUPHAN, "cred-1")
    config = ConnectorConfig(base_url=sim.url, page_size=page_size, connect_timeout=1.0, read_timeout=read_timeout)
    return open_connector(
        credential,
        config,
        tenant="t1",
        credential_id="cred-1",
        policy=FAST,
        sleep=(sleeps.append if sleeps is not None else lambda _: None),
        allow_loopback_for_tests=True,
    )


def now_window() -> Window:
    return Window(None, datetime.now(UTC))


def read(connector: Connector, stream: Stream, window: Window, token: dict[str, Any] | None = None) -> list[RawPage]:
    return list(connector.pages(stream, window, token))


def pos_ids(connector: Connector, stream: Stream, pages: list[RawPage]) -> list[str]:
    return [connector.item_id(stream, item) or "" for page in pages for item in page.items]


def store_ids(sim: AuphanSimulator, stream: Stream, store: str) -> set[str]:
    return {pos_id for key, pos_id in sim.all_ids(stream) if key == store}


# --- auth and prepare ----------------------------------------------------------------------------------------------


def test_prepare_learns_the_store_zone_and_the_streams_exclude_loyalty(sim: AuphanSimulator) -> None:
    connector = connect(sim, sim.stores[1])

    ctx = connector.prepare()

    assert (ctx.vendor, ctx.timezone, ctx.extra["store_id"]) == (Vendor.AUPHAN, "America/Los_Angeles", sim.stores[1])
    assert connector.streams == (Stream.CUSTOMERS, Stream.SALES, Stream.INVENTORY, Stream.DISCOUNTS)
    assert Stream.LOYALTY not in connector.streams
    with pytest.raises(ValueError, match="loyalty"):
        read(connector, Stream.LOYALTY, now_window())
    connector.close()


def test_a_wrong_api_key_fails_at_once_without_showing_it(sim: AuphanSimulator) -> None:
    connector = connect(sim, api_key="ak-not-a-real-key-000")
    before = len(sim.request_log)

    with pytest.raises(CredentialError) as caught:
        connector.prepare()

    assert len(sim.request_log) - before == 1
    assert "ak-not-a-real-key-000" not in str(caught.value)
    connector.close()


def test_each_key_opens_its_own_store_only(sim: AuphanSimulator) -> None:
    first, second = (connect(sim, store) for store in sim.stores)

    ids = [set(pos_ids(c, Stream.CUSTOMERS, read(c, Stream.CUSTOMERS, now_window()))) for c in (first, second)]

    assert ids[0] == store_ids(sim, Stream.CUSTOMERS, sim.stores[0])
    assert ids[1] == store_ids(sim, Stream.CUSTOMERS, sim.stores[1])
    assert not ids[0] & ids[1]
    first.close()
    second.close()


# --- cursors, filters, ordering, resume ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [Stream.CUSTOMERS, Stream.SALES, Stream.INVENTORY])
def test_a_full_read_holds_every_record_once_in_update_order(sim: AuphanSimulator, stream: Stream) -> None:
    connector = connect(sim)
    ctx = connector.prepare()

    pages = read(connector, stream, now_window())
    records = [connector.map_record(stream, item, ctx) for page in pages for item in page.items]

    ids = [r.pos_id for r in records]
    assert len(ids) == len(set(ids))
    assert set(ids) == store_ids(sim, stream, sim.stores[0])
    keys = [(r.source_updated_at, r.pos_id) for r in records]
    assert keys == sorted(keys)
    assert pages[-1].next_token is None and all(p.next_token and "cursor" in p.next_token for p in pages[:-1])
    assert {page.total_records for page in pages} == {len(records)}
    connector.close()


def test_pages_record_the_request_without_headers(sim: AuphanSimulator) -> None:
    connector = connect(sim)
    pages = read(connector, Stream.SALES, now_window())

    assert pages[0].request == {
        "method": "GET",
        "path": "/api/v2/sales",
        "params": {"updatedTo": pages[0].request["params"]["updatedTo"], "sort": "updatedAt:asc", "limit": 50},
    }
    assert pages[1].request["params"]["cursor"] == pages[0].next_token["cursor"]  # type: ignore[index]
    assert json.loads(pages[0].body)["items"] == pages[0].items
    connector.close()


def test_a_window_returns_exactly_the_records_updated_in_it(sim: AuphanSimulator) -> None:
    connector = connect(sim)
    ctx = connector.prepare()
    everything = [
        connector.map_record(Stream.SALES, item, ctx)
        for page in read(connector, Stream.SALES, now_window())
        for item in page.items
    ]
    start, end = everything[30].source_updated_at, everything[130].source_updated_at

    windowed = read(connector, Stream.SALES, Window(start, end))
    got = [connector.map_record(Stream.SALES, item, ctx).pos_id for page in windowed for item in page.items]

    assert set(got) == {r.pos_id for r in everything if start <= r.source_updated_at < end}
    assert len(got) == 100 and windowed[0].total_records == 100
    connector.close()


def test_resuming_from_a_cursor_token_continues_where_the_pull_stopped(sim: AuphanSimulator) -> None:
    connector = connect(sim, page_size=40)
    window = now_window()
    pages = connector.pages(Stream.SALES, window, None)
    head = [next(pages), next(pages)]

    tail = read(connector, Stream.SALES, window, head[-1].next_token)

    ids = pos_ids(connector, Stream.SALES, head + tail)
    assert len(ids) == len(set(ids))  # the cursor resumes after the last record: nothing is read twice
    assert set(ids) == store_ids(sim, Stream.SALES, sim.stores[0])
    connector.close()


def test_a_cursor_that_repeats_is_refused_instead_of_looping(sim: AuphanSimulator) -> None:
    connector = connect(sim, page_size=10)
    original = sim.handle

    def stuck(request: Any) -> Response:
        if request.path != "/api/v2/products":
            return original(request)
        return Response.json({"items": [{"productId": "p-1"}], "totalCount": 1, "nextCursor": "loop"})

    sim.handle = stuck  # type: ignore[method-assign]
    try:
        with pytest.raises(MalformedPageError, match="same inventory cursor twice"):
            read(connector, Stream.INVENTORY, now_window())
    finally:
        del sim.handle
    connector.close()


# --- faults ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"rate_limit_with_retry_after": 2},
        {"rate_limit_without_retry_after": 1},
        {"server_error": 3},
        {"malformed_json": 1},
        {"timeout": 1, "timeout_seconds": 0.6},
    ],
    ids=lambda fault: next(iter(fault)),
)
def test_transient_faults_are_retried_and_the_read_completes(sim: AuphanSimulator, fault: dict[str, Any]) -> None:
    sleeps: list[float] = []
    connector = connect(sim, sleeps=sleeps, read_timeout=0.3 if "timeout" in fault else 2.0)
    window = now_window()
    for name, value in fault.items():
        setattr(sim.faults, name, value)

    pages = read(connector, Stream.CUSTOMERS, window)

    assert set(pos_ids(connector, Stream.CUSTOMERS, pages)) == store_ids(sim, Stream.CUSTOMERS, sim.stores[0])
    assert getattr(sim.faults, next(iter(fault))) == 0
    if "rate_limit_with_retry_after" in fault:
        assert sleeps == [1.0, 1.0]
    connector.close()


def test_a_server_that_keeps_failing_gives_up_after_bounded_retries(sim: AuphanSimulator) -> None:
    connector = connect(sim)
    sim.faults.rate_limit_without_retry_after = 100
    before = len(sim.request_log)

    with pytest.raises(VendorUnavailableError, match="429"):
        read(connector, Stream.SALES, now_window())

    assert len(sim.request_log) - before == FAST.attempts
    connector.close()


def test_invalid_records_fail_alone_and_extra_fields_are_ignored(sim: AuphanSimulator) -> None:
    sim.faults.invalid_record = True
    sim.faults.extra_fields = True
    connector = connect(sim)
    ctx = connector.prepare()

    for stream in connector.streams:
        failures, mapped = 0, 0
        for page in read(connector, stream, now_window()):
            for item in page.items:
                assert "metadata" in item
                try:
                    connector.map_record(stream, item, ctx)
                    mapped += 1
                except MappingError:
                    failures += 1
        assert (failures, mapped) == (1, len(store_ids(sim, stream, sim.stores[0])) - 1), stream
    connector.close()


def test_every_timestamp_form_maps_to_the_same_records(sim: AuphanSimulator) -> None:
    connector = connect(sim)
    ctx = connector.prepare()
    window = now_window()

    def snapshot(wall_clock: bool = False, **faults: bool) -> dict[str, str]:
        sim.faults = Faults(**faults)
        return {
            record.pos_id: (as_wall_clock(record, ctx.timezone) if wall_clock else record).content_hash()
            for page in read(connector, Stream.CUSTOMERS, window)
            for record in (connector.map_record(Stream.CUSTOMERS, item, ctx) for item in page.items)
        }

    plain = snapshot()
    # A repeated fall-back hour reads as its first occurrence from a naive page (tests/wallclock.py).
    assert snapshot(naive_timestamps=True) == snapshot(wall_clock=True)
    assert snapshot(offset_timestamps=True) == plain
    connector.close()


def test_refunds_and_unlinked_sales(sim: AuphanSimulator) -> None:
    sim.faults.refunds = True
    connector = connect(sim)
    ctx = connector.prepare()

    sales = [
        record
        for page in read(connector, Stream.SALES, now_window())
        for record in (connector.map_record(Stream.SALES, item, ctx) for item in page.items)
        if isinstance(record, Sale)
    ]

    assert {"completed", "refunded", "partially_refunded"} <= {sale.status for sale in sales}
    assert any(sale.refunded_cents > 0 for sale in sales)  # refunded afterwards: counted
    assert any(sale.total_cents < 0 and sale.refunded_cents == 0 for sale in sales)  # returns at the till: netted
    unlinked = sum(sale.customer_pos_id is None for sale in sales)
    assert 0.2 * len(sales) < unlinked < 0.6 * len(sales)  # Auphan often cannot link a sale to a shopper
    connector.close()


def test_duplicates_across_pages_lose_nothing(sim: AuphanSimulator) -> None:
    sim.faults.duplicate_across_pages = True
    connector = connect(sim, page_size=25)

    ids = pos_ids(connector, Stream.SALES, read(connector, Stream.SALES, now_window()))

    assert len(ids) > len(set(ids))
    assert set(ids) == store_ids(sim, Stream.SALES, sim.stores[0])
    connector.close()


def test_records_changing_while_paging_are_not_skipped_by_the_cursor(sim: AuphanSimulator) -> None:
    store = sim.stores[1]
    connector = connect(sim, store, page_size=30)
    window = now_window()
    expected_in_window = store_ids(sim, Stream.CUSTOMERS, store)
    sim.faults.update_while_paging = 4

    pages = read(connector, Stream.CUSTOMERS, window)

    assert pages[-1].total_records == (pages[0].total_records or 0) - 4  # they left the fixed window...
    assert set(pos_ids(connector, Stream.CUSTOMERS, pages)) == expected_in_window  # ...but none was skipped
    connector.close()


def test_new_sales_and_edited_customers_show_up_in_the_next_window(sim: AuphanSimulator) -> None:
    connector = connect(sim)
    start = datetime.now(UTC) - timedelta(seconds=1)
    added = sim.add_sales(sim.stores[0], 6)
    edited = sim.update_customers(sim.stores[0], 3)
    window = Window(start, datetime.now(UTC) + timedelta(seconds=1))

    assert sorted(pos_ids(connector, Stream.SALES, read(connector, Stream.SALES, window))) == sorted(added)
    assert sorted(pos_ids(connector, Stream.CUSTOMERS, read(connector, Stream.CUSTOMERS, window))) == sorted(edited)
    connector.close()


# --- the store PC -------------------------------------------------------------------------------------------------


def test_a_store_pc_that_is_off_is_offline_then_back(sim: AuphanSimulator) -> None:
    connector = connect(sim)
    sim.power_off()
    before = len(sim.request_log)

    with pytest.raises(StoreOfflineError, match="switched off"):
        connector.prepare()

    assert len(sim.request_log) == before
    sim.power_on()
    assert connector.prepare().timezone == "America/Los_Angeles"
    connector.close()


def test_a_store_pc_switched_off_mid_pull_resumes_from_the_cursor(sim: AuphanSimulator) -> None:
    connector = connect(sim, page_size=60)
    window = now_window()
    pages = connector.pages(Stream.SALES, window, None)
    first = next(pages)
    sim.power_off()

    with pytest.raises(StoreOfflineError):
        next(pages)

    sim.power_on()
    rest = read(connector, Stream.SALES, window, first.next_token)
    ids = pos_ids(connector, Stream.SALES, [first, *rest])
    assert len(ids) == len(set(ids)) and set(ids) == store_ids(sim, Stream.SALES, sim.stores[0])
    connector.close()
