"""The records index written per page: new records are listed by one page index item per kind and credential (and
carry no index keys), and RecordStore.scope_page still returns every stored record exactly once, old layout or new."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.core import aws, layout, record_index
from functions.core.layout import RecordKind, Vendor
from functions.core.models import CanonicalRecord, Product
from functions.core.record_index import MAX_ID_BYTES_PER_ITEM, MAX_IDS_PER_ITEM, page_indexes
from functions.core.sources import clear_caches
from functions.core.store import RecordStore, WriteStats, record_item_key
from tests.integration.test_personas_service import T0, TENANT, sale, shopper

pytestmark = pytest.mark.moto_store


@pytest.fixture(scope="module")
def deployment() -> Iterator[str]:
    """The records table (and the rest of a deployment), made once for this module."""
    with mock_aws():
        boto3.DEFAULT_SESSION = aws.session()
        aws.reset_clients()
        clear_caches()
        from possync.local.provision import provision

        yield provision(lambda service: boto3.client(service, region_name="us-east-1")).records_table
    aws.reset_clients()
    clear_caches()


@pytest.fixture
def table(deployment: str) -> Iterator[str]:
    yield deployment
    keys = [{"DeleteRequest": {"Key": {"pk": {"S": pk}}}} for pk in items(deployment)]
    for start in range(0, len(keys), 25):
        ddb().batch_write_item(RequestItems={deployment: keys[start : start + 25]})


def ddb() -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


def items(table: str) -> dict[str, dict[str, Any]]:
    return {i["pk"]["S"]: i for page in ddb().get_paginator("scan").paginate(TableName=table) for i in page["Items"]}


def index_items(table: str) -> list[dict[str, Any]]:
    return [i for pk, i in items(table).items() if record_index.is_page_index(pk)]


def every_page(store: RecordStore, kind: RecordKind, limit: int, credential_id: str | None = None) -> list[str]:
    """The POS ids of every record scope_page returns, page after page."""
    out: list[str] = []
    cursor: dict[str, Any] | None = None
    while True:
        page = store.scope_page(TENANT, Vendor.POSABIT, kind, cursor, limit, credential_id=credential_id)
        assert len(page.records) <= limit
        out.extend(record.pos_id for record, _ in page.records)
        cursor = page.next_key
        if cursor is None:
            return out


def put_old_style(table: str, record: CanonicalRecord) -> None:
    """A record as versions before page indexes stored it: with the index keys on the item itself."""
    item = RecordStore._item(
        record_item_key(record), record, record.content_hash(), record.source_updated_at.isoformat(), 1, "raw/a", "x"
    )
    item[layout.RECORDS_SCOPE_ATTRIBUTE] = {"S": layout.record_scope(record.tenant, record.vendor)}
    item[layout.RECORDS_SCOPE_KEY_ATTRIBUTE] = {
        "S": layout.record_scope_key(record.kind, record.credential_id, record.pos_id)
    }
    ddb().put_item(TableName=table, Item=item)


DAY = date(2026, 3, 1)


def test_new_records_write_one_page_index_item_per_kind_and_credential_and_no_index_keys(table: str) -> None:
    store = RecordStore(ddb(), table)
    # Given one call with shoppers of two stores, sales of one, and products (a kind outside the index)
    records: list[CanonicalRecord] = [shopper(f"s{n}") for n in range(30)]
    records += [shopper(f"x{n}", cred="c2") for n in range(3)] + [sale(f"o{n}", f"s{n}", DAY, 500) for n in range(5)]
    records += [
        Product(
            tenant=TENANT, vendor=Vendor.POSABIT, credential_id="c1", pos_id="p1", name="Gummies", source_updated_at=T0
        )
    ]

    stats = store.upsert_changed(records, "raw/page-1.json.gz")

    assert stats.changed == 39
    listed = {
        (i["credential_id"]["S"], i[layout.RECORDS_SCOPE_KEY_ATTRIBUTE]["S"].split("#")[0]): i
        for i in index_items(table)
    }
    assert sorted(listed) == [("c1", "sale"), ("c1", "shopper"), ("c2", "shopper")]
    assert sorted(listed[("c1", "shopper")][layout.RECORDS_PAGE_INDEX_IDS_ATTRIBUTE]["SS"]) == sorted(
        f"s{n}" for n in range(30)
    )
    stored = items(table)
    for record in records[:-1]:
        item = stored[record_item_key(record)]
        # The record carries no index keys of its own, only the name of the page index item that lists it
        assert layout.RECORDS_SCOPE_ATTRIBUTE not in item and layout.RECORDS_SCOPE_KEY_ATTRIBUTE not in item
        owner = record_index.page_index_pk(item[layout.RECORDS_INDEXED_BY_ATTRIBUTE]["S"])
        assert record.pos_id in stored[owner][layout.RECORDS_PAGE_INDEX_IDS_ATTRIBUTE]["SS"]
    assert layout.RECORDS_INDEXED_BY_ATTRIBUTE not in stored[record_item_key(records[-1])]
    # One request for the index items, before the records' own batches of 25
    assert stats.write_requests == 1 + 2


def test_a_repull_and_a_change_write_no_page_index_item(table: str) -> None:
    store = RecordStore(ddb(), table)
    records = [shopper(f"s{n}") for n in range(10)]
    store.upsert_changed(records, "raw/page-1.json.gz")
    before = items(table)

    again = store.upsert_changed(records, "raw/page-2.json.gz")
    changed = store.upsert_changed([shopper("s3", minutes=5, first_name="Ana")], "raw/page-3.json.gz")

    assert again.changed == 0 and again.write_requests == 0
    assert changed.changed == 1 and changed.write_requests == 1
    after = items(table)
    assert len(index_items(table)) == 1
    key = record_item_key(records[3])
    assert after[key]["version"]["N"] == "2"
    assert after[key][layout.RECORDS_INDEXED_BY_ATTRIBUTE] == before[key][layout.RECORDS_INDEXED_BY_ATTRIBUTE]
    assert every_page(store, RecordKind.SHOPPER, 100) == [f"s{n}" for n in sorted(range(10), key=str)]


def test_a_record_stored_the_old_way_keeps_its_own_index_entry_when_it_changes(table: str) -> None:
    store = RecordStore(ddb(), table)
    put_old_style(table, shopper("old"))

    stats = store.upsert_changed([shopper("old", minutes=5, first_name="Ana"), shopper("new")], "raw/page-1.json.gz")

    assert stats.changed == 2
    item = items(table)[record_item_key(shopper("old"))]
    assert item[layout.RECORDS_SCOPE_KEY_ATTRIBUTE]["S"] == layout.record_scope_key(RecordKind.SHOPPER, "c1", "old")
    assert layout.RECORDS_INDEXED_BY_ATTRIBUTE not in item
    [index] = index_items(table)
    assert index[layout.RECORDS_PAGE_INDEX_IDS_ATTRIBUTE]["SS"] == ["new"]
    assert sorted(every_page(store, RecordKind.SHOPPER, 1)) == ["new", "old"]


@pytest.mark.parametrize("limit", [1, 7, 25, 26, 1000])
def test_scope_page_returns_every_record_once_over_old_and_new_layouts(table: str, limit: int) -> None:
    store = RecordStore(ddb(), table)
    # Given records stored the old way (their own index entries) between page index items of several sizes
    old = [shopper(f"old{n:02d}") for n in range(6)] + [shopper(f"old-c2-{n}", cred="c2") for n in range(2)]
    for record in old:
        put_old_style(table, record)
    pages = [[shopper(f"p{p}-{n:02d}") for n in range(size)] for p, size in enumerate((25, 1, 9))]
    pages.append([shopper(f"c2-{n}", cred="c2") for n in range(4)])
    for number, page in enumerate(pages):
        store.upsert_changed(page, f"raw/page-{number}.json.gz")
    store.upsert_changed([sale(f"o{n}", "p0-00", DAY, 100) for n in range(5)], "raw/sales.json.gz")
    expected = sorted([r.pos_id for r in old] + [r.pos_id for page in pages for r in page])

    got = every_page(store, RecordKind.SHOPPER, limit)

    assert sorted(got) == expected and len(got) == len(set(got))  # each one, once
    assert sorted(every_page(store, RecordKind.SHOPPER, limit, credential_id="c2")) == sorted(
        [f"old-c2-{n}" for n in range(2)] + [f"c2-{n}" for n in range(4)]
    )
    assert sorted(every_page(store, RecordKind.SALE, limit)) == [f"o{n}" for n in range(5)]


def test_scope_page_fills_each_page_up_to_the_limit_across_index_items(table: str) -> None:
    store = RecordStore(ddb(), table)
    for number in range(4):
        store.upsert_changed([shopper(f"p{number}-{n}") for n in range(10)], f"raw/page-{number}.json.gz")

    first = store.scope_page(TENANT, Vendor.POSABIT, RecordKind.SHOPPER, None, 25)
    second = store.scope_page(TENANT, Vendor.POSABIT, RecordKind.SHOPPER, first.next_key, 25)

    assert len(first.records) == 25 and first.next_key is not None
    assert len(second.records) == 15 and second.next_key is None


class CrashingStore(RecordStore):
    """Writes its first `writes` batches of items (the page index comes first), then the Lambda dies."""

    def __init__(self, table: str, writes: int, records_kept: int = 0) -> None:
        super().__init__(ddb(), table)
        self.writes = writes
        self.records_kept = records_kept

    def _batch_write(self, items: list[dict[str, Any]], stats: WriteStats) -> None:
        if self.writes == 0:
            super()._batch_write(items[: self.records_kept], stats)  # part of the batch landed
            raise RuntimeError("Lambda timed out")
        self.writes -= 1
        super()._batch_write(items, stats)


@pytest.mark.parametrize("records_kept", [0, 7])
def test_a_crash_after_the_page_index_write_loses_no_record_on_retry(table: str, records_kept: int) -> None:
    page = [shopper(f"s{n:02d}") for n in range(20)]
    # Given a pull that wrote the page index item and then died before (or part way through) the records
    with pytest.raises(RuntimeError):
        CrashingStore(table, writes=1, records_kept=records_kept).upsert_changed(page, "raw/page-1.json.gz")
    store = RecordStore(ddb(), table)
    assert sorted(every_page(store, RecordKind.SHOPPER, 100)) == [f"s{n:02d}" for n in range(records_kept)]

    # When the page is pulled again
    retry = store.upsert_changed(page, "raw/page-1.json.gz")

    # Then every record is stored and listed, and a pass over the index meets each one once
    assert retry.changed == 20 - records_kept
    assert len(index_items(table)) == (1 if records_kept == 0 else 2)  # the same item again, or one for the rest
    for limit in (1, 6, 100):
        got = every_page(store, RecordKind.SHOPPER, limit)
        assert sorted(got) == [f"s{n:02d}" for n in range(20)] and len(got) == 20


def test_page_index_items_split_above_the_id_and_byte_limits(table: str) -> None:
    many = page_indexes([shopper(f"s{n:05d}") for n in range(2 * MAX_IDS_PER_ITEM + 1)])
    assert [len(i.pos_ids) for i in many] == [MAX_IDS_PER_ITEM, MAX_IDS_PER_ITEM, 1]
    long_ids = [shopper(f"{n:04d}" + "x" * 996) for n in range(700)]  # 1,000-byte POS ids

    wide = page_indexes(long_ids)

    per_item = MAX_ID_BYTES_PER_ITEM // 1000
    assert [len(i.pos_ids) for i in wide] == [per_item, per_item, 700 - 2 * per_item]
    assert sorted(pos_id for i in wide for pos_id in i.pos_ids) == sorted(r.pos_id for r in long_ids)
    for index in wide:  # DynamoDB takes each one (moto checks the 400 KB item limit too)
        ddb().put_item(TableName=table, Item=index.item())
    # Deterministic: the same records give the same items, so a retried page writes the same items again
    assert [i.pk for i in page_indexes(reversed(long_ids))] == [i.pk for i in wide]
