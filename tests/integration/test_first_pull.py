"""A credential's first pull writes its records without reading their versions first (functions.core.store.FirstPull).

Sound only while its premise holds: no checkpoint of any of the credential's streams stored means none of its records
is stored. The engine saves a stream's checkpoint before it stores anything of it in such a pull, so a crash leaves a
checkpoint behind, and the pull after it reads versions again.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import timedelta
from typing import Any

import boto3
import pytest

from functions.core import layout
from functions.core.archive import S3Archive
from functions.core.engine import PullEngine, PullOptions
from functions.core.layout import RecordKind, Stream, Vendor
from functions.core.models import Product
from functions.core.record_items import record_json
from functions.core.store import ControlStore, FirstPull, KeyBits, RecordStore
from tests.fakes import T0, FakeConnector, item, stored

NOW = T0 + timedelta(days=30)
DAY = timedelta(days=1)


class Requests:
    """Every DynamoDB request the engine makes, in order: (operation, tables it names)."""

    def __init__(self) -> None:
        self.ddb = boto3.client("dynamodb")
        self.sent: list[tuple[str, tuple[str, ...]]] = []
        self.keys: list[tuple[str, str]] = []  # (operation, the sort key it names, if one)
        self.ddb.meta.events.register("before-parameter-build.dynamodb.*", self._note)

    def _note(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        tables = (params["TableName"],) if "TableName" in params else tuple(params.get("RequestItems", ()))
        self.sent.append((model.name, tables))
        self.keys.append((model.name, params.get("Key", {}).get("sk", {}).get("S", "")))

    def count(self, operation: str, table: str) -> int:
        return sum(1 for name, tables in self.sent if name == operation and table in tables)


def engine(resources: Any, requests: Requests, now: Any = NOW) -> PullEngine:
    return PullEngine(
        records=RecordStore(requests.ddb, resources.records_table),
        control=ControlStore(requests.ddb, resources.control_table),
        archive=S3Archive(boto3.client("s3"), resources.archive_bucket),
        options=PullOptions(lookback=timedelta(days=365), safety_budget_seconds=10),
        now=lambda: now,
        remaining_seconds=lambda: 1e9,
    )


def test_a_first_pull_writes_every_record_as_version_1_without_reading_one(resources: Any) -> None:
    requests = Requests()

    result = engine(resources, requests).run("t1", "c1", FakeConnector([item(n) for n in range(1, 36)]))

    assert result.changed == 35
    assert requests.count("BatchGetItem", resources.records_table) == 0  # no version read at all
    assert requests.count("BatchWriteItem", resources.records_table) >= 4  # every page's records were written
    assert {stored(resources, n)["version"]["N"] for n in range(1, 36)} == {"1"}
    assert '"product 35"' in record_json(stored(resources, 35))


def test_the_checkpoint_is_stored_before_the_first_record(resources: Any) -> None:
    requests = Requests()

    engine(resources, requests).run("t1", "c1", FakeConnector([item(n) for n in range(1, 6)]))

    # The premise's one check, then the stream's checkpoint (the window just opened), then its records.
    first_query = requests.sent.index(("Query", (resources.control_table,)))
    first_checkpoint = requests.sent.index(("BatchWriteItem", (resources.control_table,)))
    first_records = requests.sent.index(("BatchWriteItem", (resources.records_table,)))
    assert first_query < first_checkpoint < first_records


def test_after_a_crash_in_the_first_pull_the_retry_reads_versions(
    resources: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = [item(n) for n in range(1, 26)]
    requests = Requests()
    crashing = engine(resources, requests)
    real = crashing.records.upsert_changed

    def crash_after_storing(records: Any, key: str, now: Any = None, **kwargs: Any) -> Any:
        real(records, key, now, **kwargs)
        raise RuntimeError("the Lambda died after storing page 1's records, before its checkpoint moved")

    monkeypatch.setattr(crashing.records, "upsert_changed", crash_after_storing)
    with pytest.raises(RuntimeError):
        crashing.run("t1", "c1", FakeConnector(data))
    assert stored(resources, 3)["version"]["N"] == "1"
    control = ControlStore(boto3.client("dynamodb"), resources.control_table)
    assert control.get_checkpoints("t1", Vendor.POSABIT, "c1")  # saved when the window opened

    requests.sent.clear()
    data[2] = item(3, name="renamed")  # on page 1, whose records were stored before the crash
    result = engine(resources, requests).run("t1", "c1", FakeConnector(data))

    assert requests.count("BatchGetItem", resources.records_table) >= 1  # not a first pull any more: versions read
    assert result.changed == 16  # the stored record that changed, and the 15 never stored
    assert stored(resources, 3)["version"]["N"] == "2"  # counted up from the version stored before the crash
    assert stored(resources, 1)["version"]["N"] == "1"  # unchanged: not written again


def test_a_record_met_twice_in_a_first_pull_counts_its_version_up(resources: Any) -> None:
    # Product 5 on the first page, changed while the pull paged: met again on the third page, newer.
    data = [item(n) for n in range(1, 26)] + [item(5, minutes=28, name="changed while paging")]
    requests = Requests()

    result = engine(resources, requests).run("t1", "c1", FakeConnector(data))

    assert result.changed == 26
    # The first pass reads versions only for the page that met it again. A record met again newer may have shifted
    # others across a page boundary, so the window is read a second time, whose three pages' records were all written.
    assert result.streams[Stream.INVENTORY].passes == 2
    assert requests.count("BatchGetItem", resources.records_table) == 1 + 3
    assert stored(resources, 5)["version"]["N"] == "2"
    assert '"changed while paging"' in record_json(stored(resources, 5))


def test_a_second_pull_reads_versions(resources: Any) -> None:
    data = [item(n) for n in range(1, 16)]
    requests = Requests()
    engine(resources, requests).run("t1", "c1", FakeConnector(data))
    data[9] = item(10, minutes=40, name="renamed")

    requests.sent.clear()
    result = engine(resources, requests, now=NOW + timedelta(hours=3)).run("t1", "c1", FakeConnector(data))

    assert result.changed == 1
    assert requests.count("BatchGetItem", resources.records_table) >= 1
    assert stored(resources, 10)["version"]["N"] == "2"
    assert Counter(name for name, _ in requests.sent)["Query"] == 1  # the premise is checked once a pull


def test_a_pull_reads_every_streams_checkpoint_in_one_request(resources: Any) -> None:
    data = [item(n) for n in range(1, 16)]
    streams = (Stream.INVENTORY, Stream.CUSTOMERS)
    requests = Requests()
    engine(resources, requests).run("t1", "c1", FakeConnector(data, streams=streams))
    control = ControlStore(boto3.client("dynamodb"), resources.control_table)
    saved = {stream: control.get_checkpoint("t1", Vendor.POSABIT, "c1", stream) for stream in streams}
    assert all(cp.cursor is not None and not cp.in_progress for cp in saved.values())
    # the customers' cursor a day behind the inventory's: each stream must go on from its own
    saved[Stream.CUSTOMERS] = dataclasses.replace(saved[Stream.CUSTOMERS], cursor=saved[Stream.INVENTORY].cursor - DAY)
    control.save_checkpoint("t1", Vendor.POSABIT, "c1", Stream.CUSTOMERS, saved[Stream.CUSTOMERS])

    requests.sent.clear()
    requests.keys.clear()
    connector = FakeConnector(data, streams=streams)
    result = engine(resources, requests, now=NOW + timedelta(hours=3)).run("t1", "c1", connector)

    assert Counter(name for name, _ in requests.sent)["Query"] == 1
    assert not [sk for name, sk in requests.keys if sk.startswith(layout.CONTROL_CHECKPOINT_SK_PREFIX)]
    # ...and each stream went on from its own stored checkpoint: the window opened at its cursor less the lookback
    starts = [r["start"] for r in connector.requests if r["page"] == 1]
    assert starts == [saved[s].cursor - timedelta(days=365) for s in streams]  # type: ignore[operator]
    assert result.changed == 0


def test_the_checkpoints_read_at_once_are_each_streams_own(resources: Any) -> None:
    from functions.core.store import Checkpoint

    table = resources.control_table
    control = ControlStore(boto3.client("dynamodb"), table)
    assert not control.get_checkpoints("t1", Vendor.POSABIT, "c1")  # none stored: a first pull
    cursor = NOW - timedelta(days=1)
    control.save_checkpoint("t1", Vendor.POSABIT, "c1", Stream.SALES, Checkpoint(cursor=cursor), [("d1", "raw/a")])
    control.save_checkpoint("t2", Vendor.POSABIT, "c1", Stream.CUSTOMERS, Checkpoint(cursor=NOW))  # another tenant's

    found = control.get_checkpoints("t1", Vendor.POSABIT, "c1")
    assert found and found.get(Stream.SALES).cursor == cursor
    assert found.get(Stream.CUSTOMERS) == Checkpoint()  # not this credential's: nothing stored for it

    # A checkpoint this version cannot read fails its own stream only; one of a stream it does not know still says
    # that the credential was pulled before (its records may be stored)
    pk = {"S": layout.control_credential_pk("t3", Vendor.POSABIT, "c1")}
    unknown = f"{layout.CONTROL_CHECKPOINT_SK_PREFIX}a-stream-of-a-later-version"
    for sk, state in ((layout.control_checkpoint_sk(Stream.SALES), "{not json"), (unknown, "{}")):
        boto3.client("dynamodb").put_item(TableName=table, Item={"pk": pk, "sk": {"S": sk}, "state": {"S": state}})
    # the credential's other control items (an archived page's entry) are no checkpoint
    only_page = {"S": layout.control_credential_pk("t4", Vendor.POSABIT, "c1")}
    page_sk = {"S": layout.control_archived_page_sk(Stream.SALES, "d1")}
    boto3.client("dynamodb").put_item(TableName=table, Item={"pk": only_page, "sk": page_sk, "archive_key": {"S": "k"}})
    assert not control.get_checkpoints("t4", Vendor.POSABIT, "c1")
    damaged = control.get_checkpoints("t3", Vendor.POSABIT, "c1")
    assert damaged and damaged.get(Stream.CUSTOMERS) == Checkpoint()
    with pytest.raises(ValueError):
        damaged.get(Stream.SALES)


def test_records_of_another_credential_are_never_taken_for_new() -> None:
    first = FirstPull("t1", Vendor.POSABIT, "c1")

    def product(tenant: str = "t1", vendor: Vendor = Vendor.POSABIT, credential: str = "c1") -> Product:
        return Product(
            tenant=tenant,
            vendor=vendor,
            credential_id=credential,
            kind=RecordKind.PRODUCT,
            pos_id="1",
            source_updated_at=T0,
            name="p",
        )

    assert first.maybe_stored({"k": product()}) == []
    others = {"a": product(credential="c2"), "b": product(tenant="t2"), "c": product(vendor=Vendor.FLOURISH)}
    assert first.maybe_stored(others) == ["a", "b", "c"]
    first.note_written(["k"])
    assert first.maybe_stored({"k": product(), "j": product()}) == ["k"]


def test_what_a_first_pull_wrote_is_remembered_in_a_fixed_size() -> None:
    first = FirstPull("t1", Vendor.POSABIT, "c1")
    record = Product(
        tenant="t1",
        vendor=Vendor.POSABIT,
        credential_id="c1",
        kind=RecordKind.PRODUCT,
        pos_id="1",
        source_updated_at=T0,
        name="p",
    )
    written = [f"t1#posabit#c1#product#{n}" for n in range(100_000)]
    first.note_written(written)

    # Every key written is taken for stored; of 10,000 others, expected 0.06 (the filter's three bits a key in 2 MB).
    # Python's string hash is seeded per process, so the count varies between runs: "at most 10" fails about once in
    # 10^21 runs (Poisson, mean 0.06), where one bit a key would give about 60 and a sixteenth of the filter about 150.
    assert first.maybe_stored(dict.fromkeys(written, record)) == written
    others = dict.fromkeys((f"t1#posabit#c1#product#{n}" for n in range(100_000, 110_000)), record)
    assert len(first.maybe_stored(others)) <= 10


def test_key_bits_never_miss_a_key_added_and_take_a_power_of_two_bits() -> None:
    bits = KeyBits(1 << 10)
    added = [f"k{n}" for n in range(50)]
    bits.add(added)

    assert all(key in bits for key in added)
    assert sum(f"other{n}" in bits for n in range(1000)) < 100  # 3 bits a key of 1,024: about 0.2% expected
    with pytest.raises(ValueError):
        KeyBits(1000)
