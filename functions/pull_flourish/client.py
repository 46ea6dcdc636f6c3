"""Flourish HTTP client: auth headers, the {"data", "meta"} envelope, facilities and customer creation."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from functions.core.credentials import FlourishCredential
from functions.core.errors import CredentialError, MalformedPageError
from functions.core.http import RetryPolicy, VendorHttp, tls_context
from functions.core.layout import Vendor
from functions.core.pos_sync.writer import PosUncertainError, send_create
from functions.pull_flourish.constants import (
    API_KEY_HEADER,
    CUSTOMERS_PATH,
    DEFAULT_LIMIT,
    FACILITIES_PATH,
    FACILITY_HEADER,
    LIMIT_PARAM,
    MAX_LIMIT,
    OFFSET_PARAM,
)

# The customers listing's exact-match filters (as the pull's contract reads them: functions/pull_flourish/CONTRACT.md).
PHONE_FILTER = "phone_number"
EMAIL_FILTER = "email"
SEARCH_LIMIT = 10

VENDOR = Vendor.FLOURISH.value


def auth_headers(credential: FlourishCredential) -> dict[str, str]:
    """`x-api-key` for service keys, HTTP Basic `username:key` for legacy ones; `FacilityID` when scoped."""
    key = credential.key.get_secret_value()
    headers = {"Accept": "application/json"}
    if credential.auth_mode == "basic":
        token = base64.b64encode(f"{credential.username}:{key}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    else:
        headers[API_KEY_HEADER] = key
    if credential.facility_id:
        headers[FACILITY_HEADER] = str(credential.facility_id)
    return headers


def format_timestamp(value: datetime) -> str:
    """The documented filter format: UTC, milliseconds, `Z` (2022-04-20T12:34:56.789Z)."""
    utc = value.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class ListPage:
    """One list response: the exact bytes, the unwrapped items and what `meta` says about the rest."""

    body: bytes
    items: list[dict[str, Any]]
    has_next: bool | None  # meta.next given (True) or empty (False); None when the page has no meta.next at all
    total: int | None

    def more_follow(self, end: int, limit: int, longest: int) -> bool:
        """Whether records follow this page, which ends at offset `end` and answered a request for `limit` records.

        The documented signal is meta.next. A server that leaves it out is paged on by offset: up to meta.total when
        it sends that, else until an empty page or a short one. A page is short when it holds fewer records than were
        asked for and fewer than the server's own page size, which may be smaller than asked: at least the documented
        default limit, or the largest page this listing already got (`longest`).
        """
        if not self.items:
            return False
        if self.has_next is not None:
            return self.has_next
        if self.total is not None:
            return end < self.total
        return len(self.items) >= min(limit, max(longest, DEFAULT_LIMIT))


def parse_list_envelope(response: httpx.Response, payload: Any) -> ListPage:
    """{"data": [...], "meta": {"next": ..., "total"|"count": n}}; anything else is a malformed page."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), list):
        raise MalformedPageError(
            f"{VENDOR} answered {response.request.url.path} without the documented {{data: [...]}} envelope"
        )
    meta = payload.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    total = meta.get("total", meta.get("count"))
    return ListPage(
        body=response.content,
        items=payload["data"],
        has_next=bool(meta["next"]) if "next" in meta else None,
        total=total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None,
    )


class FlourishClient:
    """One credential's session with the Flourish external API; the auth headers live only on the httpx client."""

    def __init__(
        self,
        credential: FlourishCredential,
        base_url: str,
        *,
        timeout: httpx.Timeout,
        policy: RetryPolicy,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            headers=auth_headers(credential),
            timeout=timeout,
            transport=transport,
            verify=tls_context(),
            follow_redirects=False,  # a redirect would carry the key to wherever it points
        )
        self.http = VendorHttp(self._client, VENDOR, policy)

    def list_page(self, path: str, params: Mapping[str, Any]) -> ListPage:
        response, payload = self.http.get_json(path, params)
        return parse_list_envelope(response, payload)

    def facilities(self) -> list[dict[str, Any]]:
        """Every facility the key can see (a company has a handful), paged like every listing (ListPage.more_follow)."""
        found: list[dict[str, Any]] = []
        offset = longest = 0
        while True:
            page = self.list_page(FACILITIES_PATH, {LIMIT_PARAM: MAX_LIMIT, OFFSET_PARAM: offset})
            found.extend(f for f in page.items if isinstance(f, dict))
            offset += len(page.items)
            if not page.more_follow(offset, MAX_LIMIT, longest):
                return found
            longest = max(longest, len(page.items))

    def find_customers(self, *, phone: str | None = None, email: str | None = None) -> list[dict[str, Any]]:
        """Customers whose phone (last 10 digits) or email equals the given one: persona sync looks before it
        creates. One filter per call: both at once would ask for customers matching both."""
        if bool(phone) == bool(email):
            raise ValueError("find_customers needs exactly one of a phone or an email")
        params: dict[str, Any] = {LIMIT_PARAM: SEARCH_LIMIT, OFFSET_PARAM: 0}
        params[PHONE_FILTER if phone else EMAIL_FILTER] = phone or email
        return [c for c in self.list_page(CUSTOMERS_PATH, params).items if isinstance(c, dict)]

    def create_customer(self, customer: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new customer (email, first_name, last_name and dob are required by Flourish) with one request (a
        create is never retried blindly: functions.core.pos_sync.writer.send_create); returns it."""
        if not customer.get("dob"):
            raise ValueError("flourish requires a date of birth (dob) to create a customer")
        _, payload = send_create(self._client, VENDOR, CUSTOMERS_PATH, dict(customer))
        data = payload.get("data") if isinstance(payload, Mapping) else None
        if not isinstance(data, dict) or data.get("id") is None:
            raise PosUncertainError(f"{VENDOR} answered a customer create without data.id")
        return data

    def close(self) -> None:
        self._client.close()


def require_facility(facilities: list[dict[str, Any]], facility_id: str | None) -> None:
    """A credential scoped to a facility the key cannot see is a credential problem, not an outage."""
    if facility_id is None:
        return
    if not any(str(f.get("id")) == str(facility_id) for f in facilities):
        raise CredentialError(
            "the Flourish credential's facility id is not one of the facilities its key can see; "
            "check the facility id and re-add it with `possync credentials add flourish`"
        )
