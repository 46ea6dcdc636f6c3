"""The seam between the pull engine and one vendor's folder: a connector yields raw pages, a mapping makes records."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from functions.core.layout import Stream, Vendor
from functions.core.models import CanonicalRecord
from functions.core.netguard import IPNetwork


@dataclass(frozen=True)
class Window:
    """Records updated in [start, end): start inclusive (None = from the beginning), end fixed for one pass."""

    start: datetime | None
    end: datetime


@dataclass(frozen=True)
class RawPage:
    """One response exactly as the POS sent it, plus what the engine needs to go on."""

    body: bytes
    # The items as dicts, in page order (a connector that gives `payloads` may decode them from `body` only when read:
    # functions.core.page_fastpath.LazyItems).
    items: Sequence[dict[str, Any]]
    request: Mapping[str, Any]  # method, path and params (never headers: they carry credentials)
    next_token: dict[str, Any] | None  # None = last page of the window
    total_records: int | None = None  # what the envelope says the window holds, when it says
    # What identifies the page's content, for archiving a page once (functions.core.engine.page_digest): None, the
    # exact body; a connector whose answers echo the request (a next link carrying the window's end) gives the bytes
    # of the items alone, so that the same items read in a later window are not archived again.
    identity: bytes | None = None
    # The items already validated from `body` in one call (functions.core.page_fastpath), one per item in page order,
    # for the connector's `map_payload` (for this stream and the streams derived from it); None: map `items`.
    payloads: Sequence[Any] | None = None


@dataclass(frozen=True)
class MappingContext:
    tenant: str
    vendor: Vendor
    credential_id: str
    timezone: str = "UTC"  # the store's IANA zone, for local dates and naive timestamps
    default_region: str = "US"
    extra: Mapping[str, Any] = field(default_factory=dict)


class MappingError(ValueError):
    """A single vendor record could not be mapped: it is quarantined, the pull goes on.

    `field` names the vendor field at fault when the reason does not start with it ("field: problem"), so that
    quarantined records group by field and a contract mismatch can name it.
    """

    def __init__(self, pos_id: str | None, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.pos_id = pos_id
        self.reason = reason
        self.field = field


class Connector(Protocol):
    """What a vendor folder provides to the engine (method names after airbyte's HttpStream)."""

    vendor: Vendor
    streams: tuple[Stream, ...]

    def prepare(self) -> MappingContext:
        """Check the credential against the POS and learn what mappings need (e.g. the venue's timezone)."""
        ...

    def pages(self, stream: Stream, window: Window, token: dict[str, Any] | None) -> Iterator[RawPage]:
        """Yield the window's pages in order, starting at `token` (a previous page's next_token) if given."""
        ...

    def map_record(self, stream: Stream, item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
        """Pure: one vendor item to one canonical record, or MappingError."""
        ...

    def item_id(self, stream: Stream, item: dict[str, Any]) -> str | None:
        """The POS id of a raw item, best effort, for quarantine entries."""
        ...

    # A connector whose pages carry `payloads` also has `map_payload(stream, payload, ctx)`: what `map_record` gives
    # for the item the payload was validated from. Whatever it raises, the engine maps that item with `map_record`
    # instead, so a failing item is quarantined exactly as without payloads (functions.core.engine.map_page).

    def close(self) -> None: ...


@dataclass(frozen=True)
class ConnectorConfig:
    """Deployment-level knobs a connector gets besides its credential."""

    base_url: str  # the vendor's hosted API, or a simulator's URL in tests and the local runtime
    # Records per page: each connector asks for the largest its contract documents, up to this (most vendors cap it
    # lower; fewer pages mean fewer requests, archived objects and checkpoints per record).
    page_size: int = 1000
    allow_private_hosts: bool = False  # on-prem IP:PORT in RFC 1918 ranges (deployment setting)
    # With allow_private_hosts, only these ranges (the deployment's onprem_vpc.private_cidrs); None = any private.
    private_host_networks: tuple[IPNetwork, ...] | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retry_attempts: int = 5
    retry_wait_initial: float = 0.5
    retry_wait_max: float = 20.0
