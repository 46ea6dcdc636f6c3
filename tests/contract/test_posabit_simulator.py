"""The POSaBIT simulator speaks the contract the connector relies on: auth, envelope, filters, order, create."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from functions.core.credentials import PosabitCredential, parse_credential
from functions.core.layout import Stream, Vendor
from simulators.base import Faults
from simulators.posabit import PosabitSimulator

WIDE = {"start_date": "2015-01-01", "end_date": "2035-01-01"}


@pytest.fixture(scope="module")
def sim() -> Iterator[PosabitSimulator]:
    simulator = PosabitSimulator(seed=3, store_count=3, customers_per_store=50, sales_per_store=70)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def reset(sim: PosabitSimulator) -> None:
    sim.faults = Faults()


def http(sim: PosabitSimulator, store: str | None = None, auth: tuple[str, str] | None = None) -> httpx.Client:
    credential = sim.credential_for(store or sim.stores[0])
    return httpx.Client(
        base_url=sim.url, auth=auth or (credential["integrator_token"], credential["venue_token"]), timeout=5.0
    )


def unwrap(item: dict[str, Any]) -> dict[str, Any]:
    return next(iter(item.values())) if "id" not in item else item


def test_each_store_has_its_own_venue_token_and_a_shared_integrator_token(sim: PosabitSimulator) -> None:
    credentials = [parse_credential(sim.credential_for(s), Vendor.POSABIT, f"c{i}") for i, s in enumerate(sim.stores)]
    assert all(isinstance(c, PosabitCredential) for c in credentials)
    assert len({c.venue_token.get_secret_value() for c in credentials}) == 3
    assert len({c.integrator_token.get_secret_value() for c in credentials}) == 1
    assert [c.market for c in credentials] == ["WA", "CO", "MI"]


@pytest.mark.parametrize(
    "auth", [None, ("sim-integrator-0001", "wrong-venue"), ("wrong-integrator", "x")], ids=["none", "venue", "integ"]
)
def test_requests_without_the_right_basic_auth_get_401(sim: PosabitSimulator, auth: tuple[str, str] | None) -> None:
    with httpx.Client(base_url=sim.url, auth=auth, timeout=5.0) as client:
        assert client.get("/api/v3/venue/info").status_code == 401


def test_venue_info_names_the_rails_zone(sim: PosabitSimulator) -> None:
    with http(sim, sim.stores[1]) as client:
        info = client.get("/api/v3/venue/info").json()
    assert info["timezone"] == "Mountain Time (US & Canada)"
    assert str(info["id"]) == sim.stores[1]


def test_customers_need_a_date_range(sim: PosabitSimulator) -> None:
    with http(sim) as client:
        assert client.get("/api/v3/venue/customers").status_code == 422
        assert client.get("/api/v3/venue/customers", params=WIDE).status_code == 200


def test_lists_page_in_update_order_with_a_consistent_envelope(sim: PosabitSimulator) -> None:
    seen: list[dict[str, Any]] = []
    with http(sim) as client:
        page = 1
        while True:
            body = client.get("/api/v3/venue/sales_histories", params={"page": page, "per_page": 20}).json()
            assert (body["current_page"], body["per_page"], body["total_records"]) == (page, 20, 70)
            assert body["total_pages"] == 4
            seen.extend(unwrap(item) for item in body["sales_histories"])
            if page >= body["total_pages"]:
                break
            page += 1
    keys = [(s["updated_at"], s["id"]) for s in seen]
    assert keys == sorted(keys)
    assert len({s["id"] for s in seen}) == 70


def test_page_size_is_capped_per_endpoint(sim: PosabitSimulator) -> None:
    with http(sim) as client:
        customers = client.get("/api/v3/venue/customers", params={**WIDE, "per_page": 5000}).json()
        inventory = client.get("/api/v3/venue/inventories", params={"per_page": 5000}).json()
    assert customers["per_page"] == 1000  # POSaBIT documents 1000 results per page
    assert inventory["per_page"] == 1000


def test_updated_at_filters_are_strict_bounds(sim: PosabitSimulator) -> None:
    with http(sim) as client:
        everything = client.get("/api/v3/venue/customers", params={**WIDE, "per_page": 250}).json()["customers"]
        stamps = sorted(unwrap(c)["updated_at"] for c in everything)
        low, high = stamps[10], stamps[20]
        inside = client.get(
            "/api/v3/venue/customers",
            params={**WIDE, "per_page": 250, "q[updated_at_gt]": low, "q[updated_at_lt]": high},
        ).json()["customers"]
    assert sorted(unwrap(c)["updated_at"] for c in inside) == stamps[11:20]


def test_records_are_in_the_past_within_the_history_and_sales_carry_both_order_times(sim: PosabitSimulator) -> None:
    now = datetime.now(UTC)
    with http(sim) as client:
        sales = client.get("/api/v3/venue/sales_histories", params={"per_page": 100}).json()["sales_histories"]
    for sale in map(unwrap, sales):
        updated = datetime.fromisoformat(sale["updated_at"])
        assert now - timedelta(days=61) < updated < now
        assert sale["ordered_at"].endswith("Z")
        assert datetime.fromisoformat(sale["ordered_at_local"]).tzinfo is None
        assert sum(item["total"] for item in sale["items"]) == sale["total"]


def test_add_sales_and_update_customers_stamp_now_and_show_in_all_ids(sim: PosabitSimulator) -> None:
    store = sim.stores[2]
    before = datetime.now(UTC)
    added = sim.add_sales(store, 4)
    updated = sim.update_customers(store, 3)
    assert {(store, sid) for sid in added} <= sim.all_ids(Stream.SALES)
    assert len(sim.all_ids(Stream.SALES)) == 3 * 70 + 4
    with http(sim, store) as client:
        since = before.isoformat(timespec="milliseconds")
        sales = client.get("/api/v3/venue/sales_histories", params={"q[updated_at_gt]": since}).json()
        customers = client.get("/api/v3/venue/customers", params={**WIDE, "q[updated_at_gt]": since}).json()
    assert sorted(str(unwrap(s)["id"]) for s in sales["sales_histories"]) == sorted(added)
    assert sorted(str(unwrap(c)["id"]) for c in customers["customers"]) == sorted(updated)


def test_create_customer_validates_and_returns_the_wrapped_record(sim: PosabitSimulator) -> None:
    store = sim.stores[0]
    with http(sim, store) as client:
        assert client.post("/api/v3/venue/customers", json={"first_name": "unwrapped"}).status_code == 422
        assert client.post("/api/v3/venue/customers", json={"customer": {"last_name": "Hill"}}).status_code == 422
        created = client.post(
            "/api/v3/venue/customers",
            json={"customer": {"first_name": "Tess", "telephone": "2065550177", "drivers_license": "WDLNEW1"}},
        )
        again = client.post(
            "/api/v3/venue/customers", json={"customer": {"first_name": "Tess", "drivers_license": "WDLNEW1"}}
        )
        record = created.json()["customer"]
        fetched = client.get(f"/api/v3/venue/customers/{record['id']}").json()["customer"]
    assert created.status_code == 201
    assert again.status_code == 422
    assert (record["first_name"], record["telephone"], record["points"]) == ("Tess", "2065550177", 0)
    assert fetched["id"] == record["id"]
    assert (store, str(record["id"])) in sim.all_ids(Stream.LOYALTY)


def test_unknown_paths_are_404_and_faults_can_be_set_over_http(sim: PosabitSimulator) -> None:
    with http(sim) as client:
        assert client.get("/api/v3/venue/nothing").status_code == 404
        assert client.post("/__sim/faults", json={"server_error": 1}).status_code == 200
        assert client.get("/api/v3/venue/info").status_code == 503
        assert client.get("/api/v3/venue/info").status_code == 200


def test_thousands_of_records_are_generated() -> None:
    big = PosabitSimulator(seed=1, store_count=2, customers_per_store=2500, sales_per_store=2500)
    assert len(big.all_ids(Stream.CUSTOMERS)) + len(big.all_ids(Stream.SALES)) == 10_000
