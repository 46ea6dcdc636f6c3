"""DynamoDB access: normalized records (write only what changed, in batches) and the control table."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from functions.core import layout, record_index, record_items
from functions.core.ddb_batch import (
    BATCH_GET_MAX,
    batch_get,
    batch_get_together,
    batch_write,
    batch_write_together,
    chunks,
)
from functions.core.ddb_wire import takes_wire_items
from functions.core.errors import AwsServiceError, LeaseHeldError
from functions.core.layout import RecordKind, Stream, Vendor
from functions.core.models import CONTENT_HASH_PREFIX, RECORD_MODELS, CanonicalRecord, read_record
from functions.core.wire_items import (
    WireItem,
    WireText,
    binary_text,
    member,
    number_bytes,
    quoted,
    quoted_long,
    text_bytes,
)


class StoreError(AwsServiceError):
    """DynamoDB refused or failed a request."""


CONDITION_FAILED = frozenset({"ConditionalCheckFailedException"})
# How long the control table remembers where a page's exact bytes are archived (its TTL; the objects stay longer).
ARCHIVED_PAGE_MEMORY_SECONDS = 90 * 86400


def call_table(ddb: Any, table: str, op: str, *, passthrough: frozenset[str] = CONDITION_FAILED, **kwargs: Any) -> Any:
    """One DynamoDB request. A failure becomes a StoreError naming the operation, the table and AWS's error code
    (never the request, which may carry personal data), except the codes in `passthrough` (a condition that did
    not hold, a cancelled transaction): those are re-raised as the ClientError for the caller to decide."""
    try:
        return getattr(ddb, op)(**kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in passthrough:
            raise
        raise StoreError(f"{op} on {table} failed: {code}") from exc
    except BotoCoreError as exc:
        raise StoreError(f"{op} on {table} failed: {type(exc).__name__}") from exc


_dumps = orjson.dumps
_NO_MICROSECONDS = ".000000+00:00"


def _iso(value: datetime) -> str:
    """`value` in UTC as `isoformat(timespec="microseconds")` writes it (what every stored time holds).

    One is written per record stored: orjson writes the same text in about a third of the CPU (isoformat's keyword
    argument alone costs more), except that it leaves out a zero microsecond, put back here; anything but a plain
    datetime (a subclass) is written by isoformat itself. tests/unit/test_store_fast.py compares the two."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    if type(value) is not datetime:
        return value.isoformat(timespec="microseconds")
    text = _dumps(value)  # b'"2026-12-01T04:05:06.000007+00:00"', or without ".000007" when the microsecond is 0
    return text[1:-1].decode() if value.microsecond else text[1:20].decode() + _NO_MICROSECONDS


