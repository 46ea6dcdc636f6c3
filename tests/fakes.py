"""In-memory fakes: a connector over a list of items, with switches for the faults the engine must survive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.core.connector import MappingContext, MappingError, RawPage, Window
from functions.core.layout import RecordKind, Stream, Vendor, record_pk
from functions.core.models import Product

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def item(n: int, minutes: int | None = None, name: str | None = None) -> dict[str, Any]:
    updated = T0 + timedelta(minutes=minutes if minutes is not None else n)
    return {"id": n, "name": f"product {n}" if name is None else name, "updated_at": updated.isoformat()}


def stored(resources: Any, n: int, tenant: str = "t1", credential_id: str = "c1") -> dict[str, Any]:
    """The records table's item of `item(n)` as a FakeConnector pull of this tenant and credential stored it."""
    import boto3

    key = {"pk": {"S": record_pk(tenant, Vendor.POSABIT, credential_id, RecordKind.PRODUCT, str(n))}}
    item: dict[str, Any] = boto3.client("dynamodb").get_item(TableName=resources.records_table, Key=key)["Item"]
    return item


@dataclass
class FakeConnector:
    """Serves `items` (a live list: tests mutate it between or during pulls) page by page, ordered by update."""

    items: list[dict[str, Any]]
    page_size: int = 10
    vendor: Vendor = Vendor.POSABIT
    streams: tuple[Stream, ...] = (Stream.INVENTORY,)
    on_page: Any = None  # callable(page_number) run after a page is served: mutate data mid-pull
    duplicate_boundary: bool = False
    ignore_window_end: bool = False  # like a POS whose filter has no upper bound
    served_pages: int = 0
    closed: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)

    def prepare(self) -> MappingContext:
        return MappingContext(tenant="t1", vendor=self.vendor, credential_id="c1", timezone="America/Los_Angeles")

    def _window(self, window: Window) -> list[dict[str, Any]]:
        def ts(i: dict[str, Any]) -> datetime:
            return datetime.fromisoformat(i["updated_at"])

        chosen = [
            i
            for i in self.items
            if (window.start is None or ts(i) >= window.start) and (self.ignore_window_end or ts(i) < window.end)
        ]
        return sorted(chosen, key=lambda i: (ts(i), i["id"]))

    def pages(self, stream: Stream, window: Window, token: dict[str, Any] | None) -> Iterator[RawPage]:
        page = (token or {}).get("page", 1)
        while True:
            rows = self._window(window)
            start = (page - 1) * self.page_size
            chunk = rows[start : start + self.page_size]
            if self.duplicate_boundary and page > 1 and start > 0:
                chunk = [rows[start - 1], *chunk]
            last = start + self.page_size >= len(rows)
            self.requests.append({"page": page, "start": window.start, "end": window.end})
            body = json.dumps({"total_records": len(rows), "current_page": page, "data": chunk}).encode()
            self.served_pages += 1
            yield RawPage(
                body=body,
                items=chunk,
                request={"method": "GET", "path": "/inventory", "params": {"page": page}},
                next_token=None if last else {"page": page + 1},
                total_records=len(rows),
            )
            if self.on_page is not None:
                self.on_page(self.served_pages)
            if last:
                return
            page += 1

    def map_record(self, stream: Stream, raw: dict[str, Any], ctx: MappingContext) -> Product:
        if raw.get("name") == "":
            raise MappingError(str(raw["id"]), "name is empty")
        return Product(
            tenant=ctx.tenant,
            vendor=ctx.vendor,
            credential_id=ctx.credential_id,
            pos_id=str(raw["id"]),
            source_updated_at=datetime.fromisoformat(raw["updated_at"]),
            name=raw["name"],
        )

    def item_id(self, stream: Stream, raw: dict[str, Any]) -> str | None:
        return str(raw.get("id"))

    def close(self) -> None:
        self.closed = True
