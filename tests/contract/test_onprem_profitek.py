"""The Profitek connector against its simulator over real HTTP on loopback: auth, paging, filters, resume, faults."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.core.connector import Connector, ConnectorConfig, MappingError, RawPage, Window
from functions.core.credentials import parse_credential
from functions.core.errors import CredentialError, StoreOfflineError, VendorUnavailableError
from functions.core.http import RetryPolicy
from functions.core.layout import Stream, Vendor
from functions.core.models import Sale
from functions.pull_onprem.connector import open_connector
from simulators.base import Faults
from simulators.profitek import ProfitekSimulator
from tests.wallclock import as_wall_clock

FAST = RetryPolicy(attempts=4, timeout=20.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.0)


@pytest.fixture(scope="module")
def sim() -> Iterator[ProfitekSimulator]:
    simulator = ProfitekSimulator(seed=21, store_count=2, customers_per_store=120, sales_per_store=260)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def healthy(sim: ProfitekSimulator) -> Iterator[None]:
    sim.faults = Faults()
    if not sim.powered:
        sim.power_on()
    yield
    sim.faults = Faults()
    if not sim.powered:
        sim.power_on()


def connect(
    sim: ProfitekSimulator,
    store: str | None = None,
    *,
    via_ip_port: bool = True,
    page_size: int = 50,
    sleeps: list[float] | None = None,
    read_timeout: float = 10.0,  # generous: on a loaded CI machine a 1 s read timed out and was retried
    **overrides: Any,
) -> Connector:
    raw = {**sim.credential_for(store or sim.stores[0], via_ip_port=via_ip_port), **overrides}
    credential = parse_credential(raw, Vendor.PROFITEK, "cred-1")
    config = ConnectorConfig(base_url=sim.url, page_size=page_size, connect_timeout=5.0, read_timeout=read_timeout)
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


def store_ids(sim: ProfitekSimulator, stream: Stream, store: str) -> set[str]:
    return {pos_id for key, pos_id in sim.all_ids(stream) if key == store}


# --- auth and prepare ----------------------------------------------------------------------------------------------


def test_prepare_learns_the_store_zone_and_id(sim: ProfitekSimulator) -> None:
    connector = connect(sim, sim.stores[1])

    ctx = connector.prepare()

    assert (ctx.tenant, ctx.vendor, ctx.credential_id) == ("t1", Vendor.PROFITEK, "cred-1")
    assert ctx.timezone == "America/Denver"  # the simulator sends the Windows id "Mountain Standard Time"
    assert ctx.extra["store_id"] == sim.stores[1]
    connector.close()


@pytest.mark.parametrize(
    "override",
    [{"auth_key": "pk-wrong-key-000000"}, {"store_name": "Somebody Else's Store"}],
    ids=["wrong key", "key of another store name"],
)
def test_a_refused_credential_fails_at_once(sim: ProfitekSimulator, override: dict[str, str]) -> None:
    connector = connect(sim, **override)
    before = len(sim.request_log)

    with pytest.raises(CredentialError) as caught:
        connector.prepare()

    assert len(sim.request_log) - before == 1  # 401 is not retried
    assert "pk-" not in str(caught.value)  # the key never appears in the message
    connector.close()


def test_the_key_of_store_one_does_not_open_store_two(sim: ProfitekSimulator) -> None:
    other_key = sim.credential_for(sim.stores[1])["auth_key"]
    connector = connect(sim, sim.stores[0], auth_key=other_key)
    with pytest.raises(CredentialError):
        connector.prepare()
    connector.close()


# --- paging, filters, ordering, resume ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [Stream.CUSTOMERS, Stream.SALES, Stream.INVENTORY, Stream.LOYALTY])
def test_a_full_read_holds_every_record_once_in_update_order(sim: ProfitekSimulator, stream: Stream) -> None:
    connector = connect(sim)
    ctx = connector.prepare()

    pages = read(connector, stream, now_window())
    records = [connector.map_record(stream, item, ctx) for page in pages for item in page.items]

    assert [r.pos_id for r in records] == sorted({r.pos_id for r in records}, key=[r.pos_id for r in records].index)
    assert {r.pos_id for r in records} == store_ids(sim, stream, sim.stores[0])
    stamps = [r.source_updated_at for r in records]
    assert stamps == sorted(stamps)
    assert pages[-1].next_token is None and all(page.next_token is not None for page in pages[:-1])
    assert {page.total_records for page in pages} == {len(records)}
    connector.close()


def test_pages_record_the_request_without_headers_and_keep_the_exact_body(sim: ProfitekSimulator) -> None:
    connector = connect(sim)
    first = read(connector, Stream.SALES, now_window())[0]

    assert first.request["method"] == "GET"
    assert first.request["path"].endswith("/transactions")
    assert set(first.request) == {"method", "path", "params"}
    assert first.request["params"]["orderBy"] == "ModifiedDate"
    assert json.loads(first.body)["Data"] == first.items
    assert sim.credential_for(sim.stores[0])["auth_key"] not in repr(first.request)
    connector.close()


def test_a_window_returns_exactly_the_records_updated_in_it(sim: ProfitekSimulator) -> None:
    connector = connect(sim)
    ctx = connector.prepare()
    everything = [
        connector.map_record(Stream.CUSTOMERS, item, ctx)
        for page in read(connector, Stream.CUSTOMERS, now_window())
        for item in page.items
    ]
    start, end = everything[20].source_updated_at, everything[70].source_updated_at

    windowed = read(connector, Stream.CUSTOMERS, Window(start, end))
    got = {connector.map_record(Stream.CUSTOMERS, item, ctx).pos_id for page in windowed for item in page.items}

    assert got == {r.pos_id for r in everything if start <= r.source_updated_at < end}
    assert len(got) == 50  # start inclusive, end exclusive
    connector.close()


def test_resuming_from_a_token_continues_where_the_pull_stopped(sim: ProfitekSimulator) -> None:
    connector = connect(sim, page_size=40)
    window = now_window()
    pages = connector.pages(Stream.SALES, window, None)
    head = [next(pages), next(pages)]
    token = head[-1].next_token
    assert token == {"page": 3}
    before = len(sim.request_log)

    tail = read(connector, Stream.SALES, window, token)

    asked = [query["page"][0] for _, path, query in sim.request_log[before:] if path.endswith("/transactions")]
    assert asked[0] == "3"  # no page is read twice
    assert set(pos_ids(connector, Stream.SALES, head + tail)) == store_ids(sim, Stream.SALES, sim.stores[0])
    connector.close()


def test_a_token_it_cannot_read_restarts_the_window(sim: ProfitekSimulator) -> None:
    connector = connect(sim)
    pages = read(connector, Stream.INVENTORY, now_window(), {"page": "three"})
    assert pages[0].request["params"]["page"] == 1
    connector.close()


# --- transport faults -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"rate_limit_with_retry_after": 1},
        {"rate_limit_without_retry_after": 2},
        {"server_error": 3},
        {"malformed_json": 2},
        {"slow": 1, "slow_seconds": 0.2},
        {"timeout": 1, "timeout_seconds": 0.6},
    ],
    ids=lambda fault: next(iter(fault)),
)
def test_transient_faults_are_retried_and_the_read_completes(sim: ProfitekSimulator, fault: dict[str, Any]) -> None:
    sleeps: list[float] = []
    connector = connect(sim, sleeps=sleeps, read_timeout=0.3 if "timeout" in fault else 2.0)
    window = now_window()
    for name, value in fault.items():
        setattr(sim.faults, name, value)

    pages = read(connector, Stream.CUSTOMERS, window)

    assert set(pos_ids(connector, Stream.CUSTOMERS, pages)) == store_ids(sim, Stream.CUSTOMERS, sim.stores[0])
    counted = next(iter(fault))
    assert getattr(sim.faults, counted) == 0  # the fault was really served
    if counted == "rate_limit_with_retry_after":
        assert sleeps == [1.0]  # Retry-After honoured
    connector.close()


def test_a_server_that_keeps_failing_gives_up_after_bounded_retries(sim: ProfitekSimulator) -> None:
    connector = connect(sim)
    sim.faults.server_error = 100
    before = len(sim.request_log)

    with pytest.raises(VendorUnavailableError) as caught:
        connector.prepare()

    assert not isinstance(caught.value, StoreOfflineError)  # the store answered: it is up, just failing
    assert len(sim.request_log) - before == FAST.attempts
    connector.close()


# --- data faults ----------------------------------------------------------------------------------------------------


def test_one_invalid_record_per_stream_fails_alone(sim: ProfitekSimulator) -> None:
    sim.faults.invalid_record = True
    connector = connect(sim)
    ctx = connector.prepare()

    for stream in connector.streams:
        failures, mapped = [], 0
        for page in read(connector, stream, now_window()):
            for item in page.items:
                try:
                    connector.map_record(stream, item, ctx)
                    mapped += 1
                except MappingError as exc:
                    failures.append(exc.pos_id)
        assert len(failures) == 1 and failures[0] is not None, stream
        assert mapped == len(store_ids(sim, stream, sim.stores[0])) - 1, stream
    connector.close()


def test_extra_fields_and_every_timestamp_form_map_to_the_same_records(sim: ProfitekSimulator) -> None:
    connector = connect(sim)
    ctx = connector.prepare()
    window = now_window()

    def snapshot(wall_clock: bool = False, **faults: bool) -> dict[str, str]:
        sim.faults = Faults(**faults)
        return {
            record.pos_id: (as_wall_clock(record, ctx.timezone) if wall_clock else record).content_hash()
            for page in read(connector, Stream.SALES, window)
            for record in (connector.map_record(Stream.SALES, item, ctx) for item in page.items)
        }

    plain = snapshot()
    assert snapshot(extra_fields=True) == plain
    # A repeated fall-back hour reads as its first occurrence from a naive page (tests/wallclock.py).
    assert snapshot(naive_timestamps=True) == snapshot(wall_clock=True)
    assert snapshot(offset_timestamps=True) == plain
    connector.close()


def test_refunds_arrive_as_returns_and_exchanges(sim: ProfitekSimulator) -> None:
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
    returns = [sale for sale in sales if sale.status == "refunded"]
    assert returns and all(sale.total_cents < 0 and all(line.is_refund for line in sale.lines) for sale in returns)
    exchanges = [sale for sale in sales if sale.status == "partially_refunded"]
    assert exchanges and all(sum(line.is_refund for line in sale.lines) == 1 for sale in exchanges)
    connector.close()


def test_duplicates_across_pages_lose_nothing(sim: ProfitekSimulator) -> None:
    sim.faults.duplicate_across_pages = True
    connector = connect(sim, page_size=30)

    ids = pos_ids(connector, Stream.CUSTOMERS, read(connector, Stream.CUSTOMERS, now_window()))

    assert len(ids) > len(set(ids))  # the fault really repeated records
    assert set(ids) == store_ids(sim, Stream.CUSTOMERS, sim.stores[0])
    connector.close()


def test_records_changing_while_paging_move_the_total_so_the_window_is_read_again(sim: ProfitekSimulator) -> None:
    store = sim.stores[1]
    connector = connect(sim, store, page_size=30)
    window = now_window()
    sim.faults.update_while_paging = 3

    first_pass = read(connector, Stream.CUSTOMERS, window)

    totals = [page.total_records for page in first_pass]
    assert totals[0] is not None and totals[-1] == totals[0] - 3  # the engine's signal to re-read the window
    second_pass = read(connector, Stream.CUSTOMERS, now_window())
    seen = set(pos_ids(connector, Stream.CUSTOMERS, first_pass + second_pass))
    assert seen == store_ids(sim, Stream.CUSTOMERS, store)
    connector.close()


def test_new_sales_show_up_in_the_next_window(sim: ProfitekSimulator) -> None:
    connector = connect(sim)
    start = datetime.now(UTC) - timedelta(seconds=1)
    added = sim.add_sales(sim.stores[0], 5)
    updated = sim.update_customers(sim.stores[0], 4)
    window = Window(start, datetime.now(UTC) + timedelta(seconds=1))

    sales = pos_ids(connector, Stream.SALES, read(connector, Stream.SALES, window))
    customers = pos_ids(connector, Stream.CUSTOMERS, read(connector, Stream.CUSTOMERS, window))

    assert sorted(sales) == sorted(added)
    assert sorted(customers) == sorted(updated)
    connector.close()


# --- the store PC -------------------------------------------------------------------------------------------------


def test_a_store_pc_that_is_off_is_reported_offline_after_bounded_attempts(sim: ProfitekSimulator) -> None:
    connector = connect(sim)
    sim.power_off()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", int(sim.ip_port.split(":")[1]))):
        pass  # the simulated PC really refuses connections

    with pytest.raises(StoreOfflineError) as caught:
        connector.prepare()

    assert "switched off" in str(caught.value) and sim.ip_port in str(caught.value)
    sim.power_on()
    assert connector.prepare().timezone == "America/Los_Angeles"  # back on: the same connector works again
    connector.close()


def test_a_store_pc_switched_off_mid_pull_resumes_from_the_token(sim: ProfitekSimulator) -> None:
    connector = connect(sim, page_size=40)
    window = now_window()
    pages = connector.pages(Stream.SALES, window, None)
    first = next(pages)
    sim.power_off()

    with pytest.raises(StoreOfflineError):
        next(pages)

    sim.power_on()
    rest = read(connector, Stream.SALES, window, first.next_token)
    assert set(pos_ids(connector, Stream.SALES, [first, *rest])) == store_ids(sim, Stream.SALES, sim.stores[0])
    connector.close()


def test_the_hosted_endpoint_being_down_is_unavailable_not_a_store_offline(sim: ProfitekSimulator) -> None:
    connector = connect(sim, via_ip_port=False)
    sim.power_off()

    with pytest.raises(VendorUnavailableError) as caught:
        connector.prepare()

    assert not isinstance(caught.value, StoreOfflineError)
    connector.close()


def test_a_name_is_connected_to_by_its_checked_address_with_the_name_as_host(sim: ProfitekSimulator) -> None:
    port = int(sim.ip_port.rsplit(":", 1)[1])
    lookups: list[str] = []

    def resolver(host: str, p: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p))]

    credential = parse_credential(
        {**sim.credential_for(sim.stores[0]), "custom_ip_port": f"store-pc.example.test:{port}"}, Vendor.PROFITEK, "c"
    )
    connector = open_connector(
        credential,
        ConnectorConfig(base_url="http://hosted.invalid"),
        tenant="t1",
        credential_id="c",
        policy=FAST,
        resolver=resolver,
        allow_loopback_for_tests=True,
    )

    connector.prepare()
    read(connector, Stream.INVENTORY, now_window())

    assert lookups == ["store-pc.example.test"]  # resolved once, at open time
    assert sim.last_host_header == f"store-pc.example.test:{port}"
    connector.close()
