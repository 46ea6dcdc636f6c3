"""THSuite API contract (ASSUMED throughout: THSuite publishes no API doc; see CONTRACT.md in this folder)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from functions.core.layout import Stream
from functions.core.zones import WINDOWS_ZONES

# ASSUMED: one hosted, multi-tenant REST API; the integration token alone says which store is asked about.
DEFAULT_BASE_URL: Final = "https://api.thsuite.com"

# ASSUMED: the integration token travels as an OAuth-style bearer token.
AUTH_HEADER: Final = "Authorization"
AUTH_SCHEME: Final = "Bearer"
USER_AGENT: Final = "possync/1 (+read-only loyalty integration)"

# ASSUMED: store info (name, timezone, state, country) for the token's store, wrapped as {"data": {...}}.
STORE_PATH: Final = "/api/v1/store"

# ASSUMED: one collection per stream; THSuite calls customers "patients" and sales "receipts".
STREAM_PATHS: Final = MappingProxyType(
    {
        Stream.CUSTOMERS: "/api/v1/patients",
        Stream.SALES: "/api/v1/receipts",
        Stream.INVENTORY: "/api/v1/inventory",
        Stream.LOYALTY: "/api/v1/loyalty/balances",
        Stream.DISCOUNTS: "/api/v1/discounts",
    }
)
STREAMS: Final = tuple(STREAM_PATHS)

# ASSUMED paging: 1-based `page` and `limit` (at most MAX_PAGE_SIZE), answered with the envelope
# {"data": [...], "page": n, "limit": n, "total": n, "has_more": bool}; `total` counts the whole filtered set.
PARAM_PAGE: Final = "page"
PARAM_LIMIT: Final = "limit"
FIRST_PAGE: Final = 1
MAX_PAGE_SIZE: Final = 1000

# ASSUMED filters on the record's update time: `updated_since` inclusive, `updated_before` exclusive, ISO-8601
# with an offset (we always send UTC), which matches our [start, end) windows exactly.
PARAM_UPDATED_SINCE: Final = "updated_since"
PARAM_UPDATED_BEFORE: Final = "updated_before"

# ASSUMED: `sort=updated_at` asks for ascending (updated_at, id) order, which keeps page boundaries stable.
PARAM_SORT: Final = "sort"
SORT_BY_UPDATE: Final = "updated_at"

# ASSUMED: the store's timezone arrives as an IANA name or as a Windows zone id (THSuite runs on .NET/SQL Server
# stacks in its on-premises past); functions.core.zones holds the Windows table and the one conversion.
STORE_ZONE_NAMES: Final = WINDOWS_ZONES
