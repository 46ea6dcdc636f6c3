"""Profitek connector: AuthKey + store name, store info on prepare, page-numbered reads of a ModifiedDate window."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from functions.core.connector import MappingContext, RawPage, Window
from functions.core.credentials import ProfitekCredential
from functions.core.errors import MalformedPageError, VendorUnavailableError
from functions.core.layout import Stream, Vendor
from functions.core.models import CanonicalRecord
from functions.core.page_fastpath import LazyItems, PageValidator
from functions.pull_onprem.paging import count_field, envelope_items, format_instant, page_number
from functions.pull_onprem.profitek import mapping
from functions.pull_onprem.profitek.constants import (
    AUTH_HEADER,
    DEFAULT_PHONE_REGION,
    ENVELOPE_ITEMS,
    ENVELOPE_TOTAL_COUNT,
    ENVELOPE_TOTAL_PAGES,
    FIRST_PAGE,
    INFO_PATH,
    MAX_PAGE_SIZE,
    ORDER_BY_MODIFIED,
    PARAM_MODIFIED_BEFORE,
    PARAM_MODIFIED_SINCE,
    PARAM_ORDER_BY,
    PARAM_PAGE,
    PARAM_PAGE_SIZE,
    STORE_ROOT,
    STREAM_PATHS,
    STREAMS,
)
from functions.pull_onprem.transport import OnPremHttp
from functions.pull_onprem.values import text_or_none

# Each stream's list page validated from its bytes in one call (the happy path; refused: decoded, its items mapped one
# by one as before).
PAGE_VALIDATORS: Mapping[Stream, PageValidator] = {
    stream: PageValidator(
        model,
        mapping.PAGE_IDENTITY_ON,
        records_key=ENVELOPE_ITEMS,
        envelope_keys=(ENVELOPE_TOTAL_PAGES, ENVELOPE_TOTAL_COUNT),
        rewrite=mapping.PAGE_FORMS.get(stream),
    )
    for stream, model in mapping.PAGE_MODELS.items()
}


def page_items(stream: Stream, body: bytes) -> list[dict[str, Any]]:
    """A list page's items as the per-item path maps them."""
    return checked_items(stream, json.loads(body))


def checked_items(stream: Stream, payload: Any) -> list[dict[str, Any]]:
    """The items of a decoded list page, or MalformedPageError when it is no list page."""
    return envelope_items("profitek", stream, payload, ENVELOPE_ITEMS)


def auth_headers(credential: ProfitekCredential) -> dict[str, str]:
    return {AUTH_HEADER: credential.auth_key.get_secret_value()}


def store_root(store_name: str) -> str:
    return STORE_ROOT.format(store=quote(store_name, safe=""))


class ProfitekConnector:
    """One Profitek store (one credential): customers, transactions, items and loyalty balances."""

    vendor: Vendor = Vendor.PROFITEK
    streams: tuple[Stream, ...] = STREAMS

    def __init__(
        self, http: OnPremHttp, credential: ProfitekCredential, tenant: str, credential_id: str, page_size: int
    ) -> None:
        self.http = http
        self.credential = credential
        self.tenant = tenant
        self.credential_id = credential_id
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        self.root = store_root(credential.store_name)

    def prepare(self) -> MappingContext:
        """Reads the store's info: a refused key raises CredentialError; its Windows zone id becomes IANA."""
        _, info = self.http.get_json(self.root + INFO_PATH)
        if not isinstance(info, dict):
            raise MalformedPageError("profitek store info is not a JSON object")
        try:
            zone = mapping.store_timezone(info.get("TimeZone"))
        except ValueError:
            raise MalformedPageError(
                "profitek store info has no time zone we know; ask Profitek to set the store's time zone"
            ) from None
        store_id = text_or_none(info.get("StoreID"))
        return MappingContext(
            tenant=self.tenant,
            vendor=self.vendor,
            credential_id=self.credential_id,
            timezone=zone,
            default_region=DEFAULT_PHONE_REGION,
            extra={"store_id": store_id, "store_name": self.credential.store_name},
        )

    def path(self, stream: Stream) -> str:
        return self.root + STREAM_PATHS[stream]

    def request_params(self, window: Window, page: int) -> dict[str, Any]:
        params: dict[str, Any] = {
            PARAM_MODIFIED_BEFORE: format_instant(window.end),
            PARAM_ORDER_BY: ORDER_BY_MODIFIED,
            PARAM_PAGE: page,
            PARAM_PAGE_SIZE: self.page_size,
        }
        if window.start is not None:
            params[PARAM_MODIFIED_SINCE] = format_instant(window.start)
        return params

    def pages(self, stream: Stream, window: Window, token: dict[str, Any] | None) -> Iterator[RawPage]:
        """Pages of the window in (ModifiedDate, id) order, from the page a resume token names."""
        if stream not in self.streams:
            raise ValueError(f"profitek does not offer the {stream.value} stream")
        path = self.path(stream)
        page = page_number(token, FIRST_PAGE)
        while True:
            params = self.request_params(window, page)
            response, validated, payload = self.http.get_validated(path, params, PAGE_VALIDATORS[stream])
            items: Sequence[dict[str, Any]]
            if validated is None:
                items = checked_items(stream, payload)
            else:  # the envelope's counts as decoded; the items decoded only if an item's mapping fails
                payload = validated.envelope
                items = LazyItems(len(validated.payloads), functools.partial(page_items, stream, response.content))
            total_pages = count_field(payload, ENVELOPE_TOTAL_PAGES)
            total_count = count_field(payload, ENVELOPE_TOTAL_COUNT)
            more = page < total_pages if total_pages is not None else len(items) >= self.page_size
            if not items and (
                more or (total_pages is None and total_count is not None and total_count > (page - 1) * self.page_size)
            ):
                # The envelope still counts records on this page or after it: taken for the window's end, they would
                # be left unread with the window closed as read.
                raise VendorUnavailableError(
                    f"profitek served no records on page {page} while its envelope counts more "
                    f"({total_count} records, {total_pages} pages); the next run resumes at that page"
                )
            next_token = {"page": page + 1} if more and items else None
            yield RawPage(
                body=response.content,
                items=items,
                request={"method": "GET", "path": path, "params": params},
                next_token=next_token,
                total_records=total_count,
                payloads=None if validated is None else validated.payloads,
            )
            if next_token is None:
                return
            page += 1

    def map_record(self, stream: Stream, item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
        return mapping.map_record(stream, item, ctx)

    def map_payload(self, stream: Stream, payload: Any, ctx: MappingContext) -> CanonicalRecord:
        return mapping.map_payload(stream, payload, ctx)

    def item_id(self, stream: Stream, item: dict[str, Any]) -> str | None:
        return mapping.item_id(stream, item)

    def close(self) -> None:
        self.http.client.close()
