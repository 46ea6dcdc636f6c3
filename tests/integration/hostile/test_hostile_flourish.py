"""Flourish pulls, through the handler under moto, against a server the simulators' authors did not write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from functions.core.layout import RecordKind, Vendor, record_pk
from functions.core.record_items import record_fields
from tests.integration.hostile.servers import (
    RFC3339_FORMS,
    Call,
    Reply,
    VendorServer,
    iso,
    parse_z,
    stored_sale_ids,
)
from tests.integration.pulls import PullWorld

SERVED_LIMIT = 10  # the server caps `limit` at this, whatever is asked (meta.next says whether more follow)
API = "/external/api/v1"
CREDENTIAL = {"vendor": "flourish", "username": "hostile", "key": "key-hostile-1", "facility_id": "F1"}


def order(oid: int, updated: datetime, total: float = 10.0, **extra: Any) -> dict[str, Any]:
    created = updated - timedelta(minutes=2)
    return {
        "id": oid,
        "customer_id": f"C{oid}",
        "facility_id": "F1",
        "order_status": "Completed",
        "order_payment_status": "Paid",
        "order_timestamp": iso(created),
        "created_timestamp": iso(created),
        "completed_timestamp": iso(updated),
        "last_updated_timestamp": iso(updated),
        "subtotal": total,
        "total_discounts": 0.0,
        "total_tax": 0.0,
        "delivery_fee": 0.0,
        "total_price": total,
        "total_paid": total,
        "total_refunded": 0.0,
        "order_lines": [
            {
                "id": oid * 10,
                "item_id": "I1",
                "sku": "S1",
                "item_name": "P",
                "brand": "B",
                "item_category": "Flower",
                "order_qty": 1,
                "unit_price": total,
                "total_price": total,
                "refunded_qty": 0,
                "applied_discounts": [],
            }
        ],
        **extra,
    }


class FlourishServer(VendorServer):
    """Retail orders filtered as documented, ordered by id, capped at SERVED_LIMIT a page, with meta.next."""

    def __init__(self) -> None:
        super().__init__()
        self.orders: dict[int, dict[str, Any]] = {}

    def answer(self, call: Call) -> Reply | None:
        path = call.path.rstrip("/")
        if path == API + "/facilities":
            rows: list[dict[str, Any]] = [
                {"id": "F1", "facility_name": "Hostile", "timezone": "America/Los_Angeles", "address": {"state": "WA"}}
            ]
            return self.page(rows, call)
        if path == API + "/retail-orders":
            if self.on_page is not None:
                self.on_page(call.int_arg("offset", 0))
            return self.page(self.select(list(self.orders.values()), call), call)
        if path in (API + "/customers", API + "/items", API + "/discounts"):
            return self.page([], call)
        return Reply.json({"detail": "Not found."}, 404)

    @staticmethod
    def select(rows: list[dict[str, Any]], call: Call) -> list[dict[str, Any]]:
        for name in ("order_status", "order_payment_status"):
            if name in call.params:
                rows = [r for r in rows if r[name] == call.params[name]]
        for field in ("completed", "created", "last_updated"):
            start, end = call.params.get(f"{field}_timestamp_start"), call.params.get(f"{field}_timestamp_end")
            if start:
                rows = [
                    r for r in rows if r[f"{field}_timestamp"] and parse_z(r[f"{field}_timestamp"]) >= parse_z(start)
                ]
            if end:
                rows = [r for r in rows if r[f"{field}_timestamp"] and parse_z(r[f"{field}_timestamp"]) <= parse_z(end)]
        return sorted(rows, key=lambda r: r["id"])

    def page(self, rows: list[dict[str, Any]], call: Call) -> Reply:
        offset = call.int_arg("offset", 0)
        limit = min(call.int_arg("limit", 50), SERVED_LIMIT)
        served = rows[offset : offset + limit]
        more = offset + limit < len(rows)
        nxt = f"{self.url}{call.path}?limit={limit}&offset={offset + limit}" if more else None
        return Reply.json({"data": served, "meta": {"next": nxt, "total": len(rows)}})


SERVER = FlourishServer
VENDOR = Vendor.FLOURISH


def history(count: int) -> dict[int, dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(days=3)
    return {n: order(n, start + timedelta(minutes=n)) for n in range(1, count + 1)}


# Forms of one instant a server may write, all valid ISO 8601 / RFC 3339 (Flourish documents `...123Z`).
TIMESTAMP_FORMS = RFC3339_FORMS


@pytest.mark.parametrize("form", list(TIMESTAMP_FORMS))
def test_an_order_stamped_in_any_valid_form_is_stored_at_its_instant(
    world: PullWorld, pos: FlourishServer, form: str
) -> None:
    moment = (datetime.now(UTC) - timedelta(days=2)).replace(second=0, microsecond=0)
    written = order(1, moment)
    written["last_updated_timestamp"] = written["completed_timestamp"] = moment.strftime(TIMESTAMP_FORMS[form])
    pos.orders = {1: written}

    world.tick()

    assert world.status("hostile")["last_outcome"] == "ok"
    assert not world.quarantined()
    assert stored_sale_ids(world) == [1]
    assert parse_z(stored_sale(world, 1)["source_updated_at"]) == moment


def stored_sale(world: PullWorld, oid: int) -> dict[str, Any]:
    """The stored sale's record, as its item's JSON holds it."""
    pk = record_pk(world.tenant, Vendor.FLOURISH, world.credentials["hostile"], RecordKind.SALE, str(oid))
    item = boto3.client("dynamodb").get_item(TableName=world.resources.records_table, Key={"pk": {"S": pk}})["Item"]
    return record_fields(item)
