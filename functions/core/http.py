"""The HTTP client policy every connector uses: timeouts, bounded retries with backoff and jitter, Retry-After."""

from __future__ import annotations

import email.utils
import functools
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

# httpx imports httpcore when its first client is made, inside a pull; imported here, a handler's import (Lambda's
# init phase, once per container) does it.
import httpcore  # noqa: F401
import httpx
import stamina

from functions.core import json_bytes
from functions.core.errors import CredentialError, MalformedPageError, VendorUnavailableError

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# What an API answers to parameters it does not accept (e.g. a page size larger than it serves).
REFUSED_STATUS = frozenset({400, 422})


class RequestRefusedError(VendorUnavailableError):
    """The POS refused the request's parameters (HTTP 400 / 422): a caller that can ask differently (a smaller page)
    may; to every other caller it is the POS being unavailable, as any other 4xx."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    timeout: float = 60.0  # total seconds across attempts
    wait_initial: float = 0.5
    wait_max: float = 20.0
    wait_jitter: float = 0.5
    max_retry_after: float = 30.0  # a longer Retry-After than this is not waited on inside one Lambda run


DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context the cloud POS clients verify their servers with: httpx's own default (certifi's CA bundle, or
    SSL_CERT_FILE / SSL_CERT_DIR when set; hostname checked, certificate required), made once per process. Each
    httpx.Client made with `verify=True` loads the whole CA bundle again, about 45 ms of CPU: every pull paid it for
    each client it made, though the process and its trust store stay the same between invocations."""
    return httpx.create_ssl_context()


class RetryableStatusError(Exception):
    """A 429/5xx answer worth trying again; carries the server's Retry-After if it sent one."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


@dataclass
class RequestStats:
    requests: int = 0
    retries: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)

    def note_retry(self, reason: str) -> None:
        self.retries += 1
        self.retry_reasons[reason] = self.retry_reasons.get(reason, 0) + 1


class VendorHttp:
    """Sends one vendor's requests with the shared retry policy; errors never carry headers or credentials."""

    def __init__(
        self,
        client: httpx.Client,
        vendor: str,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.vendor = vendor
        self._policy = policy = policy or RetryPolicy()
        self.stats = RequestStats()
        self._sleep = sleep
        # One retry context for every request, as stamina's own decorator keeps one per function: each iteration
        # retries afresh (its own attempts, backoff and deadline). One made per request refers to itself (through its
        # backoff method) and so waited, a few objects a request, for the cyclic garbage collector.
        self._retrying = stamina.retry_context(
            on=(RetryableStatusError, httpx.TransportError),
            attempts=policy.attempts,
            timeout=policy.timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        )

    @property
    def policy(self) -> RetryPolicy:
        """The retry policy, fixed when the client is made (its retry context is built from it)."""
        return self._policy

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        return self.request("GET", path, params=params)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[httpx.Response, Any]:
        """GET and decode; a body that is not JSON is retried like a 5xx (a truncated page is usually transient)."""
        last: MalformedPageError | None = None
        for _ in range(self.policy.attempts):
            response = self.get(path, params)
            try:
                return response, parse_json(response, self.vendor)
            except MalformedPageError as exc:
                last = exc
                self.stats.note_retry("malformed")
        assert last is not None
        raise last

    def get_validated(
        self, path: str, params: Mapping[str, Any] | None, validate: Callable[[bytes], T | None]
    ) -> tuple[httpx.Response, T | None, Any]:
        """GET; the body validated from its bytes by `validate` in one call (response, its answer, None), or, when it
        refuses (None), decoded as `get_json` does (response, None, the decoded body; a body that is not JSON is
        retried)."""
        last: MalformedPageError | None = None
        for _ in range(self.policy.attempts):
            response = self.get(path, params)
            validated = validate(response.content)
            if validated is not None:
                return response, validated, None
            try:
                return response, None, parse_json(response, self.vendor)
            except MalformedPageError as exc:
                last = exc
                self.stats.note_retry("malformed")
        assert last is not None
        raise last

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        policy = self.policy
        try:
            for attempt in self._retrying:
                with attempt:
                    if attempt.num > 1:
                        self.stats.note_retry("http")
                    return self._send_once(method, path, params, json)
        except RetryableStatusError as exc:
            raise VendorUnavailableError(
                f"{self.vendor} answered HTTP {exc.status} to {method} {path} after {policy.attempts} attempts"
            ) from None
        except httpx.TransportError as exc:
            raise VendorUnavailableError(
                f"{self.vendor} could not be reached for {method} {path} after {policy.attempts} attempts "
                f"({type(exc).__name__})"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover - stamina always runs at least once

    def _send_once(self, method: str, path: str, params: Mapping[str, Any] | None, json: Any) -> httpx.Response:
        self.stats.requests += 1
        response = detached(self.client.request(method, path, params=params, json=json))
        if response.status_code in RETRYABLE_STATUS:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                # stamina's own backoff still applies on top; honour the server's minimum first.
                self._sleep(min(retry_after, self.policy.max_retry_after))
            raise RetryableStatusError(response.status_code, retry_after)
        if response.status_code in (401, 403):
            raise CredentialError(
                f"{self.vendor} refused the credential (HTTP {response.status_code}) for {method} {path}; "
                "check the key with the POS and re-add it with `possync credentials add`"
            )
        if response.status_code in REFUSED_STATUS:
            raise RequestRefusedError(
                f"{self.vendor} refused the request (HTTP {response.status_code}) {method} {path}", response.status_code
            )
        if response.status_code >= 400:
            raise VendorUnavailableError(f"{self.vendor} answered HTTP {response.status_code} to {method} {path}")
        if 300 <= response.status_code < 400:
            # Never followed (it would carry the credential wherever it points); its body is no page either.
            raise self.redirect_refused(response.status_code, method, path)
        return response

    def redirect_refused(self, status: int, method: str, path: str) -> VendorUnavailableError:
        return VendorUnavailableError(
            f"{self.vendor} answered HTTP {status} (a redirect) to {method} {path}; redirects are not followed: "
            "check the vendor's base URL"
        )


def detached(response: httpx.Response) -> httpx.Response:
    """`response` (its body read, as `httpx.Client.request` leaves it) freed by reference counting alone once dropped.

    httpx binds each response's stream to the response (`BoundSyncStream`, which sets `elapsed` when it closes): the
    two refer to each other, so a dropped response and everything it holds (its page's bytes, its request, the
    connection pool's bookkeeping) waited for the cyclic garbage collector, a page at a time. Its stream is closed
    (as reading it did already, unless a transport handed over the body whole) and replaced by the body it read;
    nothing of the response changes for its readers."""
    response.close()
    response.stream = httpx.ByteStream(response.content)
    return response


def parse_json(response: httpx.Response, vendor: str) -> Any:
    """Decode a JSON body or raise MalformedPageError (the raw bytes are still archived by the engine). The value and
    the bytes refused are json.loads' (functions.core.json_bytes: orjson where the two agree)."""
    try:
        return json_bytes.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise MalformedPageError(
            f"{vendor} returned a body that is not JSON for {response.request.method} {response.request.url.path}"
        ) from None
