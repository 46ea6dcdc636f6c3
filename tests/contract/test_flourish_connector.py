"""The Flourish connector against its simulator over loopback HTTP: auth, paging, filters, resume and faults."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from functions.core.connector import ConnectorConfig, MappingContext, MappingError, RawPage, Window
from functions.core.credentials import FlourishCredential, parse_credential
from functions.core.errors import CredentialError, VendorUnavailableError
from functions.core.http import RetryPolicy
from functions.core.layout import Stream, Vendor
from functions.core.models import CanonicalRecord, Sale
from functions.pull_flourish.connector import FlourishConnector
from functions.pull_flourish.constants import OVERLAP
from simulators.flourish import FlourishSimulator
from tests.wallclock import as_wall_clock

FAST = RetryPolicy(attempts=4, timeout=10.0, wait_initial=0.001, wait_max=0.005, wait_jitter=0.0, max_retry_after=0.01)
STREAMS = (Stream.CUSTOMERS, Stream.SALES, Stream.INVENTORY)


@pytest.fixture
def sim() -> Iterator[FlourishSimulator]:
    simulator = FlourishSimulator(
        seed=11, store_count=2, customers_per_store=60, sales_per_store=90, products_per_store=30
    )
    simulator.start()
    yield simulator
    # shutdown() waits out the server's 0.5 s poll; let it finish in the background instead of per test
    threading.Thread(target=simulator.stop, daemon=True).start()


def connect(
    sim: FlourishSimulator,
    store: str | None = None,
    *,
    page_size: int = 25,
    read_timeout: float = 2.0,
    auth_mode: str = "api_key",
    scoped: bool = True,
    **overrides: Any,
) -> FlourishConnector:
    raw = sim.credential_for(store or sim.stores[0], auth_mode, scoped=scoped) | overrides
    credential = parse_credential(raw, Vendor.FLOURISH, "c1")
    assert isinstance(credential, FlourishCredential)
    config = ConnectorConfig(base_url=sim.url, page_size=page_size, read_timeout=read_timeout)
    return FlourishConnector(credential, config, tenant="t1", credential_id="c1", retry_policy=FAST)


def everything() -> Window:
    return Window(None, datetime.now(UTC) + timedelta(seconds=5))


def pull(
    connector: FlourishConnector, stream: Stream, window: Window | None = None, token: Any = None
) -> list[RawPage]:
    return list(connector.pages(stream, window or everything(), token))


def ids(pages: list[RawPage]) -> list[str]:
    return [str(item["id"]) for page in pages for item in page.items]


def expected(sim: FlourishSimulator, stream: Stream, store: str | None = None) -> set[str]:
    store = store or sim.stores[0]
    return {pos_id for owner, pos_id in sim.all_ids(stream) if owner == store}


def mapped(
    connector: FlourishConnector, stream: Stream, pages: list[RawPage], ctx: MappingContext
) -> tuple[dict[str, CanonicalRecord], list[MappingError]]:
    records: dict[str, CanonicalRecord] = {}
    errors: list[MappingError] = []
    for item in (item for page in pages for item in page.items):
        try:
            record = connector.map_record(stream, item, ctx)
            records[record.pos_id] = record
        except MappingError as exc:
            errors.append(exc)
    return records, errors


def sales_of(
    connector: FlourishConnector, pages: list[RawPage], ctx: MappingContext
) -> tuple[dict[str, Sale], list[MappingError]]:
    records, errors = mapped(connector, Stream.SALES, pages, ctx)
    assert all(isinstance(r, Sale) for r in records.values())
    return {k: r for k, r in records.items() if isinstance(r, Sale)}, errors


def data_requests(sim: FlourishSimulator, path_part: str) -> list[dict[str, list[str]]]:
    return [query for _, path, query in sim.request_log if path_part in path]


# --- auth ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth_mode", ["api_key", "basic"])
def test_prepare_checks_the_key_and_learns_the_facility_zone(sim: FlourishSimulator, auth_mode: str) -> None:
    store = sim.stores[1]
    connector = connect(sim, store, auth_mode=auth_mode)

    ctx = connector.prepare()

    assert (ctx.tenant, ctx.vendor, ctx.credential_id) == ("t1", Vendor.FLOURISH, "c1")
    assert ctx.timezone == sim.store_timezone(store) == "America/Denver"
    assert ctx.extra["facility_id"] == store
    assert ctx.extra["facility_timezones"] == {store: "America/Denver"}


@pytest.mark.parametrize("auth_mode", ["api_key", "basic"])
def test_a_wrong_key_is_a_credential_error_that_does_not_echo_it(sim: FlourishSimulator, auth_mode: str) -> None:
    connector = connect(sim, auth_mode=auth_mode, key="wrong-key-0000000000")

    with pytest.raises(CredentialError) as caught:
        connector.prepare()

    assert "wrong-key" not in str(caught.value)
    assert len(data_requests(sim, "facilities")) == 1  # refused at once, not retried


def test_a_facility_of_another_company_is_a_credential_error(sim: FlourishSimulator) -> None:
    connector = connect(sim, sim.stores[0], facility_id=sim.stores[1])

    with pytest.raises(CredentialError):
        connector.prepare()


def test_both_auth_forms_read_the_same_records(sim: FlourishSimulator) -> None:
    by_key = ids(pull(connect(sim), Stream.CUSTOMERS))
    by_basic = ids(pull(connect(sim, auth_mode="basic"), Stream.CUSTOMERS))

    assert by_key == by_basic and len(by_key) == 60


# --- paging and filters -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAMS)
def test_a_full_pull_pages_to_the_end_and_misses_nothing(sim: FlourishSimulator, stream: Stream) -> None:
    pages = pull(connect(sim), stream)

    pulled = ids(pages)
    assert set(pulled) == expected(sim, stream)
    assert len(pulled) == len(set(pulled))  # the overlap is never handed out twice
    assert len(pages) > 1
    assert all(page.next_token is not None for page in pages[:-1]) and pages[-1].next_token is None
    assert all("x-api-key" not in str(page.request) for page in pages)


def test_single_pass_streams_report_the_envelope_total(sim: FlourishSimulator) -> None:
    customers = pull(connect(sim), Stream.CUSTOMERS)
    sales = pull(connect(sim), Stream.SALES)

    assert {page.total_records for page in customers} == {60}
    assert {page.total_records for page in sales} == {None}


def test_offsets_advance_by_a_page_less_the_overlap_until_meta_next_is_empty(sim: FlourishSimulator) -> None:
    pull(connect(sim, page_size=25), Stream.CUSTOMERS)

    offsets = [int(q["offset"][0]) for q in data_requests(sim, "/customers")]
    assert offsets == [0, 20, 40]  # 60 customers: 25 per page, re-reading OVERLAP each time
    assert 25 - OVERLAP == 20


def test_the_facility_header_scopes_orders_to_one_facility() -> None:
    with FlourishSimulator(
        seed=5, store_count=2, customers_per_store=10, sales_per_store=30, facilities_per_company=2
    ) as sim:
        assert isinstance(sim, FlourishSimulator)
        first, second = sim.stores
        scoped = connect(sim, first)
        company_wide = connect(sim, first, scoped=False)

        scoped_sales, _ = sales_of(scoped, pull(scoped, Stream.SALES), scoped.prepare())
        all_sales, _ = sales_of(company_wide, pull(company_wide, Stream.SALES), company_wide.prepare())

        assert set(scoped_sales) == expected(sim, Stream.SALES, first)
        assert set(all_sales) == expected(sim, Stream.SALES, first) | expected(sim, Stream.SALES, second)
        for sale in all_sales.values():
            assert sale.timezone == sim.store_timezone(str(sale.location_id))
        assert {s.location_id for s in all_sales.values()} == {first, second}


def test_an_incremental_window_sees_only_what_changed(sim: FlourishSimulator) -> None:
    store = sim.stores[0]
    start = datetime.now(UTC) - timedelta(milliseconds=5)
    changed = set(sim.update_customers(store, 3))
    sold = set(sim.add_sales(store, 4))
    window = Window(start, datetime.now(UTC) + timedelta(seconds=1))
    connector = connect(sim, store)
    ctx = connector.prepare()

    customers = ids(pull(connector, Stream.CUSTOMERS, window))
    sales, _ = sales_of(connector, pull(connector, Stream.SALES, window), ctx)

    assert set(customers) == changed
    assert {pos_id for pos_id, sale in sales.items() if sale.status == "completed"} == sold
    # everything else the sales passes re-read is a recent cancellation (REVISIT)
    assert {sale.status for pos_id, sale in sales.items() if pos_id not in sold} <= {"cancelled"}
    sent_start = data_requests(sim, "/customers")[-1]["last_updated_timestamp_start"][0]
    assert sent_start.endswith("Z") and len(sent_start) == len("2026-03-10T00:00:00.000Z")


def test_a_pull_resumes_from_a_token(sim: FlourishSimulator) -> None:
    window = everything()
    pages = connect(sim, page_size=25).pages(Stream.CUSTOMERS, window, None)
    first_two = [next(pages), next(pages)]
    token = first_two[-1].next_token
    assert token is not None and token["pass"] == "updated"

    rest = pull(connect(sim, page_size=25), Stream.CUSTOMERS, window, token)

    assert set(ids(first_two)) | set(ids(rest)) == expected(sim, Stream.CUSTOMERS)
    assert not set(ids(first_two)) & set(ids(rest))
    assert int(data_requests(sim, "/customers")[-len(rest)]["offset"][0]) == token["offset"] - OVERLAP


def test_a_sales_token_resumes_at_its_pass(sim: FlourishSimulator) -> None:
    connector = connect(sim)
    ctx = connector.prepare()

    pages = pull(connector, Stream.SALES, token={"pass": "cancelled", "offset": 0})
    sales, _ = sales_of(connector, pages, ctx)

    assert sales and {sale.status for sale in sales.values()} == {"cancelled"}
    assert all("completed_timestamp_start" not in q for q in data_requests(sim, "/retail-orders"))


# --- data-shaped faults -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAMS)
def test_an_invalid_record_is_the_only_mapping_error(sim: FlourishSimulator, stream: Stream) -> None:
    sim.faults.invalid_record = True
    connector = connect(sim)

    records, errors = mapped(connector, stream, pull(connector, stream), connector.prepare())

    assert [e.pos_id for e in errors] == [sim.invalid_record_id(sim.stores[0], stream)]
    assert len(records) == len(expected(sim, stream)) - 1


@pytest.mark.parametrize("stream", STREAMS)
def test_unknown_extra_fields_are_ignored(sim: FlourishSimulator, stream: Stream) -> None:
    sim.faults.extra_fields = True
    connector = connect(sim)
    pages = pull(connector, stream)
    assert all("loyalty_tier" in item for page in pages for item in page.items)

    records, errors = mapped(connector, stream, pages, connector.prepare())

    assert not errors and set(records) == expected(sim, stream)


def test_a_record_repeated_across_pages_is_handed_out_once(sim: FlourishSimulator) -> None:
    sim.faults.duplicate_across_pages = True

    pulled = ids(pull(connect(sim), Stream.CUSTOMERS))

    assert sorted(pulled) == sorted(expected(sim, Stream.CUSTOMERS))


def test_customers_changing_while_paging_leave_the_window_and_nothing_else_is_skipped(sim: FlourishSimulator) -> None:
    sim.faults.update_while_paging = 12  # more than the overlap: the next page's records shift below its offset
    window = Window(None, datetime.now(UTC))

    pulled = set(ids(pull(connect(sim), Stream.CUSTOMERS, window)))

    changed = {
        str(c["id"])
        for c in sim.records(sim.stores[0], Stream.CUSTOMERS)
        if datetime.fromisoformat(c["last_updated_timestamp"]) > window.end
    }
    assert sim.faults.update_while_paging == 0 and len(changed) == 12
    # their old versions were served on the first page; their new ones are the next window's
    assert pulled | changed == expected(sim, Stream.CUSTOMERS)


def test_orders_refunded_while_paging_are_read_again_with_the_refund(sim: FlourishSimulator) -> None:
    sim.faults.update_while_paging = 8
    connector = connect(sim)
    ctx = connector.prepare()

    pages = pull(connector, Stream.SALES)
    sales, _ = sales_of(connector, pages, ctx)

    assert set(sales) == expected(sim, Stream.SALES)
    assert sum(1 for s in sales.values() if s.status == "refunded") >= 8


@pytest.mark.parametrize("fault", ["naive_timestamps", "offset_timestamps"])
@pytest.mark.parametrize("stream", STREAMS)
def test_naive_and_offset_timestamps_give_the_same_instants(sim: FlourishSimulator, fault: str, stream: Stream) -> None:
    store = sim.stores[1]  # Denver: offsets differ from UTC all year
    connector = connect(sim, store)
    ctx = connector.prepare()
    window = everything()
    plain, _ = mapped(connector, stream, pull(connector, stream, window), ctx)

    setattr(sim.faults, fault, True)
    shifted_pages = pull(connector, stream, window)
    shifted, errors = mapped(connector, stream, shifted_pages, ctx)

    sample = shifted_pages[0].items[0]["last_updated_timestamp"]
    assert not sample.endswith("Z")
    assert not errors
    if fault == "naive_timestamps":  # a repeated fall-back hour reads as its first occurrence; nothing else moves
        zone = sim.store_timezone(store)
        plain = {pos_id: as_wall_clock(record, zone) for pos_id, record in plain.items()}
    assert shifted == plain


def test_refunds_are_read_by_the_refund_passes_of_a_later_window(sim: FlourishSimulator) -> None:
    # Given: orders completed weeks ago are refunded now
    sim.faults.refunds = True
    connector = connect(sim)
    ctx = connector.prepare()
    window = Window(datetime.now(UTC) - timedelta(seconds=30), datetime.now(UTC) + timedelta(seconds=5))

    # When: a short incremental window is pulled (nothing completed in it)
    pages = pull(connector, Stream.SALES, window)
    sales, errors = sales_of(connector, pages, ctx)

    # Then: the refunded orders arrive through the refund passes, as refunds
    refunded = {pos_id: s for pos_id, s in sales.items() if s.status in ("refunded", "partially_refunded")}
    assert not errors
    assert {s.status for s in refunded.values()} == {"refunded", "partially_refunded"}
    assert all(s.refunded_cents > 0 for s in refunded.values())
    assert any(line.is_refund for s in refunded.values() for line in s.lines)
    queries = data_requests(sim, "/retail-orders")
    assert any(q.get("order_payment_status") == ["Refunded"] for q in queries)
    assert any(q.get("order_payment_status") == ["Partially Refunded"] for q in queries)


# --- transport faults ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    ["rate_limit_with_retry_after", "rate_limit_without_retry_after", "server_error", "malformed_json"],
)
def test_throttling_outages_and_truncated_pages_are_retried(sim: FlourishSimulator, fault: str) -> None:
    connector = connect(sim)
    setattr(sim.faults, fault, 2)

    pulled = ids(pull(connector, Stream.CUSTOMERS))

    assert set(pulled) == expected(sim, Stream.CUSTOMERS)
    assert getattr(sim.faults, fault) == 0
    assert connector.client.http.stats.retries == 2


def test_a_hung_request_times_out_and_is_retried(sim: FlourishSimulator) -> None:
    sim.faults.timeout, sim.faults.timeout_seconds = 1, 0.6
    connector = connect(sim, read_timeout=0.2)

    pulled = ids(pull(connector, Stream.INVENTORY))

    assert set(pulled) == expected(sim, Stream.INVENTORY)
    assert connector.client.http.stats.retry_reasons == {"http": 1}


def test_an_outage_longer_than_the_retries_is_vendor_unavailable(sim: FlourishSimulator) -> None:
    sim.faults.server_error = 50

    with pytest.raises(VendorUnavailableError, match="503"):
        pull(connect(sim), Stream.CUSTOMERS)


# --- creating customers -------------------------------------------------------------------------------------------


def test_a_created_customer_is_returned_and_pulled_next_time(sim: FlourishSimulator) -> None:
    connector = connect(sim)
    start = datetime.now(UTC) - timedelta(milliseconds=5)

    created = connector.create_customer(
        {"first_name": "Ivy", "last_name": "Hall", "email": "ivy.hall@example.com", "dob": "1991-04-05",
         "phone": "(206) 784-9999", "state": "WA"}
    )  # fmt: skip
    pulled = pull(connector, Stream.CUSTOMERS, Window(start, datetime.now(UTC) + timedelta(seconds=1)))

    assert ids(pulled) == [str(created["id"])]
    assert (sim.stores[0], str(created["id"])) in sim.all_ids(Stream.CUSTOMERS)


def test_the_simulator_refuses_a_customer_without_a_date_of_birth_or_with_a_taken_email(
    sim: FlourishSimulator,
) -> None:
    url, key = f"{sim.url}/external/api/v1/customers/", sim.credential_for(sim.stores[0])["key"]
    body = {"first_name": "Ivy", "last_name": "Hall", "email": "ivy.hall@example.com"}
    taken = next(c["email"] for c in sim.records(sim.stores[0], Stream.CUSTOMERS) if c["email"])

    no_dob = httpx.post(url, json=body, headers={"x-api-key": key})
    duplicate = httpx.post(url, json={**body, "email": taken.upper(), "dob": "1990-01-01"}, headers={"x-api-key": key})
    anonymous = httpx.post(url, json={**body, "dob": "1990-01-01"})

    assert no_dob.status_code == 400 and no_dob.json()["errors"] == {"dob": "required"}
    assert duplicate.status_code == 400 and duplicate.json()["errors"] == {"email": "unique"}
    assert anonymous.status_code == 401
