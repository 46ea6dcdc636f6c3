"""Fixes for moto, the AWS stand-in of the local runtime, tests and benchmarks: costs that grow with the table.

1. TransactWriteItems deep-copies every table a transaction touches, once per action, so that it can restore the
   whole table if the transaction is cancelled: with a few thousand personas each transaction takes a second and
   memory climbs by gigabytes. Here only the items the transaction names are backed up, and on cancellation those
   (and the table's stream) are restored: the same all-or-nothing behaviour and cancellation reasons.
2. Query on a table's key sorts every item of the table, then keeps those of the queried partition. Here it reads
   that partition only (the results, their order and paging are the same); with `begins_with` on the sort key,
   only the partition's items with that prefix (moto sizes every candidate item before applying the key
   condition, so a persona's visits query would cost as much as all its ledger entries).

3. A conditional write is checked, then applied, with nothing between the two held: two threads writing the same
   item (`attribute_not_exists(pk)`, a version check) can both pass, where DynamoDB fails one of them. Here each
   write request (PutItem, UpdateItem, DeleteItem, TransactWriteItems) runs whole under one lock, as atomic as
   DynamoDB makes it; reads are not held.

DynamoDB itself has neither cost (1, 2): both requests cost what the items they touch cost.

The patches reach into moto's internals (`DynamoDBBackend.transact_write_items`, the module's `copy`, `Table.query`,
`Table.all_items`), so they are written for one moto release, MOTO_VERSION, and refuse to load on any other: a moto
upgrade must re-check each patch against the new source before the pin below moves.
"""

from __future__ import annotations

import copy
import threading
import types
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Final

# The moto release these patches were written and checked against (read from the installed distribution).
MOTO_VERSION: Final = "5.2.5"

_installed = False
_lock = threading.Lock()
_writes = threading.RLock()  # one DynamoDB write request at a time (3.); re-entrant: a transaction's own writes
# The backend's write requests (3.), each applied whole under _writes.
ATOMIC_WRITES: Final = ("put_item", "update_item", "delete_item", "transact_write_items")
_partition = threading.local()  # the partition a table-key Query reads (set only during that Query)


@dataclass
class _ItemBackup:
    table: Any  # moto.dynamodb.models.table.Table
    hash_key: Any  # DynamoType
    range_key: Any | None
    item: Any | None  # a deep copy of the item before the transaction, None if it did not exist


def _deepcopy_except_tables(obj: Any, memo: dict[int, Any] | None = None) -> Any:
    from moto.dynamodb.models.table import Table

    if isinstance(obj, Table):
        return obj  # the whole-table backup becomes a no-op: _restore puts back the named items instead
    return copy.deepcopy(obj, memo)


def _backups(backend: Any, transact_items: list[dict[str, Any]]) -> tuple[list[_ItemBackup], dict[str, Any]]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    backups: list[_ItemBackup] = []
    tables: dict[str, Any] = {}
    for action in transact_items[:100]:
        if len(action) != 1:
            continue
        op_type, op = next(iter(action.items()))
        table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
        if table is None:
            continue
        key = op.get("Item") if op_type == "Put" else op.get("Key")
        if not isinstance(key, dict) or table.hash_key_attr not in key:
            continue
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = None
        if table.range_key_attr is not None:
            if table.range_key_attr not in key:
                continue
            range_key = DynamoType(key[table.range_key_attr])
        tables.setdefault(table.name, table)
        existing = table.get_item(hash_key, range_key)
        backups.append(_ItemBackup(table, hash_key, range_key, copy.deepcopy(existing)))
    return backups, tables


def _restore(backend: Any, backups: list[_ItemBackup], tables: dict[str, Any], streams: dict[str, int]) -> None:
    for name, table in tables.items():
        backend.tables[name] = table
        if table.stream_shard is not None and name in streams:
            del table.stream_shard.items[streams[name] :]  # a cancelled transaction emits no stream records
    for backup in reversed(backups):
        items = backup.table.items
        if backup.range_key is None:
            if backup.item is None:
                items.pop(backup.hash_key, None)
            else:
                items[backup.hash_key] = backup.item
        elif backup.item is None:
            items.get(backup.hash_key, {}).pop(backup.range_key, None)
        else:
            items[backup.hash_key][backup.range_key] = backup.item


