"""The pull engine under moto: checkpoints, write-only-changed, quarantine, interruptions, leases."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from functions.core.archive import S3Archive
from functions.core.engine import PullEngine, PullOptions
from functions.core.errors import LeaseHeldError
from functions.core.layout import Stream, Vendor
from functions.core.record_items import record_json
from functions.core.store import ControlStore, RecordStore
from tests.fakes import T0, FakeConnector, item

# Also run against unpatched moto by `make test` (see tests/conftest.py).
pytestmark = pytest.mark.moto_store

NOW = T0 + timedelta(days=30)


def make_engine(resources: Any, remaining: Any = None, now: datetime = NOW) -> PullEngine:
    ddb = boto3.client("dynamodb")
    return PullEngine(
        records=RecordStore(ddb, resources.records_table),
        control=ControlStore(ddb, resources.control_table),
        archive=S3Archive(boto3.client("s3"), resources.archive_bucket),
        options=PullOptions(lookback=timedelta(minutes=10), safety_budget_seconds=10),
        now=lambda: now,
        remaining_seconds=remaining or (lambda: 1e9),
    )


def table_items(resources: Any) -> dict[str, dict[str, Any]]:
    ddb = boto3.client("dynamodb")
    items: dict[str, dict[str, Any]] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=resources.records_table):
        for i in page["Items"]:
            assert i["pk"]["S"] not in items
            items[i["pk"]["S"]] = i
    return items


def stream_record_count(resources: Any) -> int:
    streams = boto3.client("dynamodbstreams")
    shards = streams.describe_stream(StreamArn=resources.records_stream_arn)["StreamDescription"]["Shards"]
    total = 0
    for shard in shards:
        it = streams.get_shard_iterator(
            StreamArn=resources.records_stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        total += len(streams.get_records(ShardIterator=it, Limit=1000)["Records"])
    return total


def test_full_pull_stores_every_record_once_and_moves_cursor_to_largest_record_time(resources: Any) -> None:
    connector = FakeConnector([item(n) for n in range(1, 96)], page_size=25)
    result = make_engine(resources).run("t1", "c1", connector)

    assert result.records == 95 and result.changed == 95
    assert result.pages == 4 and result.s3_puts == 4
    assert len(table_items(resources)) == 95
    cp = ControlStore(boto3.client("dynamodb"), resources.control_table).get_checkpoint(
        "t1", Vendor.POSABIT, "c1", Stream.INVENTORY
    )
    assert cp.cursor == T0 + timedelta(minutes=95)  # the newest record, not the engine's clock (NOW)
    assert not cp.in_progress
    # at most one BatchWrite per 25 changed records
    assert result.dynamodb_write_requests == 4


def test_unchanged_repull_writes_nothing_and_emits_no_stream_record(resources: Any) -> None:
    data = [item(n) for n in range(1, 41)]
    make_engine(resources).run("t1", "c1", FakeConnector(data))
    before = stream_record_count(resources)

    # Given the lookback re-reads the boundary, and a second pull sees the same data
    again = make_engine(resources, now=NOW + timedelta(hours=3)).run("t1", "c1", FakeConnector(data))

    assert again.records > 0  # the lookback window re-read some records...
    assert again.changed == 0 and again.dynamodb_write_requests == 0  # ...and wrote none of them
    assert stream_record_count(resources) == before == 40


def test_incremental_pull_writes_only_new_and_changed_records(resources: Any) -> None:
    data = [item(n) for n in range(1, 41)]
    make_engine(resources).run("t1", "c1", FakeConnector(data))
    later = NOW + timedelta(hours=3)
    data[4] = item(5, minutes=60 * 24 * 30 + 60, name="renamed")  # edited in the POS after the first pull
    data += [item(n, minutes=60 * 24 * 30 + 90) for n in range(41, 44)]

    result = make_engine(resources, now=later).run("t1", "c1", FakeConnector(data))

    assert result.changed == 4
    items = table_items(resources)
    assert len(items) == 43
    assert '"renamed"' in record_json(items["t1#posabit#c1#product#5"])
    assert items["t1#posabit#c1#product#5"]["version"]["N"] == "2"


def test_records_on_two_pages_are_written_once(resources: Any) -> None:
    connector = FakeConnector([item(n) for n in range(1, 31)], duplicate_boundary=True)
    result = make_engine(resources).run("t1", "c1", connector)
    assert result.records > 30  # duplicates were served...
    assert result.changed == 30 and len(table_items(resources)) == 30  # ...and stored once


def test_records_updated_while_paging_are_not_missed(resources: Any) -> None:
    data = [item(n) for n in range(1, 51)]

    def touch(page: int) -> None:
        if page == 2:  # records already served move past the window's end: later ones shift a page back
            for n in (1, 2, 3):
                data[n - 1] = item(n, minutes=60 * 24 * 30 + 1)

    connector = FakeConnector(data, on_page=touch)
    result = make_engine(resources).run("t1", "c1", connector)

    assert result.streams[Stream.INVENTORY].passes == 2  # the shrinking total triggered a re-read
    assert {f"t1#posabit#c1#product#{n}" for n in range(1, 51)} == set(table_items(resources))


def test_invalid_record_is_quarantined_with_a_pointer_to_its_raw_page(resources: Any) -> None:
    data = [item(n) for n in range(1, 21)]
    data[12] = item(13, name="")
    result = make_engine(resources).run("t1", "c1", FakeConnector(data))

    assert result.quarantined == 1 and result.changed == 19
    control = ControlStore(boto3.client("dynamodb"), resources.control_table)
    [entry] = control.list_quarantine("t1", Vendor.POSABIT, "c1")
    assert entry["reason"] == "name is empty" and entry["sk"] == "inventory#13"
    raw = boto3.client("s3").get_object(Bucket=resources.archive_bucket, Key=entry["archive_key"])["Body"].read()
    page = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    assert b'"id": 13' in page


@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_interrupted_pull_continues_to_the_same_final_table(resources: Any, k: int) -> None:
    data = [item(n) for n in range(1, 96)]
    connector = FakeConnector(data)

    def remaining() -> float:  # the Lambda's time runs out once k pages have been served
        return 0.0 if connector.served_pages >= k else 1e9

    first = make_engine(resources, remaining=remaining).run("t1", "c1", connector)
    assert first.continued and first.pages == k
    assert first.remaining_streams == (Stream.INVENTORY,)

    rest = make_engine(resources).run("t1", "c1", FakeConnector(data), streams=first.remaining_streams)

    assert not rest.continued
    assert first.pages + rest.pages == 10  # resumed at page k+1, nothing read twice
    assert len(table_items(resources)) == 95


def test_checkpoint_never_moves_past_unstored_data(resources: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    data = [item(n) for n in range(1, 51)]
    engine = make_engine(resources)
    real = engine.records.upsert_changed
    calls = {"n": 0}

    def flaky(records: Any, key: str, now: Any = None, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("DynamoDB went away")
        return real(records, key, now, **kwargs)

    monkeypatch.setattr(engine.records, "upsert_changed", flaky)
    with pytest.raises(RuntimeError):
        engine.run("t1", "c1", FakeConnector(data))
    control = ControlStore(boto3.client("dynamodb"), resources.control_table)
    cp = control.get_checkpoint("t1", Vendor.POSABIT, "c1", Stream.INVENTORY)
    assert cp.pages_done == 2 and cp.token == {"page": 3} and cp.cursor is None

    monkeypatch.setattr(engine.records, "upsert_changed", real)
    engine.run("t1", "c1", FakeConnector(data))
    assert len(table_items(resources)) == 50


def test_replayed_older_version_never_overwrites_a_newer_one(resources: Any) -> None:
    make_engine(resources).run("t1", "c1", FakeConnector([item(1, minutes=100, name="new")]))
    control = ControlStore(boto3.client("dynamodb"), resources.control_table)
    control.save_checkpoint(
        "t1",
        Vendor.POSABIT,
        "c1",
        Stream.INVENTORY,
        type(control.get_checkpoint("t1", Vendor.POSABIT, "c1", Stream.INVENTORY))(),
    )  # forget the cursor: re-read from the start
    result = make_engine(resources).run("t1", "c1", FakeConnector([item(1, minutes=50, name="old")]))
    assert result.streams[Stream.INVENTORY].writes.stale == 1
    assert '"new"' in record_json(table_items(resources)["t1#posabit#c1#product#1"])


def test_lease_keeps_a_second_pull_out_until_it_expires(resources: Any) -> None:
    clock = {"t": 1_000_000.0}
    control = ControlStore(boto3.client("dynamodb"), resources.control_table, clock=lambda: clock["t"])
    control.acquire_lease("t1", Vendor.POSABIT, "c1", "pull-a", 900)
    with pytest.raises(LeaseHeldError):
        control.acquire_lease("t1", Vendor.POSABIT, "c1", "pull-b", 900)
    control.acquire_lease("t1", Vendor.POSABIT, "c2", "pull-b", 900)  # another credential is independent
    clock["t"] += 901
    control.acquire_lease("t1", Vendor.POSABIT, "c1", "pull-b", 900)  # expired: taken over
    control.release_lease("t1", Vendor.POSABIT, "c1", "pull-a")  # the old owner cannot release it
    with pytest.raises(LeaseHeldError):
        control.acquire_lease("t1", Vendor.POSABIT, "c1", "pull-c", 900)


def test_archive_keys_are_deterministic_so_a_retry_overwrites(resources: Any) -> None:
    data = [item(n) for n in range(1, 21)]
    engine = make_engine(resources)
    real = engine.records.upsert_changed
    calls = {"n": 0}

    def fail_second(records: Any, key: str, now: Any = None, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("crash after archiving page 2")
        return real(records, key, now, **kwargs)

    engine.records.upsert_changed = fail_second  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        engine.run("t1", "c1", FakeConnector(data))
    engine.records.upsert_changed = real  # type: ignore[method-assign]
    engine.run("t1", "c1", FakeConnector(data))
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=resources.archive_bucket)["Contents"]]
    assert len(keys) == 2  # page 2 was rewritten under the same key, not added again
    assert all("/run=" in k and k.endswith(".json.gz") for k in keys)
    assert datetime.now(UTC) > T0


def test_cursor_never_passes_the_window_end_even_if_the_pos_sends_newer_records(resources: Any) -> None:
    # Given a POS that ignores the upper bound and returns a record stamped after the window's end
    future = item(99, minutes=60 * 24 * 31)
    connector = FakeConnector([item(1), item(2), future], ignore_window_end=True)

    make_engine(resources).run("t1", "c1", connector)

    cp = ControlStore(boto3.client("dynamodb"), resources.control_table).get_checkpoint(
        "t1", Vendor.POSABIT, "c1", Stream.INVENTORY
    )
    assert cp.cursor is not None
    assert cp.cursor <= NOW  # the gap between the window's end and that record was never proven read
    assert cp.cursor >= NOW - timedelta(seconds=10)


def test_a_window_that_finds_nothing_archives_nothing_and_leaves_the_checkpoint_alone(resources: Any) -> None:
    make_engine(resources).run("t1", "c1", FakeConnector([item(n) for n in range(1, 11)]))
    s3 = boto3.client("s3")
    ddb = boto3.client("dynamodb")
    key = {"pk": {"S": "CRED#t1#posabit#c1"}, "sk": {"S": "CHECKPOINT#inventory"}}
    before = ddb.get_item(TableName=resources.control_table, Key=key)["Item"]
    objects = s3.list_objects_v2(Bucket=resources.archive_bucket)["KeyCount"]

    # the POS answers the next window with one empty page (as Flourish's refund passes usually do)
    again = make_engine(resources, now=NOW + timedelta(hours=3)).run("t1", "c1", FakeConnector([]))

    assert (again.pages, again.records, again.s3_puts, again.dynamodb_write_requests) == (1, 0, 0, 0)
    assert s3.list_objects_v2(Bucket=resources.archive_bucket)["KeyCount"] == objects
    assert ddb.get_item(TableName=resources.control_table, Key=key)["Item"] == before
