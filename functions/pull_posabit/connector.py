"""The POSaBIT connector the pull engine drives: venue zone on prepare, windowed pages, pure mapping."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from functions.core.connector import ConnectorConfig, MappingContext, RawPage, Window
from functions.core.credentials import Credential, PosabitCredential
from functions.core.errors import CredentialError, MalformedPageError
from functions.core.http import RetryPolicy
from functions.core.layout import Stream, Vendor
from functions.core.models import CanonicalRecord
from functions.core.observability import logger
from functions.pull_posabit import mapping
from functions.pull_posabit.client import PosabitClient
from functions.pull_posabit.constants import DEFAULT_PHONE_REGION, DERIVED_STREAMS, OFFERED_STREAMS


class PosabitConnector:
    """One venue (one credential): customers, sales histories, inventories and loyalty balances."""

    vendor: Vendor = Vendor.POSABIT
    streams: tuple[Stream, ...] = OFFERED_STREAMS
    derived_streams: Mapping[Stream, Stream] = DERIVED_STREAMS

    def __init__(self, client: PosabitClient, credential: PosabitCredential, tenant: str, credential_id: str) -> None:
        self.client = client
        self.credential = credential
        self.tenant = tenant
        self.credential_id = credential_id

    def prepare(self) -> MappingContext:
        """Reads the venue's info: a refused credential raises CredentialError; its zone becomes IANA."""
        info = self.client.venue_info()
        try:
            zone, from_venue = mapping.venue_timezone(info, self.credential.market)
        except ValueError:
            raise MalformedPageError(
                "posabit venue info has no usable timezone and no state to infer one from; "
                "ask POSaBIT to set the venue's time zone"
            ) from None
        if not from_venue:
            logger.warning(
                "posabit venue timezone unknown; using its state's zone",
                vendor=self.vendor.value,
                credential=self.credential_id,
                timezone=zone,
            )
        venue_id = info.get("id")
        return MappingContext(
            tenant=self.tenant,
            vendor=self.vendor,
            credential_id=self.credential_id,
            timezone=zone,
            default_region=DEFAULT_PHONE_REGION,
            extra={"venue_id": None if venue_id is None else str(venue_id), "venue_name": info.get("name")},
        )

    def pages(self, stream: Stream, window: Window, token: dict[str, Any] | None) -> Iterator[RawPage]:
        if stream not in self.streams:
            raise ValueError(f"posabit does not offer the {stream.value} stream")
        return self.client.read_pages(stream, window, token)

    def map_record(self, stream: Stream, item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
        return mapping.map_record(stream, item, ctx)

    def map_payload(self, stream: Stream, payload: Any, ctx: MappingContext) -> CanonicalRecord:
        return mapping.map_payload(stream, payload, ctx)

    def item_id(self, stream: Stream, item: dict[str, Any]) -> str | None:
        return mapping.item_id(stream, item)

    def close(self) -> None:
        self.client.close()


def open_connector(
    credential: Credential,
    config: ConnectorConfig,
    *,
    tenant: str,
    credential_id: str,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PosabitConnector:
    """The connector for one POSaBIT credential; its records carry `tenant` and `credential_id`."""
    if not isinstance(credential, PosabitCredential):
        raise CredentialError(f"a {credential.vendor.value} credential cannot open a posabit connector")
    client = PosabitClient(credential, config, policy=policy, sleep=sleep)
    return PosabitConnector(client, credential, tenant, credential_id)


# --- replay codec: rebuild records from an archived page body (possync replay) -------------------------


def extract_items(stream: Stream, body: bytes) -> list[dict[str, Any]]:
    """The items of an archived list page, unwrapped exactly as a pull hands them to the mapping."""
    from functions.pull_posabit.client import page_items

    try:
        return page_items(stream, body)
    except ValueError:
        raise MalformedPageError(f"archived posabit {stream.value} page is not JSON") from None


def map_item(stream: Stream, item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    return mapping.map_record(stream, item, ctx)


def item_id(stream: Stream, item: dict[str, Any]) -> str | None:
    return mapping.item_id(stream, item)
