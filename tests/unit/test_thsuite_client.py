"""THSuite client without a network: request building, the envelope, resume tokens, auth header, connector wiring."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import model_validator

from functions.core.connector import ConnectorConfig, Window
from functions.core.credentials import PosabitCredential, ThsuiteCredential
from functions.core.engine import map_page
from functions.core.errors import CredentialError, MalformedPageError
from functions.core.http import RetryPolicy, VendorHttp
from functions.core.layout import Stream, Vendor
from functions.core.models import Sale
from functions.core.payload_fastpath import fast_schema
from functions.pull_thsuite.client import (
    PAGE_VALIDATORS,
    Envelope,
    PageToken,
    ThsuiteClient,
    build_http_client,
    iso_utc,
    page_items,
)
from functions.pull_thsuite.connector import ThsuiteConnector, open_connector
from functions.pull_thsuite.mapping import (
    IDENTITY_ON,
    ThsuiteLoyaltyBalance,
    ThsuitePayment,
    ThsuiteStore,
    mapping_context,
    page_form,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "thsuite"
TOKEN = "ths_unit_0123456789abcdef"
START = datetime(2026, 11, 1, 8, 0, 0, 123000, tzinfo=UTC)
END = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)


def client_over(handler: Callable[[httpx.Request], httpx.Response], page_size: int = 2) -> ThsuiteClient:
    transport = httpx.MockTransport(handler)
    http = VendorHttp(
        httpx.Client(transport=transport, base_url="https://thsuite.test"),
        "thsuite",
        RetryPolicy(attempts=2, wait_initial=0, wait_max=0, wait_jitter=0),
        sleep=lambda _: None,
    )
    return ThsuiteClient(http, page_size)


def paged_server(items: list[dict[str, Any]], seen: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        page, limit = int(request.url.params["page"]), int(request.url.params["limit"])
        chunk = items[(page - 1) * limit : page * limit]
        more = page * limit < len(items)
        return httpx.Response(
            200, json={"data": chunk, "page": page, "limit": limit, "total": len(items), "has_more": more}
        )

    return handler


# --- request building ------------------------------------------------------------------------------------------


def test_request_params_send_the_window_in_utc_and_ask_for_update_order() -> None:
    window = Window(START.astimezone(timezone(timedelta(hours=-7))), END)

    params = ThsuiteClient.request_params(window, PageToken(page=3, limit=250))

    assert params == {
        "updated_since": "2026-11-01T08:00:00.123000Z",
        "updated_before": "2026-11-02T00:00:00Z",
        "sort": "updated_at",
        "page": 3,
        "limit": 250,
    }


def test_request_params_without_a_start_read_from_the_beginning() -> None:
    params = ThsuiteClient.request_params(Window(None, END), PageToken(page=1, limit=10))

    assert "updated_since" not in params
    assert params["updated_before"] == "2026-11-02T00:00:00Z"


def test_naive_window_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        iso_utc(datetime(2026, 11, 1))


@pytest.mark.parametrize(("configured", "used"), [(500, 500), (5000, 1000), (0, 1)])
def test_page_size_is_kept_within_the_api_limit(configured: int, used: int) -> None:
    assert client_over(lambda r: httpx.Response(500), page_size=configured).page_size == used


def test_unknown_stream_is_refused() -> None:
    with pytest.raises(ValueError, match="no"):
        ThsuiteClient.path("returns")  # type: ignore[arg-type]


# --- envelope and paging decisions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("envelope", "expected"),
    [
        ({"data": [{"id": 1}], "has_more": True, "total": 1}, {"page": 3, "limit": 10}),  # has_more wins
        ({"data": [{"id": 1}], "has_more": False, "total": 99}, None),
        ({"data": [{"id": 1}], "total": 21}, {"page": 3, "limit": 10}),  # no has_more: counted from total
        ({"data": [{"id": 1}], "total": 20}, None),
        ({"data": [{"id": 1}]}, None),  # neither: this page is the last
        ({"data": [], "has_more": True, "total": 50}, None),  # an empty page always ends the window
    ],
)
def test_next_page_token(envelope: dict[str, Any], expected: dict[str, int] | None) -> None:
    assert ThsuiteClient.next_page_token(Envelope.model_validate(envelope), PageToken(page=2, limit=10)) == expected


@pytest.mark.parametrize(
    "payload",
    [[{"id": 1}], {"items": []}, {"data": {"id": 1}}, {"data": [1, 2]}, {"data": [], "total": -1}, "ok", None],
)
def test_a_body_without_the_envelope_is_malformed(payload: Any) -> None:
    with pytest.raises(MalformedPageError, match="/api/v1/patients"):
        ThsuiteClient.parse_response(payload, "/api/v1/patients")


def test_envelope_ignores_unknown_keys() -> None:
    envelope = ThsuiteClient.parse_response({"data": [], "links": {"next": None}, "page": 1}, "/x")

    assert envelope.data == []
    assert envelope.page == 1


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, PageToken(page=1, limit=2)),
        ({"page": 7, "limit": 300}, PageToken(page=7, limit=300)),  # the token's limit, not today's page size
        ({"page": 0, "limit": 300}, PageToken(page=1, limit=2)),
        ({"offset": 40}, PageToken(page=1, limit=2)),
    ],
)
def test_start_position(token: dict[str, Any] | None, expected: PageToken) -> None:
    assert client_over(lambda r: httpx.Response(500)).start_position(token) == expected


# --- pages over a mock transport -------------------------------------------------------------------------------


def test_pages_walk_the_window_and_keep_the_exact_bytes() -> None:
    items = [{"id": n, "updated_at": f"2026-11-01T09:00:0{n}Z"} for n in range(5)]
    seen: list[httpx.Request] = []
    client = client_over(paged_server(items, seen))

    pages = list(client.pages(Stream.SALES, Window(START, END), None))

    assert [[i["id"] for i in p.items] for p in pages] == [[0, 1], [2, 3], [4]]
    assert [p.next_token for p in pages] == [{"page": 2, "limit": 2}, {"page": 3, "limit": 2}, None]
    assert all(p.total_records == 5 for p in pages)
    assert json.loads(pages[1].body)["data"] == items[2:4]
    assert pages[0].request == {
        "method": "GET",
        "path": "/api/v1/receipts",
        "params": {
            "updated_since": "2026-11-01T08:00:00.123000Z",
            "updated_before": "2026-11-02T00:00:00Z",
            "sort": "updated_at",
            "page": 1,
            "limit": 2,
        },
    }
    assert [r.url.path for r in seen] == ["/api/v1/receipts"] * 3


def test_pages_resume_from_a_token() -> None:
    items = [{"id": n} for n in range(7)]
    seen: list[httpx.Request] = []
    client = client_over(paged_server(items, seen), page_size=500)

    pages = list(client.pages(Stream.CUSTOMERS, Window(None, END), {"page": 2, "limit": 3}))

    assert [[i["id"] for i in p.items] for p in pages] == [[3, 4, 5], [6]]
    assert [r.url.params["page"] for r in seen] == ["2", "3"]
    assert {r.url.params["limit"] for r in seen} == {"3"}


def test_a_non_json_page_is_retried_then_reported() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=b'{"data": [{"id": 1}')

    with pytest.raises(MalformedPageError):
        list(client_over(handler).pages(Stream.INVENTORY, Window(None, END), None))
    assert len(calls) == 2  # the policy's attempts


# --- store info ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["store_windows_timezone.json", "store_iana_bare.json"])
def test_store_accepts_wrapped_and_bare_objects(fixture: str) -> None:
    body = (FIXTURES / fixture).read_bytes()

    store = client_over(lambda r: httpx.Response(200, content=body)).store()

    assert store.id in {"1001", "1002"}
    assert store.timezone in {"Mountain Standard Time", "America/Los_Angeles"}


def test_store_without_an_id_is_malformed() -> None:
    with pytest.raises(MalformedPageError, match="store"):
        client_over(lambda r: httpx.Response(200, json={"data": {"name": "x"}})).store()


def test_rejected_token_is_a_credential_error() -> None:
    with pytest.raises(CredentialError, match="HTTP 401"):
        client_over(lambda r: httpx.Response(401, json={"error": "unauthorized"})).store()


# --- the HTTP client and the connector -------------------------------------------------------------------------


def credential() -> ThsuiteCredential:
    return ThsuiteCredential.model_validate({"integration_token": TOKEN, "store_name": "Test"})


def test_http_client_carries_the_bearer_token_and_the_configured_timeouts() -> None:
    config = ConnectorConfig(base_url="https://thsuite.test", connect_timeout=2.0, read_timeout=9.0)

    client = build_http_client(credential(), config)

    assert client.headers["Authorization"] == f"Bearer {TOKEN}"
    assert client.headers["Accept"] == "application/json"
    assert client.base_url == httpx.URL("https://thsuite.test")
    assert (client.timeout.connect, client.timeout.read) == (2.0, 9.0)
    assert client.follow_redirects is False
    client.close()


def test_open_connector_refuses_another_vendors_credential() -> None:
    other = PosabitCredential.model_validate(
        {"vendor": "posabit", "store_name": "s", "integrator_token": "x" * 8, "venue_token": "y" * 8}
    )

    with pytest.raises(CredentialError, match="posabit") as caught:
        open_connector(other, ConnectorConfig(base_url="https://thsuite.test"))
    assert "x" * 8 not in str(caught.value)


def test_connector_offers_its_streams_and_maps_through_the_pure_mapping() -> None:
    store = (FIXTURES / "store_windows_timezone.json").read_bytes()
    receipt = json.loads((FIXTURES / "receipts_page.json").read_text())["data"][0]
    connector = ThsuiteConnector(
        client_over(lambda r: httpx.Response(200, content=store)), tenant="t9", credential_id="c9"
    )

    ctx = connector.prepare()
    record = connector.map_record(Stream.SALES, receipt, ctx)

    assert connector.vendor is Vendor.THSUITE
    assert connector.streams == (Stream.CUSTOMERS, Stream.SALES, Stream.INVENTORY, Stream.LOYALTY, Stream.DISCOUNTS)
    assert (ctx.tenant, ctx.credential_id, ctx.timezone) == ("t9", "c9", "America/Denver")
    assert isinstance(record, Sale)
    assert (record.tenant, record.credential_id, record.pos_id) == ("t9", "c9", "5001")
    assert connector.item_id(Stream.LOYALTY, {"patient_id": 4}) == "4"
    connector.close()
    assert connector.client.http.client.is_closed


# --- receipts pages in their page form ---------------------------------------------------------------------------

STORE = ThsuiteStore.model_validate(json.loads((FIXTURES / "store_windows_timezone.json").read_text())["data"])
CTX = mapping_context(STORE, tenant="t1", credential_id="c1")
CONNECTOR = ThsuiteConnector(client_over(lambda r: httpx.Response(500)))
VALIDATE = PAGE_VALIDATORS[Stream.SALES]


def receipts(*ids: str) -> list[dict[str, Any]]:
    """Recorded receipts in the form the page form takes (amounts as texts of two places, whole quantities)."""
    found = {str(r["id"]): r for r in json.loads((FIXTURES / "receipts_page.json").read_text())["data"]}
    return [json.loads(json.dumps(found[i])) for i in ids]


def receipts_body(items: list[dict[str, Any]]) -> bytes:
    return json.dumps({"data": items, "page": 1, "limit": 100, "total": len(items), "has_more": False}).encode()


def mapped(body: bytes) -> tuple[list[tuple[str, str, str]], list[dict[str, str]]]:
    """A receipts page mapped as a pull maps it: from the one call's payloads when it takes the page, else item by
    item; each record as (pos id, stored JSON, digest)."""
    validated = VALIDATE(body)
    payloads = None if validated is None else validated.payloads
    records, quarantined = map_page(CONNECTOR, Stream.SALES, page_items("/receipts", body), CTX, "page", payloads)
    return [(r.pos_id, *r.stored_form()) for r in records], quarantined


def mapped_item_by_item(body: bytes) -> tuple[list[tuple[str, str, str]], list[dict[str, str]]]:
    records, quarantined = map_page(CONNECTOR, Stream.SALES, page_items("/receipts", body), CTX, "page")
    return [(r.pos_id, *r.stored_form()) for r in records], quarantined


def test_a_receipts_page_is_validated_to_its_page_form_and_maps_as_item_by_item() -> None:
    # Given receipts with return lines, a void and a status no mapping knows (a valid payload that fails mapping)
    body = receipts_body(receipts("5001", "5003", "5004", "5005", "5007"))

    # When the one call validates the page
    page = VALIDATE(body)

    # Then each receipt is a dict of its fields, amounts kept as THSuite wrote them (no Decimal built)
    assert page is not None
    first = page.payloads[0]
    assert type(first) is dict and type(first["lines"][0]) is dict
    assert (first["id"], first["total"], first["lines"][0]["quantity"], first["lines"][0]["discount"]) == (
        "5001",
        "60.55",
        2,
        "5.00",
    )
    # And the page maps to the records, stored JSON, digests and quarantine entries the items give one by one
    records, quarantined = mapped(body)
    assert (records, quarantined) == mapped_item_by_item(body)
    assert [pos_id for pos_id, _, _ in records] == ["5001", "5003", "5004", "5005"]
    assert [q["pos_id"] for q in quarantined] == ["5007"]


AMOUNT_PATHS = [
    ("subtotal",),
    ("discount_total",),
    ("tax_total",),
    ("total",),
    ("lines", 0, "quantity"),
    ("lines", 0, "total"),
    ("lines", 0, "discount"),
    ("lines", 0, "unit_price"),
    ("lines", 1, "quantity"),
    ("lines", 1, "total"),
    ("payments", 0, "amount"),
]


def with_value(item: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = json.loads(json.dumps(item))
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize("path", AMOUNT_PATHS, ids=lambda p: ".".join(map(str, p)))
def test_amounts_the_page_form_takes_map_as_item_by_item(path: tuple[Any, ...]) -> None:
    # Given a receipt with a return line (5004), one amount at a time replaced by a text of two places or a whole
    # number: signed, zero, negative zero, leading zeros, the largest taken
    for value in ("0.00", "-0.00", "12.50", "-3.25", "007.10", "-0.01", "999999999999999.99", 0, 7, -4, 10**15):
        body = receipts_body([with_value(receipts("5004")[0], path, value)])
        # Then the one call takes the page, and the record is the one the item gives alone (or so is its error)
        assert VALIDATE(body) is not None, value
        assert mapped(body) == mapped_item_by_item(body), value


@pytest.mark.parametrize(
    "value",
    [
        12.5,
        40.0,
        "12.5",
        "12.500",
        " 12.50",
        "1e2",
        "+1.00",
        "1_000.00",
        "\u0661\u0662.\u0660\u0660",
        "NaN",
        True,
        10**15 + 1,
    ],
)
def test_amounts_the_page_form_does_not_take_refuse_the_page(value: Any) -> None:
    # Given a receipt whose total is an amount the models read (or refuse) but not in THSuite's own spelling
    body = receipts_body([*receipts("5001", "5003"), with_value(receipts("5004")[0], ("total",), value)])

    # Then the one call refuses the whole page, mapped item by item as before
    assert VALIDATE(body) is None
    assert mapped(body) == mapped_item_by_item(body)


def test_a_schema_the_page_form_cannot_read_is_refused_when_built() -> None:
    # Loyalty points are bounded: a text of two places past the bound would be taken where the model refuses it
    with pytest.raises(TypeError, match="constraints"):
        page_form(fast_schema(ThsuiteLoyaltyBalance, IDENTITY_ON, blanks_as_none=True))

    # And a rule written in Python expects the model's instance, not the page form's dict
    class Checked(ThsuitePayment):
        @model_validator(mode="after")
        def _paid(self) -> Checked:
            return self

    with pytest.raises(TypeError, match="Python"):
        page_form(fast_schema(Checked, IDENTITY_ON, blanks_as_none=True))
