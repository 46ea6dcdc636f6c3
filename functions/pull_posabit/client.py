"""POSaBIT Venue API v3 client: Basic auth, page-numbered reads of an updated-at window, customer create."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from functions.core.connector import ConnectorConfig, RawPage, Window
from functions.core.credentials import PosabitCredential
from functions.core.errors import MalformedPageError, VendorUnavailableError
from functions.core.http import RequestRefusedError, RetryPolicy, VendorHttp, tls_context
from functions.core.layout import Stream, Vendor
from functions.core.observability import logger
from functions.core.page_fastpath import LazyItems, PageValidator, ValidatedPage
from functions.core.pos_sync.writer import PosUncertainError, send_create
from functions.pull_posabit.constants import (
    BOUNDARY_SLACK,
    CREATE_CUSTOMER_PATH,
    CREATE_CUSTOMER_WRAPPER,
    CUSTOMERS_EARLIEST_DATE,
    CUSTOMERS_PATH,
    ENVELOPE_CURRENT_PAGE,
    ENVELOPE_PER_PAGE,
    ENVELOPE_TOTAL_PAGES,
    ENVELOPE_TOTAL_RECORDS,
    PAGE_SIZE_FALLBACKS,
    PARAM_END_DATE,
    PARAM_PAGE,
    PARAM_PER_PAGE,
    PARAM_SORT,
    PARAM_START_DATE,
    PARAM_UPDATED_AFTER,
    PARAM_UPDATED_BEFORE,
    SORT_BY_UPDATE,
    STREAM_CONTRACTS,
    VENUE_INFO_PATH,
)
from functions.pull_posabit.mapping import IDENTITY_ON, PAGE_FORMS, PAGE_MODELS, unwrap_item

USER_AGENT = "possync/pull_posabit"


@dataclass(frozen=True)
class Envelope:
    """One list response: its items (as sent, possibly wrapped) and the paging envelope."""

    items: list[Any]
    total_records: int | None
    current_page: int | None
    total_pages: int | None
    per_page: int | None


def _count(payload: Mapping[str, Any], key: str) -> int | None:
    value = payload.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def parse_envelope(stream: Stream, payload: Any) -> Envelope:
    """The documented list envelope, or MalformedPageError when the body is not one."""
    key = STREAM_CONTRACTS[stream].records_key
    if not isinstance(payload, dict) or not isinstance(payload.get(key), list):
        raise MalformedPageError(f"posabit returned a {stream.value} page without a '{key}' list")
    return Envelope(
        items=payload[key],
        total_records=_count(payload, ENVELOPE_TOTAL_RECORDS),
        current_page=_count(payload, ENVELOPE_CURRENT_PAGE),
        total_pages=_count(payload, ENVELOPE_TOTAL_PAGES),
        per_page=_count(payload, ENVELOPE_PER_PAGE),
    )


_ENVELOPE_COUNTS = (ENVELOPE_TOTAL_RECORDS, ENVELOPE_CURRENT_PAGE, ENVELOPE_TOTAL_PAGES, ENVELOPE_PER_PAGE)

# Each stream's list page validated from its bytes in one call (the happy path; refused: `parse_envelope` and the
# items one by one).
PAGE_VALIDATORS: Mapping[Stream, PageValidator] = {
    stream: PageValidator(
        model,
        IDENTITY_ON,
        records_key=STREAM_CONTRACTS[stream].records_key,
        wrapper_keys=STREAM_CONTRACTS[stream].wrapper_keys,
        envelope_keys=_ENVELOPE_COUNTS,
        numeric_ids=True,  # its ids arrive as JSON numbers (every id of the simulator's pages)
        rewrite=PAGE_FORMS.get(stream),
    )
    for stream, model in PAGE_MODELS.items()
}


def validated_envelope(page: ValidatedPage) -> Envelope:
    """The envelope of a page validated in one call (its items: the payloads), read as `parse_envelope` reads it."""
    return Envelope(
        items=page.payloads,
        total_records=_count(page.envelope, ENVELOPE_TOTAL_RECORDS),
        current_page=_count(page.envelope, ENVELOPE_CURRENT_PAGE),
        total_pages=_count(page.envelope, ENVELOPE_TOTAL_PAGES),
        per_page=_count(page.envelope, ENVELOPE_PER_PAGE),
    )


def page_items(stream: Stream, body: bytes) -> list[dict[str, Any]]:
    """A list page's items as the per-item path maps them: decoded, unwrapped."""
    return [unwrap_item(stream, item) for item in parse_envelope(stream, json.loads(body)).items]


def _refuse(body: bytes) -> None:
    """The validator of a stream with no page model: every page takes the per-item path."""
    return None


