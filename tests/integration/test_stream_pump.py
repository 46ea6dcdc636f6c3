"""The local stream pump under moto: real stream records, the shared FilterCriteria, Lambda's retry semantics."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import types
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest

from functions.core.layout import RULE_FUNCTIONS, Vendor
from functions.core.models import LoyaltyBalance, Product, Sale, Shopper
from functions.core.record_items import record_fields
from functions.core.store import RecordStore
from functions.core.streams import CONSUMERS
from possync.local.lambda_shim import HandlerRunner
from possync.local.provision import Resources
from possync.local.stream_pump import (
    RECORD_TOO_OLD,
    RETRIES_EXHAUSTED,
    LocalConsumer,
    StreamPump,
    StreamReader,
    peek_dead_letters,
)

# Also run against unpatched moto by `make test` (see tests/conftest.py).
pytestmark = pytest.mark.moto_store

NOW = datetime.now(UTC)
COMMON = {"tenant": "t1", "vendor": Vendor.POSABIT, "credential_id": "c1", "location_id": "venue-1"}


@dataclass
class StubConsumer:
    """Stands in for functions.<name>.handler: records every event; fails the records it is told to."""

    name: str
    events: list[list[str]] = field(default_factory=list)  # pos ids per invocation
    invoked_at: list[float] = field(default_factory=list)
    applied: Counter[str] = field(default_factory=Counter)  # pos id -> times processed successfully
    poison: set[str] = field(default_factory=set)  # reported in batchItemFailures, always
    crash: set[str] = field(default_factory=set)  # the invocation raises, always
    flaky: dict[str, int] = field(default_factory=dict)  # pos id -> failures left before it succeeds
    bad_identifier: bool = False
    raw_events: list[dict[str, Any]] = field(default_factory=list)

    def handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.raw_events.append(event)
        self.invoked_at.append(time.monotonic())
        ids = [record_fields(r["dynamodb"]["NewImage"])["pos_id"] for r in event["Records"]]
        self.events.append(ids)
        if self.crash & set(ids):
            raise RuntimeError("boom")
        failures = []
        # Like Powertools' BatchProcessor: every record is attempted, each failure is reported.
        for record, pos_id in zip(event["Records"], ids, strict=True):
            if pos_id in self.poison or self.flaky.get(pos_id, 0) > 0:
                if pos_id in self.flaky:
                    self.flaky[pos_id] -= 1
                failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
            else:
                self.applied[pos_id] += 1
        if self.bad_identifier and failures:
            return {"batchItemFailures": [{"itemIdentifier": ""}]}
        return {"batchItemFailures": failures}

    def single_deliveries(self, pos_id: str) -> int:
        return sum(1 for ids in self.events if ids == [pos_id])

    def deliveries(self, pos_id: str) -> int:
        return sum(ids.count(pos_id) for ids in self.events)


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> dict[str, StubConsumer]:
    """The consumers' handler modules, replaced by stubs that HandlerRunner imports in their place."""
    out = {}
    for name in RULE_FUNCTIONS:
        stub = StubConsumer(name)
        module = types.ModuleType(f"functions.{name}.handler")
        module.handler = stub.handler  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, f"functions.{name}.handler", module)
        out[name] = stub
    return out


@dataclass
class World:
    resources: Resources
    reader: StreamReader
    pump: StreamPump
    store: RecordStore

    def write(self, *records: Any) -> None:
        self.store.upsert_changed(records, "raw/test/page-000001.json.gz")

    def run(self) -> dict[str, Any]:
        self.pump.feed(self.reader.read())
        return self.pump.drain()

    def dead_letters(self, name: str) -> list[dict[str, Any]]:
        return peek_dead_letters(boto3.client("sqs"), self.resources.rules_dlq_urls[name]).messages


def _world(resources: Resources, clock: Any = time.time, **spec_changes: Any) -> World:
    consumers = [
        LocalConsumer(
            function=name,
            spec=dataclasses.replace(CONSUMERS[name], **spec_changes),
            env=resources.lambda_env(name),
            failure_queue_url=resources.rules_dlq_urls[name],
        )
        for name in RULE_FUNCTIONS
    ]
    reader = StreamReader(boto3.client("dynamodbstreams"), resources.records_stream_arn)
    pump = StreamPump(HandlerRunner(), consumers, boto3.client("sqs"), resources.records_stream_arn, clock=clock)
    return World(resources, reader, pump, RecordStore(boto3.client("dynamodb"), resources.records_table))


@pytest.fixture
def world(resources: Resources) -> World:
    return _world(resources)


def shopper(pos_id: str, minutes: int = 0, **changes: Any) -> Shopper:
    return Shopper(**COMMON, pos_id=pos_id, source_updated_at=NOW - timedelta(days=1, minutes=-minutes), **changes)


def sale(pos_id: str, customer: str = "s1") -> Sale:
    return Sale(
        **COMMON,
        pos_id=pos_id,
        source_updated_at=NOW - timedelta(hours=5),
        customer_pos_id=customer,
        ordered_at=NOW - timedelta(hours=5),
        local_date=date.today(),
        timezone="America/Los_Angeles",
        status="completed",
        subtotal_cents=1000,
        total_cents=1100,
    )