@dataclass
class WriteStats:
    received: int = 0
    changed: int = 0
    unchanged: int = 0
    stale: int = 0  # older than what is stored: a replayed old change never overwrites a newer one
    get_requests: int = 0
    write_requests: int = 0

    def add(self, other: WriteStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class StoredVersion(NamedTuple):
    """What the store reads of a stored record before writing it (a tuple: one is built per record read)."""

    content_hash: str
    source_updated_at: str
    version: int
    indexed_by: str = ""  # the page index item that lists the record (functions.core.record_index)
    scoped: bool = False  # written before page indexes: the record carries the index keys itself

    @property
    def indexed(self) -> bool:
        return bool(self.indexed_by) or self.scoped


class KeyBits:
    """A set of record keys held as three bits a key in a fixed number of bits (a Bloom filter): whatever the number of
    keys its memory stays the same, and a key never added may be taken for one added (how often depends on the
    bits), never the other way round. A key's bits are a, a + b and a + 2b of its one 64-bit hash (double hashing;
    Python's string hash, seeded per process: a filter lives in one process)."""

    __slots__ = ("_bits", "_mask", "_shift")

    def __init__(self, bits: int) -> None:
        if bits & (bits - 1) or bits < 8:
            raise ValueError("the number of bits must be a power of two, at least 8")
        self._bits = bytearray(bits >> 3)
        self._mask = bits - 1
        self._shift = bits.bit_length() - 1  # b is taken from the hash's bits above a

    def add(self, keys: Iterable[str]) -> None:
        # Written out (a third of the CPU of a loop over the three bits).
        bits, mask, shift = self._bits, self._mask, self._shift
        for key in keys:
            digest = hash(key)
            at, step = digest & mask, (digest >> shift) & mask | 1
            bits[at >> 3] |= 1 << (at & 7)
            at = (at + step) & mask
            bits[at >> 3] |= 1 << (at & 7)
            at = (at + step) & mask
            bits[at >> 3] |= 1 << (at & 7)

    def __contains__(self, key: str) -> bool:
        bits, mask = self._bits, self._mask
        digest = hash(key)
        at, step = digest & mask, (digest >> self._shift) & mask | 1
        if not bits[at >> 3] >> (at & 7) & 1:
            return False
        at = (at + step) & mask
        if not bits[at >> 3] >> (at & 7) & 1:
            return False
        at = (at + step) & mask
        return bool(bits[at >> 3] >> (at & 7) & 1)


# FirstPull remembers the records its job wrote in this many bits (2 MB, whatever the pull's size): a key taken for
# written only costs a version read (at 130,000 records about 2 keys a pull; at 1,000,000 one key in 200).
_WRITTEN_BITS = 1 << 24


class FirstPull:
    """One credential's first pull: when its job began no stream of the credential had a checkpoint stored, so none
    of its records was stored either (functions.core.engine saves a stream's checkpoint before it stores anything of
    it, and checkpoints are never deleted). Its records are written without reading their versions first, except
    those this job may have written already (`note_written`, `maybe_stored`): a record met twice (on two pages, or
    read again in a second pass) is read like any other, so its version still counts up."""

    __slots__ = ("_written", "credential_id", "tenant", "vendor")

    def __init__(self, tenant: str, vendor: Vendor, credential_id: str) -> None:
        self.tenant = tenant
        self.vendor = vendor
        self.credential_id = credential_id
        self._written = KeyBits(_WRITTEN_BITS)

    def note_written(self, keys: Iterable[str]) -> None:
        self._written.add(keys)

    def maybe_stored(self, records: Mapping[str, CanonicalRecord]) -> list[str]:
        """The keys of these records (by key) that may be stored already: this job may have written it (the key's
        three bits are set), or it is another credential's (never proven new by this one's checkpoints)."""
        written = self._written
        tenant, vendor, credential_id = self.tenant, self.vendor, self.credential_id
        return [
            key
            for key, record in records.items()
            if record.credential_id != credential_id
            or record.tenant != tenant
            or record.vendor is not vendor
            or key in written
        ]


# A window pass remembers the records it met in this many bits (1 MB, whatever the window's size). A key taken for met
# only matters for a record that is also stored newer than before (`WindowPass`): at 100,000 keys a pass, about one
# such record in 20,000 would take one more pass.
_PASS_BITS = 1 << 23


class WindowPass:
    """The records one pass over a window met, to tell whether one of them came back newer later in the same pass.

    A record met again newer was changed while the pass paged and moved to a later position (its update time sorts it
    last), so every record after its old place shifted one up: one of them may have crossed a page boundary unread.
    A server that drops it from the window (the documented end filter) changes the window's total instead; one whose
    clock runs behind ours, or that ignores the end filter, keeps it, with the total unchanged. `moved` counts them."""

    __slots__ = ("_met", "moved")

    def __init__(self) -> None:
        self._met = KeyBits(_PASS_BITS)
        self.moved = 0

    def note(self, keys: Iterable[str]) -> None:
        self._met.add(keys)

    def met(self, key: str) -> bool:
        return key in self._met


@dataclass
class StoredPage:
    """Stored records (each with its version in the records table) and where the next page starts."""

    records: list[tuple[CanonicalRecord, int]] = field(default_factory=list)
    next_key: dict[str, Any] | None = None
    unreadable: int = 0  # items this version of the code cannot read as a record


def _same_content(stored_hash: str, digest: str, record: CanonicalRecord) -> bool:
    """Whether a stored item's digest says it holds this record's content: items written before digests were
    taken over the stored JSON (no CONTENT_HASH_PREFIX) are compared with the digest they were written with."""
    if stored_hash.startswith(CONTENT_HASH_PREFIX):
        return stored_hash == digest
    return bool(stored_hash) and stored_hash == record.legacy_content_hash()


_NO_VALUE: dict[str, str] = {}


def _stored_version(item: dict[str, Any]) -> StoredVersion:
    """The projected attributes of a stored record (each may be missing on an item written by older code)."""
    by = item.get(layout.RECORDS_INDEXED_BY_ATTRIBUTE)
    try:  # what every item written by this code holds: read directly
        digest, updated, version = item["content_hash"]["S"], item["source_updated_at"]["S"], item["version"]["N"]
    except KeyError:
        digest = item.get("content_hash", _NO_VALUE).get("S", "")
        updated = item.get("source_updated_at", _NO_VALUE).get("S", "")
        version = item.get("version", _NO_VALUE).get("N", "0")
    return StoredVersion(
        digest,
        updated,
        int(version),
        by.get("S", "") if by is not None else "",
        layout.RECORDS_SCOPE_ATTRIBUTE in item,
    )


def record_item_key(record: CanonicalRecord) -> str:
    return layout.record_pk(record.tenant, record.vendor, record.credential_id, record.kind, record.pos_id)


class _SharedMembers:
    """The attributes every item of one upsert carries alike (the page's archive key, the pull's time), as JSON text
    and billed size, written once for all of them."""

    __slots__ = ("size", "text")

    def __init__(self, archive_key: str, pulled_at: str) -> None:
        self.text = f"{_ARCHIVE_KEY}{quoted(archive_key)}}},{_PULLED_AT}{quoted(pulled_at)}}}"
        self.size = len("archive_key") + text_bytes(archive_key) + len("pulled_at") + text_bytes(pulled_at)


# The record item's attributes up to their values, as JSON text (functions.core.wire_items).
_PK = member("pk", "S")
_KIND = member("kind", "S")
_VENDOR = member("vendor", "S")
_UPDATED = member("source_updated_at", "S")
_DIGEST = member("content_hash", "S")
_VERSION = member("version", "N")
_ARCHIVE_KEY = member("archive_key", "S")
_PULLED_AT = member("pulled_at", "S")
_INDEXED_BY = member(layout.RECORDS_INDEXED_BY_ATTRIBUTE, "S")
_SCOPE = member(layout.RECORDS_SCOPE_ATTRIBUTE, "S")
_SCOPE_KEY = member(layout.RECORDS_SCOPE_KEY_ATTRIBUTE, "S")
_DATA = member(record_items.DATA, "S")
_DATA_Z = member(record_items.DATA_Z, "B")
# What a version read asks for besides the keys. Strongly consistent: the previous page's writes must be seen, or a
# version number would repeat.
_VERSION_READ = {
    "ProjectionExpression": "pk, content_hash, source_updated_at, version, #by, #scope",
    "ExpressionAttributeNames": {"#by": layout.RECORDS_INDEXED_BY_ATTRIBUTE, "#scope": layout.RECORDS_SCOPE_ATTRIBUTE},
    "ConsistentRead": True,
}
_KEYS_OPEN = '{"Keys":[{'
_VERSION_READ_TAIL = "]," + json.dumps(_VERSION_READ, separators=(",", ":"))[1:]
_FIXED_NAME_BYTES = sum(map(len, ("pk", "kind", "vendor", "source_updated_at", "content_hash", "version")))
_SCOPE_NAME_BYTES = len(layout.RECORDS_SCOPE_ATTRIBUTE) + len(layout.RECORDS_SCOPE_KEY_ATTRIBUTE)


# A scope_page cursor that points inside a page index item: the item's index entry and how many of its records
# the pages before took. Any other cursor is the index query's own LastEvaluatedKey (as cursors have always been).
_INSIDE_PAGE_INDEX = "inside_page_index"


class RecordStore:
    """Upserts canonical records keyed by tenant / vendor / credential / kind / POS id."""

    def __init__(self, dynamodb: Any, table: str, sleep: Any = time.sleep) -> None:
        self.ddb = dynamodb
        self.table = table
        self._sleep = sleep

    def upsert_changed(
        self,
        records: Iterable[CanonicalRecord],
        archive_key: str,
        now: datetime | None = None,
        *,
        first: FirstPull | None = None,
        window_pass: WindowPass | None = None,
    ) -> WriteStats:
        """Write the records whose content differs from the stored copy and that are not older than it. In a
        credential's `first` pull only the records it may have stored already are read first (FirstPull): the others
        are new, written as version 1. With `window_pass`, a record this pass met already and now stored over an older
        version counts as moved (WindowPass.moved), and every record is noted as met."""
        stats = WriteStats()
        latest: dict[str, CanonicalRecord] = {}
        records = records if isinstance(records, list) else list(records)
        stats.received = len(records)
        for record in records:
            key = record_item_key(record)
            held = latest.get(key)
            if held is None or record.source_updated_at >= held.source_updated_at:
                latest[key] = record
        stats.unchanged += stats.received - len(latest)
        if first is None:
            stored = self._versions(list(latest), stats)
        else:
            stored = self._versions(first.maybe_stored(latest), stats)
        pulled_at = _iso(now or datetime.now(UTC))
        changed: list[tuple[str, CanonicalRecord, str, str, str, StoredVersion | None]] = []
        for key, record in latest.items():
            data, digest = record.stored_form()  # one serialization feeds both the digest and the item
            old = stored.get(key)
            if old is not None and (old.content_hash == digest or _same_content(old.content_hash, digest, record)):
                stats.unchanged += 1
                continue
            updated = _iso(record.source_updated_at)
            if old is not None and updated < old.source_updated_at:
                stats.stale += 1
                continue
            changed.append((key, record, data, digest, updated, old))
        # Records no index entry lists yet get one page index item per kind and credential, written (and done)
        # before the records themselves: see functions.core.record_index.
        indexes = record_index.page_indexes(
            record for _, record, _, _, _, old in changed if old is None or not old.indexed
        )
        listed_by = {pk: index.digest for index in indexes for pk in index.record_pks()}
        if indexes:
            self._batch_write([index.item() for index in indexes], stats)
        shared = _SharedMembers(archive_key, pulled_at)
        puts = [
            self._put(
                key,
                record,
                digest,
                updated,
                (old.version if old else 0) + 1,
                shared,
                data,
                indexed_by=listed_by.get(key) or (old.indexed_by if old else ""),
                scoped=old is not None and old.scoped,
            )
            for key, record, data, digest, updated, old in changed
        ]
        stats.changed = len(puts)
        self._batch_write(puts, stats)
        if first is not None:
            first.note_written([key for key, *_ in changed])
        if window_pass is not None:
            window_pass.moved += sum(1 for key, *_, old in changed if old is not None and window_pass.met(key))
            window_pass.note(latest)
        return stats

    @staticmethod
    def _item(
        key: str,
        record: CanonicalRecord,
        digest: str,
        updated: str,
        version: int,
        archive_key: str,
        pulled_at: str,
        data: str | None = None,
        *,
        indexed_by: str = "",
        scoped: bool = False,
    ) -> dict[str, Any]:
        """The record's item as boto3's low-level client takes it (what `_put` writes)."""
        shared = _SharedMembers(archive_key, pulled_at)
        return RecordStore._put(
            key, record, digest, updated, version, shared, data, indexed_by=indexed_by, scoped=scoped
        ).form()

    @staticmethod
    def _put(
        key: str,
        record: CanonicalRecord,
        digest: str,
        updated: str,
        version: int,
        shared: _SharedMembers,
        data: str | None = None,
        *,
        indexed_by: str = "",
        scoped: bool = False,
    ) -> WireItem:
        # Tenant, vendor, credential, kind and POS id are in the key and in the record's JSON; `kind` and `vendor` are
        # also attributes of their own (the stream consumers' FilterCriteria match `kind`). Nothing else is repeated:
        # each byte over 1 KB costs a second write unit (functions.core.record_items). The item is written straight
        # into its JSON text, sized from the same parts (functions.core.wire_items).
        # `_value_`: an enum member's value without the slow `.value` property. The UTF-8 size of the key, kind,
        # vendor, time and digest is measured at once.
        kind = record.kind._value_
        vendor = record.vendor._value_
        number = str(version)
        size = (
            _FIXED_NAME_BYTES + text_bytes(f"{key}{kind}{vendor}{updated}{digest}") + number_bytes(number) + shared.size
        )
        more = ""
        if indexed_by:
            more = f",{_INDEXED_BY}{quoted(indexed_by)}}}"
            size += len(layout.RECORDS_INDEXED_BY_ATTRIBUTE) + text_bytes(indexed_by)
        if scoped:
            # A record stored before page indexes keeps its own entry in the index (keys only, and they never change
            # for an item, so rewriting it costs the index nothing).
            scope = layout.record_scope(record.tenant, record.vendor)
            scope_key = layout.record_scope_key(record.kind, record.credential_id, record.pos_id)
            more += f",{_SCOPE}{quoted(scope)}}},{_SCOPE_KEY}{quoted(scope_key)}}}"
            size += _SCOPE_NAME_BYTES + text_bytes(scope) + text_bytes(scope_key)
        # The JSON as text (DATA) or its compressed bytes (DATA_Z): the value's type says which. The item's text is
        # written by one f-string at the end: the record's JSON (most of its bytes) is copied once into it, not three
        # times by `+=`s and a leading "{" (measured: 0.9% fewer instructions in a store of 2,600 POSaBIT records).
        _, value = record_items.data_value(record.model_dump_json() if data is None else data, size)
        if isinstance(value, bytes):
            last, value_text = _DATA_Z, binary_text(value)
            size += len(record_items.DATA_Z) + len(value)
        else:
            last, value_text = _DATA, quoted_long(value)
            size += len(record_items.DATA) + text_bytes(value)
        text = (
            f"{{{_PK}{quoted(key)}}},{_KIND}{quoted(kind)}}},{_VENDOR}{quoted(vendor)}}},{_UPDATED}{quoted(updated)}}},"
            f'{_DIGEST}{quoted(digest)}}},{_VERSION}"{number}"}},{shared.text}{more},{last}{value_text}}}}}'
        )
        return WireItem(key, text, size)

    def _versions(self, keys: list[str], stats: WriteStats) -> dict[str, StoredVersion]:
        found: dict[str, StoredVersion] = {}

        def counted() -> None:
            stats.get_requests += 1

        as_is = takes_wire_items(self.ddb)
        requests = []
        for chunk in chunks(keys, BATCH_GET_MAX):
            # The request written straight into its JSON text (functions.core.wire_items).
            text = WireText(
                f"{_KEYS_OPEN}{_PK}" + f"}}}},{{{_PK}".join(map(quoted, chunk)) + f"}}}}{_VERSION_READ_TAIL}"
            )
            requests.append({self.table: text if as_is else text.form()})
        # The page's reads in flight together (functions.core.ddb_batch.batch_get_together).
        for _, item in batch_get_together(self.ddb, requests, sleep=self._sleep, on_request=counted):
            found[item["pk"]["S"]] = _stored_version(item)
        return found

    def _batch_write(self, items: Sequence[Mapping[str, Any]], stats: WriteStats) -> None:
        # Items in their wire form (WireItem) go as they are to a client that sends them so (the trusted client);
        # any other client takes their dict form.
        # The batches of a page (distinct items) in flight together (functions.core.ddb_batch.batch_write_together).
        as_is = takes_wire_items(self.ddb)
        stats.write_requests += batch_write_together(
            self.ddb,
            self.table,
            [
                {"PutRequest": {"Item": item if as_is or not isinstance(item, WireItem) else item.form()}}
                for item in items
            ],
            sleep=self._sleep,
        )

    def scope_page(
        self,
        tenant: str,
        vendor: Vendor,
        kind: RecordKind,
        start_key: dict[str, Any] | None = None,
        limit: int = BATCH_GET_MAX,
        credential_id: str | None = None,
    ) -> StoredPage:
        """One page of at most `limit` of a tenant's stored records of one kind from one POS (or, with
        `credential_id`, one store), each with its version: the entries of the records table's index by tenant and
        POS (never a scan), page index items expanded into the records they list, then the records in batched reads.
        `next_key` is where the next page starts (None: that was the last); it may point inside a page index item.
        Over all pages each stored record comes once (functions.core.record_index says why)."""
        if kind not in layout.INDEXED_RECORD_KINDS:
            raise ValueError(f"{kind.value} records are not in the index by tenant and POS")
        if limit < 1:
            raise ValueError("a page holds at least one record")
        wanted: list[tuple[str, str]] = []  # (record key, digest of the page index it was listed by; "": its own)
        next_key: dict[str, Any] | None = None
        resume = (start_key or {}).get(_INSIDE_PAGE_INDEX)
        # `after`: where the index query goes on (the last entry taken); `pending`: entries to take, with the offset
        # of their first record not yet taken.
        after = resume["entry"] if resume else start_key
        pending: list[tuple[dict[str, Any], int]] = [(resume["entry"], int(resume["offset"]))] if resume else []
        exhausted = False
        while True:
            expanded = self._expand(tenant, vendor, kind, [entry for entry, _ in pending])
            for entry, offset in pending:
                pk = entry["pk"]["S"]
                via = record_index.digest_of(pk) if record_index.is_page_index(pk) else ""
                listed = (expanded.get(pk, []) if via else [pk])[offset:]
                room = limit - len(wanted)
                if len(listed) > room:
                    wanted.extend((key, via) for key in listed[:room])
                    return self._read_listed(wanted, {_INSIDE_PAGE_INDEX: {"entry": entry, "offset": offset + room}})
                wanted.extend((key, via) for key in listed)
            if exhausted:
                break
            if len(wanted) >= limit:
                next_key = after
                break
            response = self._scope_query(tenant, vendor, kind, credential_id, after, limit - len(wanted))
            pending = [(entry, 0) for entry in response.get("Items", [])]
            after = response.get("LastEvaluatedKey") or None
            exhausted = after is None
        return self._read_listed(wanted, next_key)

    def _scope_query(
        self,
        tenant: str,
        vendor: Vendor,
        kind: RecordKind,
        credential_id: str | None,
        start_key: dict[str, Any] | None,
        limit: int,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": layout.RECORDS_BY_SCOPE_INDEX,
            "KeyConditionExpression": "#scope = :scope AND begins_with(#key, :kind)",
            "ExpressionAttributeNames": {
                "#scope": layout.RECORDS_SCOPE_ATTRIBUTE,
                "#key": layout.RECORDS_SCOPE_KEY_ATTRIBUTE,
            },
            "ExpressionAttributeValues": {
                ":scope": {"S": layout.record_scope(tenant, vendor)},
                ":kind": {
                    "S": layout.record_scope_kind_prefix(kind)
                    if credential_id is None
                    else layout.record_scope_key(kind, credential_id, "")
                },
            },
            "Limit": limit,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        try:
            response: dict[str, Any] = self.ddb.query(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            raise StoreError(f"query of {self.table} by tenant and POS failed: {code}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"query of {self.table} by tenant and POS failed: {type(exc).__name__}") from exc
        return response

    def _expand(
        self, tenant: str, vendor: Vendor, kind: RecordKind, entries: list[dict[str, Any]]
    ) -> dict[str, list[str]]:
        """Page index key -> the record keys its item lists (an item not found lists nothing)."""
        keys = list(dict.fromkeys(e["pk"]["S"] for e in entries if record_index.is_page_index(e["pk"]["S"])))
        out: dict[str, list[str]] = {}
        for chunk in chunks(keys, BATCH_GET_MAX):
            request = {
                self.table: {
                    "Keys": [{"pk": {"S": key}} for key in chunk],
                    "ProjectionExpression": "pk, credential_id, #ids",
                    "ExpressionAttributeNames": {"#ids": layout.RECORDS_PAGE_INDEX_IDS_ATTRIBUTE},
                }
            }
            for _, item in batch_get(self.ddb, request, sleep=self._sleep):
                out[item["pk"]["S"]] = record_index.listed_record_pks(tenant, vendor, kind, item)
        return out

    def _read_listed(self, wanted: list[tuple[str, str]], next_key: dict[str, Any] | None) -> StoredPage:
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunks(list(dict.fromkeys(key for key, _ in wanted)), BATCH_GET_MAX):
            request = {
                self.table: {
                    "Keys": [{"pk": {"S": key}} for key in chunk],
                    # An older version read here is harmless: the rules never let an older change undo a newer one.
                    "ProjectionExpression": f"pk, kind, version, #by, {record_items.PROJECTION}",
                    "ExpressionAttributeNames": {
                        "#by": layout.RECORDS_INDEXED_BY_ATTRIBUTE,
                        **record_items.PROJECTION_NAMES,
                    },
                }
            }
            found.update((item["pk"]["S"], item) for _, item in batch_get(self.ddb, request, sleep=self._sleep))
        page = StoredPage(next_key=next_key)
        done: set[str] = set()
        for key, via in wanted:
            item = found.get(key)
            if item is None or key in done:
                continue  # listed by a page index written before a crash, or met twice in this page
            if via and item.get(layout.RECORDS_INDEXED_BY_ATTRIBUTE, {}).get("S") != via:
                continue  # listed again by a retry's page index: the one the record names yields it
            done.add(key)
            try:
                record = read_record(RecordKind(item["kind"]["S"]), record_items.record_json(item) or "")
            except (ValueError, KeyError):  # pydantic's ValidationError is a ValueError
                page.unreadable += 1
                continue
            page.records.append((record, int(item.get("version", {}).get("N", "1"))))
        return page

    def get(
        self, tenant: str, vendor: Vendor, credential_id: str, kind: RecordKind, pos_id: str
    ) -> CanonicalRecord | None:
        key = layout.record_pk(tenant, vendor, credential_id, kind, pos_id)
        try:
            item = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"read from {self.table} failed: {type(exc).__name__}") from exc
        if item is None:
            return None
        return RECORD_MODELS[RecordKind(item["kind"]["S"])].model_validate_json(record_items.record_json(item) or "")


# --- control table -------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """Where a credential's stream stands: the cursor, and the window being read if a pull is under way."""

    cursor: datetime | None = None  # largest source_updated_at stored by completed windows
    window_start: datetime | None = None
    window_end: datetime | None = None
    token: dict[str, Any] | None = None  # the next page to read in the open window
    pages_done: int = 0  # pages of the open window stored so far (numbers the archive keys)
    window_max: datetime | None = None  # largest timestamp stored in the open window
    first_total: int | None = None
    window_pass: int = 0
    run_id: str | None = None

    @property
    def in_progress(self) -> bool:
        return self.window_end is not None

    def state(self) -> dict[str, Any]:
        """What is stored for this checkpoint (two checkpoints with the same state need not be written twice)."""

        def iso(v: datetime | None) -> str | None:
            return _iso(v) if v else None

        return {
            "cursor": iso(self.cursor),
            "window_start": iso(self.window_start),
            "window_end": iso(self.window_end),
            "token": self.token,
            "pages_done": self.pages_done,
            "window_max": iso(self.window_max),
            "first_total": self.first_total,
            "window_pass": self.window_pass,
            "run_id": self.run_id,
        }


class StoredCheckpoints:
    """A credential's checkpoint items as one Query found them (by sort key), each read when its stream asks for it:
    a checkpoint that cannot be read fails its own stream's pull, as `get_checkpoint` does, not the others'. True when
    any was found, of any stream (one this version does not know included)."""

    def __init__(self, items: Mapping[str, Mapping[str, Any]]) -> None:
        self._items = items

    def __bool__(self) -> bool:
        return bool(self._items)

    def get(self, stream: Stream) -> Checkpoint:
        item = self._items.get(layout.control_checkpoint_sk(stream))
        return _checkpoint_of(item) if item is not None else Checkpoint()


def _checkpoint_of(item: Mapping[str, Any]) -> Checkpoint:
    state = json.loads(item["state"]["S"])
    return Checkpoint(
        cursor=_dt(state.get("cursor")),
        window_start=_dt(state.get("window_start")),
        window_end=_dt(state.get("window_end")),
        token=state.get("token"),
        pages_done=int(state.get("pages_done", 0)),
        window_max=_dt(state.get("window_max")),
        first_total=state.get("first_total"),
        window_pass=int(state.get("window_pass", 0)),
        run_id=state.get("run_id"),
    )


@dataclass(frozen=True)
class RegisteredCredential:
    tenant: str
    vendor: Vendor
    credential_id: str
    active: bool
    secret_name: str
    label: str = ""
    market: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _epoch(value: dict[str, str] | None) -> datetime | None:
    return datetime.fromtimestamp(int(value["N"]), UTC) if value and "N" in value else None


@dataclass(frozen=True)
class Lease:
    """Who pulls a credential right now: `holder` describes the job, `until` is when the lease expires."""

    owner: str
    holder: str
    acquired_at: datetime | None
    until: datetime

    def describe(self) -> dict[str, Any]:
        return {
            "holder": self.holder or f"pull {self.owner[:8]}",
            "since": self.acquired_at.isoformat() if self.acquired_at else None,
            "until": self.until.isoformat(),
        }


class ControlStore:
    """Checkpoints, leases, quarantine, the credential registry and pull status, in one table."""

    def __init__(self, dynamodb: Any, table: str, clock: Any = time.time, sleep: Any = time.sleep) -> None:
        self.ddb = dynamodb
        self.table = table
        self.clock = clock
        self._sleep = sleep

    def _call(self, op: str, **kwargs: Any) -> Any:
        return call_table(self.ddb, self.table, op, TableName=self.table, **kwargs)

    # checkpoints
    def get_checkpoint(self, tenant: str, vendor: Vendor, credential_id: str, stream: Stream) -> Checkpoint:
        item = self._call(
            "get_item",
            Key={
                "pk": {"S": layout.control_credential_pk(tenant, vendor, credential_id)},
                "sk": {"S": layout.control_checkpoint_sk(stream)},
            },
            ConsistentRead=True,
        ).get("Item")
        return _checkpoint_of(item) if item else Checkpoint()

    def get_checkpoints(self, tenant: str, vendor: Vendor, credential_id: str) -> StoredCheckpoints:
        """Every stream's checkpoint of the credential, in one strongly consistent Query: what a pull reads when it
        starts (it holds the credential's lease, so nothing else writes them until it ends). None stored means the
        credential's first pull is under way (FirstPull)."""
        items = self._query(
            layout.control_credential_pk(tenant, vendor, credential_id),
            sk_prefix=layout.CONTROL_CHECKPOINT_SK_PREFIX,
            consistent=True,
        )
        return StoredCheckpoints({item["sk"]["S"]: item for item in items})

    def save_checkpoint(
        self,
        tenant: str,
        vendor: Vendor,
        credential_id: str,
        stream: Stream,
        checkpoint: Checkpoint,
        archived: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Store the checkpoint, and note where the pages archived since the last save are (digest, archive key):
        one request for both (BatchWriteItem of unconditional puts, safe to send again)."""
        pk = {"S": layout.control_credential_pk(tenant, vendor, credential_id)}
        items: list[dict[str, Any]] = [
            {
                "pk": pk,
                "sk": {"S": layout.control_checkpoint_sk(stream)},
                "state": {"S": json.dumps(checkpoint.state(), default=str)},
                "saved_at": {"S": _iso(datetime.now(UTC))},
            }
        ]
        # A page's bytes are remembered once the object exists (the caller archived it before): an entry never
        # points at a page that was not stored. Forgotten after ARCHIVED_PAGE_MEMORY_SECONDS (a page seen again
        # after that is simply archived again).
        expires = {"N": str(int(self.clock()) + ARCHIVED_PAGE_MEMORY_SECONDS)}
        items.extend(
            {
                "pk": pk,
                "sk": {"S": layout.control_archived_page_sk(stream, digest)},
                "archive_key": {"S": archive_key},
                layout.CONTROL_TABLE_TTL_ATTRIBUTE: expires,
            }
            for digest, archive_key in dict(archived).items()
        )
        batch_write(self.ddb, self.table, [{"PutRequest": {"Item": item}} for item in items], sleep=self._sleep)

    # the index of archived pages by digest: a page whose exact bytes are archived already is not archived again
    def archived_page(self, tenant: str, vendor: Vendor, credential_id: str, stream: Stream, digest: str) -> str | None:
        """The archive key of this stream's page with these exact bytes, if one was archived (and not forgotten)."""
        item = self._call(
            "get_item",
            Key={
                "pk": {"S": layout.control_credential_pk(tenant, vendor, credential_id)},
                "sk": {"S": layout.control_archived_page_sk(stream, digest)},
            },
            ProjectionExpression="archive_key",
        ).get("Item")
        return item["archive_key"]["S"] if item and "archive_key" in item else None

    # leases
    def acquire_lease(
        self, tenant: str, vendor: Vendor, credential_id: str, owner: str, seconds: int, holder: str = ""
    ) -> None:
        """Take the credential's lease, or take over one that expired; LeaseHeldError if another pull holds it.

        `holder` says who takes it (e.g. "schedule job, Lambda request ..."): a pull that finds the lease held
        reports who holds it, since when and until when.
        """
        now = int(self.clock())
        item: dict[str, Any] = {
            "pk": {"S": layout.control_credential_pk(tenant, vendor, credential_id)},
            "sk": {"S": layout.CONTROL_LEASE_SK},
            "owner": {"S": owner},
            "acquired_at": {"N": str(now)},
            "lease_until": {"N": str(now + seconds)},
            "expires_at": {"N": str(now + seconds + 86400)},
        }
        if holder:
            item["holder"] = {"S": holder[:200]}
        try:
            self._call(
                "put_item",
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now OR #o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":now": {"N": str(now)}, ":me": {"S": owner}},
            )
        except ClientError as exc:
            raise LeaseHeldError(f"another pull of {vendor.value} credential {credential_id} is running") from exc

    def get_lease(self, tenant: str, vendor: Vendor, credential_id: str) -> Lease | None:
        """The credential's lease if one is held now (an expired lease is as good as none: the next pull takes it)."""
        item = self._call(
            "get_item",
            Key={
                "pk": {"S": layout.control_credential_pk(tenant, vendor, credential_id)},
                "sk": {"S": layout.CONTROL_LEASE_SK},
            },
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        lease = Lease(
            owner=item["owner"]["S"],
            holder=item.get("holder", {}).get("S", ""),
            acquired_at=_epoch(item.get("acquired_at")),
            until=_epoch(item["lease_until"]) or datetime.fromtimestamp(0, UTC),
        )
        return lease if lease.until.timestamp() >= self.clock() else None

    def release_lease(self, tenant: str, vendor: Vendor, credential_id: str, owner: str) -> None:
        """Let go of our lease; StoreError if DynamoDB failed (the lease then stays until it expires)."""
        try:
            self._call(
                "delete_item",
                Key={
                    "pk": {"S": layout.control_credential_pk(tenant, vendor, credential_id)},
                    "sk": {"S": layout.CONTROL_LEASE_SK},
                },
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": {"S": owner}},
            )
        except ClientError:
            return  # taken over after expiry: nothing of ours to release

    # quarantine
    def quarantine(self, tenant: str, vendor: Vendor, credential_id: str, entries: Sequence[dict[str, str]]) -> int:
        """Store quarantine entries (stream, pos_id, reason, archive_key, item_index); returns requests made."""
        requests = 0
        now = _iso(datetime.now(UTC))
        items = [
            {
                "pk": {"S": layout.control_quarantine_pk(tenant, vendor, credential_id)},
                "sk": {"S": layout.control_quarantine_sk(Stream(e["stream"]), e["pos_id"])},
                "reason": {"S": e["reason"][:1000]},
                "archive_key": {"S": e["archive_key"]},
                "item_index": {"N": e["item_index"]},
                "quarantined_at": {"S": now},
                **({"field": {"S": e["field"][:200]}} if e.get("field") else {}),
            }
            for e in entries
        ]
        requests += batch_write(self.ddb, self.table, [{"PutRequest": {"Item": i}} for i in items], sleep=self._sleep)
        return requests

    def release_quarantine(self, tenant: str, vendor: Vendor, credential_id: str, sks: Sequence[str]) -> None:
        """Remove quarantine entries (by sort key) whose items now map, e.g. after a replay with a fixed mapping."""
        pk = layout.control_quarantine_pk(tenant, vendor, credential_id)
        batch_write(
            self.ddb,
            self.table,
            [{"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": sk}}}} for sk in sks],
            sleep=self._sleep,
        )

    def list_quarantine(self, tenant: str, vendor: Vendor, credential_id: str) -> list[dict[str, Any]]:
        return [
            {
                "sk": i["sk"]["S"],
                "reason": i["reason"]["S"],
                "archive_key": i["archive_key"]["S"],
                "item_index": int(i["item_index"]["N"]),
                "field": i.get("field", {}).get("S"),
            }
            for i in self._query(layout.control_quarantine_pk(tenant, vendor, credential_id))
        ]

    def _query(self, pk: str, *, sk_prefix: str = "", consistent: bool = False) -> Iterator[dict[str, Any]]:
        """Every item under `pk` (those whose sort key starts with `sk_prefix`, when given), page after page."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }
        if sk_prefix:
            kwargs["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :prefix)"
            kwargs["ExpressionAttributeValues"][":prefix"] = {"S": sk_prefix}
        if consistent:
            kwargs["ConsistentRead"] = True
        while True:
            response = self._call("query", **kwargs)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # registry
    def register_credential(self, entry: RegisteredCredential) -> None:
        item: dict[str, Any] = {
            "pk": {"S": layout.control_registry_pk(entry.vendor)},
            "sk": {"S": layout.control_registry_sk(entry.tenant, entry.credential_id)},
            "tenant": {"S": entry.tenant},
            "vendor": {"S": entry.vendor.value},
            "credential_id": {"S": entry.credential_id},
            "active": {"BOOL": entry.active},
            "secret_name": {"S": entry.secret_name},
            "label": {"S": entry.label},
            "attributes": {"S": json.dumps(entry.attributes)},
        }
        if entry.market:
            item["market"] = {"S": entry.market}
        self._call("put_item", Item=item)

    def remove_credential(self, tenant: str, vendor: Vendor, credential_id: str) -> None:
        self._call(
            "delete_item",
            Key={
                "pk": {"S": layout.control_registry_pk(vendor)},
                "sk": {"S": layout.control_registry_sk(tenant, credential_id)},
            },
        )

    def credentials(self, vendor: Vendor, tenant: str | None = None) -> list[RegisteredCredential]:
        out = []
        for i in self._query(layout.control_registry_pk(vendor)):
            if tenant is not None and i["tenant"]["S"] != tenant:
                continue
            out.append(
                RegisteredCredential(
                    tenant=i["tenant"]["S"],
                    vendor=Vendor(i["vendor"]["S"]),
                    credential_id=i["credential_id"]["S"],
                    active=i["active"]["BOOL"],
                    secret_name=i["secret_name"]["S"],
                    label=i.get("label", {}).get("S", ""),
                    market=i.get("market", {}).get("S"),
                    attributes=json.loads(i.get("attributes", {}).get("S", "{}")),
                )
            )
        return out

    def get_credential(self, tenant: str, vendor: Vendor, credential_id: str) -> RegisteredCredential | None:
        return next((c for c in self.credentials(vendor, tenant) if c.credential_id == credential_id), None)

    # status
    def save_status(self, tenant: str, vendor: Vendor, credential_id: str, status: dict[str, Any]) -> None:
        """Set the given status fields (one attribute each, so two writers never undo each other's fields).

        Fields not named keep their value: `last_success_at` survives a failed pull. A value of None clears a field.
        """
        if not status:
            return
        names = {f"#f{i}": name for i, name in enumerate(status)}
        values = {f":v{i}": {"S": json.dumps(value, default=str)} for i, value in enumerate(status.values())}
        self._call(
            "update_item",
            Key={
                "pk": {"S": layout.control_credential_pk(tenant, vendor, credential_id)},
                "sk": {"S": layout.CONTROL_STATUS_SK},
            },
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(status))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def get_status(self, tenant: str, vendor: Vendor, credential_id: str) -> dict[str, Any]:
        item = self._call(
            "get_item",
            Key={
                "pk": {"S": layout.control_credential_pk(tenant, vendor, credential_id)},
                "sk": {"S": layout.CONTROL_STATUS_SK},
            },
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return {}
        # Status items written before fields had attributes of their own kept them all in one JSON blob.
        status: dict[str, Any] = json.loads(item["status"]["S"]) if "status" in item else {}
        for name, value in item.items():
            if name not in ("pk", "sk", "status") and "S" in value:
                status[name] = json.loads(value["S"])
        return status
