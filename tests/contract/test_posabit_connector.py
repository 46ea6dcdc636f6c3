"""The POSaBIT connector against its simulator over loopback HTTP: auth, paging, windows, resume, faults, retries."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from functions.core.connector import ConnectorConfig, MappingContext, MappingError, RawPage, Window
from functions.core.credentials import parse_credential
from functions.core.errors import CredentialError, VendorUnavailableError
from functions.core.http import RetryPolicy
from functions.core.layout import Stream, Vendor
from functions.core.models import CanonicalRecord, LoyaltyBalance, Sale, Shopper
from functions.pull_posabit.client import NewCustomer
from functions.pull_posabit.connector import PosabitConnector, open_connector
from simulators.base import Faults
from simulators.posabit import CUSTOMERS_PATH, MAX_PER_PAGE, PosabitSimulator

# A clock far from any DST change, so naive wall-clock times are never ambiguous in these comparisons.
FIXED_NOW = datetime(2026, 9, 30, 18, 0, tzinfo=UTC)
EVERYTHING = Window(None, FIXED_NOW + timedelta(days=1))
FAST_RETRIES = RetryPolicy(attempts=4, timeout=20.0, wait_initial=0.001, wait_max=0.01, wait_jitter=0.0)
ALL_STREAMS = (Stream.CUSTOMERS, Stream.SALES, Stream.INVENTORY, Stream.LOYALTY)


@pytest.fixture(scope="module")
def sim() -> Iterator[PosabitSimulator]:
    """Read-only tests share one simulator on a fixed clock; tests that change data start their own."""
    simulator = PosabitSimulator(
        seed=11, store_count=2, customers_per_store=60, sales_per_store=90, now=lambda: FIXED_NOW
    )
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def live_sim() -> Iterator[PosabitSimulator]:
    simulator = PosabitSimulator(seed=5, store_count=1, customers_per_store=60, sales_per_store=40)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def reset(sim: PosabitSimulator) -> Iterator[None]:
    sim.faults = Faults()
    sim.request_log.clear()
    yield
    sim.faults = Faults()
    sim.wrap_ratio = 0.3


@dataclass
class Pulled:
    pages: list[RawPage] = field(default_factory=list)
    records: list[CanonicalRecord] = field(default_factory=list)
    failures: list[MappingError] = field(default_factory=list)

    @property
    def ids(self) -> set[str]:
        return {r.pos_id for r in self.records}

    def by_id(self) -> dict[str, CanonicalRecord]:
        return {r.pos_id: r for r in self.records}


def connect(
    simulator: PosabitSimulator,
    store: str | None = None,
    *,
    credential: dict[str, Any] | None = None,
    page_size: int = 500,
    read_timeout: float = 5.0,
    sleep: Callable[[float], None] = lambda seconds: None,
) -> PosabitConnector:
    store = store or simulator.stores[0]
    parsed = parse_credential(credential or simulator.credential_for(store), Vendor.POSABIT, "cred-1")
    config = ConnectorConfig(base_url=simulator.url, page_size=page_size, read_timeout=read_timeout)
    return open_connector(parsed, config, tenant="tenant-a", credential_id="cred-1", policy=FAST_RETRIES, sleep=sleep)


def pull(
    connector: PosabitConnector,
    stream: Stream,
    window: Window,
    token: dict[str, Any] | None = None,
    ctx: MappingContext | None = None,
) -> Pulled:
    ctx = ctx or connector.prepare()
    out = Pulled()
    for page in connector.pages(stream, window, token):
        out.pages.append(page)
        for item in page.items:
            try:
                out.records.append(connector.map_record(stream, item, ctx))
            except MappingError as exc:
                out.failures.append(exc)
    return out


def store_ids(simulator: PosabitSimulator, stream: Stream, store: str) -> set[str]:
    return {pos_id for owner, pos_id in simulator.all_ids(stream) if owner == store}


def pages_requested(simulator: PosabitSimulator, path_end: str) -> list[int]:
    return [int(query.get("page", ["1"])[0]) for _, path, query in simulator.request_log if path.endswith(path_end)]


# --- credential and venue ------------------------------------------------------------------------------------------


def test_prepare_learns_each_venue_zone_and_id(sim: PosabitSimulator) -> None:
    first, second = sim.stores
    ctx = connect(sim, first).prepare()
    assert (ctx.tenant, ctx.vendor, ctx.credential_id) == ("tenant-a", Vendor.POSABIT, "cred-1")
    assert ctx.timezone == "America/Los_Angeles"
    assert ctx.extra["venue_id"] == first
    assert connect(sim, second).prepare().timezone == "America/Denver"


@pytest.mark.parametrize("wrong", ["integrator_token", "venue_token"])
def test_a_refused_token_is_a_credential_error_that_does_not_leak_it(sim: PosabitSimulator, wrong: str) -> None:
    credential = {**sim.credential_for(sim.stores[0]), wrong: "not-the-right-token-123"}
    with pytest.raises(CredentialError, match="HTTP 401") as caught:
        connect(sim, credential=credential).prepare()
    for secret in credential.values():
        if isinstance(secret, str) and secret.startswith(("sim-", "not-the-right")):
            assert secret not in str(caught.value)


def test_one_venue_token_reads_only_its_own_venue(sim: PosabitSimulator) -> None:
    first, second = sim.stores
    pulled = pull(connect(sim, second), Stream.CUSTOMERS, EVERYTHING)
    assert pulled.ids == store_ids(sim, Stream.CUSTOMERS, second)
    assert pulled.ids.isdisjoint(store_ids(sim, Stream.CUSTOMERS, first))


def test_page_requests_never_carry_credentials(sim: PosabitSimulator) -> None:
    credential = sim.credential_for(sim.stores[0])
    pulled = pull(connect(sim), Stream.SALES, EVERYTHING)
    recorded = json.dumps([page.request for page in pulled.pages])
    assert credential["venue_token"] not in recorded
    assert credential["integrator_token"] not in recorded
    assert "authorization" not in recorded.lower()


# --- paging --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_paging_visits_every_page_once_and_sees_every_record(sim: PosabitSimulator, stream: Stream) -> None:
    store = sim.stores[0]
    expected = store_ids(sim, stream, store)
    pulled = pull(connect(sim, store, page_size=7), stream, EVERYTHING)
    assert pulled.ids == expected
    assert not pulled.failures
    assert len(pulled.pages) == -(-len(expected) // 7)
    assert {page.total_records for page in pulled.pages} == {len(expected)}
    assert pulled.pages[-1].next_token is None
    assert all(page.next_token is not None for page in pulled.pages[:-1])
    path = {Stream.SALES: "sales_histories", Stream.INVENTORY: "inventories"}.get(stream, "customers")
    assert pages_requested(sim, path) == list(range(1, len(pulled.pages) + 1))


def test_a_server_serving_smaller_pages_than_asked_is_followed(
    sim: PosabitSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sim.stores[0]
    monkeypatch.setitem(MAX_PER_PAGE, CUSTOMERS_PATH, 25)
    pulled = pull(connect(sim, store, page_size=500), Stream.CUSTOMERS, EVERYTHING)
    assert [page.request["params"]["per_page"] for page in pulled.pages] == ["500", "500", "500"]
    assert [len(page.items) for page in pulled.pages] == [25, 25, 10]
    assert pulled.ids == store_ids(sim, Stream.CUSTOMERS, store)


def test_the_documented_page_size_is_asked_for_by_default(sim: PosabitSimulator) -> None:
    store = sim.stores[0]
    pulled = pull(connect(sim, store, page_size=ConnectorConfig(base_url="-").page_size), Stream.SALES, EVERYTHING)
    assert [page.request["params"]["per_page"] for page in pulled.pages] == ["1000"]
    assert pulled.ids == store_ids(sim, Stream.SALES, store)


def test_a_refused_page_size_falls_back_to_a_smaller_one(sim: PosabitSimulator) -> None:
    # Given a server that refuses pages of more than 100 records (HTTP 422, invalid parameters)
    store = sim.stores[0]
    sim.faults.refuse_page_size_over = 100

    # When a stream is read asking for the documented 1000
    pulled = pull(connect(sim, store, page_size=1000), Stream.SALES, EVERYTHING)

    # Then the refused sizes were asked once each, the page at the fallback size, nothing missing
    asked = [query["per_page"][0] for _, path, query in sim.request_log if path.endswith("sales_histories")]
    assert asked == ["1000", "250", "100"]
    assert [page.request["params"]["per_page"] for page in pulled.pages] == ["100"]
    assert pulled.ids == store_ids(sim, Stream.SALES, store)


def test_a_pull_resumed_after_a_fallback_keeps_the_smaller_page_size(sim: PosabitSimulator) -> None:
    # Given a token left by pages of 30 (a size the server was refused a larger one for)
    store = sim.stores[0]
    token = {"page": 2, "total_records": len(sim.venue(store).sales), "per_page": 30}

    # When the pull resumes from it
    resumed = pull(connect(sim, store, page_size=1000), Stream.SALES, EVERYTHING, token)

    # Then it reads on at that size from where the token points (page numbers count pages of 30)
    asked = [(q["page"][0], q["per_page"][0]) for _, path, q in sim.request_log if path.endswith("sales_histories")]
    assert asked == [("2", "30"), ("3", "30")]
    assert all(page.next_token is None or page.next_token["per_page"] == 30 for page in resumed.pages)
    assert len(resumed.ids) == 60


def test_a_server_refusing_every_page_size_fails_the_pull_loudly(sim: PosabitSimulator) -> None:
    sim.faults.refuse_page_size_over = 10
    with pytest.raises(VendorUnavailableError, match="HTTP 422"):
        pull(connect(sim, sim.stores[0], page_size=1000), Stream.CUSTOMERS, EVERYTHING)


def test_resume_from_a_token_continues_at_the_next_page(sim: PosabitSimulator) -> None:
    store = sim.stores[0]
    interrupted = Pulled()
    connector = connect(sim, store, page_size=10)
    ctx = connector.prepare()
    for page in connector.pages(Stream.SALES, EVERYTHING, None):
        interrupted.pages.append(page)
        interrupted.records.extend(connector.map_record(Stream.SALES, item, ctx) for item in page.items)
        if len(interrupted.pages) == 2:
            break
    token = interrupted.pages[-1].next_token
    assert token is not None
    # The checkpoint comes back from DynamoDB with its numbers as Decimal.
    stored = {key: Decimal(value) for key, value in token.items()}
    sim.request_log.clear()
    resumed = pull(connect(sim, store, page_size=10), Stream.SALES, EVERYTHING, stored)
    assert pages_requested(sim, "sales_histories")[0] == 3
    assert 1 not in pages_requested(sim, "sales_histories")
    assert interrupted.ids | resumed.ids == store_ids(sim, Stream.SALES, store)
    assert interrupted.ids.isdisjoint(resumed.ids)


def test_wrapped_items_are_handed_over_unwrapped(sim: PosabitSimulator) -> None:
    sim.wrap_ratio = 1.0
    pulled = pull(connect(sim), Stream.CUSTOMERS, EVERYTHING)
    assert b'"customer":{' in pulled.pages[0].body  # the raw page keeps what POSaBIT sent
    assert all("id" in item and "customer" not in item for page in pulled.pages for item in page.items)
    assert pulled.ids == store_ids(sim, Stream.CUSTOMERS, sim.stores[0])


# --- incremental windows -------------------------------------------------------------------------------------------


def test_a_window_returns_only_what_changed_in_it(live_sim: PosabitSimulator) -> None:
    store = live_sim.stores[0]
    first_end = datetime.now(UTC)
    assert pull(connect(live_sim), Stream.CUSTOMERS, Window(None, first_end)).ids == store_ids(
        live_sim, Stream.CUSTOMERS, store
    )
    updated = set(live_sim.update_customers(store, 5))
    added = set(live_sim.add_sales(store, 3))
    window = Window(first_end, datetime.now(UTC) + timedelta(seconds=1))

    customers = pull(connect(live_sim), Stream.CUSTOMERS, window)
    sales = pull(connect(live_sim), Stream.SALES, window)
    balances = pull(connect(live_sim), Stream.LOYALTY, window)

    assert customers.ids == updated
    assert sales.ids == added
    assert balances.ids == updated
    inventory = pull(connect(live_sim), Stream.INVENTORY, window)
    assert inventory.ids == set()
    assert inventory.pages[0].next_token is None


def test_the_window_start_is_inclusive_and_its_end_exclusive(live_sim: PosabitSimulator) -> None:
    venue = live_sim.venue(live_sim.stores[0])
    at_start, at_end, *_ = sorted(venue.customers)
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=123000)  # nothing else lives there
    end = start + timedelta(hours=1)
    venue.customers[at_start]["updated_at"] = start
    venue.customers[at_end]["updated_at"] = end
    pulled = pull(connect(live_sim), Stream.CUSTOMERS, Window(start, end))
    assert pulled.ids == {str(at_start)}


# --- data-shaped faults --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_an_invalid_record_fails_alone(sim: PosabitSimulator, stream: Stream) -> None:
    store = sim.stores[0]
    expected = store_ids(sim, stream, store)
    sim.faults.invalid_record = True
    pulled = pull(connect(sim, store, page_size=25), stream, EVERYTHING)
    broken = str(min(int(i) for i in expected))
    assert [f.pos_id for f in pulled.failures] == [broken]
    assert pulled.ids == expected - {broken}


@pytest.mark.parametrize("fault", ["extra_fields", "naive_timestamps", "offset_timestamps"])
@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_shape_faults_leave_the_canonical_records_unchanged(sim: PosabitSimulator, fault: str, stream: Stream) -> None:
    baseline = pull(connect(sim), stream, EVERYTHING).by_id()
    setattr(sim.faults, fault, True)
    faulted = pull(connect(sim), stream, EVERYTHING)
    assert not faulted.failures
    assert faulted.by_id() == baseline


def test_the_same_record_on_two_pages_is_passed_on_and_nothing_is_missed(sim: PosabitSimulator) -> None:
    store = sim.stores[0]
    sim.faults.duplicate_across_pages = True
    pulled = pull(connect(sim, store, page_size=10), Stream.CUSTOMERS, EVERYTHING)
    assert len(pulled.records) > len(pulled.ids)
    assert pulled.ids == store_ids(sim, Stream.CUSTOMERS, store)


def test_records_changing_while_paging_do_not_make_others_skip(live_sim: PosabitSimulator) -> None:
    store = live_sim.stores[0]
    expected = store_ids(live_sim, Stream.CUSTOMERS, store)
    window = Window(None, datetime.now(UTC))
    live_sim.faults.update_while_paging = 3
    pulled = pull(connect(live_sim, page_size=10), Stream.CUSTOMERS, window)
    assert pulled.ids == expected
    requested = pages_requested(live_sim, "customers")
    # The three records served on page 1 changed and left the fixed window: page 2 came back from a shorter
    # list, so page 1 was read again (what moved up from page 2) before going on.
    assert requested[:4] == [1, 2, 1, 2]
    assert [p.total_records for p in pulled.pages][:2] == [60, 57]


def test_refunds_become_refund_statuses_and_lines(sim: PosabitSimulator) -> None:
    sim.faults.refunds = True
    sales = {int(r.pos_id): r for r in pull(connect(sim), Stream.SALES, EVERYTHING).records if isinstance(r, Sale)}
    returned = [s for sid, s in sales.items() if sid % 7 == 0]
    marked = [s for sid, s in sales.items() if sid % 5 == 0 and sid % 7 != 0 and sid % 11 != 0]
    assert returned and marked
    assert all(s.status == "refunded" and all(line.is_refund for line in s.lines) for s in returned)
    assert all(s.total_cents < 0 and s.net_cents == s.total_cents for s in returned)
    assert all(s.status == "refunded" and s.refunded_cents == s.total_cents > 0 and s.net_cents == 0 for s in marked)
    partial = [s for sid, s in sales.items() if sid % 11 == 0 and sid % 7 != 0 and sid % 5 != 0 and len(s.lines) > 1]
    assert all(s.status == "partially_refunded" and s.lines[0].is_refund for s in partial)
    untouched = [s for sid, s in sales.items() if sid % 5 and sid % 7 and sid % 11]
    assert all(s.status == "completed" and not any(line.is_refund for line in s.lines) for s in untouched)


def test_sales_land_on_the_venue_local_date(sim: PosabitSimulator) -> None:
    sales = [r for r in pull(connect(sim), Stream.SALES, EVERYTHING).records if isinstance(r, Sale)]
    assert sales
    for sale in sales:
        assert sale.timezone == "America/Los_Angeles"
        assert sale.local_date == (sale.ordered_at - timedelta(hours=7)).date()  # PDT all of August and September


def test_loyalty_balances_are_the_customers_points(sim: PosabitSimulator) -> None:
    store = sim.stores[0]
    venue = sim.venue(store)
    balances = pull(connect(sim, store), Stream.LOYALTY, EVERYTHING).records
    assert len(balances) == len(venue.customers)
    for balance in balances:
        assert isinstance(balance, LoyaltyBalance)
        assert balance.points == venue.customers[int(balance.pos_id)]["points"]


# --- transport faults: retried by the shared HTTP policy ----------------------------------------------------------


def test_429_with_retry_after_is_waited_out(sim: PosabitSimulator) -> None:
    sleeps: list[float] = []
    sim.faults.rate_limit_with_retry_after = 2
    connector = connect(sim, sleep=sleeps.append)
    assert connector.prepare().timezone == "America/Los_Angeles"
    assert sleeps == [1.0, 1.0]
    assert connector.client.http.stats.retries == 2


@pytest.mark.parametrize("fault", ["rate_limit_without_retry_after", "server_error", "malformed_json", "timeout"])
def test_transient_failures_on_a_page_are_retried(sim: PosabitSimulator, fault: str) -> None:
    store = sim.stores[0]
    sim.faults.timeout_seconds = 0.6
    connector = connect(sim, store, read_timeout=0.3)
    ctx = connector.prepare()
    setattr(sim.faults, fault, 1)
    pulled = pull(connector, Stream.INVENTORY, EVERYTHING, ctx=ctx)
    assert pulled.ids == store_ids(sim, Stream.INVENTORY, store)
    assert connector.client.http.stats.retries == 1
    assert pages_requested(sim, "inventories") == [1, 1]


def test_a_vendor_that_keeps_failing_is_unavailable_after_bounded_attempts(sim: PosabitSimulator) -> None:
    sim.faults.server_error = 10
    with pytest.raises(VendorUnavailableError, match="HTTP 503"):
        pull(connect(sim), Stream.CUSTOMERS, EVERYTHING)
    assert sim.faults.server_error == 10 - FAST_RETRIES.attempts


# --- write back ----------------------------------------------------------------------------------------------------


def test_a_created_customer_is_found_and_then_pulled(live_sim: PosabitSimulator) -> None:
    store = live_sim.stores[0]
    before = datetime.now(UTC)
    connector = connect(live_sim, store)
    created = connector.client.create_customer(
        NewCustomer(first_name="Tess", last_name="Hill", telephone="2065550188", email="tess@example.com")
    )
    assert (store, str(created["id"])) in live_sim.all_ids(Stream.CUSTOMERS)
    found = connector.client.find_customers(telephone="2065550188")
    assert [c["id"] for c in found] == [created["id"]]
    pulled = pull(connector, Stream.CUSTOMERS, Window(before - timedelta(seconds=1), datetime.now(UTC)))
    shopper = pulled.by_id()[str(created["id"])]
    assert isinstance(shopper, Shopper)
    assert (shopper.phone, shopper.email, shopper.loyalty_member) == ("+12065550188", "tess@example.com", True)


# --- opening -------------------------------------------------------------------------------------------------------


def test_open_connector_refuses_another_vendors_credential(sim: PosabitSimulator) -> None:
    other = parse_credential({"vendor": "thsuite", "integration_token": "thsuite-token-1"}, Vendor.THSUITE, "c9")
    with pytest.raises(CredentialError, match="thsuite"):
        open_connector(other, ConnectorConfig(base_url=sim.url), tenant="tenant-a", credential_id="c9")
