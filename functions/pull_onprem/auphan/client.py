"""Auphan connector: APIKey header, store info on prepare, cursor-paged reads of an updatedAt window."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from functions.core.connector import MappingContext, RawPage, Window
from functions.core.credentials import AuphanCredential
from functions.core.errors import MalformedPageError
from functions.core.layout import Stream, Vendor
from functions.core.models import CanonicalRecord
from functions.core.page_fastpath import LazyItems, PageValidator
from functions.pull_onprem.auphan import mapping
from functions.pull_onprem.auphan.constants import (
    AUTH_HEADER,
    DEFAULT_PHONE_REGION,
    ENVELOPE_ITEMS,
    ENVELOPE_NEXT_CURSOR,
    ENVELOPE_TOTAL_COUNT,
    MAX_PAGE_SIZE,
    PARAM_CURSOR,
    PARAM_LIMIT,
    PARAM_SORT,
    PARAM_UPDATED_FROM,
    PARAM_UPDATED_TO,
    SORT_BY_UPDATE,
    STORE_PATH,
    STREAM_PATHS,
    STREAMS,
)
from functions.pull_onprem.paging import count_field, cursor_of, envelope_items, format_instant
from functions.pull_onprem.transport import OnPremHttp
from functions.pull_onprem.values import IDENTITY_ON, store_zone, text_or_none

# Each stream's list page validated from its bytes in one call (the happy path; refused: decoded, its items mapped one
# by one as before).
PAGE_VALIDATORS: Mapping[Stream, PageValidator] = {
    stream: PageValidator(
        model,
        IDENTITY_ON,
        records_key=ENVELOPE_ITEMS,
        envelope_keys=(ENVELOPE_NEXT_CURSOR, ENVELOPE_TOTAL_COUNT),
        rewrite=mapping.PAGE_FORMS.get(stream),
    )
    for stream, model in mapping.PAGE_MODELS.items()
}


def page_items(stream: Stream, body: bytes) -> list[dict[str, Any]]:
    """A list page's items as the per-item path maps them."""
    return checked_items(stream, json.loads(body))


def checked_items(stream: Stream, payload: Any) -> list[dict[str, Any]]:
    """The items of a decoded list page, or MalformedPageError when it is no list page."""
    return envelope_items("auphan", stream, payload, ENVELOPE_ITEMS)


def auth_headers(credential: AuphanCredential) -> dict[str, str]:
    return {AUTH_HEADER: credential.api_key.get_secret_value()}


class AuphanConnector:
    """One Auphan store (one credential): customers, sales and products."""

    vendor: Vendor = Vendor.AUPHAN
    streams: tuple[Stream, ...] = STREAMS

    def __init__(self, http: OnPremHttp, tenant: str, credential_id: str, page_size: int) -> None:
        self.http = http
        self.tenant = tenant
        self.credential_id = credential_id
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))

    def prepare(self) -> MappingContext:
        """Reads the store's info: a refused key raises CredentialError; its IANA zone drives local dates."""
        _, info = self.http.get_json(STORE_PATH)
        if not isinstance(info, dict):
            raise MalformedPageError("auphan store info is not a JSON object")
        zone = text_or_none(info.get("timeZone")) or ""
        try:
            store_zone(zone)
        except ValueError:
            raise MalformedPageError(
                "auphan store info has no time zone we know; ask Auphan to set the store's time zone"
            ) from None
        return MappingContext(
            tenant=self.tenant,
            vendor=self.vendor,
            credential_id=self.credential_id,
            timezone=zone,
            default_region=DEFAULT_PHONE_REGION,
            extra={"store_id": text_or_none(info.get("storeId"))},
        )

    def request_params(self, window: Window, cursor: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            PARAM_UPDATED_TO: format_instant(window.end),
            PARAM_SORT: SORT_BY_UPDATE,
            PARAM_LIMIT: self.page_size,
        }
        if window.start is not None:
            params[PARAM_UPDATED_FROM] = format_instant(window.start)
        if cursor is not None:
            params[PARAM_CURSOR] = cursor
        return params

    def pages(self, stream: Stream, window: Window, token: dict[str, Any] | None) -> Iterator[RawPage]:
        """Pages of the window in (updatedAt, id) order, from the cursor a resume token holds."""
        if stream not in self.streams:
            raise ValueError(f"auphan does not offer the {stream.value} stream")
        path = STREAM_PATHS[stream]
        cursor = cursor_of(token)
        while True:
            params = self.request_params(window, cursor)
            response, validated, payload = self.http.get_validated(path, params, PAGE_VALIDATORS[stream])
            items: Sequence[dict[str, Any]]
            if validated is None:
                items = checked_items(stream, payload)
            else:  # the envelope's cursor and count as decoded; the items decoded only if an item's mapping fails
                payload = validated.envelope
                items = LazyItems(len(validated.payloads), functools.partial(page_items, stream, response.content))
            next_cursor = payload.get(ENVELOPE_NEXT_CURSOR)
            if next_cursor is not None and (not isinstance(next_cursor, str) or not next_cursor):
                raise MalformedPageError(f"auphan returned a page of {stream.value} with an unreadable next cursor")
            if next_cursor is not None and next_cursor == cursor:
                raise MalformedPageError(f"auphan returned the same {stream.value} cursor twice; paging would loop")
            more = next_cursor is not None and bool(items)
            yield RawPage(
                body=response.content,
                items=items,
                request={"method": "GET", "path": path, "params": params},
                next_token={"cursor": next_cursor} if more else None,
                total_records=count_field(payload, ENVELOPE_TOTAL_COUNT),
                payloads=None if validated is None else validated.payloads,
            )
            if not more:
                return
            cursor = next_cursor

    def map_record(self, stream: Stream, item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
        return mapping.map_record(stream, item, ctx)

    def map_payload(self, stream: Stream, payload: Any, ctx: MappingContext) -> CanonicalRecord:
        return mapping.map_payload(stream, payload, ctx)

    def item_id(self, stream: Stream, item: dict[str, Any]) -> str | None:
        return mapping.item_id(stream, item)

    def close(self) -> None:
        self.http.client.close()
