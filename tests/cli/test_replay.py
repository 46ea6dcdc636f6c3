"""Replay from the archive under moto: a mapping fix recovers a quarantined item; unchanged ones are not rewritten."""

from __future__ import annotations

import json
import sys
import types
from datetime import date, datetime, timedelta
from typing import Any

import boto3
import pytest

from functions.core.archive import S3Archive
from functions.core.connector import MappingContext, MappingError
from functions.core.engine import PullEngine, PullOptions
from functions.core.layout import RecordKind, Stream, Vendor, archive_key
from functions.core.models import Product
from functions.core.record_items import record_fields
from functions.core.replay import ReplayError, archived_pages, load_codec, parse_archive_key, replay
from functions.core.store import ControlStore, RecordStore
from possync.target import Target
from tests.cli.conftest import Invoke
from tests.fakes import T0, FakeConnector, item

PULLED = T0 + timedelta(days=30, hours=12)  # the engine's clock: archive keys carry this day
DAY = PULLED.date()
EXTRA = {"venue_id": "v9"}


class FakeCodec:
    """What a connector module exports for replay; `fixed` stands for a mapping fix (empty names accepted)."""

    def __init__(self, fixed: bool) -> None:
        self.fixed = fixed
        self.mapped = 0
        self.contexts: set[tuple[str, str, str]] = set()

    def extract_items(self, stream: Stream, body: bytes) -> list[dict[str, Any]]:
        return list(json.loads(body)["data"])

    def map_item(self, stream: Stream, raw: dict[str, Any], ctx: MappingContext) -> Product:
        self.mapped += 1
        self.contexts.add((ctx.credential_id, ctx.timezone, ctx.extra["venue_id"]))
        if raw["name"] == "" and not self.fixed:
            raise MappingError(str(raw["id"]), "name is empty")
        return Product(
            tenant=ctx.tenant,
            vendor=ctx.vendor,
            credential_id=ctx.credential_id,
            pos_id=str(raw["id"]),
            source_updated_at=datetime.fromisoformat(raw["updated_at"]),
            name=raw["name"] or "(unnamed)",
        )

    def item_id(self, stream: Stream, raw: dict[str, Any]) -> str | None:
        return str(raw["id"])


def stores(target: Target) -> tuple[S3Archive, RecordStore, ControlStore]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    return (
        S3Archive(boto3.client("s3", region_name="us-east-1"), target.archive_bucket),
        RecordStore(ddb, target.records_table),
        ControlStore(ddb, target.control_table),
    )


def pull(target: Target, items: list[dict[str, Any]], now: datetime = PULLED) -> None:
    """A real pull by the engine: archive pages, records, quarantine, status with the store's timezone."""
    archive, records, control = stores(target)
    engine = PullEngine(records=records, control=control, archive=archive, options=PullOptions(), now=lambda: now)
    engine.run("t1", "c1", FakeConnector(items, page_size=10))
    # What the engine is to record beside the timezone at prepare(): the connector's MappingContext.extra.
    control.save_status("t1", Vendor.POSABIT, "c1", {"mapping_extra": EXTRA})


def versions(target: Target) -> dict[str, int]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    items = ddb.scan(TableName=target.records_table)["Items"]
    return {record_fields(i)["pos_id"]: int(i["version"]["N"]) for i in items}


def run_replay(target: Target, codec: Any, start: date = DAY, end: date = DAY, **kwargs: Any) -> Any:
    archive, records, control = stores(target)
    pages = archived_pages(archive, "t1", Vendor.POSABIT, start, end)
    return replay(
        archive=archive,
        records=records,
        control=control,
        codec=codec,
        tenant="t1",
        vendor=Vendor.POSABIT,
        pages=pages,
        **kwargs,
    )


@pytest.fixture
def pulled(target: Target) -> Target:
    # Given 25 items over 3 pages, one of which (id 7) the mapping of the day refused
    pull(target, [item(n, name="" if n == 7 else None) for n in range(1, 26)])
    _, _, control = stores(target)
    assert len(control.list_quarantine("t1", Vendor.POSABIT, "c1")) == 1
    assert len(versions(target)) == 24
    return target


