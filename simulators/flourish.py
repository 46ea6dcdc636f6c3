"""Flourish simulator: companies with API keys, facilities, customers, retail orders and items (external API v1)."""

from __future__ import annotations

import base64
import binascii
import itertools
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from functions.core.layout import Stream
from functions.pull_flourish.constants import API_PREFIX, MAX_LIMIT
from simulators.base import (
    APPLIED_DISCOUNTS,
    PRODUCTS,
    SIM_DISCOUNTS,
    People,
    Request,
    Response,
    Simulator,
    spread,
    utc_now,
)

_CENT = Decimal("0.01")
_DEFAULT_LIMIT = 50

# (state, IANA zone, company name, tax rate)
_PROFILES = [
    ("WA", "America/Los_Angeles", "Evergreen Cannabis Co", "0.37"),
    ("CO", "America/Denver", "Mile High Provisions", "0.15"),
    ("MI", "America/Detroit", "Great Lakes Greens", "0.16"),
    ("OR", "America/Los_Angeles", "Cascade Dispensary", "0.20"),
    ("CA", "America/Los_Angeles", "Golden State Remedies", "0.25"),
]
_CITIES = {"WA": "Tacoma", "CO": "Denver", "MI": "Detroit", "OR": "Portland", "CA": "Oakland"}
_UOMS = ["g", "ea", "ea", "ml", "ea", "ml", "g", "ea"]
_PHONE_STYLES = ["({a}) {b}-{c}", "{a}-{b}-{c}", "+1{a}{b}{c}", "{a}{b}{c}", "{a}.{b}.{c}"]
# Timestamp fields per record type: the simulator keeps them as UTC datetimes and renders them per the faults.
_ORDER_TIMES = (
    "order_timestamp",
    "created_timestamp",
    "submitted_timestamp",
    "packed_timestamp",
    "completed_timestamp",
)
_FINAL_STATUSES = frozenset({"Completed", "Cancelled", "Undeliverable"})
# The response fields CONTRACT.md marks ASSUMED timestamps; `order_timestamp` is documented and always served.
_ASSUMED_TIMESTAMPS = frozenset(
    {"created_timestamp", "submitted_timestamp", "packed_timestamp", "completed_timestamp", "last_updated_timestamp"}
)
ORDER_TOTAL_NAMES = ("total_price", "total", "total_paid")


@dataclass
class FlourishShape:
    """What this server's answers look like, beyond the faults: Flourish as its public material describes it by
    default, or a variant that an independent server written from the same public facts may serve."""

    # The public quirk: applied discounts come off each line total and again off the order total (total_paid and
    # total_refunded stay what the shopper paid and got back).
    discount_double_count: bool = True
    # Where the order total is served: "total_price" (as CONTRACT.md assumes), "total", "total_paid" (no
    # total_price at all), or None (neither total_price nor total_paid: only the lines and tax).
    order_total: str | None = "total_price"
    renamed: dict[str, str] = field(default_factory=dict)  # record fields served under another name
    line_renamed: dict[str, str] = field(default_factory=dict)  # order-line fields served under another name
    timestamps: bool = True  # False: no ASSUMED timestamps on any record, and filters on them are ignored
    meta_next: bool = True  # False: pages carry neither meta.next nor meta.prev
    meta_total: bool = True  # False: pages carry no meta.total

    def __post_init__(self) -> None:
        if self.order_total is not None and self.order_total not in ORDER_TOTAL_NAMES:
            raise ValueError(f"order_total must be one of {ORDER_TOTAL_NAMES} or None")


def _discounts(updated: datetime) -> list[dict[str, Any]]:
    """The company's discounts (ASSUMED shape): the shared simulated set; the percent one runs daily 16:00-18:00 on
    the facility's wall clock (a happy hour)."""
    return [
        {
            "id": d.pos_id,
            "discount_name": d.name,
            "discount_type": "percentage" if d.kind == "percent" else "dollar",
            "amount": float(d.value),
            "active": True,
            "start_date": "2026-01-01",
            "end_date": None,
            "start_time": "16:00:00" if d.kind == "percent" else None,
            "end_time": "18:00:00" if d.kind == "percent" else None,
            "created_timestamp": _ms(updated),
            "last_updated_timestamp": _ms(updated),
        }
        for d in SIM_DISCOUNTS
    ]


