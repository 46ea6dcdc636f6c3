"""Profitek pulls, through the handler under moto, against a store server the simulators' authors did not write."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from functions.core.layout import RecordKind, Stream, Vendor, record_pk
from functions.core.record_items import record_fields
from tests.integration.hostile.servers import Call, Reply, VendorServer, iso, parse_z, stored_sale_ids
from tests.integration.pulls import PullWorld

SERVED_PAGE_SIZE = 5  # the store server pages by this many, whatever is asked
STORE = "Hostile Store"
ROOT = "/api/v1/stores/Hostile%20Store"
CREDENTIAL = {"vendor": "profitek", "store_name": STORE, "auth_key": "auth-key-1"}


def transaction(tid: int, modified: datetime, total: float = 10.0) -> dict[str, Any]:
    return {
        "TransactionID": tid,
        "StoreID": 101,
        "CustomerID": 500 + tid,
        "TransactionDate": iso(modified - timedelta(minutes=1)),
        "Status": "Completed",
        "SubTotal": total,
        "DiscountTotal": 0.0,
        "TaxTotal": 0.0,
        "Total": total,
        "Lines": [
            {
                "ItemID": 1,
                "SKU": "S1",
                "Description": "P",
                "Category": "Flower",
                "Brand": "B",
                "Qty": 1,
                "UnitPrice": total,
                "Discount": 0.0,
                "ExtPrice": total,
            }
        ],
        "Tenders": [{"TenderType": "Cash", "Amount": total}],
        "ModifiedDate": iso(modified),
    }


class ProfitekServer(VendorServer):
    """Transactions filtered on ModifiedDate, ordered by (ModifiedDate, id), paged SERVED_PAGE_SIZE a page."""

    def __init__(self) -> None:
        super().__init__()
        self.sales: dict[int, dict[str, Any]] = {}
        self.ignores_order = False  # pages in TransactionID order, whatever orderBy asks

    def answer(self, call: Call) -> Reply | None:
        if call.path == ROOT + "/info":
            return Reply.json({"StoreID": 101, "StoreName": STORE, "TimeZone": "Pacific Standard Time", "State": "WA"})
        if not call.path.startswith(ROOT + "/"):
            return Reply.json({"Message": "not found"}, 404)
        page = call.int_arg("page", 1)
        if call.path == ROOT + "/transactions" and self.on_page is not None:
            self.on_page(page)
        rows = list(self.sales.values()) if call.path == ROOT + "/transactions" else []
        since, before = call.params.get("modifiedSince"), call.params.get("modifiedBefore")
        if since:
            rows = [r for r in rows if parse_z(r["ModifiedDate"]) >= parse_z(since)]
        if before:
            rows = [r for r in rows if parse_z(r["ModifiedDate"]) < parse_z(before)]
        if self.ignores_order:
            rows.sort(key=lambda r: r["TransactionID"])
        else:
            rows.sort(key=lambda r: (parse_z(r["ModifiedDate"]), r["TransactionID"]))
        start = (page - 1) * SERVED_PAGE_SIZE
        return Reply.json(
            {
                "Page": page,
                "PageSize": SERVED_PAGE_SIZE,
                "TotalCount": len(rows),
                "TotalPages": -(-len(rows) // SERVED_PAGE_SIZE),
                "Data": rows[start : start + SERVED_PAGE_SIZE],
            }
        )


SERVER = ProfitekServer
VENDOR = Vendor.PROFITEK


def history(count: int) -> dict[int, dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(days=3)
    return {n: transaction(n, start + timedelta(minutes=n)) for n in range(1, count + 1)}


def test_a_window_that_changes_in_every_pass_keeps_its_start_and_the_next_run_stores_what_shifted(
    world: PullWorld, pos: ProfitekServer
) -> None:
    # Given a store PC whose registers sync late: while each pass reads page 1, five old transactions arrive (stamped
    # before every other), and while it reads page 2 they are edited (leaving the window): the first five of the
    # history shift onto page 1, already read, in every pass
    pos.sales = history(30)
    oldest = min(parse_z(t["ModifiedDate"]) for t in pos.sales.values())
    arrived: list[int] = []

    def on_page(page: int) -> None:
        if page == 1:
            for _ in range(5):
                tid = 1000 + len(arrived)
                arrived.append(tid)
                pos.sales[tid] = transaction(tid, oldest - timedelta(hours=1, minutes=len(arrived)))
        elif page == 2:
            for tid in arrived:
                pos.sales[tid]["ModifiedDate"] = iso(datetime.now(UTC) + timedelta(seconds=30))

    pos.on_page = on_page

    # When the pull reads the window
    world.tick()

    # Then it stores what it read, and its cursor does not pass the five it could not: the window closes unsettled
    assert not {1, 2, 3, 4, 5} <= set(stored_sale_ids(world))
    status = world.status("hostile")
    assert status["last_outcome"] == "ok"
    assert status["unsettled_streams"] == ["sales"]
    checkpoints = world.control.get_checkpoints(world.tenant, Vendor.PROFITEK, world.credentials["hostile"])
    checkpoint = checkpoints.get(Stream.SALES)
    assert checkpoint.cursor is None and not checkpoint.in_progress

    # And the next run, the store quiet again, reads from the same start (and a sale made since) and stores every
    # transaction once
    pos.on_page = None
    pos.sales[31] = transaction(31, datetime.now(UTC) - timedelta(seconds=10))
    world.tick()
    assert world.status("hostile")["last_outcome"] == "ok"
    assert world.status("hostile")["unsettled_streams"] is None
    assert stored_sale_ids(world) == sorted([*range(1, 32), *arrived])


def test_a_transaction_edited_mid_pull_on_a_store_pc_whose_clock_runs_behind_shifts_no_other_out(
    world: PullWorld, pos: ProfitekServer
) -> None:
    # Given a store PC whose clock runs two minutes behind ours: a transaction edited while the pull reads page 2 is
    # stamped before the window's end, so it stays in the window (TotalCount unchanged) but sorts last now
    pos.sales = history(12)
    edited: list[int] = []

    def on_page(page: int) -> None:
        if page == 2 and not edited:
            edited.append(1)
            pos.sales[1] = transaction(1, datetime.now(UTC) - timedelta(minutes=2), total=25.0)

    pos.on_page = on_page

    # When the pull reads the window
    world.tick()

    # Then no transaction after the edited one's old place is skipped: every one is stored once, the edited one new
    assert world.status("hostile")["last_outcome"] == "ok"
    assert stored_sale_ids(world) == list(range(1, 13))
    assert stored_sale(world, 1)["total_cents"] == 2500


def stored_sale(world: PullWorld, tid: int) -> dict[str, Any]:
    """The stored sale's record, as its item's JSON holds it."""
    pk = record_pk(world.tenant, Vendor.PROFITEK, world.credentials["hostile"], RecordKind.SALE, str(tid))
    item = boto3.client("dynamodb").get_item(TableName=world.resources.records_table, Key={"pk": {"S": pk}})["Item"]
    return record_fields(item)


def test_an_empty_page_before_the_last_one_is_not_taken_for_the_end_of_the_window(
    world: PullWorld, pos: ProfitekServer
) -> None:
    # Given a store server that once answers page 2 of 3 with no transactions while its envelope still counts 15 on 3
    # pages, and that ignores orderBy (it pages in id order; the newest transaction is on page 1)
    pos.sales = history(15)
    pos.sales[1] = transaction(1, datetime.now(UTC) - timedelta(hours=1))
    emptied: list[int] = []
    route = pos.route

    def hiccup(call: Call) -> Reply | None:
        reply = route(call)
        if call.path.endswith("/transactions") and call.params.get("page") == "2" and not emptied and reply:
            emptied.append(2)
            envelope = json.loads(reply.body)
            return Reply.json({**envelope, "Data": []})
        return reply

    pos.server.route = hiccup
    pos.ignores_order = True

    # When the pull reads the window, and the next one
    world.tick()
    first = world.status("hostile")
    world.tick()

    # Then the first did not say "ok" having read one page of three: it failed saying why, and the next stored the rest
    assert first["last_outcome"] == "unavailable"
    assert "no records on page 2" in first["last_error"]
    assert world.status("hostile")["last_outcome"] == "ok"
    assert stored_sale_ids(world) == list(range(1, 16))
