"""Flourish pulls through the real pull Lambda under moto against differently shaped Flourish servers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import stamina

from functions.core import layout
from functions.core.layout import Stream, Vendor
from functions.core.record_items import record_fields
from simulators.flourish import FlourishShape, FlourishSimulator
from tests.integration.pulls import PullWorld

SETTLE = 1.0


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(layout.ENV_SETTLE_SECONDS, str(SETTLE))
    with stamina.set_testing(True, attempts=5):
        yield


def world(resources: Any, shape: FlourishShape) -> PullWorld:
    simulator = FlourishSimulator(seed=29, store_count=1, customers_per_store=40, sales_per_store=80, shape=shape)
    simulator.start()
    w = PullWorld(Vendor.FLOURISH, simulator, resources)
    w.register(simulator.stores[0])
    return w


def stream_records(w: PullWorld) -> list[dict[str, Any]]:
    """Every change the records table's stream holds (what the rule consumers would receive)."""
    streams = boto3.client("dynamodbstreams")
    found: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=w.resources.records_stream_arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=w.resources.records_stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        found += streams.get_records(ShardIterator=iterator, Limit=10_000)["Records"]
    return found


def stored_sales(w: PullWorld) -> dict[str, dict[str, Any]]:
    sales: dict[str, dict[str, Any]] = {}
    for page in boto3.client("dynamodb").get_paginator("scan").paginate(TableName=w.resources.records_table):
        for item in page["Items"]:
            if item.get("kind", {}).get("S") == "sale":  # page index items have no kind
                sales[record_fields(item)["pos_id"]] = record_fields(item)
    return sales


def test_discounted_orders_are_stored_at_what_was_paid_and_full_refunds_net_zero(resources: Any) -> None:
    w = world(resources, FlourishShape())  # the simulator's default: Flourish's discount double count
    w.simulator.faults.refunds = True

    w.tick()

    assert w.status(w.simulator.stores[0])["last_outcome"] == "ok" and not w.quarantined()
    truth = w.simulator.order_amounts(w.simulator.stores[0])
    sales = stored_sales(w)
    assert {pos_id: (sales[pos_id]["total_cents"], sales[pos_id]["refunded_cents"]) for pos_id in truth} == truth
    refunded = [s for s in sales.values() if s["status"] == "refunded"]
    assert refunded and all(s["total_cents"] == s["refunded_cents"] for s in refunded)
    w.simulator.stop()


def test_without_timestamps_every_pull_reads_in_full_and_writes_only_what_changed(resources: Any) -> None:
    w = world(resources, FlourishShape(timestamps=False, meta_next=False))
    store = w.simulator.stores[0]

    w.tick()
    first = len(stream_records(w))
    assert w.status(store)["last_outcome"] == "ok" and not w.quarantined()
    assert {pos_id for _, pos_id in w.stored()[Stream.CUSTOMERS]} == {p for _, p in w.held(Stream.CUSTOMERS)}

    time.sleep(SETTLE + 0.5)
    w.simulator.request_log.clear()
    w.tick()  # nothing changed: everything is read again, nothing is written
    assert len(stream_records(w)) == first
    assert any(path.endswith("/customers/") for _, path, _ in w.simulator.request_log)

    changed = set(w.simulator.update_customers(store, 2))
    time.sleep(SETTLE + 0.5)
    w.tick()
    new = stream_records(w)[first:]
    assert len(new) == 2
    assert {record_fields(r["dynamodb"]["NewImage"])["pos_id"] for r in new} == changed
    w.simulator.stop()
