"""POSaBIT's customer pages are read once per pull: each page yields the shoppers and their loyalty balances."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import stamina

from functions.core import layout
from functions.core.layout import RecordKind, Stream, Vendor
from functions.core.store import RecordStore
from simulators.posabit import PosabitSimulator
from tests.integration.pulls import PullWorld


@pytest.fixture
def world(resources: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[PullWorld]:
    monkeypatch.setenv(layout.ENV_SETTLE_SECONDS, "0")
    simulator = PosabitSimulator(seed=7, store_count=1, customers_per_store=30, sales_per_store=10)
    simulator.faults.invalid_record = True  # one customer fails validation: it is quarantined for both streams
    simulator.start()
    w = PullWorld(Vendor.POSABIT, simulator, resources)
    w.register(simulator.stores[0])
    with stamina.set_testing(True, attempts=3):
        yield w
    simulator.stop()


def test_one_read_of_the_customer_pages_stores_shoppers_and_balances(world: PullWorld) -> None:
    store = world.simulator.stores[0]
    venue = world.simulator.venue(store)
    world.simulator.request_log.clear()

    jobs = world.tick()

    assert jobs and all(job.ok for job in jobs)
    # the customers endpoint was read once (one page holds them all), not once per stream
    customer_reads = [path for _, path, _ in world.simulator.request_log if path.endswith("/venue/customers")]
    assert len(customer_reads) == 1
    stored = world.stored()
    quarantined = world.quarantined()
    assert {pos for _, pos in stored[Stream.CUSTOMERS]} | {pos for _, pos in quarantined[Stream.CUSTOMERS]} == {
        str(pos_id) for pos_id in venue.customers
    }
    assert sorted(stored[Stream.LOYALTY]) == sorted(stored[Stream.CUSTOMERS])
    assert quarantined[Stream.LOYALTY] == quarantined[Stream.CUSTOMERS] != set()
    # each balance is its customer's points, as when the loyalty stream read the pages itself
    records = RecordStore(boto3.client("dynamodb"), world.resources.records_table)
    credential = world.credentials[store]
    for _, pos_id in stored[Stream.LOYALTY]:
        balance = records.get(world.tenant, Vendor.POSABIT, credential, RecordKind.LOYALTY_BALANCE, pos_id)
        assert balance is not None and balance.points == venue.customers[int(pos_id)]["points"]  # type: ignore[attr-defined]
    status = world.status(store)
    assert status["last_records"] == len(stored[Stream.CUSTOMERS]) + len(stored[Stream.LOYALTY]) + sum(
        len(stored[s]) for s in (Stream.SALES, Stream.INVENTORY, Stream.DISCOUNTS)
    )

    # An unchanged second pull reads the customer pages once more and writes nothing
    world.simulator.request_log.clear()
    assert all(job.ok for job in world.tick())
    assert len([p for _, p, _ in world.simulator.request_log if p.endswith("/venue/customers")]) == 1
    assert world.status(store)["last_changed"] == 0
