"""Flourish external API contract: base paths, auth headers, paging, filters and the passes each stream reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal

from functions.core.layout import Stream

# --- where and how -------------------------------------------------------------------------------------------------
# Documented: https://app.flourishsoftware.com/external/api/v1/... (the Postman collection writes the list paths with a
# trailing slash; Flourish's own WooCommerce plugin calls them without one, so both are accepted by the server).
DEFAULT_BASE_URL: Final = "https://app.flourishsoftware.com"
API_PREFIX: Final = "/external/api/v1"

CUSTOMERS_PATH: Final = f"{API_PREFIX}/customers/"
RETAIL_ORDERS_PATH: Final = f"{API_PREFIX}/retail-orders/"
ITEMS_PATH: Final = f"{API_PREFIX}/items/"
FACILITIES_PATH: Final = f"{API_PREFIX}/facilities/"
# ASSUMED (CONTRACT.md): the discounts a reward links to by id, with the same paging and last_updated filters as items.
DISCOUNTS_PATH: Final = f"{API_PREFIX}/discounts/"

# Documented: service API keys go in `x-api-key`; older keys are HTTP Basic `username:key`. `FacilityID` scopes retail
# orders and inventory to one facility; customers and items are company-wide and ignore it.
API_KEY_HEADER: Final = "x-api-key"
FACILITY_HEADER: Final = "FacilityID"

# --- paging --------------------------------------------------------------------------------------------------------
# Documented: `limit` / `offset` query parameters, default limit 50, envelope {"data": [...], "meta": {"next": ...}};
# callers stop when `meta.next` is empty. A server that sends no `meta.next` is paged on by offset to an empty or
# short page (client.ListPage.more_follow). ASSUMED: the server accepts limits up to 500 and meta also carries the
# number of matching records as `total` (or `count`); a missing total only disables the engine's re-read check.
LIMIT_PARAM: Final = "limit"
OFFSET_PARAM: Final = "offset"
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 500

# ASSUMED: results come in a stable order (the simulator uses (last_updated_timestamp, id)); no sort parameter is
# documented. Offset paging over a set that changes can shift unread records below the next offset, so each request
# re-reads the tail of the previous page (OVERLAP records) and checks it still finds a record it already served
# there; if not, it steps back a page at a time (at most MAX_BACKTRACK pages) before re-reading the pass from 0.
# Records served twice are harmless (the engine writes only what changed); a skipped record would be lost.
OVERLAP: Final = 5
RECENT_IDS: Final = 20  # how many served (id, last_updated) pairs a token remembers to recognise the overlap
MAX_BACKTRACK: Final = 3
MAX_RESTARTS: Final = 3  # a pass that keeps shifting after this many re-reads fails the run; the next one resumes

# --- statuses ------------------------------------------------------------------------------------------------------
# Documented enumerations of the retail-orders endpoint.
ORDER_STATUSES: Final = (
    "Created",
    "Submitted",
    "Packed",
    "Out for Delivery",
    "Completed",
    "Cancelled",
    "Undeliverable",
)
PAYMENT_STATUSES: Final = ("Awaiting Payment", "Paid", "Partially Paid", "Partially Refunded", "Refunded")
COMPLETED: Final = "Completed"
CANCELLED: Final = "Cancelled"
UNDELIVERABLE: Final = "Undeliverable"
REFUNDED: Final = "Refunded"
PARTIALLY_REFUNDED: Final = "Partially Refunded"

# Only a Completed order is a completed sale; an order that never completes is pending, and one that was cancelled or
# could not be delivered is cancelled (nothing was sold). The payment status decides refunds of a completed order.
SaleStatus = Literal["completed", "refunded", "partially_refunded", "cancelled", "pending"]
ORDER_STATUS_CANONICAL: Final[dict[str, SaleStatus]] = {
    "created": "pending",
    "submitted": "pending",
    "packed": "pending",
    "out for delivery": "pending",
    "completed": "completed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "undeliverable": "cancelled",
}
PAYMENT_STATUS_CANONICAL: Final[dict[str, SaleStatus]] = {
    "refunded": "refunded",
    "partially refunded": "partially_refunded",
}

# --- what each stream reads ----------------------------------------------------------------------------------------
# Retail orders cannot be filtered by update time: the documented filters are created/submitted/packed/completed
# timestamps, order_status and order_payment_status (only outbound orders document last_updated_timestamp). One pass
# by completion time would see each sale once, when it completes, and never the changes that matter afterwards:
#   - a Completed order refunded later keeps its completed_timestamp, so the window that completed it is long gone;
#   - an order Cancelled (or Undeliverable) never gets a completed_timestamp at all.
# So SALES reads several passes per window, each a documented filter:
#   1. completed  completed_timestamp in the window                 -> every completed sale, refunded or not
#   2. cancelled  order_status=Cancelled, created in window - REVISIT  -> cancellations of recent orders
#   3. undeliverable  same, order_status=Undeliverable
#   4. refunded   order_payment_status=Refunded, completed in window - REVISIT -> refunds of recent sales
#   5. partially_refunded  same, order_payment_status=Partially Refunded
# Passes 2-5 are small (few orders are cancelled or refunded) and re-reading an unchanged order writes nothing. On a
# first pull (no window start) passes 1-3 read everything and 4-5 are skipped: pass 1 already holds every refund.
# Orders still in progress (Created..Out for Delivery) are not read: they become sales when they complete. A refund
# or cancellation recorded more than REVISIT after the sale is missed until Flourish offers an update-time filter on
# retail orders; when it does, replace the five passes with one last_updated_timestamp pass.
REVISIT: Final = timedelta(days=45)


@dataclass(frozen=True)
class Pass:
    """One filtered listing a stream reads for a window: which timestamp filter, plus fixed filters."""

    name: str
    path: str
    time_filter: str  # the `<field>_timestamp` prefix whose _start/_end bound the window
    fixed: tuple[tuple[str, str], ...] = ()
    revisit: timedelta | None = None  # widen the window start back by this much
    needs_start: bool = False  # skip the pass when the window has no start (a first, full pull)


STREAM_PASSES: Final[dict[Stream, tuple[Pass, ...]]] = {
    Stream.CUSTOMERS: (Pass("updated", CUSTOMERS_PATH, "last_updated"),),
    Stream.INVENTORY: (Pass("updated", ITEMS_PATH, "last_updated"),),
    Stream.DISCOUNTS: (Pass("updated", DISCOUNTS_PATH, "last_updated"),),
    Stream.SALES: (
        Pass("completed", RETAIL_ORDERS_PATH, "completed"),
        Pass("cancelled", RETAIL_ORDERS_PATH, "created", (("order_status", CANCELLED),), REVISIT),
        Pass("undeliverable", RETAIL_ORDERS_PATH, "created", (("order_status", UNDELIVERABLE),), REVISIT),
        Pass("refunded", RETAIL_ORDERS_PATH, "completed", (("order_payment_status", REFUNDED),), REVISIT, True),
        Pass(
            "partially_refunded",
            RETAIL_ORDERS_PATH,
            "completed",
            (("order_payment_status", PARTIALLY_REFUNDED),),
            REVISIT,
            True,
        ),
    ),
}

# --- facilities and time zones -------------------------------------------------------------------------------------
# ASSUMED: a facility carries its IANA zone as `timezone`; when it does not (or the value is not a zone), the zone is
# taken from the facility's state (functions.core.zones), and UTC when that is unknown too. Naive order timestamps
# and each sale's local date use the zone of the order's facility.
FALLBACK_TIMEZONE: Final = "UTC"

# Documented: the customers list filters `state` by full name, POST takes two-letter codes; canonical shoppers carry
# the USPS code.
US_STATES: Final[dict[str, str]] = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA", "colorado": "CO",
    "connecticut": "CT", "delaware": "DE", "district of columbia": "DC", "florida": "FL", "georgia": "GA",
    "hawaii": "HI", "idaho": "ID", "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS", "kentucky": "KY",
    "louisiana": "LA", "maine": "ME", "maryland": "MD", "massachusetts": "MA", "michigan": "MI", "minnesota": "MN",
    "mississippi": "MS", "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV", "new hampshire": "NH",
    "new jersey": "NJ", "new mexico": "NM", "new york": "NY", "north carolina": "NC", "north dakota": "ND",
    "ohio": "OH", "oklahoma": "OK", "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI",
    "south carolina": "SC", "south dakota": "SD", "tennessee": "TN", "texas": "TX", "utah": "UT", "vermont": "VT",
    "virginia": "VA", "washington": "WA", "west virginia": "WV", "wisconsin": "WI", "wyoming": "WY",
    "puerto rico": "PR", "guam": "GU",
}  # fmt: skip