def test_mapping_fix_recovers_the_quarantined_item_and_rewrites_nothing_else(pulled: Target) -> None:
    before = versions(pulled)
    codec = FakeCodec(fixed=True)

    result = run_replay(pulled, codec)

    assert result.pages == 3 and result.records == 25
    assert result.changed == 1 and result.unchanged == 24 and result.stale == 0
    assert result.quarantined == 0 and result.released == 1
    assert codec.contexts == {("c1", "America/Los_Angeles", "v9")}  # the context the pull recorded
    after = versions(pulled)
    assert after.pop("7") == 1  # written once, by the replay
    assert after == before  # every other record still at version 1: written 0 times by the replay
    _, records, control = stores(pulled)
    recovered = records.get("t1", Vendor.POSABIT, "c1", RecordKind.PRODUCT, "7")
    assert recovered is not None and recovered.name == "(unnamed)"  # type: ignore[attr-defined]
    assert control.list_quarantine("t1", Vendor.POSABIT, "c1") == []

    again = run_replay(pulled, FakeCodec(fixed=True))
    assert again.changed == 0 and again.unchanged == 25 and again.released == 0


def test_items_that_still_fail_stay_quarantined(pulled: Target) -> None:
    result = run_replay(pulled, FakeCodec(fixed=False))

    assert result.changed == 0 and result.quarantined == 1 and result.released == 0
    _, _, control = stores(pulled)
    [entry] = control.list_quarantine("t1", Vendor.POSABIT, "c1")
    assert entry["sk"] == "inventory#7" and entry["reason"] == "name is empty"
    assert parse_archive_key(entry["archive_key"]) is not None


def test_dry_run_counts_what_would_change_and_writes_nothing(pulled: Target) -> None:
    result = run_replay(pulled, FakeCodec(fixed=True), dry_run=True)

    assert result.changed == 1 and result.unchanged == 24 and result.released == 1
    assert "7" not in versions(pulled)
    _, _, control = stores(pulled)
    assert len(control.list_quarantine("t1", Vendor.POSABIT, "c1")) == 1


def test_only_pages_archived_within_the_range_are_replayed(pulled: Target) -> None:
    codec = FakeCodec(fixed=True)

    before_range = run_replay(pulled, codec, DAY - timedelta(days=5), DAY - timedelta(days=1))
    assert before_range.pages == 0 and codec.mapped == 0

    with pytest.raises(ReplayError, match="before it starts"):
        run_replay(pulled, codec, DAY, DAY - timedelta(days=1))


def test_an_older_archived_version_never_overwrites_a_newer_record(target: Target) -> None:
    # Given item 3 pulled as "old" on one day and as "new" (updated later) the next day
    pull(target, [item(n) for n in range(1, 6)] + [item(6, name="old")])
    pull(target, [item(6, minutes=60 * 24 * 31, name="new")], now=PULLED + timedelta(days=1, hours=1))
    assert versions(target)["6"] == 2

    # When only the older day is replayed with a mapping that changes nothing
    older = run_replay(target, FakeCodec(fixed=True), DAY, DAY)
    both = run_replay(target, FakeCodec(fixed=True), DAY, DAY + timedelta(days=1))

    assert older.stale == 1 and older.changed == 0
    assert both.changed == 0 and both.stale == 1
    _, records, _ = stores(target)
    newest = records.get("t1", Vendor.POSABIT, "c1", RecordKind.PRODUCT, "6")
    assert newest is not None and newest.name == "new"  # type: ignore[attr-defined]


def test_credential_without_a_recorded_mapping_context_is_skipped(target: Target) -> None:
    archive, _, control = stores(target)
    for credential in ("never-pulled", "old-engine"):
        key = archive_key("t1", Vendor.POSABIT, credential, Stream.INVENTORY, DAY, "run", 1)
        archive.put_page(key, json.dumps({"data": [item(1)]}).encode())
    # a pull by an engine that saved the timezone but not the connector's extras
    control.save_status("t1", Vendor.POSABIT, "old-engine", {"timezone": "America/Denver", "default_region": "US"})

    result = run_replay(target, FakeCodec(fixed=True))

    assert result.pages == 0 and versions(target) == {}
    assert set(result.skipped) == {"never-pulled", "old-engine"}
    assert "did not record the mapping context" in result.skipped["old-engine"]


def test_a_running_pull_holds_the_lease_and_the_credential_is_skipped(pulled: Target) -> None:
    _, _, control = stores(pulled)
    control.acquire_lease("t1", Vendor.POSABIT, "c1", "a-pull", 600)

    result = run_replay(pulled, FakeCodec(fixed=True))

    assert result.pages == 0 and "pull of this credential is running" in result.skipped["c1"]
    assert "7" not in versions(pulled)


