"""`possync replay` with every vendor's real codec: archived pages rebuild exactly the records a pull stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import stamina

from functions.core import layout
from functions.core.archive import S3Archive
from functions.core.layout import Vendor
from functions.core.replay import archived_pages, load_codec, replay
from functions.core.store import ControlStore, RecordStore
from tests.integration.pulls import ALL_VENDORS, PullWorld, simulator_class


@pytest.fixture(params=ALL_VENDORS, ids=lambda v: v.value)
def world(request: pytest.FixtureRequest, resources: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[PullWorld]:
    monkeypatch.setenv(layout.ENV_SETTLE_SECONDS, "0")
    simulator = simulator_class(request.param)(seed=5, store_count=1, customers_per_store=20, sales_per_store=30)
    simulator.start()
    w = PullWorld(request.param, simulator, resources)
    w.register(simulator.stores[0])
    with stamina.set_testing(True, attempts=3):
        yield w
    simulator.stop()


def test_replay_rebuilds_lost_records_and_rewrites_nothing_else(world: PullWorld) -> None:
    world.simulator.faults.invalid_record = True
    world.tick()
    stored = world.stored()
    total = sum(len(v) for v in stored.values())
    quarantined_before = sum(len(v) for v in world.quarantined().values())
    assert total > 0
    # Given some normalized records are lost (or a mapping bug wrote them wrong)
    ddb = boto3.client("dynamodb")
    lost = [pair for records in stored.values() for pair in records][::7]
    by_pos = {pos: kind for kind, records in stored.items() for _, pos in records}
    for credential_id, pos_id in lost:
        kind = layout.STREAM_KIND[by_pos[pos_id]]
        ddb.delete_item(
            TableName=world.resources.records_table,
            Key={"pk": {"S": layout.record_pk(world.tenant, world.vendor, credential_id, kind, pos_id)}},
        )

    today = datetime.now(UTC).date()
    archive = S3Archive(boto3.client("s3"), world.resources.archive_bucket)
    pages = archived_pages(archive, world.tenant, world.vendor, today - timedelta(days=1), today + timedelta(days=1))
    result = replay(
        archive=archive,
        records=RecordStore(ddb, world.resources.records_table),
        control=ControlStore(ddb, world.resources.control_table),
        codec=load_codec(world.vendor),
        tenant=world.tenant,
        vendor=world.vendor,
        pages=pages,
    )

    assert result.changed == len(set(lost))  # exactly the lost ones were written back
    assert sum(len(v) for v in world.stored().values()) == total
    assert sum(len(v) for v in world.quarantined().values()) == quarantined_before  # still broken: still quarantined
    assert result.quarantined >= quarantined_before


def test_every_vendor_has_a_replay_codec() -> None:
    for vendor in Vendor:
        codec = load_codec(vendor)
        assert callable(codec.extract_items)
