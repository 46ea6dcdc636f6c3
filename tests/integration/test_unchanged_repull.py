"""An unchanged re-pull writes nothing: no S3 object, no DynamoDB write (records, checkpoints, index, status)."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import boto3
import pytest

from functions.core.archive import S3Archive
from functions.core.connector import RawPage
from functions.core.engine import PullEngine, PullOptions
from functions.core.layout import Stream, Vendor
from functions.core.models import CONTENT_HASH_PREFIX, Product
from functions.core.record_items import record_json
from functions.core.store import ControlStore, RecordStore
from tests.fakes import T0, FakeConnector, item, stored

NOW = T0 + timedelta(days=30)
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "PutObject"})


class Calls:
    """Every DynamoDB and S3 request the engine makes, by operation name."""

    def __init__(self) -> None:
        self.ddb = boto3.client("dynamodb")
        self.s3 = boto3.client("s3")
        self.seen: Counter[str] = Counter()
        for client in (self.ddb, self.s3):
            client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.seen[model.name] += 1

    def writes(self) -> dict[str, int]:
        return {name: n for name, n in self.seen.items() if name in WRITES}


def engine(resources: Any, calls: Calls, now: Any = NOW, remaining: Any = None, lookback_days: int = 365) -> PullEngine:
    # A lookback longer than the data's age: every re-pull re-reads every record, as a pull from scratch would.
    return PullEngine(
        records=RecordStore(calls.ddb, resources.records_table),
        control=ControlStore(calls.ddb, resources.control_table),
        archive=S3Archive(calls.s3, resources.archive_bucket),
        options=PullOptions(lookback=timedelta(days=lookback_days), safety_budget_seconds=10),
        now=lambda: now,
        remaining_seconds=remaining or (lambda: 1e9),
    )


def archived_keys(resources: Any) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=resources.archive_bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_unchanged_repull_puts_no_object_and_writes_nothing(resources: Any) -> None:
    data = [item(n) for n in range(1, 36)]
    calls = Calls()
    first = engine(resources, calls).run("t1", "c1", FakeConnector(data))
    assert first.s3_puts == 4 and first.changed == 35
    assert calls.writes()["PutObject"] == 4
    keys = archived_keys(resources)

    calls.seen.clear()
    again = engine(resources, calls, now=NOW + timedelta(hours=3)).run("t1", "c1", FakeConnector(data))

    assert again.records == 35 and again.pages == 4  # every page was read again...
    assert calls.writes() == {}  # ...and nothing at all was written: no object, record, checkpoint or status
    assert again.s3_puts == 0 and again.changed == 0
    assert archived_keys(resources) == keys


def test_a_changed_page_is_still_archived_and_its_records_point_at_it(resources: Any) -> None:
    data = [item(n) for n in range(1, 36)]
    calls = Calls()
    engine(resources, calls).run("t1", "c1", FakeConnector(data))
    before = set(archived_keys(resources))
    data[24] = item(25, name="renamed")  # on the third page (10 a page, in update order)

    calls.seen.clear()
    result = engine(resources, calls, now=NOW + timedelta(hours=3)).run("t1", "c1", FakeConnector(data))

    assert result.changed == 1 and result.s3_puts == 1
    [new_key] = set(archived_keys(resources)) - before
    raw = boto3.client("s3").get_object(Bucket=resources.archive_bucket, Key=new_key)["Body"].read()
    page = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    assert {"id": 25, "name": "renamed"}.items() <= page["data"][4].items()
    assert stored(resources, 25)["archive_key"]["S"] == new_key
    # the index learnt the one new page in the same request as the checkpoint it moved (it stored something); the
    # checkpoint moved again at the window's end, never for the unchanged pages: the record, the checkpoint with the
    # page, the checkpoint
    assert calls.writes() == {"PutObject": 1, "BatchWriteItem": 3}
    page_digest = next(
        i["sk"]["S"].rpartition("#")[2]
        for i in boto3.client("dynamodb").scan(TableName=resources.control_table)["Items"]
        if i["sk"]["S"].startswith("ARCHIVED#") and i["archive_key"]["S"] == new_key
    )
    control = ControlStore(boto3.client("dynamodb"), resources.control_table)
    assert control.archived_page("t1", Vendor.POSABIT, "c1", Stream.INVENTORY, page_digest) == new_key


def test_a_crash_after_archiving_a_page_archives_it_again_under_the_same_key_and_remembers_it(resources: Any) -> None:
    data = [item(n) for n in range(1, 36)]
    calls = Calls()
    engine(resources, calls).run("t1", "c1", FakeConnector(data))
    before = set(archived_keys(resources))
    data[24] = item(25, name="renamed")
    later = NOW + timedelta(hours=3)
    crashing = engine(resources, calls, now=later)
    real = crashing.records.upsert_changed

    def crash(records: Any, key: str, now: Any = None, **kwargs: Any) -> Any:
        if key not in before:
            raise RuntimeError("the Lambda died after archiving the page, before its records and checkpoint")
        return real(records, key, now, **kwargs)

    crashing.records.upsert_changed = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        crashing.run("t1", "c1", FakeConnector(data))
    [archived] = set(archived_keys(resources)) - before  # the changed page (pages 1 and 2 were archived already)
    first_bytes = boto3.client("s3").get_object(Bucket=resources.archive_bucket, Key=archived)["Body"].read()
    assert not any(
        i["archive_key"]["S"] == archived
        for i in boto3.client("dynamodb").scan(TableName=resources.control_table)["Items"]
        if i["sk"]["S"].startswith("ARCHIVED#")
    ), "a page is remembered only with the checkpoint it moves"

    calls.seen.clear()
    result = engine(resources, calls, now=later).run("t1", "c1", FakeConnector(data))

    assert result.changed == 1 and result.s3_puts == 1
    assert set(archived_keys(resources)) - before == {archived}  # the same key again...
    again = boto3.client("s3").get_object(Bucket=resources.archive_bucket, Key=archived)["Body"].read()
    assert again == first_bytes  # ...with the same bytes
    assert stored(resources, 25)["archive_key"]["S"] == archived
    assert any(
        i["archive_key"]["S"] == archived
        for i in boto3.client("dynamodb").scan(TableName=resources.control_table)["Items"]
        if i["sk"]["S"].startswith("ARCHIVED#")
    )


def test_a_crash_during_a_repull_resumes_and_stores_the_change(resources: Any) -> None:
    data = [item(n) for n in range(1, 36)]
    calls = Calls()
    engine(resources, calls).run("t1", "c1", FakeConnector(data))
    data[24] = item(25, name="renamed")
    later = NOW + timedelta(hours=3)
    crashing = engine(resources, calls, now=later)
    real = crashing.records.upsert_changed
    served = {"n": 0}

    def crash_on_third_page(records: Any, key: str, now: Any = None, **kwargs: Any) -> Any:
        served["n"] += 1
        if served["n"] == 3:
            raise RuntimeError("the Lambda died storing page 3")
        return real(records, key, now, **kwargs)

    crashing.records.upsert_changed = crash_on_third_page  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        crashing.run("t1", "c1", FakeConnector(data))
    control = ControlStore(boto3.client("dynamodb"), resources.control_table)
    # pages 1 and 2 stored nothing, so the checkpoint did not move: the retry re-reads them
    assert not control.get_checkpoint("t1", Vendor.POSABIT, "c1", Stream.INVENTORY).in_progress

    result = engine(resources, calls, now=later).run("t1", "c1", FakeConnector(data))

    assert result.changed == 1
    assert '"renamed"' in record_json(stored(resources, 25))
    cp = control.get_checkpoint("t1", Vendor.POSABIT, "c1", Stream.INVENTORY)
    assert cp.cursor == T0 + timedelta(minutes=35) and not cp.in_progress


def test_a_repull_cut_short_by_the_time_budget_continues_where_it_stopped(resources: Any) -> None:
    data = [item(n) for n in range(1, 36)]
    calls = Calls()
    engine(resources, calls).run("t1", "c1", FakeConnector(data))
    data[34] = item(35, name="renamed")  # on the last page
    connector = FakeConnector(data)

    def remaining() -> float:
        return 0.0 if connector.served_pages >= 2 else 1e9

    later = NOW + timedelta(hours=3)
    first = engine(resources, calls, now=later, remaining=remaining).run("t1", "c1", connector)
    assert first.continued and first.pages == 2
    rest = engine(resources, calls, now=later).run("t1", "c1", FakeConnector(data), streams=first.remaining_streams)
    assert rest.pages == 2 and rest.changed == 1  # resumed at page 3, not from the start
    assert '"renamed"' in record_json(stored(resources, 35))


def test_records_stored_with_the_old_digest_are_not_rewritten(resources: Any) -> None:
    data = [item(n) for n in range(1, 6)]
    calls = Calls()
    engine(resources, calls).run("t1", "c1", FakeConnector(data))
    ddb = boto3.client("dynamodb")
    for n in range(1, 6):  # as an earlier version wrote them: a digest of the sorted model_dump, no prefix
        record = Product.model_validate_json(record_json(stored(resources, n)) or "")
        ddb.update_item(
            TableName=resources.records_table,
            Key={"pk": {"S": f"t1#posabit#c1#product#{n}"}},
            UpdateExpression="SET content_hash = :h",
            ExpressionAttributeValues={":h": {"S": record.legacy_content_hash()}},
        )
    assert not stored(resources, 1)["content_hash"]["S"].startswith(CONTENT_HASH_PREFIX)
    # an unchanged page already archived, so only the records could be written; none is
    data.append(item(6))
    result = engine(resources, calls, now=NOW + timedelta(hours=3)).run("t1", "c1", FakeConnector(data))
    assert result.changed == 1  # only the new record
    assert stored(resources, 1)["version"]["N"] == "1"


@dataclass
class EchoingConnector(FakeConnector):
    """Like a POS whose answers echo the request (a next link with the window's end): the bytes change every
    window, the items do not; the page says what identifies it."""

    def pages(self, stream: Stream, window: Any, token: dict[str, Any] | None) -> Iterator[RawPage]:
        for page in super().pages(stream, window, token):
            echoed = page.body[:-1] + f', "next": "?before={window.end.isoformat()}"}}'.encode()
            yield replace(page, body=echoed, identity=json.dumps(page.items).encode())


def test_a_page_that_echoes_the_request_is_archived_once_by_its_items(resources: Any) -> None:
    data = [item(n) for n in range(1, 36)]
    calls = Calls()
    assert engine(resources, calls).run("t1", "c1", EchoingConnector(data)).s3_puts == 4

    calls.seen.clear()
    again = engine(resources, calls, now=NOW + timedelta(hours=3)).run("t1", "c1", EchoingConnector(data))

    assert again.pages == 4 and calls.writes() == {}
    data[0] = item(1, name="renamed")
    changed = engine(resources, calls, now=NOW + timedelta(hours=4)).run("t1", "c1", EchoingConnector(data))
    assert changed.s3_puts == 1 and changed.changed == 1
