"""Replay: rebuild normalized records from the raw archive with the vendor's current mapping."""

from __future__ import annotations

import importlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import ModuleType
from typing import Any, Protocol, cast

from functions.core import layout
from functions.core.archive import ArchiveError, S3Archive
from functions.core.connector import Connector, MappingContext
from functions.core.engine import map_page
from functions.core.errors import LeaseHeldError, PossyncError
from functions.core.layout import Stream, Vendor
from functions.core.models import CanonicalRecord
from functions.core.store import ControlStore, RecordStore, WriteStats

# A replay holds each credential's lease (so a pull cannot interleave older and newer writes) and renews it.
LEASE_SECONDS = 900
LEASE_RENEW_SECONDS = 300
# Status keys the engine saves at each pull's prepare(): the MappingContext a replay must reproduce.
STATUS_MAPPING_EXTRA = "mapping_extra"


class ReplayError(PossyncError):
    """Replay cannot start (no codec for the vendor, a bad date range)."""


class VendorCodec(Protocol):
    """A vendor's pure page decoding and mapping, as its connector module exports them."""

    def extract_items(self, stream: Stream, body: bytes) -> list[dict[str, Any]]: ...

    def map_item(self, stream: Stream, item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord: ...


@dataclass(frozen=True)
class ModuleCodec:
    """A connector module's module-level `extract_items` / `map_item` (and `item_id` when it has one)."""

    module: ModuleType

    def extract_items(self, stream: Stream, body: bytes) -> list[dict[str, Any]]:
        return list(self.module.extract_items(stream, body))

    def map_item(self, stream: Stream, item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
        record: CanonicalRecord = self.module.map_item(stream, item, ctx)
        return record

    def item_id(self, stream: Stream, item: dict[str, Any]) -> str | None:
        finder = getattr(self.module, "item_id", None)
        return None if finder is None else finder(stream, item)

    @property
    def derived_streams(self) -> dict[Stream, Stream]:
        """Streams the vendor's pulls map from another stream's pages (functions.core.engine.derived_streams)."""
        return dict(getattr(self.module, "DERIVED_STREAMS", {}))


def load_codec(vendor: Vendor) -> VendorCodec:
    """The codec of the vendor's connector module (layout.PULL_FUNCTION); a shared module may offer `codec_for`."""
    name = f"functions.{layout.PULL_FUNCTION[vendor]}.connector"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError:
        raise ReplayError(f"{vendor.value} has no connector module ({name}) in this build") from None
    codec_for = getattr(module, "codec_for", None)
    if codec_for is not None:
        return cast(VendorCodec, codec_for(vendor))
    if not callable(getattr(module, "extract_items", None)) or not callable(getattr(module, "map_item", None)):
        raise ReplayError(
            f"{name} does not export extract_items(stream, body) and map_item(stream, item, ctx) yet, "
            f"so {vendor.value} pages cannot be replayed with this build"
        )
    return ModuleCodec(module)


@dataclass(frozen=True, order=True)
class ArchivedPage:
    key: str
    credential_id: str
    stream: Stream
    day: date


def parse_archive_key(key: str) -> ArchivedPage | None:
    """The page an archive key names (layout.parse_archive_key reads what layout.archive_key writes)."""
    parsed = layout.parse_archive_key(key)
    if parsed is None:
        return None
    return ArchivedPage(key, parsed.credential_id, parsed.stream, parsed.day)


def archived_pages(
    archive: S3Archive,
    tenant: str,
    vendor: Vendor,
    start: date,
    end: date,
    credential_id: str | None = None,
) -> list[ArchivedPage]:
    """Pages whose `date=` key part is within [start, end], oldest first (run ids sort chronologically)."""
    if end < start:
        raise ReplayError(f"the range ends ({end}) before it starts ({start})")
    found = []
    for key in archive.list_keys(layout.archive_prefix(tenant, vendor, credential_id)):
        page = parse_archive_key(key)
        if page is not None and start <= page.day <= end:
            found.append(page)
    return sorted(found, key=lambda p: (p.credential_id, p.day, p.key))


def replay_context(tenant: str, vendor: Vendor, credential_id: str, status: dict[str, Any]) -> MappingContext:
    """The mapping context the engine recorded at the credential's last pull; ReplayError if it recorded none.

    Replaying with a context that differs from the pull's (a wrong zone for naive times, a missing venue id)
    would rewrite every record with worse data, so a credential without a recorded context is not replayed.
    """
    timezone = status.get("timezone")
    extra = status.get(STATUS_MAPPING_EXTRA)
    if not timezone or not isinstance(extra, dict):
        raise ReplayError(
            "its last pull did not record the mapping context (timezone and connector extras); "
            "let one pull run with this build, then replay"
        )
    return MappingContext(
        tenant=tenant,
        vendor=vendor,
        credential_id=credential_id,
        timezone=str(timezone),
        default_region=str(status.get("default_region") or "US"),
        extra=extra,
    )


class PreviewRecordStore(RecordStore):
    """Compares like RecordStore.upsert_changed but writes nothing: what a replay would change."""

    def _batch_write(self, items: Sequence[Mapping[str, Any]], stats: WriteStats) -> None:
        return None


@dataclass
class ReplayResult:
    pages: int = 0
    records: int = 0
    quarantined: int = 0
    released: int = 0  # quarantine entries whose item now maps: the record was written and the entry removed
    writes: WriteStats = field(default_factory=WriteStats)
    unreadable_pages: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # credential id -> why it was not replayed

    @property
    def changed(self) -> int:
        return self.writes.changed

    @property
    def unchanged(self) -> int:
        return self.writes.unchanged

    @property
    def stale(self) -> int:
        return self.writes.stale


class _CodecMapping:
    """The two Connector methods map_page calls, backed by a codec (so replay quarantines exactly like a pull)."""

    def __init__(self, codec: VendorCodec) -> None:
        self.codec = codec

    def map_record(self, stream: Stream, item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
        return self.codec.map_item(stream, item, ctx)

    def item_id(self, stream: Stream, item: dict[str, Any]) -> str | None:
        finder = getattr(self.codec, "item_id", None)
        return None if finder is None else finder(stream, item)


def replay(
    *,
    archive: S3Archive,
    records: RecordStore,
    control: ControlStore,
    codec: VendorCodec,
    tenant: str,
    vendor: Vendor,
    pages: Sequence[ArchivedPage],
    dry_run: bool = False,
    on_page: Callable[[ArchivedPage], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ReplayResult:
    """Map each archived page again and upsert what changed; older versions never overwrite newer ones.

    Items that still fail are quarantined (again) with a pointer to their page; quarantine entries for items
    that now map are removed. A dry run reads and compares but writes nothing (records, quarantine, leases);
    it compares each page with what is stored, not with the pages replayed before it.
    """
    result = ReplayResult()
    mapping = cast(Connector, _CodecMapping(codec))  # map_page only calls map_record and item_id
    by_credential: dict[str, list[ArchivedPage]] = {}
    for page in pages:
        by_credential.setdefault(page.credential_id, []).append(page)
    store = PreviewRecordStore(records.ddb, records.table) if dry_run else records
    for credential_id, credential_pages in by_credential.items():
        try:
            ctx = replay_context(tenant, vendor, credential_id, control.get_status(tenant, vendor, credential_id))
        except ReplayError as exc:
            result.skipped[credential_id] = str(exc)
            _skip(credential_pages, on_page)
            continue
        owner = f"replay-{uuid.uuid4().hex}"
        if not dry_run:
            try:
                control.acquire_lease(tenant, vendor, credential_id, owner, LEASE_SECONDS)
            except LeaseHeldError:
                result.skipped[credential_id] = "a pull of this credential is running; replay it again later"
                _skip(credential_pages, on_page)
                continue
        try:
            _replay_credential(
                archive, store, control, mapping, codec, ctx, credential_pages, dry_run, owner, on_page, clock, result
            )
        finally:
            if not dry_run:
                control.release_lease(tenant, vendor, credential_id, owner)
    return result


def _skip(pages: Sequence[ArchivedPage], on_page: Callable[[ArchivedPage], None] | None) -> None:
    if on_page is not None:
        for page in pages:
            on_page(page)


def _replay_credential(
    archive: S3Archive,
    store: RecordStore,
    control: ControlStore,
    mapping: Connector,
    codec: VendorCodec,
    ctx: MappingContext,
    pages: Sequence[ArchivedPage],
    dry_run: bool,
    owner: str,
    on_page: Callable[[ArchivedPage], None] | None,
    clock: Callable[[], float],
    result: ReplayResult,
) -> None:
    tenant, vendor, credential_id = ctx.tenant, ctx.vendor, ctx.credential_id
    held: dict[tuple[str, int], list[str]] = {}  # one item may be quarantined for a stream and one derived from it
    for entry in control.list_quarantine(tenant, vendor, credential_id):
        held.setdefault((entry["archive_key"], entry["item_index"]), []).append(entry["sk"])
    renewed = clock()
    for page in pages:
        if not dry_run and clock() - renewed > LEASE_RENEW_SECONDS:
            control.acquire_lease(tenant, vendor, credential_id, owner, LEASE_SECONDS)
            renewed = clock()
        try:
            items = codec.extract_items(page.stream, archive.get_page(page.key))
        except (ArchiveError, ValueError, TypeError, KeyError, PossyncError):
            result.unreadable_pages.append(page.key)
            if on_page is not None:
                on_page(page)
            continue
        mapped, failed = map_page(mapping, page.stream, items, ctx, page.key)
        for derived, source in dict(getattr(codec, "derived_streams", {})).items():
            if source is page.stream:  # a pull stored these records from the same page: so does its replay
                more, more_failed = map_page(mapping, derived, items, ctx, page.key)
                mapped += more
                failed += more_failed
        result.pages += 1
        result.records += len(mapped)
        result.quarantined += len(failed)
        result.writes.add(store.upsert_changed(mapped, page.key))
        failed_indexes = {int(e["item_index"]) for e in failed}
        fixed = [
            sk
            for (key, index), sks in held.items()
            if key == page.key and index not in failed_indexes and index < len(items)
            for sk in sks
        ]
        result.released += len(fixed)
        if not dry_run:
            if failed:
                control.quarantine(tenant, vendor, credential_id, failed)
            if fixed:
                control.release_quarantine(tenant, vendor, credential_id, fixed)
        if on_page is not None:
            on_page(page)
