"""The POSaBIT and Flourish simulators accept customer creates with their validation rules, inject each write
fault, record every write, and return new customers in later pulls; the read-only simulators record their writes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.flourish import FlourishSimulator
from simulators.posabit import PosabitSimulator

CUSTOMERS = "/api/v3/venue/customers"


@pytest.fixture(scope="module")
def posabit() -> Iterator[PosabitSimulator]:
    with PosabitSimulator(store_count=1, customers_per_store=2, sales_per_store=1, products_per_store=1) as sim:
        yield sim  # type: ignore[misc]


@pytest.fixture(scope="module")
def flourish() -> Iterator[FlourishSimulator]:
    with FlourishSimulator(store_count=1, customers_per_store=2, sales_per_store=1, products_per_store=1) as sim:
        yield sim  # type: ignore[misc]


def posabit_headers(sim: PosabitSimulator) -> dict[str, str]:
    credential = sim.credential_for(sim.stores[0])
    token = base64.b64encode(f"{credential['integrator_token']}:{credential['venue_token']}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def create(sim: PosabitSimulator, **fields: Any) -> httpx.Response:
    return httpx.post(f"{sim.url}{CUSTOMERS}", json={"customer": fields}, headers=posabit_headers(sim), timeout=2)


def test_posabit_validates_creates_and_refuses_a_taken_phone_or_email(posabit: PosabitSimulator) -> None:
    created = create(posabit, first_name="Tess", telephone="4585550177", email="tess@example.com")
    bad_phone = create(posabit, first_name="Tess", telephone="555-0177")
    bad_email = create(posabit, first_name="Tess", email="not-an-email")
    taken_phone = create(posabit, first_name="Other", telephone="4585550177")
    taken_email = create(posabit, first_name="Other", email="TESS@example.com")
    nameless = create(posabit, telephone="4585550178")

    assert created.status_code == 201 and created.json()["customer"]["telephone"] == "4585550177"
    assert "id" in created.json()["customer"]  # wrapped once, whatever the list wrapping does
    assert bad_phone.status_code == bad_email.status_code == 422
    assert taken_phone.json() == {"errors": {"telephone": ["has already been taken"]}}
    assert taken_email.json() == {"errors": {"email": ["has already been taken"]}}
    assert nameless.json() == {"errors": {"first_name": ["can't be blank"]}}


def test_write_faults_and_the_write_log(posabit: PosabitSimulator) -> None:
    posabit.request_log.clear()
    posabit.faults.write_conflict = posabit.faults.write_invalid = 1
    posabit.faults.write_rate_limited = posabit.faults.write_server_error = 1
    statuses = [create(posabit, first_name="F", email=f"f{i}@example.com").status_code for i in range(4)]
    posabit.faults.write_response_lost = 1
    with pytest.raises(httpx.RemoteProtocolError):
        create(posabit, first_name="Lost", email="lost@example.com")
    listed = httpx.get(
        f"{posabit.url}{CUSTOMERS}",
        params={"start_date": "2015-01-01", "end_date": "2100-01-01", "q[email_eq]": "lost@example.com"},
        headers=posabit_headers(posabit),
    )

    assert statuses == [409, 422, 429, 500]
    assert len(listed.json()["customers"]) == 1  # the lost answer's create was applied
    assert posabit.writes == [("POST", CUSTOMERS)] * 5


def test_flourish_creates_need_a_birth_date_and_come_back_in_listings(flourish: FlourishSimulator) -> None:
    credential = flourish.credential_for(flourish.stores[0])
    headers = {"x-api-key": credential["key"], "FacilityID": flourish.stores[0]}
    url = f"{flourish.url}/external/api/v1/customers/"
    body = {"first_name": "Ivy", "last_name": "Hall", "email": "ivy.w@example.com", "phone": "(458) 555-0199"}

    missing = httpx.post(url, json=body, headers=headers)
    made = httpx.post(url, json={**body, "dob": "1990-01-01"}, headers=headers)
    by_phone = httpx.get(url, params={"phone_number": "4585550199"}, headers=headers)

    assert missing.status_code == 400 and missing.json()["errors"] == {"dob": "required"}
    assert made.status_code == 200
    assert [c["id"] for c in by_phone.json()["data"]] == [made.json()["data"]["id"]]
    assert flourish.writes == [("POST", "/external/api/v1/customers/")] * 2