def format_timestamp(moment: datetime) -> str:
    """How POSaBIT filters are written by its integrators: UTC, milliseconds, `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def request_params(stream: Stream, window: Window, page: int, per_page: int) -> dict[str, str]:
    """Query for one page of the records updated in [window.start, window.end)."""
    params = {
        PARAM_PAGE: str(page),
        PARAM_PER_PAGE: str(per_page),
        PARAM_SORT: SORT_BY_UPDATE,
        PARAM_UPDATED_BEFORE: format_timestamp(window.end),
    }
    if window.start is not None:
        params[PARAM_UPDATED_AFTER] = format_timestamp(window.start - BOUNDARY_SLACK)
    if STREAM_CONTRACTS[stream].needs_date_range:
        last_day = (window.end.astimezone(UTC) + timedelta(days=1)).date()
        params[PARAM_START_DATE] = CUSTOMERS_EARLIEST_DATE.isoformat()
        params[PARAM_END_DATE] = last_day.isoformat()
    return params


def next_page_number(page: int, envelope: Envelope, previous_total: int | None, per_page: int) -> int | None:
    """The page to read after `page`, or None when the window is done.

    The window's end is fixed in the past, so a record updated while we page leaves it and every record after it
    moves up a place: read on by page number and one of them would be skipped. The envelope's total says how
    many left since the previous page; stepping back that many places (whole pages) re-reads what moved across
    the boundary. Records read twice are deduplicated by the engine; a record read never is lost. An empty page the
    envelope still counts records on (a server's hiccup) is no end: VendorUnavailableError, the next run resumes there.
    """
    size = envelope.per_page or per_page
    total = envelope.total_records
    if previous_total is not None and total is not None and total < previous_total:
        back = -(-(previous_total - total) // size)
        return max(1, page - back)
    if not envelope.items:
        if (total is not None and total > (page - 1) * size) or (
            total is None and envelope.total_pages is not None and page < envelope.total_pages
        ):
            # The envelope still counts records on this page or after it: taken for the window's end, they would be
            # left unread with the window closed as read (and when the sort is ignored, behind the cursor for good).
            raise VendorUnavailableError(
                f"posabit served no records on page {page} while its envelope counts "
                f"{total if total is not None else f'{envelope.total_pages} pages'}; the next run resumes at that page"
            )
        return None
    if envelope.total_pages is not None:
        return page + 1 if page < envelope.total_pages else None
    if total is not None:
        return page + 1 if page * size < total else None
    return page + 1 if len(envelope.items) >= size else None


def _token_int(token: Mapping[str, Any], key: str) -> int | None:
    # Checkpoints come back from DynamoDB with numbers as Decimal.
    value = token.get(key)
    return None if value is None else int(value)


class NewCustomer(BaseModel):
    """What persona sync sends when it creates a shopper in POSaBIT (field names as POSaBIT spells them)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(default="", max_length=100)
    telephone: str | None = Field(default=None, pattern=r"^\d{10}$")  # digits only, as POSaBIT stores them
    email: str | None = Field(default=None, max_length=254)
    birthday: date | None = None
    state: str | None = Field(default=None, min_length=2, max_length=2)
    zipcode: str | None = Field(default=None, max_length=10)
    loyalty_member: bool = True
    marketing_opt_in: bool = False
    sms_opt_in: bool = False


class PosabitClient:
    """Sends POSaBIT requests through the shared HTTP policy; the tokens live only on the httpx client."""

    def __init__(
        self,
        credential: PosabitCredential,
        config: ConnectorConfig,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self._refused_down: dict[Stream, int] = {}  # page sizes the server refused a larger one for
        self._client = httpx.Client(
            base_url=config.base_url,
            auth=httpx.BasicAuth(
                credential.integrator_token.get_secret_value(), credential.venue_token.get_secret_value()
            ),
            timeout=httpx.Timeout(connect=config.connect_timeout, read=config.read_timeout, write=10.0, pool=5.0),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            transport=transport,
            verify=tls_context(),
        )
        policy = policy or RetryPolicy(
            attempts=config.retry_attempts,
            wait_initial=config.retry_wait_initial,
            wait_max=config.retry_wait_max,
            wait_jitter=config.retry_wait_initial,
        )
        self.http = VendorHttp(self._client, Vendor.POSABIT.value, policy, sleep=sleep)

    # --- airbyte HttpStream vocabulary ----------------------------------------------------------------------------
    @staticmethod
    def path(stream: Stream) -> str:
        return STREAM_CONTRACTS[stream].path

    def page_size(self, stream: Stream) -> int:
        return self._refused_down.get(stream) or self.page_size_asked(stream)

    def request_params(self, stream: Stream, window: Window, page: int) -> dict[str, str]:
        return request_params(stream, window, page, self.page_size(stream))

    def _smaller_page(self, stream: Stream, refused: int) -> int | None:
        """The next page size to ask for after `refused` was refused, or None when no smaller one is left."""
        smaller = next((size for size in PAGE_SIZE_FALLBACKS if size < refused), None)
        if smaller is not None:
            self._refused_down[stream] = smaller
        return smaller

    def page_size_asked(self, stream: Stream) -> int:
        """The page size asked for before any refusal: the contract's largest, within the deployment's page_size."""
        return max(1, min(self.config.page_size, STREAM_CONTRACTS[stream].max_per_page))

    @staticmethod
    def parse_response(stream: Stream, payload: Any) -> Envelope:
        return parse_envelope(stream, payload)

    # --- reads ------------------------------------------------------------------------------------------------------
    def venue_info(self) -> dict[str, Any]:
        """The venue's own record (name, state, `timezone`); also proves the credential works."""
        _, payload = self.http.get_json(VENUE_INFO_PATH)
        if isinstance(payload, dict) and isinstance(payload.get("venue"), dict):
            payload = payload["venue"]
        if not isinstance(payload, dict):
            raise MalformedPageError("posabit returned venue info that is not an object")
        return payload

    def read_pages(self, stream: Stream, window: Window, token: Mapping[str, Any] | None = None) -> Iterator[RawPage]:
        """Every page of the window in order, from `token` (a previous page's next_token) when given."""
        page = max(1, _token_int(token, "page") or 1) if token else 1
        previous_total = _token_int(token, "total_records") if token else None
        path = self.path(stream)
        resumed_size = _token_int(token, "per_page") if token else None
        if resumed_size is not None and resumed_size < self.page_size(stream):
            self._refused_down[stream] = resumed_size  # page numbers in the token count pages of this size
        per_page = self.page_size(stream)
        validator = PAGE_VALIDATORS.get(stream, _refuse)
        while True:
            params = request_params(stream, window, page, per_page)
            try:
                response, validated, payload = self.http.get_validated(path, params, validator)
            except RequestRefusedError:
                smaller = self._smaller_page(stream, per_page)
                if smaller is None:
                    raise
                # Same place in the window at the smaller size (rounded down: a record read twice is deduplicated,
                # one skipped would be lost).
                page = (page - 1) * per_page // smaller + 1
                logger.warning(
                    "posabit refused the page size; asking for smaller pages",
                    vendor=Vendor.POSABIT.value,
                    stream=stream.value,
                    refused=per_page,
                    per_page=smaller,
                )
                per_page = smaller
                continue
            envelope = self.parse_response(stream, payload) if validated is None else validated_envelope(validated)
            following = next_page_number(page, envelope, previous_total, per_page)
            next_token: dict[str, Any] | None = None
            if following is not None:
                next_token = {"page": following, "total_records": envelope.total_records}
                if per_page != self.page_size_asked(stream):
                    next_token["per_page"] = per_page
            body = response.content
            items: Sequence[dict[str, Any]]
            if validated is None:
                items = [unwrap_item(stream, item) for item in envelope.items]
            else:
                items = LazyItems(len(envelope.items), functools.partial(page_items, stream, body))
            yield RawPage(
                body=body,
                items=items,
                request={"method": "GET", "path": path, "params": params},
                next_token=next_token,
                total_records=envelope.total_records,
                payloads=None if validated is None else validated.payloads,
            )
            if following is None:
                return
            page, previous_total = following, envelope.total_records

    def find_customers(self, *, telephone: str | None = None, email: str | None = None) -> list[dict[str, Any]]:
        """Customers whose phone (10 digits) or email equals the given one: persona sync looks before it creates."""
        if not telephone and not email:
            raise ValueError("find_customers needs a telephone or an email")
        params: dict[str, str] = {
            PARAM_PER_PAGE: "10",
            PARAM_START_DATE: CUSTOMERS_EARLIEST_DATE.isoformat(),
            PARAM_END_DATE: (datetime.now(UTC) + timedelta(days=1)).date().isoformat(),
        }
        if telephone:
            params["q[telephone_eq]"] = telephone
        if email:
            params["q[email_eq]"] = email
        _, payload = self.http.get_json(CUSTOMERS_PATH, params)
        return [unwrap_item(Stream.CUSTOMERS, item) for item in parse_envelope(Stream.CUSTOMERS, payload).items]

    # --- writes -----------------------------------------------------------------------------------------------------
    def create_customer(self, customer: NewCustomer) -> dict[str, Any]:
        """Create a shopper in the venue with one request (a create is never retried blindly: functions.core.pos_sync
        .writer.send_create says whether it may have happened); returns POSaBIT's record of it (with its new `id`)."""
        body = {CREATE_CUSTOMER_WRAPPER: customer.model_dump(mode="json", exclude_none=True)}
        _, payload = send_create(self._client, Vendor.POSABIT.value, CREATE_CUSTOMER_PATH, body)
        if payload is None:
            raise PosUncertainError("posabit answered a customer create with a body that is not JSON")
        record = unwrap_item(Stream.CUSTOMERS, payload)
        if "id" not in record:
            raise PosUncertainError("posabit answered a customer create without the new customer's id")
        return record

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PosabitClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
