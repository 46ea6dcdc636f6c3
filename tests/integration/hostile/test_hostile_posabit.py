"""POSaBIT pulls, through the handler under moto, against a server the simulators' authors did not write."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import boto3
import pytest

from functions.core.layout import RecordKind, Vendor, record_pk
from functions.core.record_items import record_fields
from tests.integration.hostile.servers import (
    RFC3339_FORMS,
    Call,
    HostileServer,
    Reply,
    VendorServer,
    iso,
    parse_z,
    stored_sale_ids,
)
from tests.integration.pulls import PullWorld

SERVED_PER_PAGE = 5  # the server serves at most this many a page, whatever is asked (the envelope says so)
LISTS = {
    "/api/v3/venue/customers": "customers",
    "/api/v3/venue/sales_histories": "sales_histories",
    "/api/v3/venue/inventories": "inventory",
    "/api/v3/venue/coupons": "coupons",
}
CREDENTIAL = {"vendor": "posabit", "store_name": "Hostile", "integrator_token": "int-tok-1", "venue_token": "ven-tok-1"}


def sale(sid: int, updated: datetime, total: int = 1000, **extra: Any) -> dict[str, Any]:
    ordered = updated - timedelta(minutes=1)
    return {
        "id": sid,
        "ordered_at": iso(ordered),
        "customer_id": 100 + sid,
        "sub_total": total,
        "discount": 0,
        "tax": 0,
        "total": total,
        "status": "completed",
        "items": [
            {
                "product_id": 1,
                "sku": "SKU1",
                "category": "Flower",
                "brand": "B",
                "product_name": "P",
                "quantity": 1,
                "sub_total": total,
                "discount": 0,
                "tax": 0,
                "total": total,
                "discount_list": [],
            }
        ],
        "created_at": iso(ordered),
        "updated_at": iso(updated),
        **extra,
    }


class PosabitServer(VendorServer):
    """Sales histories kept as a list, filtered and sorted as the contract says, paged `SERVED_PER_PAGE` a page."""

    def __init__(self) -> None:
        super().__init__()
        self.sales: dict[int, dict[str, Any]] = {}

    def answer(self, call: Call) -> Reply | None:
        if call.path == "/api/v3/venue/info":
            return Reply.json({"id": 7, "name": "Hostile", "state": "WA", "timezone": "Pacific Time (US & Canada)"})
        key = LISTS.get(call.path)
        if key is None:
            return Reply.json({"error": "not found"}, 404)
        page = call.int_arg("page", 1)
        rows = list(self.sales.values()) if key == "sales_histories" else []
        if key == "sales_histories" and self.on_page is not None:
            self.on_page(page)
            rows = list(self.sales.values())
        return Reply.json(self.envelope(key, self.select(rows, call), page))

    @staticmethod
    def select(rows: list[dict[str, Any]], call: Call) -> list[dict[str, Any]]:
        after, before = call.params.get("q[updated_at_gt]"), call.params.get("q[updated_at_lt]")
        if after:
            rows = [r for r in rows if parse_z(r["updated_at"]) > parse_z(after)]
        if before:
            rows = [r for r in rows if parse_z(r["updated_at"]) < parse_z(before)]
        return sorted(rows, key=lambda r: (parse_z(r["updated_at"]), r["id"]))

    @staticmethod
    def envelope(key: str, rows: list[dict[str, Any]], page: int) -> dict[str, Any]:
        start = (page - 1) * SERVED_PER_PAGE
        return {
            "total_records": len(rows),
            "current_page": page,
            "total_pages": -(-len(rows) // SERVED_PER_PAGE),
            "per_page": SERVED_PER_PAGE,
            key: rows[start : start + SERVED_PER_PAGE],
        }


SERVER = PosabitServer
VENDOR = Vendor.POSABIT


def history(count: int, start: datetime | None = None) -> dict[int, dict[str, Any]]:
    start = start or datetime.now(UTC) - timedelta(days=3)
    return {n: sale(n, start + timedelta(minutes=n)) for n in range(1, count + 1)}


# Forms of one instant a server may write, all valid ISO 8601 / RFC 3339 (POSaBIT writes `...000Z`).
TIMESTAMP_FORMS = {
    **RFC3339_FORMS,
    "Ruby's Time#to_s": "%Y-%m-%d %H:%M:%S UTC",
}


@pytest.mark.parametrize("form", list(TIMESTAMP_FORMS))
def test_a_sale_stamped_in_any_valid_form_is_stored_at_its_instant(
    world: PullWorld, pos: PosabitServer, form: str
) -> None:
    moment = (datetime.now(UTC) - timedelta(days=2)).replace(second=0, microsecond=0)
    written = sale(1, moment)
    written["updated_at"] = moment.strftime(TIMESTAMP_FORMS[form])
    pos.sales = {1: written}

    world.tick()

    assert world.status("hostile")["last_outcome"] == "ok"
    assert not world.quarantined()
    assert stored_sale_ids(world) == [1]
    assert parse_z(stored_sale(world, 1)["source_updated_at"]) == moment


def stored_sale(world: PullWorld, sid: int) -> dict[str, Any]:
    """The stored sale's record, as its item's JSON holds it."""
    key = {
        "pk": {"S": record_pk(world.tenant, Vendor.POSABIT, world.credentials["hostile"], RecordKind.SALE, str(sid))}
    }
    item = boto3.client("dynamodb").get_item(TableName=world.resources.records_table, Key=key)["Item"]
    return record_fields(item)


def test_a_sale_edited_mid_pull_that_stays_in_the_window_shifts_no_other_out_of_the_pull(
    world: PullWorld, pos: PosabitServer
) -> None:
    # Given a POSaBIT whose clock runs behind ours: a sale edited while the pull reads page 2 is stamped before the
    # window's end, so it stays in the window (the total does not move) but sorts last now; every sale after its old
    # place shifts up one, and the first of page 2 onto page 1, already read
    pos.sales = history(12)
    edited: list[int] = []

    def on_page(page: int) -> None:
        if page == 2 and not edited:
            edited.append(1)
            pos.sales[1] = sale(1, datetime.now(UTC) - timedelta(seconds=30), total=2500)

    pos.on_page = on_page

    # When the pull reads the window
    world.tick()

    # Then it reads the window again, and every sale is stored once, the edited one at its new version
    assert world.status("hostile")["last_outcome"] == "ok"
    assert stored_sale_ids(world) == list(range(1, 13))
    assert stored_sale(world, 1)["total_cents"] == 2500


def test_an_empty_page_before_the_last_one_is_not_taken_for_the_end_of_the_window(
    world: PullWorld, pos: PosabitServer
) -> None:
    # Given a POSaBIT that ignores the sort (it pages in id order) and once answers page 2 of 3 with no records while
    # its envelope still counts 15 records on 3 pages; the newest sale is on page 1
    pos.sales = history(15)
    pos.sales[1] = sale(1, datetime.now(UTC) - timedelta(hours=1))
    pos.select = lambda rows, call: sorted(PosabitServer.select(rows, call), key=lambda r: r["id"])  # type: ignore[method-assign]
    emptied: list[int] = []
    served = pos.envelope

    def envelope(key: str, rows: list[dict[str, Any]], page: int) -> dict[str, Any]:
        answer = served(key, rows, page)
        if key == "sales_histories" and page == 2 and not emptied:
            emptied.append(page)
            answer[key] = []
        return answer

    pos.envelope = envelope  # type: ignore[method-assign]

    # When the pull reads the window, and the next one
    world.tick()
    first = world.status("hostile")
    world.tick()

    # Then the first did not say "ok" having read one page of three: it failed saying why, and the next stored the rest
    assert first["last_outcome"] == "unavailable"
    assert "no records on page 2" in first["last_error"]
    assert world.status("hostile")["last_outcome"] == "ok"
    assert stored_sale_ids(world) == list(range(1, 16))


def test_a_redirect_to_another_host_is_not_followed_and_is_named_as_the_reason(
    world: PullWorld, pos: PosabitServer
) -> None:
    # Given a POSaBIT (or a proxy before it) that answers page 2 with a redirect to another host
    pos.sales = history(12)
    elsewhere = HostileServer(lambda call: Reply.json({"sales_histories": [], "total_records": 0})).start()

    def redirect(call: Call) -> Reply | bool:
        if call.path.endswith("/sales_histories") and call.params.get("page") == "2":
            return Reply(302, b"", {"Location": f"{elsewhere.url}{call.path}?page=2"})
        return False

    pos.override = redirect
    try:
        # When the pull reads the window
        world.tick()
    finally:
        elsewhere.stop()

    # Then the other host never saw the credential (nor any request), and the status names the redirect
    assert elsewhere.calls == []
    status = world.status("hostile")
    assert status["last_outcome"] == "unavailable"
    assert "HTTP 302 (a redirect)" in status["last_error"]
    assert stored_sale_ids(world) == list(range(1, 6))  # page 1, stored; the checkpoint holds page 2


def _page_2(pos: PosabitServer, call: Call) -> bytes:
    rows = pos.select(list(pos.sales.values()), call)
    return json.dumps(pos.envelope("sales_histories", rows, 2)).encode()


# What a server (or a proxy before it) may answer page 2 with, once: none of these the simulators send.
ANSWERS: dict[str, Callable[[PosabitServer, Call], Reply | None]] = {
    "429 with an HTTP-date Retry-After": lambda pos, call: Reply(
        429, b"", {"Retry-After": format_datetime(datetime.now(UTC) + timedelta(seconds=1), usegmt=True)}
    ),
    "a proxy's HTML error page with 200": lambda pos, call: Reply(
        200, b"<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"}
    ),
    "a JSON body cut in half": lambda pos, call: Reply(
        200, _page_2(pos, call)[:40], {"Content-Type": "application/json"}
    ),
    "the connection closed mid-body": lambda pos, call: Reply(
        200, _page_2(pos, call), {"Content-Type": "application/json"}, cut_after=30
    ),
    "gzip Content-Encoding": lambda pos, call: Reply(
        200, gzip.compress(_page_2(pos, call)), {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    ),
    "slower than the read timeout": lambda pos, call: Reply(
        200, _page_2(pos, call), {"Content-Type": "application/json"}, delay=1.0
    ),
}


@pytest.mark.parametrize("answer", list(ANSWERS))
def test_an_odd_answer_mid_pull_is_retried_or_fails_loudly_and_nothing_is_lost(
    world: PullWorld, pos: PosabitServer, answer: str
) -> None:
    pos.sales = history(12)
    answered: list[str] = []

    def odd(call: Call) -> Reply | bool | None:
        if call.path.endswith("/sales_histories") and call.params.get("page") == "2" and not answered:
            answered.append(answer)
            return ANSWERS[answer](pos, call)
        return False

    pos.override = odd
    world.tick()
    status = world.status("hostile")
    if status["last_outcome"] != "ok":  # failing is allowed, loudly and resumably
        assert status["last_error"]
        world.tick()
        assert world.status("hostile")["last_outcome"] == "ok"
    assert answered == [answer]
    assert stored_sale_ids(world) == list(range(1, 13))


@pytest.mark.parametrize("later_page_holds", ["the older version", "the newer version"])
def test_a_sale_served_on_two_pages_in_two_versions_is_stored_once_at_the_newer(
    world: PullWorld, pos: PosabitServer, later_page_holds: str
) -> None:
    # Given a POSaBIT that serves sale 3 on page 1 and again first on page 2, the two copies with different contents
    base = datetime.now(UTC) - timedelta(days=2)
    pos.sales = history(12, base)
    newer, older = sale(3, base + timedelta(minutes=3), total=5555), sale(3, base + timedelta(minutes=1), total=1111)
    on_page_1, on_page_2 = (newer, older) if later_page_holds == "the older version" else (older, newer)
    served = pos.envelope

    def envelope(key: str, rows: list[dict[str, Any]], page: int) -> dict[str, Any]:
        answer = served(key, rows, page)
        if key == "sales_histories":
            answer[key] = [on_page_1 if r["id"] == 3 else r for r in answer[key]]
            if page == 2:
                answer[key] = [on_page_2, *answer[key]]
        return answer

    pos.envelope = envelope  # type: ignore[method-assign]

    world.tick()

    assert world.status("hostile")["last_outcome"] == "ok"
    assert stored_sale_ids(world) == list(range(1, 13))  # each once
    assert stored_sale(world, 3)["total_cents"] == 5555
