"""The Flourish simulator itself: seeded data, helpers, auth and scoping, the envelope and its paging links."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from functions.core.credentials import FlourishCredential, parse_credential
from functions.core.layout import Stream, Vendor
from simulators.flourish import FlourishSimulator


@pytest.fixture(scope="module")
def sim() -> Iterator[FlourishSimulator]:
    simulator = FlourishSimulator(
        seed=3, store_count=3, customers_per_store=40, sales_per_store=60, products_per_store=9
    )
    simulator.start()
    yield simulator
    threading.Thread(target=simulator.stop, daemon=True).start()


def get(
    sim: FlourishSimulator, path: str, headers: dict[str, str] | None = None, **params: str | int
) -> httpx.Response:
    key = sim.credential_for(sim.stores[0])["key"]
    return httpx.get(f"{sim.url}/external/api/v1/{path}", params=params, headers=headers or {"x-api-key": key})


def timeless(records: list[dict[str, object]]) -> list[dict[str, object]]:
    """Records without their timestamps, which are placed relative to the wall clock at construction."""
    return [{k: v for k, v in r.items() if not k.endswith("_timestamp")} for r in records]


def test_the_same_seed_builds_the_same_data() -> None:
    one, two = FlourishSimulator(seed=9), FlourishSimulator(seed=9)

    for stream in (Stream.CUSTOMERS, Stream.SALES, Stream.INVENTORY):
        assert timeless(one.records(one.stores[0], stream)) == timeless(two.records(two.stores[0], stream))
    assert one.credential_for(one.stores[0]) == two.credential_for(two.stores[0])
    assert FlourishSimulator(seed=10).credential_for("101") != one.credential_for("101")


def test_thousands_of_records_are_generated() -> None:
    big = FlourishSimulator(seed=1, store_count=2, customers_per_store=2_000, sales_per_store=3_000)

    assert len(big.all_ids(Stream.CUSTOMERS)) == 4_000
    assert len(big.all_ids(Stream.SALES)) > 5_800  # in-progress orders are not sales yet


def test_records_lie_in_the_past_and_helpers_stamp_now(sim: FlourishSimulator) -> None:
    store = sim.stores[2]
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert all(
        datetime.fromisoformat(c["last_updated_timestamp"]) < before for c in sim.records(store, Stream.CUSTOMERS)
    )

    sold = sim.add_sales(store, 2)
    changed = sim.update_customers(store, 2)

    orders = {str(o["id"]): o for o in sim.records(store, Stream.SALES)}
    assert all(orders[i]["order_status"] == "Completed" for i in sold)
    assert all(datetime.fromisoformat(orders[i]["completed_timestamp"]) >= before for i in sold)
    customers = {str(c["id"]): c for c in sim.records(store, Stream.CUSTOMERS)}
    assert all(datetime.fromisoformat(customers[i]["last_updated_timestamp"]) >= before for i in changed)
    assert {(store, i) for i in sold} <= sim.all_ids(Stream.SALES)


def test_credentials_parse_and_name_their_facility(sim: FlourishSimulator) -> None:
    for mode in ("api_key", "basic"):
        credential = parse_credential(sim.credential_for(sim.stores[1], mode), Vendor.FLOURISH, "c1")
        assert isinstance(credential, FlourishCredential)
        assert (credential.facility_id, credential.auth_mode, credential.regions) == (sim.stores[1], mode, ("CO",))


def test_sales_ids_exclude_orders_still_in_progress(sim: FlourishSimulator) -> None:
    store = sim.stores[0]
    statuses = {str(o["id"]): o["order_status"] for o in sim.records(store, Stream.SALES)}
    in_progress = {i for i, status in statuses.items() if status in ("Submitted", "Packed", "Out for Delivery")}

    assert in_progress
    assert not {(store, i) for i in in_progress} & sim.all_ids(Stream.SALES)


def test_auth_accepts_both_header_forms_and_refuses_anything_else(sim: FlourishSimulator) -> None:
    cred = sim.credential_for(sim.stores[0])
    basic = base64.b64encode(f"{cred['username']}:{cred['key']}".encode()).decode()
    wrong = base64.b64encode(f"{cred['username']}:nope".encode()).decode()

    assert get(sim, "facilities/").status_code == 200
    assert get(sim, "facilities/", {"Authorization": f"Basic {basic}"}).status_code == 200
    assert get(sim, "facilities/", {"Authorization": f"Basic {wrong}"}).status_code == 401
    assert get(sim, "facilities/", {"x-api-key": "nope"}).status_code == 401
    assert get(sim, "facilities/", {"Authorization": "Bearer " + cred["key"]}).status_code == 401


def test_a_facility_header_outside_the_company_is_forbidden(sim: FlourishSimulator) -> None:
    key = sim.credential_for(sim.stores[0])["key"]

    answer = get(sim, "retail-orders/", {"x-api-key": key, "FacilityID": sim.stores[1]})

    assert answer.status_code == 403


def test_the_envelope_pages_with_next_links_and_filters(sim: FlourishSimulator) -> None:
    first = get(sim, "customers/", limit=15, offset=0).json()
    last = get(sim, "customers/", limit=15, offset=30).json()

    assert first["meta"]["total"] == 40 and len(first["data"]) == 15
    assert "offset=15" in first["meta"]["next"] and first["meta"]["prev"] is None
    assert len(last["data"]) == 10 and last["meta"]["next"] is None
    stamps = [c["last_updated_timestamp"] for c in first["data"]]
    assert stamps == sorted(stamps) and all(s.endswith("Z") and len(s) == 24 for s in stamps)
    cut = stamps[7]
    later = get(sim, "customers/", limit=500, last_updated_timestamp_start=cut).json()
    assert later["meta"]["total"] == 40 - 7
    assert get(sim, "customers/", limit="many").status_code == 400
    assert get(sim, "customers/", last_updated_timestamp_start="yesterday").status_code == 400


def test_orders_filter_by_status_and_completion(sim: FlourishSimulator) -> None:
    cancelled = get(sim, "retail-orders/", limit=500, order_status="Cancelled").json()["data"]
    completed = get(sim, "retail-orders/", limit=500, completed_timestamp_start="2000-01-01T00:00:00.000Z").json()

    assert cancelled and {o["order_status"] for o in cancelled} == {"Cancelled"}
    assert {o["order_status"] for o in completed["data"]} == {"Completed"}  # only completed orders have the stamp