def _ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _money(value: Decimal) -> float:
    return float(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def _cents(value: float) -> int:
    return int((Decimal(str(value)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class _Facility:
    id: int
    company: _Company
    name: str
    state: str
    zone: ZoneInfo
    tax_rate: Decimal
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def store(self) -> str:
        return str(self.id)


@dataclass
class _Company:
    username: str
    key: str
    facilities: list[_Facility] = field(default_factory=list)
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    discounts: dict[int, dict[str, Any]] = field(default_factory=dict)


class FlourishSimulator(Simulator):
    """Flourish's external API as CONTRACT.md describes it: x-api-key or Basic auth, FacilityID, limit/offset."""

    vendor = "flourish"

    def __init__(
        self,
        seed: int = 1,
        store_count: int = 2,
        customers_per_store: int = 25,
        sales_per_store: int = 50,
        products_per_store: int = 12,
        *,
        facilities_per_company: int = 1,
        history_days: int = 60,
        shape: FlourishShape | None = None,
    ) -> None:
        super().__init__()
        self.shape = shape or FlourishShape()
        self.rng = random.Random(seed)
        self._people = People(seed)
        self._ids = {
            "company": itertools.count(1),
            "facility": itertools.count(101),
            "customer": itertools.count(10001),
            "order": itertools.count(500001),
            "line": itertools.count(900001),
            "item": itertools.count(3001),
            "address": itertools.count(70001),
        }
        self._companies: list[_Company] = []
        self._facilities: dict[str, _Facility] = {}
        self._refunded: set[int] = set()
        now = _ms(utc_now())
        start, end = now - timedelta(days=history_days), now - timedelta(minutes=10)
        for index in range(store_count):
            if index % max(1, facilities_per_company) == 0:
                self._companies.append(self._new_company())
            company = self._companies[-1]
            facility = self._new_facility(company, index)
            self._facilities[facility.store] = facility
            self._seed_customers(company, facility, customers_per_store, start, end)
            if len(company.facilities) == 1:
                company.discounts = {d["id"]: d for d in _discounts(start)}
                self._seed_items(company, products_per_store, start, end)
            self._seed_orders(facility, sales_per_store, start, end)

    # --- public helpers -----------------------------------------------------------------------------------------
    @property
    def stores(self) -> list[str]:
        """Store ids are facility ids; each facility belongs to one company (one API key)."""
        return list(self._facilities)

    def credential_for(self, store: str, auth_mode: str = "api_key", *, scoped: bool = True) -> dict[str, Any]:
        """The credential as functions.core.credentials.parse_credential accepts it (scoped to the facility)."""
        facility = self._facilities[store]
        company = facility.company
        credential: dict[str, Any] = {
            "vendor": "flourish",
            "username": company.username,
            "key": company.key,
            "regions": [facility.state],
            "auth_mode": auth_mode,
        }
        if scoped:
            credential["facility_id"] = store
        return credential

    def store_timezone(self, store: str) -> str:
        return self._facilities[store].zone.key

    def all_ids(self, stream: Stream | str) -> set[tuple[str, str]]:
        """What a pull with credential_for(store) holds per store once done.

        Customers and items are company-wide, so every facility of a company sees them all. Sales are the
        facility's orders in a final state (Completed, Cancelled, Undeliverable): in-progress orders are not sales.
        """
        stream = Stream(stream)
        with self.lock:
            found: set[tuple[str, str]] = set()
            for store, facility in self._facilities.items():
                if stream is Stream.CUSTOMERS:
                    found.update((store, str(key)) for key in facility.company.customers)
                elif stream is Stream.INVENTORY:
                    found.update((store, str(key)) for key in facility.company.items)
                elif stream is Stream.DISCOUNTS:
                    found.update((store, str(key)) for key in facility.company.discounts)
                elif stream is Stream.SALES:
                    found.update(
                        (store, str(key))
                        for key, row in facility.orders.items()
                        if row["order_status"] in _FINAL_STATUSES
                    )
            return found

    def invalid_record_id(self, store: str, stream: Stream | str) -> str:
        """The POS id the invalid_record fault breaks for that store's stream (the lowest id)."""
        facility = self._facilities[store]
        with self.lock:
            return str(min(self._rows(facility.company, Stream(stream), facility)))

    def records(self, store: str, stream: Stream | str) -> list[dict[str, Any]]:
        """Every record of a store's stream in API shape and order, with the current faults applied."""
        facility, stream = self._facilities[store], Stream(stream)
        with self.lock:
            rows = self._rows(facility.company, stream, facility)
            broken = self._broken_id_in(rows)
            return [
                self._render(stream, row, self._zone(facility.company, facility, row), broken)
                for row in sorted(rows.values(), key=_order_key)
            ]

    def order_amounts(self, store: str) -> dict[str, tuple[int, int]]:
        """Cents each completed order of a store sold for and gave back: what a pull should store, whatever shape
        (the discount double count included) the server answers in."""
        facility = self._facilities[store]
        with self.lock:
            if self.faults.refunds:
                self._apply_refunds()
            return {
                str(key): (_cents(row["total_price"]), _cents(row["total_refunded"]))
                for key, row in facility.orders.items()
                if row["order_status"] == "Completed"
            }

    def add_sales(self, store: str, n: int) -> list[str]:
        """n new completed in-store orders, completed now."""
        facility = self._facilities[store]
        with self.lock:
            ids = []
            for _ in range(n):
                now = _ms(utc_now())
                order = self._order(facility, now - timedelta(minutes=self.rng.randint(2, 15)), now, "Completed")
                facility.orders[order["id"]] = order
                ids.append(str(order["id"]))
            return ids

    def update_customers(self, store: str, n: int) -> list[str]:
        """n customers of the store's company change their contact details now."""
        company = self._facilities[store].company
        with self.lock:
            chosen = self.rng.sample(sorted(company.customers), min(n, len(company.customers)))
            for key in chosen:
                self._touch_customer(company.customers[key])
            return [str(key) for key in chosen]

    # --- HTTP ---------------------------------------------------------------------------------------------------
    def is_data_path(self, path: str) -> bool:
        return path.startswith(API_PREFIX + "/")

    def handle(self, request: Request) -> Response:
        company = self._authenticate(request)
        if company is None:
            return Response.json({"message": "Invalid or missing API key"}, 401)
        scope = (request.headers.get("facilityid") or "").strip()
        facility: _Facility | None = None
        if scope:
            facility = next((f for f in company.facilities if f.store == scope), None)
            if facility is None:
                return Response.json({"message": "You do not have access to this facility"}, 403)
        parts = request.path.removeprefix(API_PREFIX).strip("/").split("/")
        resource, ident = parts[0], (parts[1] if len(parts) == 2 else None)
        streams = {
            "customers": Stream.CUSTOMERS,
            "retail-orders": Stream.SALES,
            "items": Stream.INVENTORY,
            "discounts": Stream.DISCOUNTS,
        }
        with self.lock:
            if self.faults.refunds:
                self._apply_refunds()
            if len(parts) > 2 or (resource not in streams and resource != "facilities"):
                return Response.json({"message": "Not found"}, 404)
            if request.method == "POST" and resource == "customers" and ident is None:
                return self._create_customer(company, facility, request)
            if request.method != "GET":
                return Response.json({"message": "Method not allowed"}, 405)
            if resource == "facilities":
                return self._facilities_answer(company, ident, request)
            stream = streams[resource]
            rows = self._rows(company, stream, facility)
            if ident is not None:
                row = rows.get(int(ident)) if ident.isdigit() else None
                if row is None:
                    return Response.json({"message": "Not found"}, 404)
                return Response.json({"data": self._render(stream, row, self._zone(company, facility, row), None)})
            return self._list(company, facility, stream, rows, request)

    def _authenticate(self, request: Request) -> _Company | None:
        key = (request.headers.get("x-api-key") or "").strip()
        if key:
            return next((c for c in self._companies if c.key == key), None)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic" or not token:
            return None
        try:
            username, _, secret = base64.b64decode(token.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return next((c for c in self._companies if c.username == username and c.key == secret), None)

    def _rows(self, company: _Company, stream: Stream, facility: _Facility | None) -> dict[int, dict[str, Any]]:
        if stream is Stream.CUSTOMERS:
            return company.customers
        if stream is Stream.INVENTORY:
            return company.items
        if stream is Stream.DISCOUNTS:
            return company.discounts
        scoped = [facility] if facility is not None else company.facilities
        return {key: row for f in scoped for key, row in f.orders.items()}

    def _list(
        self,
        company: _Company,
        facility: _Facility | None,
        stream: Stream,
        rows: dict[int, dict[str, Any]],
        request: Request,
    ) -> Response:
        try:
            limit, offset = _paging(request)
            chosen = sorted(
                (row for row in rows.values() if _matches(row, request, self.shape.timestamps)), key=_order_key
            )
        except ValueError as exc:
            return Response.json({"message": f"Invalid query parameter: {exc}"}, 400)
        page = chosen[offset : offset + limit]
        if self.faults.duplicate_across_pages and 0 < offset <= len(chosen):
            page = [chosen[offset - 1], *page]
        broken = self._broken_id_in(rows)
        data = [self._render(stream, row, self._zone(company, facility, row), broken) for row in page]
        response = Response.json({"data": data, "meta": self._meta(request, limit, offset, len(chosen))})
        if offset == 0 and page and self.faults.update_while_paging > 0:
            # Records the client has just been served change before it asks for the next page.
            count, self.faults.update_while_paging = self.faults.update_while_paging, 0
            for row in page[:count]:
                self._touch(stream, row)
        return response

    def _facilities_answer(self, company: _Company, ident: str | None, request: Request) -> Response:
        rows = [self._facility_row(f) for f in company.facilities]
        if ident is not None:
            found = next((row for row in rows if str(row["id"]) == ident), None)
            if found is None:
                return Response.json({"message": "Not found"}, 404)
            return Response.json({"data": found})
        try:
            limit, offset = _paging(request)
        except ValueError as exc:
            return Response.json({"message": f"Invalid query parameter: {exc}"}, 400)
        return Response.json(
            {"data": rows[offset : offset + limit], "meta": self._meta(request, limit, offset, len(rows))}
        )

    def _meta(self, request: Request, limit: int, offset: int, total: int) -> dict[str, Any]:
        def link(to: int) -> str:
            query = {k: v[0] for k, v in request.query.items()} | {"limit": limit, "offset": to}
            base = self.url if self._server is not None else ""
            return f"{base}{request.path}?{urlencode(query)}"

        meta: dict[str, Any] = {"limit": limit, "offset": offset}
        if self.shape.meta_total:
            meta["total"] = total
        if self.shape.meta_next:
            meta["next"] = link(offset + limit) if offset + limit < total else None
            meta["prev"] = link(max(0, offset - limit)) if offset > 0 else None
        return meta

    def _create_customer(self, company: _Company, facility: _Facility | None, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return Response.json({"message": "Request body is not JSON"}, 400)
        if not isinstance(body, dict):
            return Response.json({"message": "Request body must be a JSON object"}, 400)
        missing = [name for name in ("email", "first_name", "last_name", "dob") if not body.get(name)]
        if missing:
            return Response.json(
                {"message": "Missing required fields", "errors": dict.fromkeys(missing, "required")}, 400
            )
        try:
            dob = date.fromisoformat(str(body["dob"]))
        except ValueError:
            return Response.json({"message": "dob must be a date (YYYY-MM-DD)", "errors": {"dob": "invalid"}}, 400)
        email = str(body["email"]).strip().lower()
        if any(str(c.get("email") or "").lower() == email for c in company.customers.values()):
            return Response.json(
                {"message": "A customer with this email already exists", "errors": {"email": "unique"}}, 400
            )
        now = _ms(utc_now())
        home = facility or company.facilities[0]
        key = next(self._ids["customer"])
        row: dict[str, Any] = {
            "id": key,
            "first_name": str(body["first_name"]),
            "last_name": str(body["last_name"]),
            "middle_name": body.get("middle_name"),
            "preferred_name": body.get("preferred_name"),
            "email": str(body["email"]).strip(),
            "alternate_email": body.get("alternate_email"),
            "phone": body.get("phone"),
            "home_phone": body.get("home_phone"),
            "alternate_phone": body.get("alternate_phone"),
            "dob": dob.isoformat(),
            "state": body.get("state") or home.state,
            "patient_id": body.get("patient_id"),
            "medical_card_state": body.get("medical_card_state"),
            "customer_group": body.get("customer_group"),
            "customer_disciplinary_status": "no issues",
            "is_verified": bool(body.get("is_verified", False)),
            "address": [self._address(a) for a in body.get("address") or [] if isinstance(a, dict)],
            "created_timestamp": now,
            "last_updated_timestamp": now,
        }
        company.customers[key] = row
        return Response.json(
            {
                "data": self._render(Stream.CUSTOMERS, row, home.zone, None),
                "message": "customer was created in flourish, but MMUR lookup is disabled",
                "code": "CUS0003",
            }
        )

    def _address(self, raw: dict[str, Any]) -> dict[str, Any]:
        keys = ("first_name", "last_name", "address_line_1", "address_line_2", "city", "state", "postcode", "country")
        return {"id": next(self._ids["address"]), **{k: raw.get(k) for k in keys}, "type": raw.get("type")}

    # --- rendering ----------------------------------------------------------------------------------------------
    def _zone(self, company: _Company, facility: _Facility | None, row: dict[str, Any]) -> ZoneInfo:
        """Local times are the order's facility's; company-wide records use the requested (or first) facility."""
        own = self._facilities.get(str(row.get("facility_id")))
        return (own or facility or company.facilities[0]).zone

    def _render(self, stream: Stream, row: dict[str, Any], zone: ZoneInfo, broken: int | None) -> dict[str, Any]:
        shape = self.shape
        out: dict[str, Any] = {
            key: self._value(value, zone)
            for key, value in row.items()
            if shape.timestamps or key not in _ASSUMED_TIMESTAMPS
        }
        if stream is Stream.SALES:
            out["order_lines"] = [dict(line) for line in row["order_lines"]]
            self._shape_order(out)
        if self.faults.extra_fields:
            out["x_beta_flags"] = {"new_checkout": True, "experiments": [3, 7]}
            out["loyalty_tier"] = "gold"
            out["compliance_sync_status"] = None
            for line in out.get("order_lines", ()):
                line["batch_id"] = "B-22-0142"
                line["package_label"] = "1A4FF0300000259000005315"
        if broken is not None and row["id"] == broken:
            if stream is Stream.CUSTOMERS:
                out["dob"] = "1990-02-30"
            elif stream is Stream.SALES:
                out["order_status"] = "Teleported"
            elif stream is Stream.DISCOUNTS:
                out["discount_name"] = None
            else:
                out["item_name"] = None
        if shape.renamed:
            out = {shape.renamed.get(key, key): value for key, value in out.items()}
        return out

    def _shape_order(self, out: dict[str, Any]) -> None:
        """The order's money and names as this server's shape has them (rows hold the order as sold, once)."""
        shape = self.shape
        lines = out["order_lines"]
        if shape.discount_double_count:
            discounts = Decimal(0)
            for line in lines:
                taken = sum((Decimal(str(d["discount_value"])) for d in line["applied_discounts"]), Decimal(0))
                line["total_price"] = _money(Decimal(str(line["total_price"])) - taken)
                discounts += taken
            out["subtotal"] = _money(
                sum((Decimal(str(line["total_price"])) for line in lines if line["order_qty"] > 0), Decimal(0))
            )
            out["total_price"] = _money(Decimal(str(out["total_price"])) - discounts)
        if shape.order_total != "total_price":
            total = out.pop("total_price")
            if shape.order_total == "total":
                out["total"] = total
            elif shape.order_total is None:
                out.pop("total_paid", None)
        if shape.line_renamed:
            out["order_lines"] = [{shape.line_renamed.get(k, k): v for k, v in line.items()} for line in lines]

    def _value(self, value: Any, zone: ZoneInfo) -> Any:
        if not isinstance(value, datetime):
            return value
        ms = f"{value.microsecond // 1000:03d}"
        if self.faults.naive_timestamps:
            return f"{value.astimezone(zone):%Y-%m-%dT%H:%M:%S}.{ms}"
        if self.faults.offset_timestamps:
            local = value.astimezone(zone)
            offset = local.strftime("%z")
            return f"{local:%Y-%m-%dT%H:%M:%S}.{ms}{offset[:3]}:{offset[3:]}"
        return f"{value.astimezone(UTC):%Y-%m-%dT%H:%M:%S}.{ms}Z"

    def _broken_id_in(self, rows: dict[int, dict[str, Any]]) -> int | None:
        """The invalid_record fault breaks the lowest id of what is listed (a facility's orders, a company's rest)."""
        return min(rows) if self.faults.invalid_record and rows else None

    @staticmethod
    def _facility_row(facility: _Facility) -> dict[str, Any]:
        return {
            "id": facility.id,
            "facility_name": facility.name,
            "facility_type": "Dispensary",
            "license_number": f"{facility.state}-{facility.id:06d}",
            "active": True,
            "timezone": facility.zone.key,
            "address": {
                "address_line_1": f"{facility.id} Main St",
                "city": _CITIES.get(facility.state, "Springfield"),
                "state": facility.state,
                "postcode": "98402",
                "country": "US",
            },
        }

    # --- data ---------------------------------------------------------------------------------------------------
    def _new_company(self) -> _Company:
        number = next(self._ids["company"])
        key = "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(40))
        return _Company(username=f"aiq-integration-{number}", key=f"flk_{key}")

    def _new_facility(self, company: _Company, index: int) -> _Facility:
        state, zone, name, tax = _PROFILES[index % len(_PROFILES)]
        facility = _Facility(
            id=next(self._ids["facility"]),
            company=company,
            name=f"{name} #{len(company.facilities) + 1}",
            state=state,
            zone=ZoneInfo(zone),
            tax_rate=Decimal(tax),
        )
        company.facilities.append(facility)
        return facility

    def _seed_customers(self, company: _Company, facility: _Facility, n: int, start: datetime, end: datetime) -> None:
        rng = self.rng
        for updated in spread(start, end, n, rng):
            key = next(self._ids["customer"])
            person = self._people.person(key, facility.state)
            digits = person["phone"]
            style = _PHONE_STYLES[key % len(_PHONE_STYLES)]
            phone = style.format(a=digits[:3], b=digits[3:6], c=digits[6:]) if key % 23 else None
            created = _ms(updated - timedelta(days=rng.randint(0, 400), seconds=rng.randint(0, 86399)))
            medical = key % 7 == 0
            company.customers[key] = {
                "id": key,
                "first_name": person["first_name"],
                "last_name": person["last_name"],
                "middle_name": None,
                "preferred_name": None,
                "email": person["email"] if key % 19 else None,
                "alternate_email": None,
                "phone": phone,
                "home_phone": None,
                "alternate_phone": None,
                "dob": person["birth_date"],
                "state": facility.state,
                "patient_id": f"{facility.state}-MMP-{key:07d}" if medical else None,
                "medical_card_state": facility.state if medical else None,
                "customer_group": "veteran" if key % 31 == 0 else None,
                "customer_disciplinary_status": "no issues",
                "is_verified": True,
                "address": [
                    {
                        "id": next(self._ids["address"]),
                        "first_name": person["first_name"],
                        "last_name": person["last_name"],
                        "address_line_1": f"{rng.randint(100, 9999)} {rng.choice(['Pine', 'Oak', 'Cedar'])} St",
                        "address_line_2": None,
                        "city": _CITIES.get(facility.state, "Springfield"),
                        "state": facility.state,
                        "postcode": person["zipcode"],
                        "country": "US",
                        "type": "billing",
                    }
                ],
                "created_timestamp": created,
                "last_updated_timestamp": updated,
            }

    def _seed_items(self, company: _Company, n: int, start: datetime, end: datetime) -> None:
        rng = self.rng
        for position, updated in enumerate(spread(start, end, n, rng)):
            key = next(self._ids["item"])
            name, category, brand = PRODUCTS[position % len(PRODUCTS)]
            variant = "" if position < len(PRODUCTS) else f" #{position // len(PRODUCTS) + 1}"
            company.items[key] = {
                "id": key,
                "item_name": name + variant,
                "item_description": f"{brand} {category.lower()}",
                "sku": f"FLO-{category[:3].upper()}-{key}",
                "brand": brand,
                "item_category": category,
                "item_class": "Finished Goods",
                "inventory_type": "Cannabis",
                "uom": _UOMS[position % len(_UOMS)],
                "price": _money(Decimal(rng.randint(8, 60)) + Decimal(rng.choice(["0", "0.5", "0.99"]))),
                "active": key % 17 != 0,
                "sellable": True,
                "ecommerce_active": key % 3 == 0,
                "created_timestamp": _ms(updated - timedelta(days=rng.randint(1, 200))),
                "last_updated_timestamp": updated,
            }

    def _seed_orders(self, facility: _Facility, n: int, start: datetime, end: datetime) -> None:
        rng = self.rng
        completions = spread(start, end, n, rng)
        for position, done in enumerate(completions):
            roll = rng.random()
            if position >= n - max(1, n // 50):
                status = rng.choice(["Submitted", "Packed", "Out for Delivery"])  # the latest few are in progress
            elif roll < 0.03:
                status = "Cancelled"
            elif roll < 0.04:
                status = "Undeliverable"
            else:
                status = "Completed"
            order = self._order(facility, done - timedelta(minutes=rng.randint(2, 40)), done, status)
            facility.orders[order["id"]] = order

    def _order(self, facility: _Facility, created: datetime, done: datetime, status: str) -> dict[str, Any]:
        rng = self.rng
        company = facility.company
        items = list(company.items.values())
        customer = rng.choice(list(company.customers)) if company.customers else None
        delivery = status in ("Out for Delivery", "Undeliverable") or rng.random() < 0.1
        lines, subtotal, discounts = [], Decimal(0), Decimal(0)
        for _ in range(rng.randint(1, 4)):
            item = rng.choice(items) if items else None
            qty = Decimal(rng.choice([1, 1, 1, 2, 3]))
            price = Decimal(str(item["price"])) if item else Decimal("20")
            gross = qty * price
            discount = (gross * Decimal("0.10")).quantize(_CENT) if rng.random() < 0.2 else Decimal(0)
            subtotal, discounts = subtotal + gross, discounts + discount
            line_id = next(self._ids["line"])
            applied = APPLIED_DISCOUNTS[line_id % len(APPLIED_DISCOUNTS)]
            lines.append(
                {
                    "id": line_id,
                    "item_id": item["id"] if item else None,
                    "item_variation_id": None,
                    "sku": item["sku"] if item else None,
                    "item_name": item["item_name"] if item else "Open item",
                    "brand": item["brand"] if item else None,
                    "item_category": item["item_category"] if item else None,
                    "order_qty": int(qty),
                    "unit_price": _money(price),
                    "total_price": _money(gross),
                    "refunded_qty": 0,
                    "applied_discounts": (
                        [{"discount_id": applied.pos_id, "discount_name": applied.name,
                          "method": "percentage" if applied.kind == "percent" else "dollar",
                          "amount": float(applied.value), "discount_value": _money(discount)}]
                        if discount
                        else []
                    ),
                }
            )  # fmt: skip
        tax = ((subtotal - discounts) * facility.tax_rate).quantize(_CENT, rounding=ROUND_HALF_UP)
        total = subtotal - discounts + tax
        completed = status == "Completed"
        final = status in _FINAL_STATUSES
        return {
            "id": next(self._ids["order"]),
            "original_order_id": None,
            "customer_id": customer,
            "facility_id": facility.id,
            "order_status": status,
            "order_payment_status": "Paid" if completed else "Awaiting Payment",
            "order_origin": "Online" if delivery else "Flourish",
            "fulfillment_type": "delivery" if delivery else "in-store",
            "is_recreational": True,
            "notes": "",
            "order_timestamp": _ms(created),
            "created_timestamp": _ms(created),
            "submitted_timestamp": _ms(created + (done - created) / 4),
            "packed_timestamp": _ms(created + (done - created) / 2) if completed else None,
            "completed_timestamp": _ms(done) if completed else None,
            "last_updated_timestamp": _ms(done) if final else _ms(created + (done - created) / 2),
            "subtotal": _money(subtotal),
            "total_discounts": _money(discounts),
            "total_tax": _money(tax),
            "delivery_fee": 0.0,
            "total_price": _money(total),
            "total_paid": _money(total) if completed else 0.0,
            "total_refunded": 0.0,
            "order_lines": lines,
        }

    def _touch(self, stream: Stream, row: dict[str, Any]) -> None:
        if stream is Stream.CUSTOMERS:
            self._touch_customer(row)
        elif stream is Stream.INVENTORY:
            row["price"] = _money(Decimal(str(row["price"])) + Decimal("1"))
            row["last_updated_timestamp"] = _ms(utc_now())
        elif stream is Stream.DISCOUNTS:
            row["active"] = not row["active"]
            row["last_updated_timestamp"] = _ms(utc_now())
        elif row["order_status"] == "Completed" and row["order_payment_status"] == "Paid":
            self._refund(row, full=True)
        else:
            row["notes"] = "edited while paging"
            row["last_updated_timestamp"] = _ms(utc_now())

    def _touch_customer(self, row: dict[str, Any]) -> None:
        digits = "".join(ch for ch in str(row.get("phone") or "") if ch.isdigit())[-10:] or "2065550100"
        row["phone"] = f"({digits[:3]}) {digits[3:6]}-{(int(digits[6:]) + 1) % 10000:04d}"
        row["email"] = f"{row['first_name']}.{row['last_name']}.{row['id']}@example.net".lower()
        row["last_updated_timestamp"] = _ms(utc_now())

    def _apply_refunds(self) -> None:
        """The refunds fault: about one completed order in six per facility is refunded (in full, in part, or by a
        returned line), stamped now. Applied once per order; the change stays when the switch goes off."""
        for facility in self._facilities.values():
            done = sorted(k for k, row in facility.orders.items() if row["order_status"] == "Completed")
            for position, key in enumerate(done[::6]):
                if key in self._refunded:
                    continue
                self._refund(facility.orders[key], full=position % 3 == 0, by_return=position % 3 == 2)

    def _refund(self, row: dict[str, Any], *, full: bool, by_return: bool = False) -> None:
        self._refunded.add(row["id"])
        if full:
            row["order_payment_status"] = "Refunded"
            row["total_refunded"] = row["total_price"]
        else:
            line = row["order_lines"][0]
            paid_each = (
                Decimal(str(line["total_price"]))
                - sum((Decimal(str(d["discount_value"])) for d in line["applied_discounts"]), Decimal(0))
            ) / Decimal(line["order_qty"])
            if by_return:
                row["order_lines"].append(
                    {**line, "id": next(self._ids["line"]), "order_qty": -1, "total_price": _money(-paid_each),
                     "applied_discounts": [], "refunded_qty": 0}
                )  # fmt: skip
            else:
                line["refunded_qty"] = 1
            row["order_payment_status"] = "Partially Refunded"
            row["total_refunded"] = _money(paid_each)
        row["last_updated_timestamp"] = _ms(utc_now())


def _order_key(row: dict[str, Any]) -> tuple[datetime, int]:
    return (row["last_updated_timestamp"], row["id"])


def _paging(request: Request) -> tuple[int, int]:
    limit = int(request.arg("limit") or _DEFAULT_LIMIT)
    offset = int(request.arg("offset") or 0)
    if limit < 1 or offset < 0:
        raise ValueError("limit must be positive and offset not negative")
    return min(limit, MAX_LIMIT), offset


def _parse_filter_time(raw: str) -> datetime:
    value = datetime.fromisoformat(raw.strip())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_EXACT_FILTERS = frozenset({"order_status", "order_payment_status", "customer_id", "sku", "patient_id", "active"})


def _matches(row: dict[str, Any], request: Request, timestamps: bool = True) -> bool:
    """Documented filters; undocumented query parameters are ignored, as a lenient API does."""
    for name, values in request.query.items():
        if name in ("limit", "offset") or values[0] == "":
            continue
        if not _filter_accepts(row, name, values[0], timestamps):
            return False
    return True


def _filter_accepts(row: dict[str, Any], name: str, value: str, timestamps: bool = True) -> bool:
    if name.endswith(("_timestamp_start", "_timestamp_end")):
        field_name = name.rsplit("_", 1)[0]
        if not timestamps and field_name in _ASSUMED_TIMESTAMPS:
            return True  # a server without the field cannot filter on it: it ignores the filter, as a lenient API does
        stamp = row.get(field_name)
        bound = _parse_filter_time(value)
        if stamp is None:
            return False
        return stamp >= bound if name.endswith("_start") else stamp <= bound
    if name == "phone_number":
        return "".join(ch for ch in str(row.get("phone") or "") if ch.isdigit())[-10:] == value[-10:]
    if name == "email":
        return str(row.get("email") or "").lower() == value.lower()
    if name in _EXACT_FILTERS:
        return str(row.get(name)).lower() == value.lower()
    return True
