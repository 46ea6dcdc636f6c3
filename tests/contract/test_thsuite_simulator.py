"""The THSuite simulator speaks the assumed contract: auth, envelope, order, filters, faults and helpers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from functions.core.credentials import ThsuiteCredential, parse_credential
from functions.core.layout import Stream, Vendor
from simulators.base import Faults
from simulators.thsuite import ThsuiteSimulator

PATHS = {
    Stream.CUSTOMERS: "/api/v1/patients",
    Stream.SALES: "/api/v1/receipts",
    Stream.INVENTORY: "/api/v1/inventory",
    Stream.LOYALTY: "/api/v1/loyalty/balances",
    Stream.DISCOUNTS: "/api/v1/discounts",
}


def started() -> Iterator[ThsuiteSimulator]:
    simulator = ThsuiteSimulator(seed=11, store_count=2, customers_per_store=30, sales_per_store=40)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def shared() -> Iterator[ThsuiteSimulator]:
    """One server for the tests that only read (stopping a server takes half a second)."""
    yield from started()


@pytest.fixture
def sim(shared: ThsuiteSimulator) -> Iterator[ThsuiteSimulator]:
    yield shared
    shared.faults = Faults()


@pytest.fixture
def fresh() -> Iterator[ThsuiteSimulator]:
    """A server of its own for a test that changes data."""
    yield from started()


def http(sim: ThsuiteSimulator, store: str | None = None, token: str | None = None) -> httpx.Client:
    if token is None and store is not None:
        token = sim.credential_for(store)["integration_token"]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=sim.url, headers=headers, timeout=5)


def get_all(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    items, page = [], 1
    while True:
        body = client.get(path, params={"limit": 7, **params, "page": page}).raise_for_status().json()
        items.extend(body["data"])
        if not body["has_more"]:
            return items
        page += 1


def instant(text: str, zone: str) -> datetime:
    from zoneinfo import ZoneInfo

    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=ZoneInfo(zone))


# --- auth and errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "ths_not_a_real_token"])
def test_a_missing_or_wrong_token_is_401_everywhere(sim: ThsuiteSimulator, token: str | None) -> None:
    with http(sim, token=token) as client:
        for path in ["/api/v1/store", *PATHS.values()]:
            response = client.get(path)
            assert response.status_code == 401, path
            assert response.json()["error"] == "unauthorized"


def test_the_admin_endpoint_needs_no_token_and_is_never_faulted(sim: ThsuiteSimulator) -> None:
    sim.faults.server_error = 5
    with httpx.Client(base_url=sim.url) as client:
        response = client.get("/__sim/faults")

    assert response.status_code == 200
    assert response.json()["server_error"] == 5


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"limit": 1001}, 400),
        ({"limit": 0}, 400),
        ({"page": 0}, 400),
        ({"page": "two"}, 400),
        ({"updated_since": "last tuesday"}, 400),
        ({"sort": "id"}, 400),
        ({"limit": 1000}, 200),
    ],
)
def test_parameters_are_checked(sim: ThsuiteSimulator, params: dict[str, Any], status: int) -> None:
    with http(sim, sim.stores[0]) as client:
        assert client.get("/api/v1/patients", params=params).status_code == status


def test_unknown_paths_and_writes_are_refused(sim: ThsuiteSimulator) -> None:
    with http(sim, sim.stores[0]) as client:
        assert client.get("/api/v1/customers").status_code == 404
        assert client.post("/api/v1/patients", json={"first_name": "Ivy"}).status_code == 405


# --- store info, envelope, order, isolation --------------------------------------------------------------------


def test_store_info_names_each_stores_zone(sim: ThsuiteSimulator) -> None:
    reported = {}
    for store in sim.stores:
        with http(sim, store) as client:
            reported[store] = client.get("/api/v1/store").json()["data"]

    assert [reported[s]["timezone"] for s in sim.stores] == ["America/Los_Angeles", "Mountain Standard Time"]
    assert [str(reported[s]["id"]) for s in sim.stores] == sim.stores
    assert [sim.store_timezone(s) for s in sim.stores] == ["America/Los_Angeles", "America/Denver"]


def test_envelope_and_ordering_by_update_time_then_id(sim: ThsuiteSimulator) -> None:
    store = sim.stores[0]
    with http(sim, store) as client:
        first = client.get("/api/v1/receipts", params={"limit": 7}).json()
        items = get_all(client, "/api/v1/receipts")

    assert {k: first[k] for k in ("page", "limit", "total", "has_more")} == {
        "page": 1,
        "limit": 7,
        "total": 40,
        "has_more": True,
    }
    assert len(first["data"]) == 7
    keys = [(instant(i["updated_at"], "UTC"), i["id"]) for i in items]
    assert keys == sorted(keys)
    assert len(items) == len({i["id"] for i in items}) == 40


def test_each_token_sees_only_its_own_store(sim: ThsuiteSimulator) -> None:
    seen = {}
    for store in sim.stores:
        with http(sim, store) as client:
            seen[store] = {(store, str(i["id"])) for i in get_all(client, "/api/v1/patients")}

    assert seen[sim.stores[0]].isdisjoint(seen[sim.stores[1]])
    assert seen[sim.stores[0]] | seen[sim.stores[1]] == sim.all_ids(Stream.CUSTOMERS)


@pytest.mark.parametrize("stream", list(Stream))
def test_all_ids_match_what_the_api_serves(sim: ThsuiteSimulator, stream: Stream) -> None:
    served = set()
    key = "patient_id" if stream is Stream.LOYALTY else "id"
    for store in sim.stores:
        with http(sim, store) as client:
            served |= {(store, str(i[key])) for i in get_all(client, PATHS[stream])}

    assert served == sim.all_ids(stream)
    assert served


def test_filters_are_inclusive_since_and_exclusive_before(sim: ThsuiteSimulator) -> None:
    store = sim.stores[1]
    with http(sim, store) as client:
        everything = get_all(client, "/api/v1/patients")
        since, before = everything[5]["updated_at"], everything[20]["updated_at"]
        chosen = get_all(client, "/api/v1/patients", updated_since=since, updated_before=before)

    assert [i["id"] for i in chosen] == [i["id"] for i in everything[5:20]]


def test_a_naive_filter_is_read_in_store_time(sim: ThsuiteSimulator) -> None:
    store = sim.stores[1]
    with http(sim, store) as client:
        everything = get_all(client, "/api/v1/inventory")
        local = datetime.fromisoformat(everything[3]["updated_at"]).replace(tzinfo=None).isoformat()
        chosen = get_all(client, "/api/v1/inventory", updated_since=local)

    assert [i["id"] for i in chosen] == [i["id"] for i in everything[3:]]


def test_timestamps_carry_the_store_offset_by_default(sim: ThsuiteSimulator) -> None:
    from zoneinfo import ZoneInfo

    items = sim.items(sim.stores[1], Stream.CUSTOMERS)
    for item in items:
        stamp = datetime.fromisoformat(item["updated_at"])
        assert stamp.utcoffset() == stamp.astimezone(ZoneInfo("America/Denver")).utcoffset()
    assert all(datetime.fromisoformat(i["updated_at"]) < datetime.now(UTC) for i in items)


# --- helpers ---------------------------------------------------------------------------------------------------


def test_credential_for_is_a_valid_thsuite_credential(sim: ThsuiteSimulator) -> None:
    credential = parse_credential(sim.credential_for(sim.stores[0]), Vendor.THSUITE, "c1")

    assert isinstance(credential, ThsuiteCredential)
    assert credential.store_name == "Evergreen Wellness Tacoma"
    assert sim.credential_for(sim.stores[0]) != sim.credential_for(sim.stores[1])


def test_add_sales_are_stamped_now_and_touch_nothing_else(fresh: ThsuiteSimulator) -> None:
    store = fresh.stores[0]
    before = datetime.now(UTC) - timedelta(seconds=1)

    new_ids = fresh.add_sales(store, 6)

    with http(fresh, store) as client:
        receipts = get_all(client, "/api/v1/receipts", updated_since=before.isoformat())
        others = [get_all(client, PATHS[s], updated_since=before.isoformat()) for s in PATHS if s is not Stream.SALES]
    assert sorted(str(i["id"]) for i in receipts) == sorted(new_ids)
    assert others == [[]] * (len(PATHS) - 1)
    assert all(r["status"] == "completed" and r["lines"] for r in receipts)


def test_add_sales_can_move_member_balances(fresh: ThsuiteSimulator) -> None:
    store = fresh.stores[0]
    before = datetime.now(UTC) - timedelta(seconds=1)

    new_ids = fresh.add_sales(store, 25, earn_points=True)

    with http(fresh, store) as client:
        receipts = get_all(client, "/api/v1/receipts", updated_since=before.isoformat())
        balances = get_all(client, "/api/v1/loyalty/balances", updated_since=before.isoformat())
    assert sorted(str(i["id"]) for i in receipts) == sorted(new_ids)
    assert {(store, i) for i in new_ids} <= fresh.all_ids(Stream.SALES)
    members = {i["patient_id"] for i in receipts if i["patient_id"] is not None}
    assert {b["patient_id"] for b in balances} <= members
    assert balances  # 25 sales, 90% to patients, 70% of them members


def test_update_customers_changes_content_and_update_time(fresh: ThsuiteSimulator) -> None:
    store = fresh.stores[1]
    old = {str(i["id"]): i for i in fresh.items(store, Stream.CUSTOMERS)}

    changed = fresh.update_customers(store, 4)

    new = {str(i["id"]): i for i in fresh.items(store, Stream.CUSTOMERS)}
    assert len(set(changed)) == 4
    for pos_id in changed:
        assert new[pos_id]["sms_opt_in"] != old[pos_id]["sms_opt_in"]
        assert new[pos_id]["updated_at"] > old[pos_id]["updated_at"]
    assert all(new[k] == old[k] for k in old if k not in changed)


def test_ten_thousand_sales_are_generated_and_served() -> None:
    big = ThsuiteSimulator(seed=5, store_count=1, customers_per_store=500, sales_per_store=10_000)
    with big:
        store = big.stores[0]
        with http(big, store) as client:
            pages = [client.get("/api/v1/receipts", params={"limit": 1000, "page": p}).json() for p in range(1, 11)]
    assert sum(len(p["data"]) for p in pages) == 10_000
    assert pages[-1]["has_more"] is False
    assert len(big.all_ids(Stream.SALES)) == 10_000


# --- data-shaped faults ----------------------------------------------------------------------------------------


def test_duplicate_across_pages_repeats_the_last_item_first(sim: ThsuiteSimulator) -> None:
    sim.faults.duplicate_across_pages = True
    with http(sim, sim.stores[0]) as client:
        one = client.get("/api/v1/patients", params={"limit": 7, "page": 1}).json()
        two = client.get("/api/v1/patients", params={"limit": 7, "page": 2}).json()

    assert two["data"][0] == one["data"][-1]
    assert len(two["data"]) == 8
    assert one["total"] == two["total"] == 30


def test_update_while_paging_moves_served_records_to_now(fresh: ThsuiteSimulator) -> None:
    fresh.faults.update_while_paging = 3
    started = datetime.now(UTC) - timedelta(seconds=1)
    with http(fresh, fresh.stores[0]) as client:
        first = client.get("/api/v1/inventory", params={"limit": 5}).json()
        moved = get_all(client, "/api/v1/inventory", updated_since=started.isoformat())
        again = get_all(client, "/api/v1/inventory", updated_since=started.isoformat())

    assert [i["id"] for i in moved] == [i["id"] for i in first["data"][:3]]
    assert [i["quantity_on_hand"] for i in moved] == [max(0, i["quantity_on_hand"] - 1) for i in first["data"][:3]]
    assert again == moved  # one-shot
    assert fresh.faults.update_while_paging == 0


def test_invalid_record_breaks_one_record_per_stream(sim: ThsuiteSimulator) -> None:
    sim.faults.invalid_record = True
    store = sim.stores[0]
    broken_fields = {
        Stream.CUSTOMERS: ("date_of_birth", "1985-02-30"),
        Stream.SALES: ("total", "12.5O"),
        Stream.INVENTORY: ("quantity_on_hand", "plenty"),
        Stream.LOYALTY: ("points", "n/a"),
    }
    for stream, (name, value) in broken_fields.items():
        key = "patient_id" if stream is Stream.LOYALTY else "id"
        hits = [str(i[key]) for i in sim.items(store, stream) if i.get(name) == value]
        assert hits == [sim.invalid_record_id(store, stream)], stream


def test_extra_fields_are_added_to_records_and_lines(sim: ThsuiteSimulator) -> None:
    sim.faults.extra_fields = True
    receipt = sim.items(sim.stores[0], Stream.SALES)[0]

    assert {"register_id", "medical_card_expires_on", "x_internal"} <= receipt.keys()
    assert all("batch_id" in line for line in receipt["lines"])


def test_naive_and_offset_timestamps(sim: ThsuiteSimulator) -> None:
    store = sim.stores[1]
    truth = {i["id"]: instant(i["updated_at"], "UTC") for i in sim.items(store, Stream.CUSTOMERS)}

    sim.faults.naive_timestamps = True
    naive = sim.items(store, Stream.CUSTOMERS)
    sim.faults.naive_timestamps, sim.faults.offset_timestamps = False, True
    odd = sim.items(store, Stream.CUSTOMERS)

    assert all(datetime.fromisoformat(i["updated_at"]).tzinfo is None for i in naive)
    assert {datetime.fromisoformat(i["updated_at"]).utcoffset() for i in odd} == {
        timedelta(0),
        timedelta(hours=-5),
        timedelta(hours=9, minutes=30),
    }
    assert {i["id"]: instant(i["updated_at"], "UTC") for i in odd} == truth


def test_refunds_add_return_receipts_and_exchanges_with_consistent_totals(sim: ThsuiteSimulator) -> None:
    sim.faults.refunds = True
    receipts = sim.items(sim.stores[0], Stream.SALES)

    returns = [r for r in receipts if r["lines"] and all(line["is_return"] for line in r["lines"])]
    exchanges = [r for r in receipts if {line["is_return"] for line in r["lines"]} == {True, False}]
    assert returns
    assert exchanges
    for receipt in receipts:
        assert Decimal(receipt["total"]) == sum(Decimal(line["total"]) for line in receipt["lines"])
        for line in receipt["lines"]:
            assert (line["quantity"] < 0) == line["is_return"]
    assert all(Decimal(r["total"]) < 0 for r in returns)
