"""Flourish contract pieces without a network: auth headers, filter formats, the envelope and each stream's passes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from functions.core.connector import ConnectorConfig, Window
from functions.core.credentials import FlourishCredential, parse_credential
from functions.core.errors import CredentialError, MalformedPageError
from functions.core.http import RetryPolicy
from functions.core.layout import Stream, Vendor
from functions.pull_flourish.client import (
    FlourishClient,
    auth_headers,
    format_timestamp,
    parse_list_envelope,
    require_facility,
)
from functions.pull_flourish.connector import FlourishConnector, open_connector, pass_params
from functions.pull_flourish.constants import OVERLAP, REVISIT, STREAM_PASSES

SECRET = "sk_live_0123456789abcdef"


def credential(**overrides: Any) -> FlourishCredential:
    data = {"vendor": "flourish", "username": "aiq-integration", "key": SECRET, **overrides}
    parsed = parse_credential(data, Vendor.FLOURISH, "c1")
    assert isinstance(parsed, FlourishCredential)
    return parsed


def test_service_keys_go_in_x_api_key_and_facility_scope_in_its_header() -> None:
    headers = auth_headers(credential(facility_id="101"))

    assert headers["x-api-key"] == SECRET
    assert headers["FacilityID"] == "101"
    assert "Authorization" not in headers


def test_legacy_keys_use_http_basic_username_and_key() -> None:
    headers = auth_headers(credential(auth_mode="basic"))

    scheme, token = headers["Authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode() == f"aiq-integration:{SECRET}"
    assert "x-api-key" not in headers and "FacilityID" not in headers


def test_filter_timestamps_are_utc_with_milliseconds_and_z() -> None:
    local = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-8)))

    assert format_timestamp(local) == "2026-03-01T17:30:15.123Z"
    assert format_timestamp(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00.000Z"


def response(payload: Any, path: str = "/external/api/v1/customers/") -> httpx.Response:
    return httpx.Response(200, content=json.dumps(payload).encode(), request=httpx.Request("GET", "http://x" + path))


def test_envelope_gives_items_next_and_total() -> None:
    payload = {"data": [{"id": 1}], "meta": {"next": "https://x/?offset=50", "total": 51}}

    page = parse_list_envelope(response(payload), payload)

    assert (page.items, page.has_next, page.total) == ([{"id": 1}], True, 51)
    # meta.next empty is the documented last page; no meta.next at all says nothing (the pager decides by offset)
    assert parse_list_envelope(response({"data": []}), {"data": []}).has_next is None
    last = {"data": [], "meta": {"next": None}}
    assert parse_list_envelope(response(last), last).has_next is False
    counted = {"data": [], "meta": {"count": 3}}
    assert parse_list_envelope(response(counted), counted).total == 3


@pytest.mark.parametrize("payload", [[{"id": 1}], {"results": []}, {"data": {"id": 1}}, None])
def test_anything_but_the_envelope_is_a_malformed_page(payload: Any) -> None:
    with pytest.raises(MalformedPageError, match="envelope"):
        parse_list_envelope(response(payload), payload)


WINDOW = Window(datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 10, 6, tzinfo=UTC))


def test_customers_and_items_are_read_by_update_time() -> None:
    for stream in (Stream.CUSTOMERS, Stream.INVENTORY):
        (only,) = STREAM_PASSES[stream]
        assert pass_params(only, WINDOW) == {
            "last_updated_timestamp_start": "2026-03-10T00:00:00.000Z",
            "last_updated_timestamp_end": "2026-03-10T06:00:00.000Z",
        }


def test_sales_read_completions_then_recent_cancellations_and_refunds() -> None:
    params = {p.name: pass_params(p, WINDOW) for p in STREAM_PASSES[Stream.SALES]}
    assert WINDOW.start is not None
    revisit_start = format_timestamp(WINDOW.start - REVISIT)

    assert params["completed"] == {
        "completed_timestamp_start": "2026-03-10T00:00:00.000Z",
        "completed_timestamp_end": "2026-03-10T06:00:00.000Z",
    }
    assert params["cancelled"]["order_status"] == "Cancelled"
    assert params["cancelled"]["created_timestamp_start"] == revisit_start
    assert params["undeliverable"]["order_status"] == "Undeliverable"
    assert params["refunded"]["order_payment_status"] == "Refunded"
    assert params["refunded"]["completed_timestamp_start"] == revisit_start
    assert params["partially_refunded"]["order_payment_status"] == "Partially Refunded"


def test_a_first_pull_has_no_lower_bound() -> None:
    first = Window(None, WINDOW.end)

    assert pass_params(STREAM_PASSES[Stream.CUSTOMERS][0], first) == {
        "last_updated_timestamp_end": "2026-03-10T06:00:00.000Z"
    }


def test_a_facility_the_key_cannot_see_is_a_credential_error() -> None:
    require_facility([{"id": 101}], "101")
    require_facility([], None)
    with pytest.raises(CredentialError) as caught:
        require_facility([{"id": 101}], "999")
    assert "999" not in str(caught.value)


def test_open_connector_refuses_another_vendors_credential() -> None:
    other = parse_credential({"vendor": "thsuite", "integration_token": "tok_0123456789"}, Vendor.THSUITE, "c2")
    with pytest.raises(CredentialError):
        open_connector(other, ConnectorConfig(base_url="http://127.0.0.1:9"))


def mock_client(handler: Any) -> FlourishClient:
    return FlourishClient(
        credential(),
        "http://flourish.test",
        timeout=httpx.Timeout(1.0),
        policy=RetryPolicy(attempts=2, wait_initial=0.001, wait_max=0.001, wait_jitter=0),
        transport=httpx.MockTransport(handler),
    )


def test_create_customer_posts_json_and_returns_the_created_record() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": {"id": 10999, **json.loads(request.content)}, "code": "CUS0003"})

    client = mock_client(handler)
    created = client.create_customer(
        {"first_name": "Ivy", "last_name": "Hall", "email": "ivy@example.com", "dob": "1990-01-01"}
    )

    assert created["id"] == 10999
    assert (seen[0].method, seen[0].url.path, seen[0].headers["x-api-key"]) == (
        "POST",
        "/external/api/v1/customers/",
        SECRET,
    )
    with pytest.raises(ValueError, match="date of birth"):
        client.create_customer({"first_name": "Ivy", "last_name": "Hall", "email": "ivy@example.com"})
    assert len(seen) == 1  # refused before any request


def test_errors_never_carry_the_key() -> None:
    client = mock_client(lambda request: httpx.Response(401, json={"message": "Invalid API key"}))

    with pytest.raises(CredentialError) as caught:
        client.facilities()

    assert SECRET not in str(caught.value)


def test_page_size_is_capped_and_kept_above_the_overlap() -> None:
    big = FlourishConnector(credential(), ConnectorConfig(base_url="http://x", page_size=5000))
    tiny = FlourishConnector(credential(), ConnectorConfig(base_url="http://x", page_size=1))

    assert big.limit == 500
    assert tiny.limit >= 4 * OVERLAP
