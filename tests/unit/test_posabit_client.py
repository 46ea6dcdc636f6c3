"""POSaBIT contract pieces without a server: query parameters, the paging rule, envelopes, requests on the wire."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from functions.core.connector import ConnectorConfig, Window
from functions.core.credentials import PosabitCredential
from functions.core.errors import MalformedPageError, VendorUnavailableError
from functions.core.layout import Stream
from functions.pull_posabit.client import (
    Envelope,
    NewCustomer,
    PosabitClient,
    next_page_number,
    parse_envelope,
    request_params,
)

START = datetime(2026, 9, 30, 12, 0, 0, tzinfo=UTC)
END = datetime(2026, 9, 30, 15, 0, 0, tzinfo=UTC)
CREDENTIAL = PosabitCredential(
    store_name="Kirkland", integrator_token="integrator-secret-1", venue_token="venue-secret-22", market="WA"
)


def envelope(items: int, total: int | None, page: int, pages: int | None, per_page: int | None = 10) -> Envelope:
    return Envelope(items=[{}] * items, total_records=total, current_page=page, total_pages=pages, per_page=per_page)


# --- query ---------------------------------------------------------------------------------------------------------


def test_window_start_is_widened_by_a_second_because_posabit_filters_strictly_after() -> None:
    params = request_params(Stream.SALES, Window(START, END), page=3, per_page=100)
    assert params == {
        "page": "3",
        "per_page": "100",
        "q[s]": "updated_at asc",
        "q[updated_at_gt]": "2026-09-30T11:59:59.000Z",
        "q[updated_at_lt]": "2026-09-30T15:00:00.000Z",
    }


def test_an_open_window_has_no_lower_bound_and_offsets_are_sent_in_utc() -> None:
    end = datetime(2026, 9, 30, 1, 0, 0, 250000, tzinfo=ZoneInfo("America/Los_Angeles"))
    params = request_params(Stream.INVENTORY, Window(None, end), page=1, per_page=100)
    assert "q[updated_at_gt]" not in params
    assert params["q[updated_at_lt]"] == "2026-09-30T08:00:00.250Z"


@pytest.mark.parametrize("stream", [Stream.CUSTOMERS, Stream.LOYALTY])
def test_customer_reads_send_a_date_range_that_can_hide_no_customer(stream: Stream) -> None:
    params = request_params(stream, Window(START, END), page=1, per_page=250)
    assert params["start_date"] == "2015-01-01"
    assert params["end_date"] == "2026-10-01"  # the window's last day plus one, whatever zone the API reads it in
    assert "start_date" not in request_params(Stream.SALES, Window(START, END), page=1, per_page=100)


def test_page_size_is_the_configured_one_within_each_endpoint_ceiling() -> None:
    client = PosabitClient(CREDENTIAL, ConnectorConfig(base_url="https://example.invalid", page_size=5000))
    small = PosabitClient(CREDENTIAL, ConnectorConfig(base_url="https://example.invalid", page_size=20))
    try:
        assert client.page_size(Stream.CUSTOMERS) == 1000  # the documented "Results per page (default 1000)"
        assert client.page_size(Stream.INVENTORY) == 1000
        assert small.page_size(Stream.SALES) == 20
    finally:
        client.close()
        small.close()


# --- paging rule ---------------------------------------------------------------------------------------------------


def test_pages_follow_each_other_until_the_last() -> None:
    assert next_page_number(1, envelope(10, 25, 1, 3), None, 10) == 2
    assert next_page_number(2, envelope(10, 25, 2, 3), 25, 10) == 3
    assert next_page_number(3, envelope(5, 25, 3, 3), 25, 10) is None


def test_an_empty_page_ends_the_window() -> None:
    assert next_page_number(1, envelope(0, 0, 1, 1), None, 10) is None
    assert next_page_number(4, envelope(0, 25, 4, 3), 25, 10) is None


def test_an_empty_page_the_envelope_still_counts_records_on_is_no_end() -> None:
    with pytest.raises(VendorUnavailableError, match="no records on page 2"):
        next_page_number(2, envelope(0, 25, 2, 3), 25, 10)
    with pytest.raises(VendorUnavailableError, match="no records on page 2"):
        next_page_number(2, envelope(0, None, 2, 3), None, 10)


def test_without_total_pages_the_total_or_a_short_page_ends_the_window() -> None:
    assert next_page_number(2, envelope(10, 30, 2, None), 30, 10) == 3
    assert next_page_number(3, envelope(10, 30, 3, None), 30, 10) is None
    assert next_page_number(1, envelope(10, None, 1, None), None, 10) == 2
    assert next_page_number(2, envelope(4, None, 2, None), None, 10) is None


def test_records_leaving_the_window_while_paging_step_back_over_what_moved_up() -> None:
    # Given 3 of the 25 records changed after page 2 was read, everything after them moved up 3 places:
    # page 3 now starts where page 2's last 3 records were, so page 2 is read again before page 3... and on.
    assert next_page_number(3, envelope(10, 22, 3, 3), 25, 10) == 2
    # A shrink bigger than a page steps back that many pages, never before the first.
    assert next_page_number(3, envelope(2, 12, 3, 2), 25, 10) == 1
    assert next_page_number(1, envelope(10, 20, 1, 2), 25, 10) == 1
    # Growth shifts records later: read on (they are read twice, never lost).
    assert next_page_number(2, envelope(10, 27, 2, 3), 25, 10) == 3


def test_the_served_page_size_decides_how_far_to_step_back() -> None:
    assert next_page_number(5, envelope(4, 90, 5, 23, per_page=4), 99, 100) == 2


# --- envelope ------------------------------------------------------------------------------------------------------


def test_envelope_reads_counts_and_items() -> None:
    parsed = parse_envelope(
        Stream.SALES,
        {"total_records": "3", "current_page": 1, "total_pages": 1, "per_page": 100, "sales_histories": [{}, {}, {}]},
    )
    assert (parsed.total_records, parsed.current_page, parsed.total_pages, parsed.per_page) == (3, 1, 1, 100)
    assert len(parsed.items) == 3


@pytest.mark.parametrize("payload", [[], {"customers": None}, {"data": []}, "oops"])
def test_a_body_without_the_list_is_a_malformed_page(payload: object) -> None:
    with pytest.raises(MalformedPageError, match="customers"):
        parse_envelope(Stream.CUSTOMERS, payload)


# --- on the wire (httpx MockTransport, no network) -----------------------------------------------------------------


def recording_client(responder: httpx.MockTransport, seen: list[httpx.Request]) -> PosabitClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responder.handle_request(request)

    return PosabitClient(
        CREDENTIAL, ConnectorConfig(base_url="https://app.posabit.test"), transport=httpx.MockTransport(handler)
    )


def test_requests_carry_basic_auth_integrator_then_venue_token() -> None:
    seen: list[httpx.Request] = []
    client = recording_client(
        httpx.MockTransport(lambda r: httpx.Response(200, json={"venue": {"id": 1, "timezone": "Arizona"}})), seen
    )
    with client:
        info = client.venue_info()
    assert info == {"id": 1, "timezone": "Arizona"}  # unwrapped from {"venue": {...}}
    assert seen[0].url.path == "/api/v3/venue/info"
    expected = base64.b64encode(b"integrator-secret-1:venue-secret-22").decode()
    assert seen[0].headers["authorization"] == f"Basic {expected}"


def test_create_customer_posts_the_wrapped_record_once_and_returns_the_new_id() -> None:
    seen: list[httpx.Request] = []
    created = {"customer": {"id": 555, "first_name": "Ava"}}
    client = recording_client(httpx.MockTransport(lambda r: httpx.Response(201, json=created)), seen)
    with client:
        record = client.create_customer(
            NewCustomer(first_name="Ava", last_name="Nguyen", telephone="2065550143", sms_opt_in=True)
        )
    assert record == {"id": 555, "first_name": "Ava"}
    assert [r.method for r in seen] == ["POST"]
    assert seen[0].url.path == "/api/v3/venue/customers"
    assert json.loads(seen[0].content) == {
        "customer": {
            "first_name": "Ava",
            "last_name": "Nguyen",
            "telephone": "2065550143",
            "loyalty_member": True,
            "marketing_opt_in": False,
            "sms_opt_in": True,
        }
    }


def test_a_create_that_times_out_is_not_sent_twice() -> None:
    seen: list[httpx.Request] = []

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client = recording_client(httpx.MockTransport(timeout), seen)
    with client, pytest.raises(VendorUnavailableError, match="could not be reached"):
        client.create_customer(NewCustomer(first_name="Ava"))
    assert len(seen) == 1