def _install_partition_query() -> None:
    from moto.dynamodb.models.table import Table

    original_query, original_all_items = Table.query, Table.all_items

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # (range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward, projections, index_name, ...)
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name is not None or hash_key is None:
            return original_query(self, hash_key, *args, **kwargs)  # an index query reads the whole table
        range_comparison = args[0] if args else kwargs.get("range_comparison")
        range_objs = args[1] if len(args) > 1 else kwargs.get("range_objs")
        prefix = None
        if range_comparison == "BEGINS_WITH" and range_objs and getattr(range_objs[0], "type", None) == "S":
            prefix = range_objs[0].value
        _partition.table, _partition.key, _partition.prefix = self, hash_key, prefix
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _partition.table = _partition.key = _partition.prefix = None

    def all_items(self: Any) -> Any:
        table: Any = self
        reading: Any = getattr(_partition, "table", None)
        if reading is None or id(reading) != id(table):
            return original_all_items(table)
        held = table.items.get(_partition.key)
        if held is None:
            return []
        if not table.range_key_attr:
            return [held]
        items = held.values()
        prefix = getattr(_partition, "prefix", None)
        if prefix is not None:
            # begins_with(sk, :prefix): DynamoDB seeks to the prefix; moto would size every item of the partition
            # (its 1 MB page check runs before the key condition). moto still applies the condition itself.
            items = [i for i in items if i.range_key is not None and str(i.range_key.value).startswith(prefix)]
        return sorted(items, key=lambda item: item.range_key)

    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]


class MotoVersionError(RuntimeError):
    """The installed moto is not the release the patches were written for."""


def installed_moto_version() -> str | None:
    try:
        return metadata.version("moto")
    except metadata.PackageNotFoundError:
        return None


def check_moto_version(installed: str | None = None) -> None:
    """MotoVersionError unless the installed moto is MOTO_VERSION, with what to do about it."""
    found = installed if installed is not None else installed_moto_version()
    if found == MOTO_VERSION:
        return
    what = f"moto {found} is installed" if found else "moto is not installed"
    raise MotoVersionError(
        f"possync.local.moto_fixes patches moto's DynamoDB internals and was written for moto {MOTO_VERSION}, "
        f"but {what}. Re-check each patch in possync/local/moto_fixes.py against that moto's source "
        "(DynamoDBBackend.transact_write_items and its use of copy.deepcopy, Table.query, Table.all_items), "
        "then set MOTO_VERSION there to the new version; or install the pinned moto with `make .venv/.synced`."
    )


def is_installed() -> bool:
    """Whether this process runs patched moto."""
    return _installed


def install() -> None:
    """Patch moto's DynamoDB backend in this process (idempotent); MotoVersionError on any other moto release."""
    global _installed
    with _lock:
        check_moto_version()
        if _installed:
            return
        from moto.dynamodb import models

        _install_partition_query()

        original = models.DynamoDBBackend.transact_write_items
        setattr(models, "copy", types.SimpleNamespace(deepcopy=_deepcopy_except_tables))  # noqa: B010

        def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
            backups, tables = _backups(self, transact_items)
            streams = {n: len(t.stream_shard.items) for n, t in tables.items() if t.stream_shard is not None}
            try:
                original(self, transact_items)
            except Exception:
                _restore(self, backups, tables, streams)
                raise

        models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        for name in ATOMIC_WRITES:
            setattr(models.DynamoDBBackend, name, _atomic(getattr(models.DynamoDBBackend, name)))
        _installed = True


def _atomic(write: Any) -> Any:
    def atomic(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _writes:
            return write(self, *args, **kwargs)

    atomic.__wrapped__ = write  # type: ignore[attr-defined]
    return atomic