def test_an_undecodable_page_is_reported_and_the_rest_replayed(pulled: Target) -> None:
    archive, _, _ = stores(pulled)
    broken = archive_key("t1", Vendor.POSABIT, "c1", Stream.INVENTORY, DAY, "zzz-broken", 1)
    archive.put_page(broken, b"<html>gateway timeout</html>")

    result = run_replay(pulled, FakeCodec(fixed=True))

    assert result.unreadable_pages == [broken]
    assert result.pages == 3 and result.changed == 1


def test_load_codec_explains_a_connector_without_the_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    bare = types.ModuleType("functions.pull_posabit.connector")
    monkeypatch.setitem(sys.modules, "functions.pull_posabit.connector", bare)
    with pytest.raises(ReplayError, match="does not export extract_items"):
        load_codec(Vendor.POSABIT)

    codec = FakeCodec(fixed=True)
    bare.extract_items = codec.extract_items  # type: ignore[attr-defined]
    bare.map_item = codec.map_item  # type: ignore[attr-defined]
    loaded = load_codec(Vendor.POSABIT)
    assert loaded.extract_items(Stream.INVENTORY, b'{"data": [{"id": 1}]}') == [{"id": 1}]


# --- the command ------------------------------------------------------------------------------


def test_replay_command_shows_progress_and_summary(
    pulled: Target, cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("possync.admin.replay_cmd.load_codec", lambda vendor: FakeCodec(fixed=True))

    dry = cli("replay", "--tenant", "t1", "--vendor", "posabit", "--from", str(DAY), "--to", str(DAY), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing written" in dry.output and "1 records would be written" in dry.output
    assert "7" not in versions(pulled)

    real = cli(
        "replay", "--tenant", "t1", "--vendor", "posabit", "--credential", "c1", "--from", str(DAY), "--to", str(DAY)
    )
    assert real.exit_code == 0, real.output
    assert "3/3" in real.output  # the progress bar reached every page
    assert "1 records were written; 24 unchanged" in real.output
    assert versions(pulled)["7"] == 1


def test_replay_command_errors(cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    bad_date = cli("replay", "--tenant", "t1", "--vendor", "posabit", "--from", "yesterday", "--to", "2026-01-01")
    backwards = cli("replay", "--tenant", "t1", "--vendor", "posabit", "--from", "2026-02-01", "--to", "2026-01-01")
    bad_vendor = cli("replay", "--tenant", "t1", "--vendor", "lightspeed", "--from", "2026-01-01", "--to", "2026-01-01")
    monkeypatch.setattr("possync.admin.replay_cmd.load_codec", lambda vendor: FakeCodec(fixed=True))
    empty = cli("replay", "--tenant", "t1", "--vendor", "posabit", "--from", "2026-01-01", "--to", "2026-01-02")

    assert bad_date.exit_code == 1 and "'yesterday' is not a date" in bad_date.output
    assert backwards.exit_code == 1 and "is before --from" in backwards.output
    assert bad_vendor.exit_code == 1 and "unknown vendor 'lightspeed'" in bad_vendor.output
    assert empty.exit_code == 0 and "nothing to replay" in empty.output


def test_replay_command_fails_when_a_credential_is_skipped(
    target: Target, cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("possync.admin.replay_cmd.load_codec", lambda vendor: FakeCodec(fixed=True))
    archive, _, _ = stores(target)
    archive.put_page(
        archive_key("t1", Vendor.POSABIT, "c9", Stream.INVENTORY, DAY, "run", 1), json.dumps({"data": []}).encode()
    )

    result = cli("replay", "--tenant", "t1", "--vendor", "posabit", "--from", str(DAY), "--to", str(DAY))

    assert result.exit_code == 1
    assert "credential c9 not replayed" in result.output


def test_an_empty_range_names_the_pull_days_that_exist(
    pulled: Target, cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("possync.admin.replay_cmd.load_codec", lambda vendor: FakeCodec(fixed=True))
    earlier = DAY - timedelta(days=30)

    result = cli("replay", "--tenant", "t1", "--vendor", "posabit", "--from", str(earlier), "--to", str(earlier))

    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "(UTC pull days): nothing to replay" in out and f"Pages were pulled on {DAY}." in out
