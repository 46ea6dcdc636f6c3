"""The incremental pull engine every connector runs on: windows, checkpoints, quarantine, time budget."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from functions.core import layout
from functions.core.archive import S3Archive
from functions.core.connector import Connector, MappingContext, MappingError, RawPage, Window
from functions.core.layout import Stream, Vendor
from functions.core.models import CanonicalRecord
from functions.core.store import Checkpoint, ControlStore, FirstPull, RecordStore, WindowPass, WriteStats

# A window is re-read when the POS reports a different total at its end than at its start, or when a record the pass
# met comes back newer (store.WindowPass): records that changed while we paged moved out of the fixed window, or to its
# end, and may have shifted others across a page boundary. A window still changing after this many passes closes
# without moving the stream's cursor: the next run's window starts where this one did (and ends later, so new records
# still arrive), so the range that did not settle is read again rather than passed with a record maybe unread.
MAX_WINDOW_PASSES = 3

# A contract mismatch: one pull of a stream quarantined at least this share of the records it read for one and the
# same field, and at least this many of them. A few bad records are ordinary quarantine; most of a stream failing
# the same way means the POS no longer sends what our mapping expects (a renamed or missing field).
CONTRACT_MISMATCH_SHARE = 0.5
CONTRACT_MISMATCH_MIN_RECORDS = 10
# The field a reason names when it names none (e.g. "item is not a JSON object").
WHOLE_RECORD = "record"


@dataclass(frozen=True)
class PullOptions:
    lookback: timedelta = timedelta(minutes=10)
    # Records stamped in the last few seconds may still be committing on the POS side; leave them for next time.
    settle: timedelta = timedelta(seconds=5)
    # Stop fetching when less than this much Lambda time remains, and hand over to a continuation job.
    safety_budget_seconds: float = 60.0


@dataclass(frozen=True)
class ContractMismatch:
    """Most of a stream's records quarantined for one field: what `possync status` and the alarm name."""

    stream: Stream
    field: str
    problem: str
    quarantined: int  # records quarantined for this field in this pull
    read: int  # records this pull read from the stream (mapped + quarantined)

    def describe(self) -> str:
        return (
            f"contract mismatch: {self.quarantined} of {self.read} {self.stream.value} records quarantined for "
            f"field {self.field!r} ({self.problem}); they stay quarantined with their raw pages and are not stored "
            "until the mapping or the POS is fixed (`possync quarantine list`, then `possync replay`)"
        )

    def as_status(self) -> dict[str, Any]:
        return {"field": self.field, "problem": self.problem, "quarantined": self.quarantined, "read": self.read}


@dataclass
class StreamResult:
    pages: int = 0
    records: int = 0
    quarantined: int = 0
    passes: int = 0
    writes: WriteStats = field(default_factory=WriteStats)
    complete: bool = False
    # Every pass saw the window change (MAX_WINDOW_PASSES): closed without moving the cursor, read again next run.
    unsettled: bool = False
    # (field, problem) -> records quarantined for it: quarantine grouped by what is wrong
    quarantine_groups: Counter[tuple[str, str]] = field(default_factory=Counter)

    def contract_verdict(self, stream: Stream) -> ContractMismatch | Literal["clean", "inconclusive"]:
        """Mismatch when most records read quarantined for one field (and enough of them to tell); "clean" when no
        field accounts for that share; "inconclusive" when nothing, or too few records, were read to tell."""
        read = self.records + self.quarantined
        if read == 0:
            return "inconclusive"
        if not self.quarantine_groups:
            return "clean"
        (field_name, problem), count = self.quarantine_groups.most_common(1)[0]
        if count / read < CONTRACT_MISMATCH_SHARE:
            return "clean"
        if count < CONTRACT_MISMATCH_MIN_RECORDS:
            return "inconclusive"
        return ContractMismatch(stream, field_name, problem, count, read)


