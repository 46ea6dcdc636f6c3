"""Profitek store API contract (ASSUMED throughout: Profitek publishes no API doc; see CONTRACT.md here)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final, Literal

from functions.core.layout import Stream
from functions.core.zones import WINDOWS_ZONES

# ASSUMED: the hosted (vendor-run) endpoint a credential without a custom IP:PORT talks to. On-premises
# store servers expose the same API at their IP:PORT. The deployment can override it per environment.
DEFAULT_BASE_URL: Final = "https://api.profitek.com"

# ASSUMED: the AuthKey travels in its own header; the store name selects the store in the path. A key belongs to
# exactly one store, so the server refuses (401) a key sent for another store's name.
AUTH_HEADER: Final = "AuthKey"
STORE_ROOT: Final = "/api/v1/stores/{store}"  # {store} = the store name, percent-encoded as one path segment

# ASSUMED: GET {store root}/info -> {"StoreID", "StoreName", "TimeZone", "State", "Country"}; the cheap call
# that proves the key works and tells the store's zone (a Windows zone id: Profitek runs on Windows/.NET).
INFO_PATH: Final = "/info"

STREAM_PATHS: Final = MappingProxyType(
    {
        Stream.CUSTOMERS: "/customers",
        Stream.SALES: "/transactions",
        Stream.INVENTORY: "/items",
        Stream.LOYALTY: "/loyalty/balances",
        Stream.DISCOUNTS: "/discounts",
    }
)
STREAMS: Final = tuple(STREAM_PATHS)

# ASSUMED: each record's own id field, per stream (a loyalty balance is keyed by its customer).
ID_FIELDS: Final = MappingProxyType(
    {
        Stream.CUSTOMERS: "CustomerID",
        Stream.SALES: "TransactionID",
        Stream.INVENTORY: "ItemID",
        Stream.LOYALTY: "CustomerID",
        Stream.DISCOUNTS: "DiscountID",
    }
)

# ASSUMED paging: 1-based `page` and `pageSize` (at most MAX_PAGE_SIZE); the envelope is
# {"Page": n, "PageSize": n, "TotalCount": n, "TotalPages": n, "Data": [...]}, TotalCount counting the whole
# filtered set (so a count that moves while we page tells the engine the window changed under us).
PARAM_PAGE: Final = "page"
PARAM_PAGE_SIZE: Final = "pageSize"
FIRST_PAGE: Final = 1
MAX_PAGE_SIZE: Final = 1000
ENVELOPE_ITEMS: Final = "Data"
ENVELOPE_TOTAL_COUNT: Final = "TotalCount"
ENVELOPE_TOTAL_PAGES: Final = "TotalPages"

# ASSUMED filters on each record's ModifiedDate: `modifiedSince` inclusive, `modifiedBefore` exclusive, ISO-8601
# (we always send UTC with a Z), matching the engine's [start, end) windows.
PARAM_MODIFIED_SINCE: Final = "modifiedSince"
PARAM_MODIFIED_BEFORE: Final = "modifiedBefore"

# ASSUMED: `orderBy=ModifiedDate` sorts by (ModifiedDate, id) ascending, keeping page boundaries stable.
PARAM_ORDER_BY: Final = "orderBy"
ORDER_BY_MODIFIED: Final = "ModifiedDate"

SaleStatus = Literal["completed", "refunded", "partially_refunded", "cancelled", "pending"]

# ASSUMED transaction statuses. A "Return" is its own transaction with negative quantities and totals.
SALE_STATUSES: Final[MappingProxyType[str, SaleStatus]] = MappingProxyType(
    {
        "completed": "completed",
        "closed": "completed",
        "return": "refunded",
        "returned": "refunded",
        "partialreturn": "partially_refunded",
        "void": "cancelled",
        "voided": "cancelled",
        "open": "pending",
        "suspended": "pending",
        "onhold": "pending",
    }
)

DEFAULT_PHONE_REGION: Final = "US"

# ASSUMED: the zone arrives as a Windows zone id (or an IANA name, accepted as is); functions.core.zones holds the
# Windows table and the one conversion.
STORE_ZONE_NAMES: Final = WINDOWS_ZONES
