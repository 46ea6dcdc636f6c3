"""THSuite connector: what the pull engine drives for one store token (contract ASSUMED, see CONTRACT.md)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from functions.core.connector import ConnectorConfig, MappingContext, RawPage, Window
from functions.core.credentials import Credential, ThsuiteCredential
from functions.core.errors import CredentialError
from functions.core.layout import Stream, Vendor
from functions.core.models import CanonicalRecord
from functions.core.observability import logger
from functions.pull_thsuite import mapping
from functions.pull_thsuite.client import ThsuiteClient
from functions.pull_thsuite.constants import STREAMS


class ThsuiteConnector:
    """Implements functions.core.connector.Connector over a ThsuiteClient; mapping is delegated (pure)."""

    def __init__(self, client: ThsuiteClient, *, tenant: str = "", credential_id: str = "") -> None:
        self.vendor: Vendor = Vendor.THSUITE
        self.streams: tuple[Stream, ...] = STREAMS
        self.client = client
        self.tenant = tenant
        self.credential_id = credential_id

    def prepare(self) -> MappingContext:
        store = self.client.store()
        ctx = mapping.mapping_context(store, tenant=self.tenant, credential_id=self.credential_id)
        if not ctx.extra.get("timezone_known"):
            # Offset timestamps stay exact; only naive ones and local dates lean on the zone, so keep pulling.
            logger.warning(
                "THSuite store timezone not recognized; naive times are read as UTC",
                vendor=self.vendor.value,
                store_timezone=(store.timezone or "")[:64],
            )
        return ctx

    def pages(self, stream: Stream, window: Window, token: dict[str, Any] | None) -> Iterator[RawPage]:
        return self.client.pages(stream, window, token)

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
    tenant: str = "",
    credential_id: str = "",
    sleep: Callable[[float], None] = time.sleep,
) -> ThsuiteConnector:
    """Build the connector for one THSuite credential; no request is sent until prepare()."""
    if not isinstance(credential, ThsuiteCredential):
        raise CredentialError(f"a {credential.vendor.value} credential cannot open a THSuite connection")
    client = ThsuiteClient.open(credential, config, sleep)
    return ThsuiteConnector(client, tenant=tenant, credential_id=credential_id)


# --- replay codec: rebuild records from an archived page body (possync replay) -------------------------


def extract_items(stream: Stream, body: bytes) -> list[dict[str, Any]]:
    """The items of an archived list page, as a pull hands them to the mapping."""
    import json

    from functions.core.errors import MalformedPageError

    try:
        payload = json.loads(body)
    except ValueError:
        raise MalformedPageError(f"archived thsuite {stream.value} page is not JSON") from None
    return ThsuiteClient.parse_response(payload, f"archive:{stream.value}").data


def map_item(stream: Stream, item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    return mapping.map_record(stream, item, ctx)


def item_id(stream: Stream, item: dict[str, Any]) -> str | None:
    return mapping.item_id(stream, item)
