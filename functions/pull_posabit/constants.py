"""POSaBIT Venue API v3 contract: base URLs, paths, paging and filter parameters, envelope keys, time zones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType
from typing import Final

from functions.core.layout import Stream

# Documented at developer.posabit.com ("Base URL": staging and production both end in /api; the paths below
# carry the /api prefix so a simulator can be mounted at a bare host).
DEFAULT_BASE_URL: Final = "https://app.posabit.com"
STAGING_BASE_URL: Final = "https://staging-app.posabit.com"

# Venue info carries the venue's `timezone` as a Rails zone name. Documented as GET /api/v2/venue/info; v3
# keeps the v2 resource layout (customers, sales_histories, inventories all live under /venue), so the v3
# path is the v2 one with the version swapped.
VENUE_INFO_PATH: Final = "/api/v3/venue/info"
CUSTOMERS_PATH: Final = "/api/v3/venue/customers"
SALES_HISTORIES_PATH: Final = "/api/v3/venue/sales_histories"
INVENTORIES_PATH: Final = "/api/v3/venue/inventories"
# The venue's coupons (discounts a reward is mirrored to by name). Not in the public v3 reference: ASSUMED to sit
# beside the other venue resources with the same envelope, paging and q[updated_at_*] filters.
COUPONS_PATH: Final = "/api/v3/venue/coupons"

# --- paging (documented: `page` and `per_page`; envelope `total_records, current_page, total_pages, per_page`) ---
PARAM_PAGE: Final = "page"
PARAM_PER_PAGE: Final = "per_page"
ENVELOPE_TOTAL_RECORDS: Final = "total_records"
ENVELOPE_CURRENT_PAGE: Final = "current_page"
ENVELOPE_TOTAL_PAGES: Final = "total_pages"
ENVELOPE_PER_PAGE: Final = "per_page"

# --- filters (POSaBIT exposes Ransack search params under q[...]) ------------------------------------------------
PARAM_UPDATED_AFTER: Final = "q[updated_at_gt]"  # strictly greater than
PARAM_UPDATED_BEFORE: Final = "q[updated_at_lt]"  # strictly less than
# Ransack's sort parameter; asking for update order keeps a page's records close in time. Paging stays
# correct without it (see client.next_page_number), so a server that ignores it costs nothing.
PARAM_SORT: Final = "q[s]"
SORT_BY_UPDATE: Final = "updated_at asc"
# The customers endpoint is reported to require a `start_date`/`end_date` pair (public integrations always send
# one) but what it filters on (created or updated day) is not documented. We filter on q[updated_at_*] and send
# a range wide enough to include every customer, so the date pair can never hide a customer created long ago
# and updated recently. 2015-01-01 is what public integrations send and predates POSaBIT's platform.
PARAM_START_DATE: Final = "start_date"
PARAM_END_DATE: Final = "end_date"
CUSTOMERS_EARLIEST_DATE: Final = date(2015, 1, 1)

# Our windows are [start, end) with an inclusive start, POSaBIT's filter is `updated_at > x`. A record updated
# exactly at `start` must not be lost, and the API renders timestamps to the millisecond (sometimes the second)
# while its database keeps microseconds, so the cursor we hold can be a truncation of the real value. Asking
# for `updated_at > start - 1 s` covers both; the few records re-read are deduplicated by the engine.
BOUNDARY_SLACK: Final = timedelta(seconds=1)


@dataclass(frozen=True)
class StreamContract:
    """How one of our streams is read from POSaBIT."""

    path: str
    records_key: str  # the envelope key holding the list
    wrapper_keys: tuple[str, ...]  # a list item may arrive as {"customer": {...}} instead of {...}
    max_per_page: int
    needs_date_range: bool = False


# Page sizes: POSaBIT documents "Results per page (default 1000)" for its venue lists (developer.posabit.com, Venue
# API v2, coupons); the v3 lists are ASSUMED to take the same. Fewer pages mean fewer requests, S3 objects and
# checkpoints per record. A server that serves fewer than asked is followed by its envelope's per_page; one that
# refuses the size (HTTP 400 / 422) is asked again with the next smaller size of PAGE_SIZE_FALLBACKS (public
# integrations observe 250 customers and 100 inventory rows per page).
DOCUMENTED_PER_PAGE: Final = 1000
PAGE_SIZE_FALLBACKS: Final = (250, 100)
STREAM_CONTRACTS: Final[dict[Stream, StreamContract]] = {
    Stream.CUSTOMERS: StreamContract(
        CUSTOMERS_PATH, "customers", ("customer",), DOCUMENTED_PER_PAGE, needs_date_range=True
    ),
    Stream.SALES: StreamContract(SALES_HISTORIES_PATH, "sales_histories", ("sales_history",), DOCUMENTED_PER_PAGE),
    Stream.INVENTORY: StreamContract(
        INVENTORIES_PATH, "inventory", ("inventory", "inventory_item"), DOCUMENTED_PER_PAGE
    ),
    # Loyalty balances: POSaBIT publishes no points endpoint; a customer's balance is its `points` field, and
    # changing it bumps the customer's `updated_at`. The LOYALTY stream therefore reads the customers endpoint
    # with the same incremental filter and maps each customer to a LoyaltyBalance (points as of updated_at).
    # The pull reads each customers page once and maps it to both streams (DERIVED_STREAMS); the contract stays for
    # the connector read by itself and for replaying loyalty pages archived before. It invents no endpoint the real
    # API may not have.
    Stream.LOYALTY: StreamContract(
        CUSTOMERS_PATH, "customers", ("customer",), DOCUMENTED_PER_PAGE, needs_date_range=True
    ),
    Stream.DISCOUNTS: StreamContract(COUPONS_PATH, "coupons", ("coupon",), DOCUMENTED_PER_PAGE),
}
OFFERED_STREAMS: Final = (Stream.CUSTOMERS, Stream.SALES, Stream.INVENTORY, Stream.LOYALTY, Stream.DISCOUNTS)
# Streams a pull maps from another stream's pages (functions.core.engine.derived_streams): every customers page read
# yields the shoppers and their balances, so the customers endpoint is read once per window, not twice.
DERIVED_STREAMS: Final = MappingProxyType({Stream.LOYALTY: Stream.CUSTOMERS})

# Create customer (persona -> POS sync): POST with the record wrapped as {"customer": {...}}.
CREATE_CUSTOMER_PATH: Final = CUSTOMERS_PATH
CREATE_CUSTOMER_WRAPPER: Final = "customer"

# Every POSaBIT venue is in the US; phones without a country code are read as US numbers.
DEFAULT_PHONE_REGION: Final = "US"

# --- sale statuses ----------------------------------------------------------------------------------------------
# POSaBIT's values are not documented; these cover the spellings Rails apps and the public material use. A status
# outside all of them is quarantined rather than guessed, because a sale's status decides loyalty points.
COMPLETED_STATUSES: Final = frozenset({"completed", "complete", "closed", "paid", "finalized", "fulfilled", "sold"})
REFUNDED_STATUSES: Final = frozenset({"refunded", "refund", "returned", "return"})
PARTIALLY_REFUNDED_STATUSES: Final = frozenset({"partially_refunded", "partial_refund", "partially_returned"})
CANCELLED_STATUSES: Final = frozenset({"cancelled", "canceled", "void", "voided", "deleted"})
PENDING_STATUSES: Final = frozenset({"pending", "open", "in_progress", "hold", "on_hold", "saved", "parked"})

# --- time zones -------------------------------------------------------------------------------------------------
# ActiveSupport::TimeZone::MAPPING (Rails 7.1): the friendly names a Rails app such as POSaBIT stores and returns
# as a venue's `timezone`, mapped to IANA zones. Where tzdata renamed a zone since, the current name is used.
RAILS_TIME_ZONES: Final[dict[str, str]] = {
    "International Date Line West": "Etc/GMT+12",
    "Midway Island": "Pacific/Midway",
    "American Samoa": "Pacific/Pago_Pago",
    "Hawaii": "Pacific/Honolulu",
    "Alaska": "America/Juneau",
    "Pacific Time (US & Canada)": "America/Los_Angeles",
    "Tijuana": "America/Tijuana",
    "Mountain Time (US & Canada)": "America/Denver",
    "Arizona": "America/Phoenix",
    "Chihuahua": "America/Chihuahua",
    "Mazatlan": "America/Mazatlan",
    "Central Time (US & Canada)": "America/Chicago",
    "Saskatchewan": "America/Regina",
    "Guadalajara": "America/Mexico_City",
    "Mexico City": "America/Mexico_City",
    "Monterrey": "America/Monterrey",
    "Central America": "America/Guatemala",
    "Eastern Time (US & Canada)": "America/New_York",
    "Indiana (East)": "America/Indiana/Indianapolis",
    "Bogota": "America/Bogota",
    "Lima": "America/Lima",
    "Quito": "America/Lima",
    "Atlantic Time (Canada)": "America/Halifax",
    "Caracas": "America/Caracas",
    "La Paz": "America/La_Paz",
    "Santiago": "America/Santiago",
    "Newfoundland": "America/St_Johns",
    "Brasilia": "America/Sao_Paulo",
    "Buenos Aires": "America/Argentina/Buenos_Aires",
    "Montevideo": "America/Montevideo",
    "Georgetown": "America/Guyana",
    "Puerto Rico": "America/Puerto_Rico",
    "Greenland": "America/Nuuk",
    "Mid-Atlantic": "Atlantic/South_Georgia",
    "Azores": "Atlantic/Azores",
    "Cape Verde Is.": "Atlantic/Cape_Verde",
    "Dublin": "Europe/Dublin",
    "Edinburgh": "Europe/London",
    "Lisbon": "Europe/Lisbon",
    "London": "Europe/London",
    "Casablanca": "Africa/Casablanca",
    "Monrovia": "Africa/Monrovia",
    "UTC": "Etc/UTC",
    "Belgrade": "Europe/Belgrade",
    "Bratislava": "Europe/Bratislava",
    "Budapest": "Europe/Budapest",
    "Ljubljana": "Europe/Ljubljana",
    "Prague": "Europe/Prague",
    "Sarajevo": "Europe/Sarajevo",
    "Skopje": "Europe/Skopje",
    "Warsaw": "Europe/Warsaw",
    "Zagreb": "Europe/Zagreb",
    "Brussels": "Europe/Brussels",
    "Copenhagen": "Europe/Copenhagen",
    "Madrid": "Europe/Madrid",
    "Paris": "Europe/Paris",
    "Amsterdam": "Europe/Amsterdam",
    "Berlin": "Europe/Berlin",
    "Bern": "Europe/Zurich",
    "Zurich": "Europe/Zurich",
    "Rome": "Europe/Rome",
    "Stockholm": "Europe/Stockholm",
    "Vienna": "Europe/Vienna",
    "West Central Africa": "Africa/Algiers",
    "Bucharest": "Europe/Bucharest",
    "Cairo": "Africa/Cairo",
    "Helsinki": "Europe/Helsinki",
    "Kyiv": "Europe/Kyiv",
    "Riga": "Europe/Riga",
    "Sofia": "Europe/Sofia",
    "Tallinn": "Europe/Tallinn",
    "Vilnius": "Europe/Vilnius",
    "Athens": "Europe/Athens",
    "Istanbul": "Europe/Istanbul",
    "Minsk": "Europe/Minsk",
    "Jerusalem": "Asia/Jerusalem",
    "Harare": "Africa/Harare",
    "Pretoria": "Africa/Johannesburg",
    "Kaliningrad": "Europe/Kaliningrad",
    "Moscow": "Europe/Moscow",
    "St. Petersburg": "Europe/Moscow",
    "Volgograd": "Europe/Volgograd",
    "Samara": "Europe/Samara",
    "Kuwait": "Asia/Kuwait",
    "Riyadh": "Asia/Riyadh",
    "Nairobi": "Africa/Nairobi",
    "Baghdad": "Asia/Baghdad",
    "Tehran": "Asia/Tehran",
    "Abu Dhabi": "Asia/Muscat",
    "Muscat": "Asia/Muscat",
    "Baku": "Asia/Baku",
    "Tbilisi": "Asia/Tbilisi",
    "Yerevan": "Asia/Yerevan",
    "Kabul": "Asia/Kabul",
    "Ekaterinburg": "Asia/Yekaterinburg",
    "Islamabad": "Asia/Karachi",
    "Karachi": "Asia/Karachi",
    "Tashkent": "Asia/Tashkent",
    "Chennai": "Asia/Kolkata",
    "Kolkata": "Asia/Kolkata",
    "Mumbai": "Asia/Kolkata",
    "New Delhi": "Asia/Kolkata",
    "Kathmandu": "Asia/Kathmandu",
    "Astana": "Asia/Dhaka",
    "Dhaka": "Asia/Dhaka",
    "Sri Jayawardenepura": "Asia/Colombo",
    "Almaty": "Asia/Almaty",
    "Novosibirsk": "Asia/Novosibirsk",
    "Rangoon": "Asia/Yangon",
    "Bangkok": "Asia/Bangkok",
    "Hanoi": "Asia/Bangkok",
    "Jakarta": "Asia/Jakarta",
    "Krasnoyarsk": "Asia/Krasnoyarsk",
    "Beijing": "Asia/Shanghai",
    "Chongqing": "Asia/Chongqing",
    "Hong Kong": "Asia/Hong_Kong",
    "Urumqi": "Asia/Urumqi",
    "Kuala Lumpur": "Asia/Kuala_Lumpur",
    "Singapore": "Asia/Singapore",
    "Taipei": "Asia/Taipei",
    "Perth": "Australia/Perth",
    "Irkutsk": "Asia/Irkutsk",
    "Ulaanbaatar": "Asia/Ulaanbaatar",
    "Seoul": "Asia/Seoul",
    "Osaka": "Asia/Tokyo",
    "Sapporo": "Asia/Tokyo",
    "Tokyo": "Asia/Tokyo",
    "Yakutsk": "Asia/Yakutsk",
    "Darwin": "Australia/Darwin",
    "Adelaide": "Australia/Adelaide",
    "Canberra": "Australia/Sydney",
    "Melbourne": "Australia/Melbourne",
    "Sydney": "Australia/Sydney",
    "Brisbane": "Australia/Brisbane",
    "Hobart": "Australia/Hobart",
    "Vladivostok": "Asia/Vladivostok",
    "Guam": "Pacific/Guam",
    "Port Moresby": "Pacific/Port_Moresby",
    "Magadan": "Asia/Magadan",
    "Srednekolymsk": "Asia/Srednekolymsk",
    "Solomon Is.": "Pacific/Guadalcanal",
    "New Caledonia": "Pacific/Noumea",
    "Fiji": "Pacific/Fiji",
    "Kamchatka": "Asia/Kamchatka",
    "Marshall Is.": "Pacific/Majuro",
    "Auckland": "Pacific/Auckland",
    "Wellington": "Pacific/Auckland",
    "Nuku'alofa": "Pacific/Tongatapu",
    "Tokelau Is.": "Pacific/Fakaofo",
    "Chatham Is.": "Pacific/Chatham",
    "Samoa": "Pacific/Apia",
}

# Names Rails apps accepted in older releases, still found in long-lived venue records.
RAILS_TIME_ZONE_ALIASES: Final[dict[str, str]] = {
    "Kyev": "Europe/Kyiv",
    "Kiev": "Europe/Kyiv",
    "Greenland (Godthab)": "America/Nuuk",
}
