"""Flourish connector: the pull engine's view of one credential (customers, retail orders as sales, items)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx

from functions.core.compact_json import compact_member
from functions.core.connector import ConnectorConfig, MappingContext, RawPage, Window
from functions.core.credentials import Credential, FlourishCredential
from functions.core.errors import CredentialError
from functions.core.http import RetryPolicy
from functions.core.layout import Stream, Vendor
from functions.core.models import CanonicalRecord
from functions.pull_flourish import mapping
from functions.pull_flourish.client import FlourishClient, format_timestamp, require_facility
from functions.pull_flourish.constants import FALLBACK_TIMEZONE, MAX_LIMIT, OVERLAP, STREAM_PASSES, Pass
from functions.pull_flourish.paging import Cursor, read_listing


def pass_params(spec: Pass, window: Window) -> dict[str, Any]:
    """The documented filters of one pass for a window: `<field>_timestamp_start/_end` plus fixed filters."""
    params: dict[str, Any] = dict(spec.fixed)
    start = window.start
    if start is not None and spec.revisit is not None:
        start -= spec.revisit
    if start is not None:
        params[f"{spec.time_filter}_timestamp_start"] = format_timestamp(start)
    params[f"{spec.time_filter}_timestamp_end"] = format_timestamp(window.end)
    return params


class FlourishConnector:
    """Implements functions.core.connector.Connector over a FlourishClient; mapping is delegated (pure)."""

    vendor: Vendor = Vendor.FLOURISH
    streams: tuple[Stream, ...] = tuple(STREAM_PASSES)

    def __init__(
        self,
        credential: FlourishCredential,
        config: ConnectorConfig,
        *,
        tenant: str = "",
        credential_id: str = "",
        retry_policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.credential = credential
        self.tenant = tenant
        self.credential_id = credential_id
        # Each request re-reads OVERLAP records, so a page must be several times larger to make headway.
        self.limit = max(4 * OVERLAP, min(config.page_size, MAX_LIMIT))
        policy = retry_policy or RetryPolicy(
            attempts=config.retry_attempts,
            wait_initial=config.retry_wait_initial,
            wait_max=config.retry_wait_max,
        )
        timeout = httpx.Timeout(
            connect=config.connect_timeout, read=config.read_timeout, write=config.read_timeout, pool=5.0
        )
        self.client = FlourishClient(credential, config.base_url, timeout=timeout, policy=policy, transport=transport)

    def prepare(self) -> MappingContext:
        """One cheap call: the facilities list validates the key and gives each facility's time zone."""
        facilities = self.client.facilities()
        facility_id = self.credential.facility_id
        require_facility(facilities, facility_id)
        zones = {str(f.get("id")): mapping.facility_timezone(f) for f in facilities if f.get("id") is not None}
        # A company-wide key: each sale uses its own facility's zone; customers and items use the first one.
        first_zone = next(iter(zones.values()), FALLBACK_TIMEZONE)
        timezone = zones[str(facility_id)] if facility_id is not None else first_zone
        return MappingContext(
            tenant=self.tenant,
            vendor=self.vendor,
            credential_id=self.credential_id,
            timezone=timezone,
            default_region="US",
            extra={
                mapping.FACILITY_TIMEZONES: zones,
                mapping.FACILITY_ID: None if facility_id is None else str(facility_id),
                "regions": list(self.credential.regions),
            },
        )

    def pages(self, stream: Stream, window: Window, token: dict[str, Any] | None) -> Iterator[RawPage]:
        """Each pass of the stream in turn; the token names the pass and where in it to resume."""
        passes = [p for p in STREAM_PASSES[stream] if window.start is not None or not p.needs_start]
        names = [p.name for p in passes]
        resume = token.get("pass") if token else None
        first = names.index(resume) if resume in names else 0
        cursor = Cursor.from_token(token) if token and resume in names else None
        # A stream read in several passes reports no envelope total: pass totals differ by design and would make
        # the engine re-read the window for nothing. A single-pass total is the filtered set's size.
        single = len(passes) == 1
        for position in range(first, len(passes)):
            spec = passes[position]
            following = passes[position + 1].name if position + 1 < len(passes) else None
            fetch = partial(self.client.list_page, spec.path)
            for served in read_listing(fetch, pass_params(spec, window), self.limit, cursor):
                if served.next_cursor is not None:
                    next_token: dict[str, Any] | None = {"pass": spec.name, **served.next_cursor.to_token()}
                else:
                    next_token = None if following is None else {"pass": following, "offset": 0}
                yield RawPage(
                    body=served.page.body,
                    items=served.fresh,
                    request={"method": "GET", "path": spec.path, "params": served.params},
                    next_token=next_token,
                    total_records=served.page.total if single else None,
                    # meta.next echoes the query, window end included: the items alone identify the page (their
                    # compact JSON as json.dumps writes it: the digests the archived-page index already holds)
                    identity=compact_member(served.page.body, "data", served.page.items),
                )
            cursor = None

    def map_record(self, stream: Stream, item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
        return mapping.map_record(stream, item, ctx)

    def item_id(self, stream: Stream, item: dict[str, Any]) -> str | None:
        return mapping.item_id(item)

    def create_customer(self, customer: dict[str, Any]) -> dict[str, Any]:
        """Persona -> POS: create a Flourish customer (needs a date of birth); returns the created record."""
        return self.client.create_customer(customer)

    def close(self) -> None:
        self.client.close()


def open_connector(
    credential: Credential,
    config: ConnectorConfig,
    *,
    tenant: str = "",
    credential_id: str = "",
    retry_policy: RetryPolicy | None = None,
) -> FlourishConnector:
    """Build the connector for one Flourish credential; no request is sent until prepare()."""
    if not isinstance(credential, FlourishCredential):
        raise CredentialError(f"a {credential.vendor.value} credential cannot open a Flourish connection")
    return FlourishConnector(credential, config, tenant=tenant, credential_id=credential_id, retry_policy=retry_policy)


# --- replay codec: rebuild records from an archived page body (possync replay) -------------------------


def extract_items(stream: Stream, body: bytes) -> list[dict[str, Any]]:
    """The items of an archived list page (its overlap rows included: re-mapping them again writes nothing)."""
    import json

    from functions.core.errors import MalformedPageError

    try:
        payload = json.loads(body)
    except ValueError:
        raise MalformedPageError(f"archived flourish {stream.value} page is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise MalformedPageError(f"archived flourish {stream.value} page has no data list")
    return [item for item in payload["data"] if isinstance(item, dict)]


def map_item(stream: Stream, item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    return mapping.map_record(stream, item, ctx)


def item_id(stream: Stream, item: dict[str, Any]) -> str | None:
    return mapping.item_id(item)
