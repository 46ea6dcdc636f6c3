"""Profitek client without a network: request parameters, page tokens, the envelope (httpx.MockTransport)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from functions.core.connector import ConnectorConfig, Window
from functions.core.credentials import ProfitekCredential
from functions.core.errors import MalformedPageError
from functions.core.http import RetryPolicy
from functions.core.layout import Stream
from functions.pull_onprem.paging import count_field, cursor_of, format_instant, page_number
from functions.pull_onprem.profitek.client import ProfitekConnector, auth_headers, store_root
from functions.pull_onprem.transport import Endpoint, OnPremHttp

CREDENTIAL = ProfitekCredential(store_name="Main St / Uptown #2", auth_key="secret-key-123")  # type: ignore[arg-type]
WINDOW = Window(datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))


def connector(pages: list[dict[str, Any]], seen: list[httpx.Request], page_size: int = 2) -> ProfitekConnector:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        number = int(request.url.params["page"])
        return httpx.Response(200, json=pages[number - 1] if number <= len(pages) else {"Data": []})

    endpoint = Endpoint(base_url="http://93.184.215.14:8080", display="profitek store server", on_premises=True)
    client = httpx.Client(
        base_url=endpoint.base_url, headers=auth_headers(CREDENTIAL), transport=httpx.MockTransport(answer)
    )
    http = OnPremHttp(client, "profitek", endpoint, RetryPolicy(attempts=2, wait_initial=0.001, wait_jitter=0.0))
    return ProfitekConnector(http, CREDENTIAL, "t1", "c1", page_size)


def test_instants_are_sent_in_utc_with_milliseconds_cut_down() -> None:
    pacific = timezone(timedelta(hours=-7))
    assert format_instant(datetime(2024, 5, 1, 5, 0, 0, 999999, tzinfo=pacific)) == "2024-05-01T12:00:00.999Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_instant(datetime(2024, 5, 1))  # a naive bound is a bug upstream


@pytest.mark.parametrize(
    ("token", "expected"),
    [(None, 1), ({}, 1), ({"page": 4}, 4), ({"page": 0}, 1), ({"page": "4"}, 1), ({"page": True}, 1)],
)
def test_page_tokens(token: dict[str, Any] | None, expected: int) -> None:
    assert page_number(token, 1) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(12, 12), ("12", 12), (-1, None), (True, None), ("x", None), (None, None)]
)
def test_envelope_counts(value: Any, expected: int | None) -> None:
    assert count_field({"TotalCount": value}, "TotalCount") == expected


def test_cursor_tokens() -> None:
    assert (cursor_of(None), cursor_of({"cursor": ""}), cursor_of({"cursor": "abc"})) == (None, None, "abc")


def test_the_store_name_is_one_encoded_path_segment() -> None:
    assert store_root("Main St / Uptown #2") == "/api/v1/stores/Main%20St%20%2F%20Uptown%20%232"


def test_pages_follow_total_pages_and_send_the_documented_parameters() -> None:
    seen: list[httpx.Request] = []
    pages = [
        {"Page": 1, "TotalCount": 3, "TotalPages": 2, "Data": [{"CustomerID": 1}, {"CustomerID": 2}]},
        {"Page": 2, "TotalCount": 3, "TotalPages": 2, "Data": [{"CustomerID": 3}]},
    ]

    got = list(connector(pages, seen).pages(Stream.CUSTOMERS, WINDOW, None))

    assert [page.next_token for page in got] == [{"page": 2}, None]
    assert [page.total_records for page in got] == [3, 3]
    assert seen[0].url.raw_path.split(b"?")[0] == b"/api/v1/stores/Main%20St%20%2F%20Uptown%20%232/customers"
    assert dict(seen[0].url.params) == {
        "modifiedSince": "2024-05-01T12:00:00.123Z",
        "modifiedBefore": "2024-05-02T00:00:00.000Z",
        "orderBy": "ModifiedDate",
        "page": "1",
        "pageSize": "2",
    }
    assert seen[0].headers["AuthKey"] == "secret-key-123"
    assert "secret-key-123" not in json.dumps([page.request for page in got])


def test_without_total_pages_a_short_page_is_the_last() -> None:
    seen: list[httpx.Request] = []
    pages = [{"Data": [{"ItemID": 1}, {"ItemID": 2}]}, {"Data": [{"ItemID": 3}]}]

    got = list(connector(pages, seen).pages(Stream.INVENTORY, Window(None, WINDOW.end), None))

    assert [len(page.items) for page in got] == [2, 1]
    assert "modifiedSince" not in seen[0].url.params  # an open window sends no lower bound


def test_a_body_that_is_not_the_envelope_is_malformed() -> None:
    with pytest.raises(MalformedPageError, match="'Data' list"):
        list(connector([{"Items": []}], []).pages(Stream.SALES, WINDOW, None))


def test_page_size_is_capped_at_the_server_maximum() -> None:
    assert connector([], [], page_size=5000).page_size == 1000
    assert connector([], [], page_size=0).page_size == 1


def test_an_unknown_stream_is_refused() -> None:
    cx = connector([], [])
    cx.streams = (Stream.CUSTOMERS,)
    with pytest.raises(ValueError, match="does not offer"):
        list(cx.pages(Stream.SALES, WINDOW, None))


def test_config_page_size_reaches_the_connector() -> None:
    assert ConnectorConfig(base_url="x").page_size == 1000  # each connector caps it at its ceiling
