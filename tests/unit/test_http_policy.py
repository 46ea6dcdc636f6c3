"""The shared HTTP policy: bounded retries with backoff on 429/5xx/timeouts, Retry-After, secret-free errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import stamina

from functions.core.errors import CredentialError, MalformedPageError, VendorUnavailableError
from functions.core.http import RetryPolicy, VendorHttp, parse_retry_after

SECRET = "venue-token-SECRET-42"


@pytest.fixture(autouse=True)
def no_backoff() -> Iterator[None]:
    with stamina.set_testing(True, attempts=4):
        yield


def client(responses: list[httpx.Response | Exception]) -> tuple[VendorHttp, list[float], list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    http = httpx.Client(
        base_url="https://pos.example", transport=httpx.MockTransport(handle), auth=("integrator", SECRET)
    )
    sleeps: list[float] = []
    return VendorHttp(http, "posabit", RetryPolicy(attempts=4), sleep=sleeps.append), sleeps, seen


def test_429_with_retry_after_waits_what_the_server_asked_then_succeeds() -> None:
    http, sleeps, seen = client([httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json={})])
    assert http.get("/customers").status_code == 200
    assert sleeps == [3.0]
    assert len(seen) == 2
    assert http.stats.retries == 1


def test_429_without_retry_after_and_5xx_are_retried_with_backoff() -> None:
    http, sleeps, _ = client([httpx.Response(429), httpx.Response(503), httpx.Response(502), httpx.Response(200)])
    assert http.get("/customers").status_code == 200
    assert sleeps == []  # no server hint: stamina's exponential backoff with jitter applies
    assert http.stats.retries == 3


def test_timeouts_and_refused_connections_are_retried() -> None:
    http, _, seen = client([httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), httpx.Response(200)])
    assert http.get("/x").status_code == 200
    assert len(seen) == 3


def test_retries_are_bounded_and_the_error_says_what_happened_without_secrets() -> None:
    http, _, seen = client([httpx.Response(503)] * 4)
    with pytest.raises(VendorUnavailableError) as info:
        http.get("/api/v3/venue/customers", params={"page": 2})
    assert len(seen) == 4
    assert "HTTP 503" in str(info.value)
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None  # nothing carrying request headers is chained


def test_a_huge_retry_after_is_capped_inside_one_lambda_run() -> None:
    http, sleeps, _ = client([httpx.Response(429, headers={"Retry-After": "3600"}), httpx.Response(200)])
    http.get("/x")
    assert sleeps == [30.0]


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credential_is_a_credential_error_naming_no_secret(status: int) -> None:
    http, _, seen = client([httpx.Response(status)])
    with pytest.raises(CredentialError) as info:
        http.get("/venue")
    assert len(seen) == 1  # never retried: a wrong key stays wrong
    assert SECRET not in str(info.value)
    assert "possync credentials add" in str(info.value)


def test_a_truncated_body_is_refetched_then_reported() -> None:
    http, _, seen = client([httpx.Response(200, content=b'{"total_records": 3, "cust'), httpx.Response(200, json=[1])])
    _, data = http.get_json("/x")
    assert data == [1]
    assert len(seen) == 2

    http, _, _ = client([httpx.Response(200, content=b"<html>")] * 4)
    with pytest.raises(MalformedPageError):
        http.get_json("/x")


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=20), usegmt=True), now=lambda: now) == 20.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
