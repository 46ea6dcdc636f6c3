"""THSuite REST client: bearer auth, page/limit paging over an update-time window (ASSUMED, see CONTRACT.md)."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.core.connector import ConnectorConfig, RawPage, Window
from functions.core.credentials import ThsuiteCredential
from functions.core.errors import MalformedPageError
from functions.core.http import RetryPolicy, VendorHttp, tls_context
from functions.core.layout import Stream, Vendor
from functions.core.observability import logger
from functions.core.page_fastpath import LazyItems, PageValidator
from functions.pull_thsuite.constants import (
    AUTH_HEADER,
    AUTH_SCHEME,
    FIRST_PAGE,
    MAX_PAGE_SIZE,
    PARAM_LIMIT,
    PARAM_PAGE,
    PARAM_SORT,
    PARAM_UPDATED_BEFORE,
    PARAM_UPDATED_SINCE,
    SORT_BY_UPDATE,
    STORE_PATH,
    STREAM_PATHS,
    USER_AGENT,
)
from functions.pull_thsuite.mapping import IDENTITY_ON, PAGE_FORMS, PAGE_MODELS, ThsuiteStore


class Envelope(BaseModel):
    """The ASSUMED list envelope: {"data": [...], "page": n, "limit": n, "total": n, "has_more": bool}."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    data: list[dict[str, Any]]
    page: int | None = None
    limit: int | None = None
    total: int | None = Field(default=None, ge=0)
    has_more: bool | None = None


_ENVELOPE_FIELDS = tuple(name for name in Envelope.model_fields if name != "data")

# Each stream's list page validated from its bytes in one call (the happy path; refused: decoded, its envelope and
# items as before), receipts in their page form (mapping.PAGE_FORMS).
PAGE_VALIDATORS: Mapping[Stream, PageValidator] = {
    stream: PageValidator(
        model,
        IDENTITY_ON,
        records_key="data",
        envelope_keys=_ENVELOPE_FIELDS,
        blanks_as_none=True,
        numeric_ids=True,  # its ids arrive as JSON numbers (every id of the simulator's pages)
        rewrite=PAGE_FORMS.get(stream),
    )
    for stream, model in PAGE_MODELS.items()
}


def page_items(path: str, body: bytes) -> list[dict[str, Any]]:
    """A list page's items as the per-item path maps them."""
    return ThsuiteClient.parse_response(json.loads(body), path).data