def product(pos_id: str) -> Product:
    return Product(**COMMON, pos_id=pos_id, source_updated_at=NOW - timedelta(hours=3), name="Gummies")


def loyalty(pos_id: str) -> LoyaltyBalance:
    return LoyaltyBalance(
        **COMMON,
        pos_id=pos_id,
        source_updated_at=NOW - timedelta(hours=2),
        customer_pos_id=pos_id,
        points=40,
        as_of=NOW,
    )


# --- filters, event shape, order, batching -----------------------------------------------------------------------


def test_each_consumer_gets_only_what_its_filter_criteria_name(world: World, stubs: dict[str, StubConsumer]) -> None:
    # Given one record of every kind, and an edit of the shopper
    world.write(shopper("s1"), sale("o1"), product("p1"), loyalty("l1"))
    world.write(shopper("s1", minutes=5, email="new@example.com"))

    report = world.run()

    # Then shoppers reach personas, sales and balances reach enroll, and the product reaches no one; nor do the
    # page index items the first write made for the new shopper, sale and balance (functions.core.record_index)
    assert [pos for ids in stubs["personas"].events for pos in ids] == ["s1", "s1"]
    assert sorted(pos for ids in stubs["enroll"].events for pos in ids) == ["l1", "o1"]
    assert (report["personas"].matched, report["personas"].filtered_out) == (2, 3 + 3)
    assert (report["enroll"].matched, report["enroll"].filtered_out) == (2, 3 + 3)
    assert not any("p1" in ids for stub in stubs.values() for ids in stub.events)


