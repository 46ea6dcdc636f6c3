"""The Flourish connector against servers written from the same public facts but shaped differently.

Each test serves one variant of FlourishShape (the discount double count, order totals under other names, fields
renamed, ASSUMED timestamps absent, pages without meta.next) and pulls it end to end through the connector.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from functions.core.connector import ConnectorConfig, MappingError, RawPage, Window
from functions.core.credentials import FlourishCredential, parse_credential
from functions.core.http import RetryPolicy
from functions.core.layout import Stream, Vendor
from functions.core.models import CanonicalRecord, Sale
from functions.pull_flourish import mapping
from functions.pull_flourish.connector import FlourishConnector
from functions.pull_flourish.constants import OVERLAP
from simulators.flourish import FlourishShape, FlourishSimulator

FAST = RetryPolicy(attempts=4, timeout=10.0, wait_initial=0.001, wait_max=0.005, wait_jitter=0.0, max_retry_after=0.01)
STREAMS = (Stream.CUSTOMERS, Stream.SALES, Stream.INVENTORY)


def serve(shape: FlourishShape, **sizes: int) -> FlourishSimulator:
    options = {"seed": 23, "store_count": 1, "customers_per_store": 40, "sales_per_store": 120} | sizes
    simulator = FlourishSimulator(shape=shape, **{"products_per_store": 20, **options})
    simulator.start()
    return simulator


@pytest.fixture
def stopper() -> Iterator[list[FlourishSimulator]]:
    started: list[FlourishSimulator] = []
    yield started
    for simulator in started:
        threading.Thread(target=simulator.stop, daemon=True).start()


def connect(sim: FlourishSimulator, page_size: int = 50) -> FlourishConnector:
    credential = parse_credential(sim.credential_for(sim.stores[0]), Vendor.FLOURISH, "c1")
    assert isinstance(credential, FlourishCredential)
    config = ConnectorConfig(base_url=sim.url, page_size=page_size, read_timeout=2.0)
    return FlourishConnector(credential, config, tenant="t1", credential_id="c1", retry_policy=FAST)


def pull(
    connector: FlourishConnector, stream: Stream, window: Window | None = None
) -> tuple[list[RawPage], dict[str, CanonicalRecord], list[MappingError]]:
    window = window or Window(None, datetime.now(UTC) + timedelta(seconds=5))
    ctx = connector.prepare()
    pages = list(connector.pages(stream, window, None))
    records: dict[str, CanonicalRecord] = {}
    errors: list[MappingError] = []
    for item in (item for page in pages for item in page.items):
        try:
            record = connector.map_record(stream, item, ctx)
            records[record.pos_id] = record
        except MappingError as exc:
            errors.append(exc)
    return pages, records, errors


def held(sim: FlourishSimulator, stream: Stream) -> set[str]:
    return {pos_id for _, pos_id in sim.all_ids(stream)}


def completed_amounts(records: dict[str, CanonicalRecord]) -> dict[str, tuple[int, int]]:
    return {
        pos_id: (sale.total_cents, sale.refunded_cents)
        for pos_id, sale in records.items()
        if isinstance(sale, Sale) and sale.status in ("completed", "refunded", "partially_refunded")
    }


# --- the discount double count (the simulator's default) -----------------------------------------------------------


def test_the_default_server_double_counts_discounts_and_the_pull_takes_them_once(
    stopper: list[FlourishSimulator],
) -> None:
    sim = serve(FlourishShape())
    stopper.append(sim)
    sim.faults.refunds = True  # refunded in full, in part and by a returned line, discounted orders among them
    pages, records, errors = pull(connect(sim), Stream.SALES)
    raw = {str(item["id"]): item for page in pages for item in page.items}
    discounted = {
        pos_id
        for pos_id, item in raw.items()
        if any(d["discount_value"] for line in item["order_lines"] for d in line["applied_discounts"])
        and item["order_status"] == "Completed"
    }

    # the server answers the way the quirk is publicly described: paid is more than the reported total
    assert len(discounted) >= 10
    assert all(Decimal(str(raw[i]["total_paid"])) > Decimal(str(raw[i]["total_price"])) for i in discounted)
    # and every completed sale is stored at what was paid and refunded
    assert not errors
    assert completed_amounts(records) == sim.order_amounts(sim.stores[0])
    fully_refunded = [records[i] for i in discounted if raw[i]["order_payment_status"] == "Refunded"]
    assert fully_refunded and all(sale.net_cents == 0 for sale in fully_refunded if isinstance(sale, Sale))
    partly = [records[i] for i in discounted if raw[i]["order_payment_status"] == "Partially Refunded"]
    assert partly and all(0 < sale.net_cents < sale.total_cents for sale in partly if isinstance(sale, Sale))


def test_the_documented_shape_without_the_double_count_stores_the_same_cents(
    stopper: list[FlourishSimulator],
) -> None:
    quirky, plain = serve(FlourishShape()), serve(FlourishShape(discount_double_count=False))
    stopper.extend([quirky, plain])

    _, from_quirky, _ = pull(connect(quirky), Stream.SALES)
    _, from_plain, _ = pull(connect(plain), Stream.SALES)

    assert completed_amounts(from_quirky) == completed_amounts(from_plain) == quirky.order_amounts(quirky.stores[0])


# --- ASSUMED fields under other names ------------------------------------------------------------------------------

RENAMED = {
    "subtotal": "sub_total",
    "total_tax": "tax",
    "total_discounts": "discount_total",
    "total_refunded": "refunded_total",
    "created_timestamp": "created_at",
    "completed_timestamp": "completed_at",
    "last_updated_timestamp": "updated_at",
    "item_name": "name",
    "item_category": "category",
}
LINE_RENAMED = {"item_name": "name", "item_category": "category", "total_price": "line_total"}


@pytest.mark.parametrize(
    "shape",
    [
        FlourishShape(order_total="total"),
        FlourishShape(order_total="total_paid"),
        FlourishShape(order_total=None),
        FlourishShape(order_total=None, renamed=RENAMED, line_renamed=LINE_RENAMED),
    ],
    ids=["total", "total_paid", "lines_plus_tax", "all_renamed"],
)
def test_orders_whose_assumed_fields_have_other_names_are_all_stored_at_what_was_paid(
    stopper: list[FlourishSimulator], shape: FlourishShape
) -> None:
    sim = serve(shape)
    stopper.append(sim)
    sim.faults.refunds = True

    pages, records, errors = pull(connect(sim), Stream.SALES)

    assert not [e.reason for e in errors]
    assert "total_price" not in pages[0].items[0]
    assert set(records) == held(sim, Stream.SALES)
    assert completed_amounts(records) == sim.order_amounts(sim.stores[0])


def test_customers_and_items_under_other_names_are_all_stored(stopper: list[FlourishSimulator]) -> None:
    sim = serve(FlourishShape(renamed=RENAMED))
    stopper.append(sim)

    for stream in (Stream.CUSTOMERS, Stream.INVENTORY):
        pages, records, errors = pull(connect(sim), stream)
        assert "updated_at" in pages[0].items[0] and "last_updated_timestamp" not in pages[0].items[0]
        assert not errors and set(records) == held(sim, stream)
        assert all(r.source_updated_at > mapping.UNKNOWN_UPDATE_TIME for r in records.values())


def test_orders_that_truly_cannot_be_valued_are_quarantined_naming_the_field(stopper: list[FlourishSimulator]) -> None:
    # lines that carry no price under any name known to the mapping: nothing to value them by
    sim = serve(FlourishShape(line_renamed={"unit_price": "price", "total_price": "amount"}))
    stopper.append(sim)

    pages, records, errors = pull(connect(sim), Stream.SALES)

    assert not records and len(errors) == sum(len(page.items) for page in pages) > 0
    assert {e.reason for e in errors} == {
        "missing field: order_lines.total_price (nor line_total, total, nor unit_price)"
    }


# --- ASSUMED timestamps absent -------------------------------------------------------------------------------------


def test_records_without_timestamps_are_read_in_full_every_window(stopper: list[FlourishSimulator]) -> None:
    sim = serve(FlourishShape(timestamps=False))
    stopper.append(sim)
    store = sim.stores[0]
    every_order = {str(row["id"]) for row in sim.records(store, Stream.SALES)}
    changed = set(sim.update_customers(store, 2))
    recent = Window(datetime.now(UTC) - timedelta(minutes=1), datetime.now(UTC) + timedelta(seconds=5))

    for stream in STREAMS:
        pages, records, errors = pull(connect(sim), stream, recent)
        assert not errors
        assert all("last_updated_timestamp" not in item for page in pages for item in page.items)
        # the server cannot filter on what it does not keep: the window reads everything, change detection decides
        expected = every_order if stream is Stream.SALES else held(sim, stream)
        assert set(records) == expected
        if stream is not Stream.SALES:
            assert {r.source_updated_at for r in records.values()} == {mapping.UNKNOWN_UPDATE_TIME}
    _, customers, _ = pull(connect(sim), Stream.CUSTOMERS, recent)
    touched = {str(c["id"]): c["email"] for c in sim.records(store, Stream.CUSTOMERS) if str(c["id"]) in changed}
    assert {pos_id: getattr(customers[pos_id], "email", None) for pos_id in changed} == touched


# --- pages without meta.next ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("meta_total", [True, False], ids=["with_total", "without_total"])
@pytest.mark.parametrize("stream", STREAMS)
def test_pages_without_meta_next_are_read_by_offset_to_the_end(
    stopper: list[FlourishSimulator], stream: Stream, meta_total: bool
) -> None:
    sim = serve(
        FlourishShape(meta_next=False, meta_total=meta_total),
        customers_per_store=130,
        sales_per_store=130,
        products_per_store=130,
    )
    stopper.append(sim)
    connector = connect(sim, page_size=20)  # 20 a request, 15 new: more than three pages each

    pages, records, errors = pull(connector, stream)

    assert all(b'"next"' not in page.body for page in pages)
    assert not errors
    assert set(records) == held(sim, stream)
    first_pass = [
        page.request["params"]["offset"] for page in pages if page.request["path"] == pages[0].request["path"]
    ]
    assert len(pages) > 3 and first_pass[:4] == [0, 20 - OVERLAP, 2 * (20 - OVERLAP), 3 * (20 - OVERLAP)]