@dataclass
class PullResult:
    tenant: str
    vendor: Vendor
    credential_id: str
    streams: dict[Stream, StreamResult] = field(default_factory=dict)
    continued: bool = False  # the time budget ran out; a continuation job resumes from the checkpoint
    remaining_streams: tuple[Stream, ...] = ()
    s3_puts: int = 0
    quarantine_requests: int = 0

    @property
    def pages(self) -> int:
        return sum(s.pages for s in self.streams.values())

    @property
    def records(self) -> int:
        return sum(s.records for s in self.streams.values())

    @property
    def changed(self) -> int:
        return sum(s.writes.changed for s in self.streams.values())

    @property
    def quarantined(self) -> int:
        return sum(s.quarantined for s in self.streams.values())

    @property
    def dynamodb_requests(self) -> int:
        return sum(s.writes.get_requests + s.writes.write_requests for s in self.streams.values()) + (
            self.quarantine_requests
        )

    @property
    def dynamodb_write_requests(self) -> int:
        return sum(s.writes.write_requests for s in self.streams.values())


_FIELD_PATH = re.compile(r"^[A-Za-z_][\w-]*(?:\.[\w-]+)*$")
_EXCEPTION_NAME = re.compile(r"^[A-Z]\w*(?:Error|Exception)$")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_POSITION = re.compile(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.|$)")


def quarantine_group(reason: str, field_name: str | None = None) -> tuple[str, str]:
    """(field, problem) of a quarantine reason, stable across records so that they group.

    Reasons read "field.path: problem; other: problem" (pydantic style; the first problem counts). List positions
    become `*` (`lines.3.total` -> `lines.*.total`) and quoted values `'…'`, so two records failing the same way
    give the same pair. A reason that names no field is about the whole `record`.
    """
    first = reason.split("; ", 1)[0].strip()
    head, sep, problem = first.partition(": ")
    named = bool(sep) and _FIELD_PATH.fullmatch(head) is not None and _EXCEPTION_NAME.fullmatch(head) is None
    field_name = _POSITION.sub("*", field_name) if field_name else None
    if named and (field_name is None or field_name == _POSITION.sub("*", head)):
        field_name, first = _POSITION.sub("*", head), problem
    return field_name or WHOLE_RECORD, _QUOTED.sub("'…'", first)[:200]


def map_page(
    connector: Connector,
    stream: Stream,
    items: Sequence[dict[str, Any]],
    ctx: MappingContext,
    archive_key: str,
    payloads: Sequence[Any] | None = None,
) -> tuple[list[CanonicalRecord], list[dict[str, str]]]:
    """Map one page's items; an item that fails becomes a quarantine entry pointing at its raw page, with the
    field it failed on and the problem (`quarantine_group`).

    With `payloads` (the page's items validated from its bytes, RawPage.payloads) each item is mapped from its payload
    by the connector's `map_payload`; an item whose payload mapping raises is mapped from `items` as without them, so
    its record or quarantine entry is the one the item itself gives."""
    records: list[CanonicalRecord] = []
    quarantined: list[dict[str, str]] = []
    from_payload = getattr(connector, "map_payload", None) if payloads is not None else None
    for index in range(len(items)):
        if from_payload is not None:
            assert payloads is not None
            try:
                records.append(from_payload(stream, payloads[index], ctx))
                continue
            except _ITEM_ERRORS:
                pass  # mapped again from the item below: its own record, or its own quarantine entry
        item = items[index]
        try:
            records.append(connector.map_record(stream, item, ctx))
        except _ITEM_ERRORS as exc:
            pos_id = getattr(exc, "pos_id", None) or _safe_item_id(connector, stream, item)
            reason = exc.reason if isinstance(exc, MappingError) else _validation_reason(exc)
            field_name, problem = quarantine_group(reason, exc.field if isinstance(exc, MappingError) else None)
            quarantined.append(
                {
                    "stream": stream.value,
                    "pos_id": pos_id or f"{archive_key}#{index}",
                    "reason": reason,
                    "field": field_name,
                    "problem": problem,
                    "archive_key": archive_key,
                    "item_index": str(index),
                }
            )
    return records, quarantined