def test_consumers_receive_lambda_dynamodb_stream_events(world: World, stubs: dict[str, StubConsumer]) -> None:
    world.write(shopper("s1"))
    world.write(shopper("s1", minutes=5, first_name="Ana"))

    world.run()

    [event] = stubs["personas"].raw_events
    insert, modify = event["Records"]
    assert set(event) == {"Records"}
    for record in (insert, modify):
        assert record["eventVersion"] == "1.1"
        assert record["eventSource"] == "aws:dynamodb"
        assert record["awsRegion"] == "us-east-1"
        assert record["eventSourceARN"] == world.resources.records_stream_arn
        assert record["eventID"]
        dynamodb = record["dynamodb"]
        assert dynamodb["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert dynamodb["Keys"] == {"pk": dynamodb["NewImage"]["pk"]}
        assert isinstance(dynamodb["ApproximateCreationDateTime"], int)
        assert abs(dynamodb["ApproximateCreationDateTime"] - time.time()) < 120
        assert dynamodb["SizeBytes"] > 0
        assert record_fields(dynamodb["NewImage"])["pos_id"] == "s1"
    assert (insert["eventName"], modify["eventName"]) == ("INSERT", "MODIFY")
    assert "OldImage" not in insert["dynamodb"]
    assert modify["dynamodb"]["OldImage"]["version"] == {"N": "1"}
    assert modify["dynamodb"]["NewImage"]["version"] == {"N": "2"}
    assert int(modify["dynamodb"]["SequenceNumber"]) > int(insert["dynamodb"]["SequenceNumber"])
    json.dumps(event)  # what Lambda sends is JSON: no bytes, no datetimes


def test_personas_sees_the_shoppers_before_enroll_sees_their_sales(
    world: World, stubs: dict[str, StubConsumer]
) -> None:
    # Given a sale written before its shopper
    world.write(sale("o1", customer="s1"))
    world.write(shopper("s1"))

    world.run()

    assert stubs["personas"].invoked_at[-1] < stubs["enroll"].invoked_at[0]


def test_records_go_in_stream_order_in_batches_of_the_mapping_size(
    world: World, stubs: dict[str, StubConsumer]
) -> None:
    shoppers = [shopper(f"s{i:03d}") for i in range(230)]
    world.write(*shoppers)

    report = world.run()

    assert [len(ids) for ids in stubs["personas"].events] == [100, 100, 30]
    assert [pos for ids in stubs["personas"].events for pos in ids] == [s.pos_id for s in shoppers]
    assert report["personas"].invocations == 3
    assert stubs["enroll"].events == []


def test_the_reader_hands_each_record_over_once(world: World, stubs: dict[str, StubConsumer]) -> None:
    world.write(shopper("s1"))
    world.run()
    world.write(shopper("s2"))

    world.run()
    world.run()

    assert stubs["personas"].events == [["s1"], ["s2"]]


def test_skip_to_latest_ignores_what_the_stream_held_before(world: World, stubs: dict[str, StubConsumer]) -> None:
    world.write(shopper("old"))
    world.reader.skip_to_latest()
    world.write(shopper("new"))

    world.run()

    assert stubs["personas"].events == [["new"]]


# --- retries, bisecting, dead letters -----------------------------------------------------------------------------


def test_a_failed_item_is_retried_from_where_it_failed(world: World, stubs: dict[str, StubConsumer]) -> None:
    # Given a batch whose 4th record fails twice before it succeeds
    world.write(*(shopper(f"s{i}") for i in range(8)))
    stubs["personas"].flaky["s3"] = 2

    report = world.run()

    # Then the records before it are delivered once, it is delivered until it succeeds, nothing is dead-lettered
    stub = stubs["personas"]
    assert all(stub.deliveries(f"s{i}") == 1 for i in range(3))
    assert stub.deliveries("s3") == 3
    assert set(stub.applied) == {f"s{i}" for i in range(8)}
    assert report["personas"].partial_failures == 2
    assert report["personas"].dead_lettered == 0
    assert world.dead_letters("personas") == []


def test_a_record_that_keeps_failing_is_dead_lettered_after_the_retries(
    world: World, stubs: dict[str, StubConsumer]
) -> None:
    # Given a batch of ten with one record that always fails
    world.write(*(shopper(f"s{i}") for i in range(10)))
    stubs["personas"].poison.add("s4")

    report = world.run()

    # Then bisecting isolates it, it is retried the mapping's maximum number of times, then dead-lettered
    stub = stubs["personas"]
    retries = CONSUMERS["personas"].max_retry_attempts
    assert stub.single_deliveries("s4") == 1 + retries
    assert set(stub.applied) == {f"s{i}" for i in range(10)} - {"s4"}
    assert report["personas"].dead_lettered == 1
    [message] = world.dead_letters("personas")
    info = message["DDBStreamBatchInfo"]
    [s4] = [r for r in stub.raw_events[0]["Records"] if record_fields(r["dynamodb"]["NewImage"])["pos_id"] == "s4"]
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == s4["dynamodb"]["SequenceNumber"]
    assert info["batchSize"] == 1
    assert info["streamArn"] == world.resources.records_stream_arn
    assert info["shardId"]
    assert message["requestContext"]["condition"] == RETRIES_EXHAUSTED
    assert message["requestContext"]["functionArn"].endswith(":function:possync-personas")
    assert message["requestContext"]["approximateInvokeCount"] == 1 + retries
    assert world.dead_letters("enroll") == []


def test_a_crashing_record_is_isolated_by_bisecting(world: World, stubs: dict[str, StubConsumer]) -> None:
    # Given a sale whose processing raises (a function error fails the whole invocation)
    world.write(*(sale(f"o{i}") for i in range(16)))
    stubs["enroll"].crash.add("o11")

    report = world.run()

    stub = stubs["enroll"]
    assert set(stub.applied) == {f"o{i}" for i in range(16)} - {"o11"}
    assert stub.single_deliveries("o11") == 1 + CONSUMERS["enroll"].max_retry_attempts
    assert report["enroll"].failed_invocations > report["enroll"].partial_failures == 0
    [message] = world.dead_letters("enroll")
    assert message["DDBStreamBatchInfo"]["batchSize"] == 1
    assert message["responseContext"]["functionError"] == "Unhandled"


def test_without_bisect_the_batch_is_retried_from_the_failure_and_counts_retries(
    resources: Resources, stubs: dict[str, StubConsumer]
) -> None:
    world = _world(resources, bisect_batch_on_function_error=False, max_retry_attempts=2)
    world.write(*(shopper(f"s{i}") for i in range(6)))
    stubs["personas"].poison.add("s2")

    world.run()

    # s0, s1 are done once; [s2..s5] is retried twice more, then dead-lettered as one batch
    stub = stubs["personas"]
    assert stub.events == [[f"s{i}" for i in range(6)]] + [[f"s{i}" for i in range(2, 6)]] * 2
    [message] = world.dead_letters("personas")
    assert message["DDBStreamBatchInfo"]["batchSize"] == 4


def test_an_unknown_item_identifier_fails_the_whole_batch(resources: Resources, stubs: dict[str, StubConsumer]) -> None:
    world = _world(resources, bisect_batch_on_function_error=False, max_retry_attempts=1)
    world.write(*(shopper(f"s{i}") for i in range(3)))
    stubs["personas"].poison.add("s2")
    stubs["personas"].bad_identifier = True

    world.run()

    # Lambda cannot tell where to resume, so the whole batch is retried, then dead-lettered whole
    assert stubs["personas"].events == [["s0", "s1", "s2"]] * 2
    [message] = world.dead_letters("personas")
    assert message["DDBStreamBatchInfo"]["batchSize"] == 3


def test_records_older_than_the_maximum_age_are_dead_lettered_unread(
    resources: Resources, stubs: dict[str, StubConsumer]
) -> None:
    # Given a pump whose clock says the records are seven hours old
    later = time.time() + CONSUMERS["personas"].max_record_age_seconds + 3600
    world = _world(resources, clock=lambda: later)
    world.write(shopper("s1"), sale("o1"))

    report = world.run()

    assert stubs["personas"].events == stubs["enroll"].events == []
    assert report["personas"].dead_lettered == report["enroll"].dead_lettered == 1
    [message] = world.dead_letters("personas")
    assert message["requestContext"]["condition"] == RECORD_TOO_OLD
