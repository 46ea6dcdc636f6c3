"""The on-premises connectors: the credential's vendor picks Profitek or Auphan; both reach a checked endpoint."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from functions.core.connector import Connector, ConnectorConfig, MappingContext
from functions.core.credentials import AuphanCredential, Credential, ProfitekCredential
from functions.core.errors import CredentialError
from functions.core.http import RetryPolicy
from functions.core.layout import Stream, Vendor
from functions.core.models import CanonicalRecord
from functions.core.netguard import Resolver
from functions.pull_onprem.auphan import client as auphan
from functions.pull_onprem.auphan import mapping as auphan_mapping
from functions.pull_onprem.auphan.constants import DEFAULT_BASE_URL as AUPHAN_BASE_URL
from functions.pull_onprem.auphan.constants import ENVELOPE_ITEMS as AUPHAN_ITEMS
from functions.pull_onprem.profitek import client as profitek
from functions.pull_onprem.profitek import mapping as profitek_mapping
from functions.pull_onprem.profitek.constants import DEFAULT_BASE_URL as PROFITEK_BASE_URL
from functions.pull_onprem.profitek.constants import ENVELOPE_ITEMS as PROFITEK_ITEMS
from functions.pull_onprem.transport import build_http, endpoint_for

# The hosted endpoints a blank IP:PORT means (the deployment overrides them with POSSYNC_<VENDOR>_BASE_URL).
DEFAULT_BASE_URLS: dict[Vendor, str] = {Vendor.PROFITEK: PROFITEK_BASE_URL, Vendor.AUPHAN: AUPHAN_BASE_URL}


def open_connector(
    credential: Credential,
    config: ConnectorConfig,
    *,
    tenant: str | None = None,
    credential_id: str | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    resolver: Resolver = socket.getaddrinfo,
    allow_loopback_for_tests: bool = False,
) -> Connector:
    """Build the connector for one Profitek or Auphan credential.

    A custom IP:PORT is checked here (HostNotAllowedError) and its name resolved once: the client connects to
    the checked address. A name that cannot be resolved right now raises StoreOfflineError. The records carry
    the tenant and credential id given as keywords, else `ConnectorConfig.tenant` / `.credential_id` when the
    deployment provides them. `allow_loopback_for_tests` is for tests that aim a custom IP:PORT at a simulator
    on 127.0.0.1; production code never sets it.
    """
    if not isinstance(credential, ProfitekCredential | AuphanCredential):
        raise CredentialError(f"a {credential.vendor.value} credential cannot open an on-premises connector")
    tenant = tenant if tenant is not None else getattr(config, "tenant", None)
    credential_id = credential_id if credential_id is not None else getattr(config, "credential_id", None)
    if not tenant or not credential_id:
        raise ValueError("open_connector needs the tenant and credential id the records will carry")
    endpoint = endpoint_for(
        credential.vendor,
        credential.custom_ip_port,
        credential.pinned_cert_pem,
        config,
        resolver=resolver,
        allow_loopback_for_tests=allow_loopback_for_tests,
    )
    if isinstance(credential, ProfitekCredential):
        http = build_http(
            credential.vendor, endpoint, config, profitek.auth_headers(credential), policy=policy, sleep=sleep
        )
        return profitek.ProfitekConnector(http, credential, tenant, credential_id, config.page_size)
    http = build_http(credential.vendor, endpoint, config, auphan.auth_headers(credential), policy=policy, sleep=sleep)
    return auphan.AuphanConnector(http, tenant, credential_id, config.page_size)


# --- replay codecs: rebuild records from archived page bodies (possync replay) -------------------------


@dataclass(frozen=True)
class OnPremCodec:
    """One on-premises vendor's archived-page reader and pure mapping."""

    vendor: Vendor

    def extract_items(self, stream: Stream, body: bytes) -> list[dict[str, Any]]:
        import json

        from functions.core.errors import MalformedPageError

        key = PROFITEK_ITEMS if self.vendor is Vendor.PROFITEK else AUPHAN_ITEMS
        try:
            payload = json.loads(body)
        except ValueError:
            raise MalformedPageError(f"archived {self.vendor.value} {stream.value} page is not JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get(key), list):
            raise MalformedPageError(f"archived {self.vendor.value} {stream.value} page has no '{key}' list")
        return [item for item in payload[key] if isinstance(item, dict)]

    def map_item(self, stream: Stream, item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
        module = profitek_mapping if self.vendor is Vendor.PROFITEK else auphan_mapping
        return module.map_record(stream, item, ctx)

    def item_id(self, stream: Stream, item: dict[str, Any]) -> str | None:
        module = profitek_mapping if self.vendor is Vendor.PROFITEK else auphan_mapping
        return module.item_id(stream, item)


def codec_for(vendor: Vendor) -> OnPremCodec:
    if vendor not in DEFAULT_BASE_URLS:
        raise ValueError(f"pull_onprem does not serve {vendor.value}")
    return OnPremCodec(vendor)