class PageToken(BaseModel):
    """Where to resume: the page to ask for next and the page size it was counted with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    page: int = Field(ge=FIRST_PAGE)
    limit: int = Field(ge=1, le=MAX_PAGE_SIZE)


def build_http_client(credential: ThsuiteCredential, config: ConnectorConfig) -> httpx.Client:
    """The only place the integration token is read: it lives in the client's default headers, nowhere else."""
    token = credential.integration_token.get_secret_value()
    return httpx.Client(
        base_url=config.base_url,
        headers={
            AUTH_HEADER: f"{AUTH_SCHEME} {token}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        },
        timeout=httpx.Timeout(
            connect=config.connect_timeout,
            read=config.read_timeout,
            write=config.read_timeout,
            pool=config.connect_timeout,
        ),
        verify=tls_context(),
        follow_redirects=False,
    )


def retry_policy(config: ConnectorConfig) -> RetryPolicy:
    return RetryPolicy(
        attempts=config.retry_attempts,
        wait_initial=config.retry_wait_initial,
        wait_max=config.retry_wait_max,
    )


def iso_utc(value: datetime) -> str:
    """A filter bound as THSuite reads it (ASSUMED): ISO-8601 in UTC with a Z, to the microsecond when present."""
    if value.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class ThsuiteClient:
    """Reads one store's collections page by page (method names after airbyte's HttpStream)."""

    vendor = Vendor.THSUITE

    def __init__(self, http: VendorHttp, page_size: int) -> None:
        self.http = http
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))

    @classmethod
    def open(
        cls, credential: ThsuiteCredential, config: ConnectorConfig, sleep: Callable[[float], None] = time.sleep
    ) -> ThsuiteClient:
        http = VendorHttp(build_http_client(credential, config), Vendor.THSUITE.value, retry_policy(config), sleep)
        return cls(http, config.page_size)

    def close(self) -> None:
        self.http.client.close()

    def store(self) -> ThsuiteStore:
        """The token's store; one cheap call that also proves the token (401/403 -> CredentialError)."""
        _, payload = self.http.get_json(STORE_PATH)
        body = payload.get("data", payload) if isinstance(payload, dict) else payload
        try:
            return ThsuiteStore.model_validate(body)
        except ValidationError:
            raise MalformedPageError(f"thsuite answered {STORE_PATH} without a usable store object") from None

    @staticmethod
    def path(stream: Stream) -> str:
        try:
            return STREAM_PATHS[stream]
        except KeyError:
            raise ValueError(f"THSuite has no {stream} stream") from None

    @staticmethod
    def request_params(window: Window, position: PageToken) -> dict[str, str | int]:
        params: dict[str, str | int] = {
            PARAM_UPDATED_BEFORE: iso_utc(window.end),
            PARAM_SORT: SORT_BY_UPDATE,
            PARAM_PAGE: position.page,
            PARAM_LIMIT: position.limit,
        }
        if window.start is not None:
            params[PARAM_UPDATED_SINCE] = iso_utc(window.start)
        return params

    @staticmethod
    def parse_response(payload: Any, path: str) -> Envelope:
        try:
            return Envelope.model_validate(payload)
        except ValidationError:
            raise MalformedPageError(f"thsuite answered {path} without the list envelope") from None

    @staticmethod
    def next_page_token(envelope: Envelope, position: PageToken, count: int | None = None) -> dict[str, Any] | None:
        """The next page while the server says there is more; an empty page ends the window whatever it says. `count`:
        the page's items when they are not in the envelope (a page validated from its bytes)."""
        if not (envelope.data if count is None else count):
            return None
        more = envelope.has_more
        if more is None:
            more = envelope.total is not None and position.page * position.limit < envelope.total
        if not more:
            return None
        return PageToken(page=position.page + 1, limit=position.limit).model_dump()

    def start_position(self, token: dict[str, Any] | None) -> PageToken:
        if token is None:
            return PageToken(page=FIRST_PAGE, limit=self.page_size)
        try:
            return PageToken.model_validate(token)
        except ValidationError:
            # Re-reading a window from its first page is always safe: unchanged records write nothing.
            logger.warning("unreadable THSuite resume token; the window restarts at page 1", vendor=self.vendor.value)
            return PageToken(page=FIRST_PAGE, limit=self.page_size)

    def pages(self, stream: Stream, window: Window, token: dict[str, Any] | None) -> Iterator[RawPage]:
        path = self.path(stream)
        position = self.start_position(token)
        while True:
            params = self.request_params(window, position)
            response, validated, payload = self.http.get_validated(path, params, PAGE_VALIDATORS[stream])
            items: Sequence[dict[str, Any]]
            if validated is None:
                envelope = self.parse_response(payload, path)
                items = envelope.data
            else:
                # The envelope read from the same fields as the per-item path reads (its own errors), the items left
                # to be decoded only if an item's mapping fails.
                envelope = self.parse_response({**validated.envelope, "data": []}, path)
                items = LazyItems(len(validated.payloads), functools.partial(page_items, path, response.content))
            next_token = self.next_page_token(envelope, position, len(items))
            yield RawPage(
                body=response.content,
                items=items,
                request={"method": "GET", "path": path, "params": params},
                next_token=next_token,
                total_records=envelope.total,
                payloads=None if validated is None else validated.payloads,
            )
            if next_token is None:
                return
            position = PageToken.model_validate(next_token)
