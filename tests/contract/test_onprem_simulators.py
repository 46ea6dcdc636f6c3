"""The Profitek and Auphan simulators speak their (ASSUMED) contracts: auth, paging, filters, helpers, power."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from functions.core.credentials import AuphanCredential, ProfitekCredential, parse_credential
from functions.core.layout import Stream, Vendor
from simulators.auphan import AuphanSimulator
from simulators.profitek import ProfitekSimulator


@pytest.fixture(scope="module")
def profitek() -> Iterator[ProfitekSimulator]:
    simulator = ProfitekSimulator(seed=9, store_count=3, customers_per_store=60, sales_per_store=90)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def auphan() -> Iterator[AuphanSimulator]:
    simulator = AuphanSimulator(seed=9, store_count=3, customers_per_store=60, sales_per_store=90)
    simulator.start()
    yield simulator
    simulator.stop()


def profitek_get(
    sim: ProfitekSimulator, store: str, path: str, key: str | None = None, **params: Any
) -> httpx.Response:
    credential = sim.credential_for(store)
    headers = {"AuthKey": key if key is not None else credential["auth_key"]}
    url = f"{sim.url}/api/v1/stores/{quote(credential['store_name'], safe='')}{path}"
    return httpx.get(url, params=params, headers=headers)


def auphan_get(sim: AuphanSimulator, store: str, path: str, key: str | None = None, **params: Any) -> httpx.Response:
    headers = {"APIKey": key if key is not None else sim.credential_for(store)["api_key"]}
    return httpx.get(f"{sim.url}{path}", params=params, headers=headers)


# --- Profitek -----------------------------------------------------------------------------------------------------


def test_profitek_credentials_parse_and_differ_per_store(profitek: ProfitekSimulator) -> None:
    credentials = [parse_credential(profitek.credential_for(s), Vendor.PROFITEK, "c") for s in profitek.stores]
    with_ip = parse_credential(profitek.credential_for(profitek.stores[0], via_ip_port=True), Vendor.PROFITEK, "c")

    assert all(isinstance(c, ProfitekCredential) and c.custom_ip_port is None for c in credentials)
    assert len({c.auth_key.get_secret_value() for c in credentials if isinstance(c, ProfitekCredential)}) == 3
    assert isinstance(with_ip, ProfitekCredential) and with_ip.custom_ip_port == profitek.ip_port


def test_profitek_checks_the_key_and_the_store_name(profitek: ProfitekSimulator) -> None:
    first, second = profitek.stores[:2]
    assert profitek_get(profitek, first, "/info").status_code == 200
    assert profitek_get(profitek, first, "/info", key="nope").status_code == 401
    other_key = profitek.credential_for(second)["auth_key"]
    assert profitek_get(profitek, first, "/info", key=other_key).status_code == 401
    unknown = httpx.get(
        f"{profitek.url}/api/v1/stores/Nowhere/info", headers={"AuthKey": profitek.credential_for(first)["auth_key"]}
    )
    assert unknown.status_code == 401


def test_profitek_pages_filter_and_order(profitek: ProfitekSimulator) -> None:
    store = profitek.stores[0]
    everything = profitek_get(profitek, store, "/customers", pageSize=1000, orderBy="ModifiedDate").json()
    stamps = [row["ModifiedDate"] for row in everything["Data"]]
    since, before = stamps[10], stamps[40]

    first = profitek_get(
        profitek,
        store,
        "/customers",
        page=1,
        pageSize=7,
        orderBy="ModifiedDate",
        modifiedSince=since,
        modifiedBefore=before,
    ).json()
    by_id = profitek_get(profitek, store, "/customers", pageSize=1000).json()["Data"]

    assert (everything["TotalCount"], len(stamps), stamps == sorted(stamps)) == (60, 60, True)
    assert (first["TotalCount"], first["TotalPages"], len(first["Data"])) == (30, 5, 7)
    assert first["Data"][0]["ModifiedDate"] == since  # inclusive lower bound
    assert [row["CustomerID"] for row in by_id] == sorted(row["CustomerID"] for row in by_id)  # no orderBy: by id


@pytest.mark.parametrize(
    "params", [{"page": 0}, {"pageSize": 1001}, {"pageSize": "ten"}, {"modifiedSince": "yesterday"}]
)
def test_profitek_refuses_bad_paging_and_filters(profitek: ProfitekSimulator, params: dict[str, Any]) -> None:
    assert profitek_get(profitek, profitek.stores[0], "/transactions", **params).status_code == 400


def test_profitek_helpers(profitek: ProfitekSimulator) -> None:
    store = profitek.stores[2]
    sales_before = len(profitek.all_ids(Stream.SALES))
    start = datetime.now(UTC) - timedelta(seconds=1)

    added = profitek.add_sales(store, 3)
    edited = profitek.update_customers(store, 2)

    assert len(profitek.all_ids(Stream.SALES)) == sales_before + 3
    assert {(store, sale_id) for sale_id in added} <= profitek.all_ids(Stream.SALES)
    recent = profitek_get(profitek, store, "/customers", modifiedSince=start.isoformat()).json()["Data"]
    assert sorted(str(row["CustomerID"]) for row in recent) == sorted(edited)
    assert len(profitek.all_ids(Stream.CUSTOMERS)) == 180
    assert 0 < len(profitek.all_ids(Stream.LOYALTY)) < 180  # balances for loyalty members only


def test_faults_can_be_switched_through_the_admin_endpoint(profitek: ProfitekSimulator) -> None:
    assert httpx.post(f"{profitek.url}/__sim/faults", json={"server_error": 1}).status_code == 200
    assert profitek_get(profitek, profitek.stores[0], "/info").status_code == 503
    assert profitek_get(profitek, profitek.stores[0], "/info").status_code == 200


# --- Auphan -------------------------------------------------------------------------------------------------------


def test_auphan_credentials_parse_and_keys_select_the_store(auphan: AuphanSimulator) -> None:
    for store in auphan.stores:
        credential = parse_credential(auphan.credential_for(store), Vendor.AUPHAN, "c")
        assert isinstance(credential, AuphanCredential)
        assert auphan_get(auphan, store, "/api/v2/store").json()["storeId"] == store
    assert auphan_get(auphan, auphan.stores[0], "/api/v2/store", key="").status_code == 401
    assert auphan_get(auphan, auphan.stores[0], "/api/v2/store", key="ak-guess").status_code == 401


def test_auphan_cursor_pages_cover_the_window_once(auphan: AuphanSimulator) -> None:
    store = auphan.stores[1]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 17, **({"cursor": cursor} if cursor else {})}
        body = auphan_get(auphan, store, "/api/v2/sales", **params).json()
        seen += [row["saleId"] for row in body["items"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break

    assert len(seen) == len(set(seen)) == body["totalCount"] == 90
    assert set(seen) == {pos_id for key, pos_id in auphan.all_ids(Stream.SALES) if key == store}


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 501}, {"cursor": "not-ours"}, {"sort": "name:asc"}, {"updatedFrom": "soon"}]
)
def test_auphan_refuses_bad_paging_and_filters(auphan: AuphanSimulator, params: dict[str, Any]) -> None:
    assert auphan_get(auphan, auphan.stores[0], "/api/v2/customers", **params).status_code == 400


def test_auphan_has_no_loyalty_stream_and_leaves_many_sales_unlinked(auphan: AuphanSimulator) -> None:
    store = auphan.stores[0]
    assert auphan.all_ids(Stream.LOYALTY) == set()
    assert auphan_get(auphan, store, "/api/v2/loyalty").status_code == 404
    sales = auphan_get(auphan, store, "/api/v2/sales", limit=500).json()["items"]
    assert 0 < sum(row["customerId"] is None for row in sales) < len(sales)


# --- scale and power ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("simulator", [ProfitekSimulator, AuphanSimulator])
def test_thousands_of_records_per_store(simulator: type[ProfitekSimulator] | type[AuphanSimulator]) -> None:
    sim = simulator(seed=1, store_count=2, customers_per_store=1500, sales_per_store=4000)
    assert len(sim.all_ids(Stream.SALES)) == 8000
    assert len(sim.all_ids(Stream.CUSTOMERS)) == 3000


@pytest.mark.parametrize("simulator", [ProfitekSimulator, AuphanSimulator])
def test_power_off_refuses_connections_and_power_on_reuses_the_port(
    simulator: type[ProfitekSimulator] | type[AuphanSimulator],
) -> None:
    sim = simulator(store_count=1, customers_per_store=5, sales_per_store=5)
    sim.start()
    address = sim.ip_port
    host, port = address.rsplit(":", 1)
    keep_alive = httpx.Client()
    assert keep_alive.get(f"{sim.url}/__sim/faults").status_code == 200

    sim.power_off()
    with pytest.raises(ConnectionRefusedError), socket.create_connection((host, int(port)), timeout=1):
        pass
    with pytest.raises(httpx.TransportError):
        keep_alive.get(f"{sim.url}/__sim/faults")  # open connections went down with the PC

    sim.power_on()
    assert sim.ip_port == address
    assert keep_alive.get(f"{sim.url}/__sim/faults").status_code == 200
    keep_alive.close()
    sim.stop()