# What one item's mapping may raise: that item's problem, never the page's. ArithmeticError: a number no POS would send
# (decimal's Overflow or InvalidOperation turning 1E+999999 into cents); raised out of map_page it failed the whole
# pull, every retry.
_ITEM_ERRORS = (MappingError, ValidationError, ValueError, TypeError, KeyError, ArithmeticError)


def _safe_item_id(connector: Connector, stream: Stream, item: dict[str, Any]) -> str | None:
    try:
        return connector.item_id(stream, item)
    except Exception:  # noqa: BLE001 - an id is best effort for a record that is already broken
        return None


def _validation_reason(exc: Exception) -> str:
    """A reason that names fields and problems but never echoes the (possibly personal) input values."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
    if isinstance(exc, ArithmeticError):
        return f"a number out of range or not a number ({type(exc).__name__})"
    return f"{type(exc).__name__}"


class PullEngine:
    """Runs one credential's incremental pull: raw page -> changed records -> checkpoint, page after page."""

    def __init__(
        self,
        *,
        records: RecordStore,
        control: ControlStore,
        archive: S3Archive,
        options: PullOptions | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        remaining_seconds: Callable[[], float] = lambda: float("inf"),
    ) -> None:
        self.records = records
        self.control = control
        self.archive = archive
        self.options = options or PullOptions()
        self.now = now
        self.remaining_seconds = remaining_seconds

    def run(
        self,
        tenant: str,
        credential_id: str,
        connector: Connector,
        streams: Sequence[Stream] | None = None,
    ) -> PullResult:
        # The engine, not the connector, decides whose records these are.
        ctx = dataclasses.replace(connector.prepare(), tenant=tenant, credential_id=credential_id)
        # replay maps archived pages with the same context the pull used (written only when it changed)
        context = {"timezone": ctx.timezone, "default_region": ctx.default_region, "mapping_extra": dict(ctx.extra)}
        status = self.control.get_status(tenant, connector.vendor, credential_id)
        if any(status.get(name) != json.loads(json.dumps(value, default=str)) for name, value in context.items()):
            self.control.save_status(tenant, connector.vendor, credential_id, context)
        derived = derived_streams(connector)
        todo: list[Stream] = []
        for wanted in connector.streams:
            if streams is None or wanted in streams:
                read = derived.get(wanted, wanted)  # a derived stream is read through its source's pages
                if read not in todo:
                    todo.append(read)
        result = PullResult(tenant, connector.vendor, credential_id)
        # A credential no stream of which has a checkpoint stored has no records stored either: each stream saves its
        # checkpoint when its window opens in such a pull, before it stores anything (`_pull_stream`), and checkpoints
        # are never deleted. Its records are then written without reading their versions first (FirstPull): a fifth of
        # the DynamoDB requests and all the read units of a store's first pull (its history, the largest it makes).
        # The pull holds the credential's lease, as a replay does: no other writer of its records runs meanwhile. Every
        # stream's checkpoint is read here, in one request: only this job's own streams write them until it ends.
        checkpoints = self.control.get_checkpoints(tenant, connector.vendor, credential_id)
        first = None if checkpoints else FirstPull(tenant, connector.vendor, credential_id)
        for position, stream in enumerate(todo):
            also = {d: StreamResult() for d, source in derived.items() if source is stream}
            stream_result = self._pull_stream(
                tenant, credential_id, connector, stream, ctx, result, also, first, checkpoint=checkpoints.get(stream)
            )
            result.streams[stream] = stream_result
            for name, derived_result in also.items():
                derived_result.complete = stream_result.complete
                result.streams[name] = derived_result
            if not stream_result.complete:
                result.continued = True
                result.remaining_streams = tuple(todo[position:])
                break
        return result

    def _out_of_time(self) -> bool:
        return self.remaining_seconds() < self.options.safety_budget_seconds

    def _pull_stream(
        self,
        tenant: str,
        credential_id: str,
        connector: Connector,
        stream: Stream,
        ctx: MappingContext,
        result: PullResult,
        also: dict[Stream, StreamResult] | None = None,
        first: FirstPull | None = None,
        *,
        checkpoint: Checkpoint,
    ) -> StreamResult:
        """Read one stream's window page by page from its stored `checkpoint` (as `run` read it); `also` holds the
        streams derived from its pages (their records are mapped from the same items and stored with the page's);
        `first`: the credential's first pull (`run`)."""
        vendor = connector.vendor
        also = also or {}
        out = StreamResult()
        cp = checkpoint
        # A checkpoint is written only when it differs from the one stored, and a page that stored nothing (every
        # record unchanged, its bytes already archived) does not move it: an unchanged re-pull writes nothing, and a
        # crash after such pages only re-reads them.
        stored = cp.state()
        # Pages archived since the last save (digest, archive key): remembered with the next checkpoint, one request.
        archived: list[tuple[str, str]] = []

        def save() -> None:
            nonlocal stored
            state = cp.state()
            if state != stored or archived:
                self.control.save_checkpoint(tenant, vendor, credential_id, stream, cp, archived)
                archived.clear()
                stored = state

        if not cp.in_progress:
            self._open_window(cp)
            if first is not None:
                save()  # before anything of the stream is stored: its records may exist from now on (`run`)
        while True:
            if self._out_of_time():
                save()
                return out
            assert cp.window_end is not None
            window = Window(cp.window_start, cp.window_end)
            out.passes += 1
            last_total: int | None = cp.first_total
            met = WindowPass()  # the records this pass met (in this run: a resumed pass remembers none before it)
            for page in connector.pages(stream, window, cp.token):
                key = layout.archive_key(
                    tenant, vendor, credential_id, stream, cp.window_end.date(), cp.run_id or "run", cp.pages_done + 1
                )
                wrote = self._store_page(
                    tenant,
                    credential_id,
                    connector,
                    stream,
                    ctx,
                    page,
                    key,
                    out,
                    result,
                    cp,
                    also,
                    archived,
                    first,
                    window_pass=met,
                )
                if cp.pages_done == 1 or cp.first_total is None:
                    cp.first_total = page.total_records
                last_total = page.total_records
                cp.token = page.next_token
                if wrote:
                    save()
                if page.next_token is not None and self._out_of_time():
                    save()
                    return out
            total_moved = cp.first_total is not None and last_total is not None and last_total != cp.first_total
            if total_moved or met.moved:
                if cp.window_pass + 1 < MAX_WINDOW_PASSES:
                    # The window's membership or order changed under us (its total moved, or a record met earlier in
                    # the pass came back newer): read it again (unchanged records write nothing).
                    cp.window_pass += 1
                    cp.token = None
                    cp.first_total = None
                    continue
                # Every pass saw the window change: a record that shifted across a page boundary may still be
                # unread, so the cursor must not pass it. Failing the pull instead would hold the window (and every
                # record after its end) back for as long as the store stays busy, and a busy store's customers change
                # all day (each sale moves a balance). So the window closes with the cursor where it was: the next
                # run reads from the same start to a later end, its new records included, until a pass settles.
                self._close_window(cp, settled=False)
                save()
                out.unsettled = True
                out.complete = True
                return out
            self._close_window(cp)
            save()
            out.complete = True
            return out

    def _open_window(self, cp: Checkpoint) -> None:
        end = (self.now() - self.options.settle).replace(microsecond=0)
        start = cp.cursor - self.options.lookback if cp.cursor is not None else None
        if start is not None and start >= end:
            start = end - self.options.lookback
        cp.window_start, cp.window_end = start, end
        cp.token, cp.pages_done, cp.window_max, cp.first_total, cp.window_pass = None, 0, None, None, 0
        seed = f"{start.isoformat() if start else '-'}|{end.isoformat()}".encode()
        cp.run_id = end.strftime("%Y%m%dT%H%M%SZ") + "-" + hashlib.blake2b(seed, digest_size=3).hexdigest()

    @staticmethod
    def _close_window(cp: Checkpoint, *, settled: bool = True) -> None:
        # The cursor is the largest record timestamp stored (never our clock), but not past the window's end:
        # records stamped later (changed while we paged) do not prove the gap up to them was read. A window that
        # did not settle proves nothing read: the cursor stays.
        newest = cp.window_max if settled else None
        if newest is not None and cp.window_end is not None and newest > cp.window_end:
            newest = cp.window_end
        if newest is not None and (cp.cursor is None or newest > cp.cursor):
            cp.cursor = newest
        cp.window_start = cp.window_end = None
        cp.token, cp.pages_done, cp.window_max, cp.first_total, cp.window_pass, cp.run_id = (
            None,
            0,
            None,
            None,
            0,
            None,
        )

    def _store_page(
        self,
        tenant: str,
        credential_id: str,
        connector: Connector,
        stream: Stream,
        ctx: MappingContext,
        page: RawPage,
        key: str,
        out: StreamResult,
        result: PullResult,
        cp: Checkpoint,
        also: dict[Stream, StreamResult],
        archived_pages: list[tuple[str, str]],
        first: FirstPull | None = None,
        window_pass: WindowPass | None = None,
    ) -> bool:
        """Archive the page (unless these exact bytes are archived already; a page archived now is added to
        `archived_pages`, remembered with the next checkpoint), store its changed records and quarantine the rest;
        True when anything was written."""
        vendor = connector.vendor
        if not page.items:
            # An empty page holds nothing to store or replay: it is neither archived nor moves the checkpoint (a
            # windowed pass that finds nothing, e.g. Flourish's refund passes, then writes nothing on every pull).
            out.pages += 1
            cp.pages_done += 1
            return False
        digest = page_digest(page.body if page.identity is None else page.identity)
        archived = self.control.archived_page(tenant, vendor, credential_id, stream, digest)
        wrote = archived is None
        if archived is None:
            self.archive.put_page(
                key,
                page.body,
                {"path": str(page.request.get("path", ""))[:256], "items": str(len(page.items))},
            )
            result.s3_puts += 1
            # Remembered with the checkpoint this page moves, once the object exists and its records are stored: an
            # index entry never points at a page that was not stored, and a crash before that archives the page again
            # under the same key (the checkpoint did not move) with the same bytes.
            archived_pages.append((digest, key))
        else:
            key = archived  # the records and quarantine entries point at the identical page already archived
        records, quarantined = map_page(connector, stream, page.items, ctx, key, page.payloads)
        stored = list(records)
        for derived, derived_out in also.items():
            more, more_quarantined = map_page(connector, derived, page.items, ctx, key, page.payloads)
            _count_mapped(derived_out, more, more_quarantined)
            stored += more
            quarantined += more_quarantined
        writes = self.records.upsert_changed(stored, key, first=first, window_pass=window_pass)
        wrote = wrote or writes.changed > 0
        if quarantined:
            wrote = True
            result.quarantine_requests += self.control.quarantine(tenant, vendor, credential_id, quarantined)
        out.pages += 1
        _count_mapped(out, records, [q for q in quarantined if q["stream"] == stream.value])
        out.writes.add(writes)
        cp.pages_done += 1
        if stored:
            newest = max(record.source_updated_at for record in stored)
            if cp.window_max is None or newest > cp.window_max:
                cp.window_max = newest
        return wrote


def derived_streams(connector: Connector) -> dict[Stream, Stream]:
    """Streams a connector maps from another stream's pages (derived -> source), read once for both: e.g. POSaBIT's
    loyalty balances are its customers' `points`. A connector without `derived_streams` reads every stream itself."""
    return dict(getattr(connector, "derived_streams", {}))


def _count_mapped(out: StreamResult, records: Sequence[CanonicalRecord], quarantined: Sequence[dict[str, str]]) -> None:
    out.records += len(records)
    out.quarantined += len(quarantined)
    for entry in quarantined:
        out.quarantine_groups[(entry["field"], entry["problem"])] += 1


def page_digest(body: bytes) -> str:
    """Identity of a raw page's exact bytes (or of its RawPage.identity): a page archived once is not archived
    again."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()
