"""Auphan store API contract (ASSUMED throughout: Auphan publishes no API doc; see CONTRACT.md here)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final, Literal

from functions.core.layout import Stream

# ASSUMED: the hosted endpoint a credential without a custom IP:PORT talks to; store servers expose the same API
# at their IP:PORT. The deployment can override it per environment.
DEFAULT_BASE_URL: Final = "https://api.auphan.com"

# ASSUMED: the APIKey travels in its own header and alone says which store is asked about.
AUTH_HEADER: Final = "APIKey"

# ASSUMED: GET /api/v2/store -> {"storeId", "name", "timeZone" (IANA), "region", "country"}; the cheap call that
# proves the key works and tells the store's zone.
STORE_PATH: Final = "/api/v2/store"

STREAM_PATHS: Final = MappingProxyType(
    {
        Stream.CUSTOMERS: "/api/v2/customers",
        Stream.SALES: "/api/v2/sales",
        Stream.INVENTORY: "/api/v2/products",
        Stream.DISCOUNTS: "/api/v2/discounts",
    }
)
STREAMS: Final = tuple(STREAM_PATHS)  # no loyalty balances: Auphan's loyalty lives in the client's program

ID_FIELDS: Final = MappingProxyType(
    {
        Stream.CUSTOMERS: "customerId",
        Stream.SALES: "saleId",
        Stream.INVENTORY: "productId",
        Stream.DISCOUNTS: "discountId",
    }
)

# ASSUMED keyset paging: `limit` (at most MAX_PAGE_SIZE) and an opaque `cursor` from the previous page; the
# envelope is {"items": [...], "totalCount": n, "nextCursor": "..." | null}. totalCount counts the whole
# filtered window. A cursor pins the position after the last record served, so records that change while we
# page (and leave the window) cannot shift later records past us.
PARAM_LIMIT: Final = "limit"
PARAM_CURSOR: Final = "cursor"
MAX_PAGE_SIZE: Final = 500
ENVELOPE_ITEMS: Final = "items"
ENVELOPE_TOTAL_COUNT: Final = "totalCount"
ENVELOPE_NEXT_CURSOR: Final = "nextCursor"

# ASSUMED filters on each record's updatedAt: `updatedFrom` inclusive, `updatedTo` exclusive, ISO-8601 (we send
# UTC with a Z); `sort=updatedAt:asc` orders by (updatedAt, id).
PARAM_UPDATED_FROM: Final = "updatedFrom"
PARAM_UPDATED_TO: Final = "updatedTo"
PARAM_SORT: Final = "sort"
SORT_BY_UPDATE: Final = "updatedAt:asc"

SaleStatus = Literal["completed", "refunded", "partially_refunded", "cancelled", "pending"]

# ASSUMED sale statuses. A refund after the fact changes the original sale's status and its refundedAmount;
# a return made at the till is a sale of type "return" with negative quantities and amounts.
SALE_STATUSES: Final[MappingProxyType[str, SaleStatus]] = MappingProxyType(
    {
        "completed": "completed",
        "refunded": "refunded",
        "partially_refunded": "partially_refunded",
        "voided": "cancelled",
        "void": "cancelled",
        "open": "pending",
        "parked": "pending",
    }
)
RETURN_SALE_TYPE: Final = "return"

# ASSUMED: SMS consent as a state string; anything else is "unknown".
SMS_OPTED_IN: Final = "opted_in"
SMS_OPTED_OUT: Final = "opted_out"

DEFAULT_PHONE_REGION: Final = "US"
