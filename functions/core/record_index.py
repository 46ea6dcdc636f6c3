"""The records table's page index: the index by tenant and POS holds one entry per page of new records, not per record.

A write of records that were not stored before (of a kind in layout.INDEXED_RECORD_KINDS) first writes, per kind and
credential, one item that carries the index's two key attributes and lists the records' POS ids; each record then
names that item (layout.RECORDS_INDEXED_BY_ATTRIBUTE) and carries no index keys of its own. A new record so costs
the index nothing of its own: the index gets one small entry per page.

- The item is written before its records: a crash in between leaves an entry listing records not written yet (a
  reader skips what it cannot find), never a stored record that no entry lists (a retry sees it stored and would
  never index it).
- Its key is a digest of tenant, vendor, kind, credential and the sorted POS ids: a retried page writes the same item
  again; a retry after a partial write (whose new set is smaller) writes another item and loses nothing.
- A record listed by two items (that retry) is read through the one it names only, so a pass over the index meets
  each record once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from functions.core import layout
from functions.core.layout import RecordKind, Vendor
from functions.core.models import CanonicalRecord

# One item lists at most this many POS ids, and at most this many bytes of them: DynamoDB's item limit is 400 KB.
MAX_IDS_PER_ITEM = 1000
MAX_ID_BYTES_PER_ITEM = 300_000
DIGEST_BYTES = 12


def is_page_index(pk: str) -> bool:
    return pk.startswith(layout.RECORDS_PAGE_INDEX_PK_PREFIX)


def page_index_pk(digest: str) -> str:
    return f"{layout.RECORDS_PAGE_INDEX_PK_PREFIX}{digest}"


@dataclass(frozen=True)
class PageIndex:
    """One page index item: records of one kind from one credential, by POS id (sorted, unique)."""

    tenant: str
    vendor: Vendor
    kind: RecordKind
    credential_id: str
    pos_ids: tuple[str, ...]
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        material = json.dumps([self.tenant, self.vendor.value, self.kind.value, self.credential_id, self.pos_ids])
        object.__setattr__(self, "digest", hashlib.blake2b(material.encode(), digest_size=DIGEST_BYTES).hexdigest())

    @property
    def pk(self) -> str:
        return page_index_pk(self.digest)

    def record_pks(self) -> list[str]:
        # A records-table key ends with the POS id (layout.record_pk): the rest is written once for all of them.
        prefix = layout.record_pk(self.tenant, self.vendor, self.credential_id, self.kind, "")
        return [prefix + pos_id for pos_id in self.pos_ids]

    def item(self) -> dict[str, Any]:
        return {
            "pk": {"S": self.pk},
            layout.RECORDS_SCOPE_ATTRIBUTE: {"S": layout.record_scope(self.tenant, self.vendor)},
            # Under the same begins_with prefixes as a record's own entry: kind, then credential.
            layout.RECORDS_SCOPE_KEY_ATTRIBUTE: {"S": layout.record_scope_key(self.kind, self.credential_id, self.pk)},
            "credential_id": {"S": self.credential_id},
            layout.RECORDS_PAGE_INDEX_IDS_ATTRIBUTE: {"SS": list(self.pos_ids)},
        }


def page_indexes(records: Iterable[CanonicalRecord]) -> list[PageIndex]:
    """The page index items that list these records: one per kind and credential (records of kinds outside the index
    are left out), split where one would list more than MAX_IDS_PER_ITEM ids or MAX_ID_BYTES_PER_ITEM bytes of them."""
    groups: dict[tuple[str, Vendor, RecordKind, str], set[str]] = {}
    for record in records:
        if record.kind in layout.INDEXED_RECORD_KINDS:
            groups.setdefault((record.tenant, record.vendor, record.kind, record.credential_id), set()).add(
                record.pos_id
            )
    out: list[PageIndex] = []
    for (tenant, vendor, kind, credential_id), ids in groups.items():
        chunk: list[str] = []
        size = 0
        for pos_id in sorted(ids):
            id_bytes = len(pos_id.encode())
            if chunk and (len(chunk) >= MAX_IDS_PER_ITEM or size + id_bytes > MAX_ID_BYTES_PER_ITEM):
                out.append(PageIndex(tenant, vendor, kind, credential_id, tuple(chunk)))
                chunk, size = [], 0
            chunk.append(pos_id)
            size += id_bytes
        out.append(PageIndex(tenant, vendor, kind, credential_id, tuple(chunk)))
    return out


def listed_record_pks(tenant: str, vendor: Vendor, kind: RecordKind, item: Mapping[str, Any]) -> list[str]:
    """The records-table keys a stored page index item lists, in a stable order (what a cursor's offset counts)."""
    credential_id = item["credential_id"]["S"]
    ids = sorted(item.get(layout.RECORDS_PAGE_INDEX_IDS_ATTRIBUTE, {}).get("SS", []))
    return [layout.record_pk(tenant, vendor, credential_id, kind, pos_id) for pos_id in ids]


def digest_of(pk: str) -> str:
    return pk.removeprefix(layout.RECORDS_PAGE_INDEX_PK_PREFIX)
