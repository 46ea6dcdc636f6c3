"""POSaBIT Venue API v3 simulator: venues with their own tokens, customers, sales histories and inventories."""

from __future__ import annotations

import base64
import binascii
import copy
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from functions.core.layout import Stream
from simulators.base import PRODUCTS, SIM_DISCOUNTS, People, Request, Response, Simulator, spread, utc_now

API = "/api/v3/venue"
INFO_PATH = f"{API}/info"
CUSTOMERS_PATH = f"{API}/customers"
SALES_PATH = f"{API}/sales_histories"
INVENTORY_PATH = f"{API}/inventories"
COUPONS_PATH = f"{API}/coupons"
_CUSTOMER_PATH = re.compile(rf"^{re.escape(CUSTOMERS_PATH)}/(\d+)$")
_EQ_FILTER = re.compile(r"^q\[([a-z_]+)_eq\]$")

DEFAULT_PER_PAGE = 100
# Server-side page-size ceilings: POSaBIT documents "Results per page (default 1000)" for its venue lists
# (developer.posabit.com, venue coupons); larger requests are capped and the envelope's per_page says what was
# served. `Faults.refuse_page_size_over` makes the server refuse big pages instead (HTTP 422, invalid parameters).
MAX_PER_PAGE = {CUSTOMERS_PATH: 1000, SALES_PATH: 1000, INVENTORY_PATH: 1000, COUPONS_PATH: 1000}
RECORDS_KEY = {
    CUSTOMERS_PATH: "customers",
    SALES_PATH: "sales_histories",
    INVENTORY_PATH: "inventory",
    COUPONS_PATH: "coupons",
}
WRAPPER_KEY = {
    CUSTOMERS_PATH: "customer",
    SALES_PATH: "sales_history",
    INVENTORY_PATH: "inventory",
    COUPONS_PATH: "coupon",
}
STREAM_PATH = {
    Stream.CUSTOMERS: CUSTOMERS_PATH,
    Stream.LOYALTY: CUSTOMERS_PATH,
    Stream.SALES: SALES_PATH,
    Stream.INVENTORY: INVENTORY_PATH,
    Stream.DISCOUNTS: COUPONS_PATH,
}
SORTABLE = frozenset({"updated_at", "created_at", "id"})

# (Rails zone name, IANA zone, state): the venues take these in turn.
VENUE_ZONES = [
    ("Pacific Time (US & Canada)", "America/Los_Angeles", "WA"),
    ("Mountain Time (US & Canada)", "America/Denver", "CO"),
    ("Eastern Time (US & Canada)", "America/New_York", "MI"),
    ("Pacific Time (US & Canada)", "America/Los_Angeles", "OR"),
    ("Pacific Time (US & Canada)", "America/Los_Angeles", "CA"),
]
VENUE_NAMES = ["Green Harbor", "Summit Leaf", "Great Lakes Cannabis", "Rose City Buds", "Golden Coast"]
PAYMENT_METHODS = ["Cash", "Debit Card", "POSaBIT Pay"]
# The venue's coupons: the shared simulated discounts (the demo's rewards mirror them; one name mis-mirrored).
COUPONS = [(4700 + d.pos_id, d.name) for d in SIM_DISCOUNTS]


def _coupon(coupon_id: int, updated: datetime) -> dict[str, Any]:
    shared = next(d for d in SIM_DISCOUNTS if 4700 + d.pos_id == coupon_id)
    flat = shared.kind == "flat"
    return {
        "id": coupon_id,
        "name": shared.name,
        "discount_type": "dollar" if flat else "percent",
        "amount": round(float(shared.value) * 100) if flat else float(shared.value),
        "active": True,
        "created_at": updated,
        "updated_at": updated,
    }


class BadRequestError(ValueError):
    """A request the real API would answer with 422."""


@dataclass
class Venue:
    id: int
    name: str
    state: str
    rails_zone: str
    zone: ZoneInfo
    token: str
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    sales: dict[int, dict[str, Any]] = field(default_factory=dict)
    inventory: dict[int, dict[str, Any]] = field(default_factory=dict)
    coupons: dict[int, dict[str, Any]] = field(default_factory=dict)

    def table(self, path: str) -> dict[int, dict[str, Any]]:
        if path == CUSTOMERS_PATH:
            return self.customers
        if path == SALES_PATH:
            return self.sales
        if path == COUPONS_PATH:
            return self.coupons
        return self.inventory


def _parse_time(value: str) -> datetime:
    """Filter values the way a Rails app with a UTC application zone reads them."""
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _format_phone(digits: str, index: int) -> str:
    """Phones as cashiers type them: bare digits, dashes, brackets, or with the country code."""
    style = index % 4
    if style == 0 or len(digits) != 10:
        return digits
    if style == 1:
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    if style == 2:
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return f"+1{digits}"


class PosabitSimulator(Simulator):
    """Serves /api/v3/venue/{info,customers,sales_histories,inventories} for several venues.

    Auth is HTTP Basic integrator token : venue token (one integrator token, one token per venue); lists page
    with `page`/`per_page`, filter with Ransack `q[updated_at_gt|gteq|lt|lteq]` and `q[<field>_eq]`, sort by
    `q[s]` (default `updated_at asc`, ties by id); the customers list also needs `start_date`/`end_date` (ASSUMED
    to be a created-day range). List items are sometimes wrapped as {"customer": {...}} (`wrap_ratio`).
    """

    vendor = "posabit"

    def __init__(
        self,
        seed: int = 7,
        store_count: int = 2,
        customers_per_store: int = 40,
        sales_per_store: int = 80,
        products_per_store: int = 12,
        *,
        integrator_token: str = "sim-integrator-0001",
        wrap_ratio: float = 0.3,
        history_days: int = 60,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__()
        self.integrator_token = integrator_token
        self.wrap_ratio = wrap_ratio
        self._now = now
        self._rng = random.Random(seed)
        self._next_id = {CUSTOMERS_PATH: 100_001, SALES_PATH: 5_000_001, INVENTORY_PATH: 900_001}
        self._venues: dict[str, Venue] = {}
        moment = now()
        for index in range(store_count):
            rails_zone, zone, state = VENUE_ZONES[index % len(VENUE_ZONES)]
            venue = Venue(
                id=3221 + index,
                name=f"{VENUE_NAMES[index % len(VENUE_NAMES)]} #{index + 1}",
                state=state,
                rails_zone=rails_zone,
                zone=ZoneInfo(zone),
                token=f"sim-venue-{seed}-{index + 1:03d}-{self._rng.getrandbits(40):010x}",
            )
            self._venues[str(venue.id)] = venue
            people = People(seed * 1000 + index)
            start = moment - timedelta(days=history_days)
            end = moment - timedelta(minutes=1)
            venue.coupons = {cid: _coupon(cid, start) for cid, _ in COUPONS}
            self._seed_inventory(venue, products_per_store, start, end)
            self._seed_customers(venue, people, customers_per_store, start, end)
            self._seed_sales(venue, sales_per_store, start, end)

    # --- seeding --------------------------------------------------------------------------------------------------
    def _new_id(self, path: str) -> int:
        value = self._next_id[path]
        self._next_id[path] = value + 1
        return value

    def _seed_inventory(self, venue: Venue, count: int, start: datetime, end: datetime) -> None:
        rng = self._rng
        for position, updated in enumerate(spread(start, end, count, rng)):
            name, category, brand = PRODUCTS[position % len(PRODUCTS)]
            variant = position // len(PRODUCTS)
            pid = self._new_id(INVENTORY_PATH)
            venue.inventory[pid] = {
                "id": pid,
                "product_id": 70_000 + pid % 100_000,
                "name": name if variant == 0 else f"{name} (batch {variant + 1})",
                "unit": "each",
                "sku": f"SKU-{venue.id}-{position:05d}",
                "brand": brand,
                "category": category,
                "vendor": f"{brand} Farms",
                "price": rng.choice([1000, 1500, 2000, 2500, 3500, 4500, 6000]),
                "quantity_on_hand": f"{rng.randint(0, 400)}.0",
                "active": position % 13 != 12,
                "created_at": updated - timedelta(days=rng.randint(0, 300)),
                "updated_at": updated,
            }

    def _seed_customers(self, venue: Venue, people: People, count: int, start: datetime, end: datetime) -> None:
        rng = self._rng
        stamps = spread(start, end, count, rng)
        rng.shuffle(stamps)  # ids follow creation, updates come in any order
        for index, updated in enumerate(stamps):
            cid = self._new_id(CUSTOMERS_PATH)
            venue.customers[cid] = self._customer_row(cid, index, people.person(index, venue.state), updated)

    def _customer_row(self, cid: int, index: int, person: dict[str, Any], updated: datetime) -> dict[str, Any]:
        rng = self._rng
        email: str | None = person["email"]
        if index % 17 == 5:
            email = None
        elif email is not None and index % 11 == 3:
            email = email.upper()
        member = index % 5 != 4
        return {
            "id": cid,
            "first_name": person["first_name"],
            "last_name": person["last_name"],
            "telephone": _format_phone(person["phone"], index),
            "email": email,
            "loyalty_member": member,
            "marketing_opt_in": member and index % 3 != 0,
            "sms_opt_in": member and index % 4 != 0,
            "sms_opt_out": index % 23 == 7,
            "points": rng.randint(0, 900) if member else 0,
            "birthday": person["birth_date"],
            "state": person["state"],
            "zipcode": person["zipcode"],
            "customer_type": "medical" if index % 9 == 0 else "recreational",
            "drivers_license": f"WDL{cid:09d}",
            "created_at": updated - timedelta(days=rng.randint(0, 700), seconds=rng.randint(0, 86_399)),
            "updated_at": updated,
        }

    def _seed_sales(self, venue: Venue, count: int, start: datetime, end: datetime) -> None:
        for ordered in spread(start, end, count, self._rng):
            self._add_sale(venue, ordered, ordered + timedelta(seconds=self._rng.randint(0, 300)))

    def _add_sale(self, venue: Venue, ordered: datetime, updated: datetime) -> int:
        rng = self._rng
        sid = self._new_id(SALES_PATH)
        products = list(venue.inventory.values())
        customer_ids = list(venue.customers)
        items = []
        for line in range(rng.randint(1, 3)):
            product = rng.choice(products)
            quantity = rng.randint(1, 3)
            sub_total = product["price"] * quantity
            coupon = rng.choice(COUPONS) if rng.random() < 0.2 else None
            discount = sub_total // 10 if coupon else 0
            tax = round((sub_total - discount) * 0.1)
            items.append(
                {
                    "item_id": sid * 10 + line,
                    "sales_history_id": sid,
                    "product_id": product["product_id"],
                    "inventory_id": product["id"],
                    "sku": product["sku"],
                    "category": product["category"],
                    "brand": product["brand"],
                    "product_name": product["name"],
                    "quantity": quantity,
                    "sub_total": sub_total,
                    "discount": discount,
                    "tax": tax,
                    "total": sub_total - discount + tax,
                    "discount_list": [{"coupon_id": coupon[0], "coupon_name": coupon[1]}] if coupon else [],
                }
            )
        sub_total = sum(i["sub_total"] for i in items)
        discount = sum(i["discount"] for i in items)
        tax = sum(i["tax"] for i in items)
        total = sub_total - discount + tax
        venue.sales[sid] = {
            "id": sid,
            "is_medical": False,
            "ordered_at": ordered,
            "sale_type": "in_store",
            "order_source": "pos",
            "terminal_id": 1 + sid % 3,
            "customer_id": rng.choice(customer_ids) if customer_ids and rng.random() < 0.85 else None,
            "sub_total": sub_total,
            "discount": discount,
            "tax": tax,
            "total": total,
            "status": "completed",
            "items": items,
            "sales_tenders": [
                {
                    "sales_tender_id": sid * 10,
                    "payment_method_name": rng.choice(PAYMENT_METHODS),
                    "subtotal": sub_total - discount,
                    "tax": tax,
                    "total": total,
                }
            ],
            "created_at": ordered,
            "updated_at": updated,
        }
        return sid

    # --- helpers for tests and the local runtime -------------------------------------------------------------------
    @property
    def stores(self) -> list[str]:
        return list(self._venues)

    def venue(self, store: str) -> Venue:
        return self._venues[store]

    def credential_for(self, store: str) -> dict[str, Any]:
        """The credential as `parse_credential` accepts it."""
        venue = self._venues[store]
        return {
            "vendor": "posabit",
            "store_name": venue.name,
            "integrator_token": self.integrator_token,
            "venue_token": venue.token,
            "market": venue.state,
        }

    def timezone_for(self, store: str) -> str:
        return self._venues[store].zone.key

    def all_ids(self, stream: Stream | str) -> set[tuple[str, str]]:
        """Every (store, POS id) the simulator holds for a stream: what a complete pull must have seen."""
        path = STREAM_PATH[Stream(stream)]
        with self.lock:
            return {(store, str(rid)) for store, venue in self._venues.items() for rid in venue.table(path)}

    def add_sales(self, store: str, n: int) -> list[str]:
        """n new sales rung up now (wall clock)."""
        with self.lock:
            venue = self._venues[store]
            moment = self._now()
            return [str(self._add_sale(venue, moment, moment)) for _ in range(n)]

    def update_customers(self, store: str, n: int) -> list[str]:
        """n existing customers edited now: points change, some change email or phone."""
        with self.lock:
            venue = self._venues[store]
            moment = self._now()
            chosen = self._rng.sample(sorted(venue.customers), min(n, len(venue.customers)))
            for position, cid in enumerate(chosen):
                row = venue.customers[cid]
                row["points"] = int(row["points"] or 0) + self._rng.randint(1, 50)
                if position % 3 == 1:
                    row["email"] = f"{row['first_name']}.{row['last_name']}.{cid}@example.org".lower()
                row["updated_at"] = moment
            return [str(cid) for cid in chosen]

    def touch(self, store: str, stream: Stream | str, ids: Iterable[str]) -> None:
        """Mark records as changed now without changing their content."""
        with self.lock:
            table = self._venues[store].table(STREAM_PATH[Stream(stream)])
            moment = self._now()
            for rid in ids:
                table[int(rid)]["updated_at"] = moment

    # --- HTTP -------------------------------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        url = super().start(host, port)
        assert self._server is not None
        # The handler writes headers and body separately; with Nagle on, every response waits for the client's
        # delayed ACK (~40 ms a page on Linux loopback). Set before any connection is accepted.
        self._server.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]
        return url

    def is_data_path(self, path: str) -> bool:
        return path.startswith("/api/")

    def handle(self, request: Request) -> Response:
        venue = self._authenticate(request)
        if venue is None:
            return Response.json({"error": "Unauthorized"}, 401)
        with self.lock:
            try:
                return self._route(venue, request)
            except BadRequestError as exc:
                return Response.json({"error": str(exc)}, 422)

    def _authenticate(self, request: Request) -> Venue | None:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return None
        try:
            integrator, _, venue_token = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if integrator != self.integrator_token:
            return None
        return next((v for v in self._venues.values() if v.token == venue_token), None)

    def _route(self, venue: Venue, request: Request) -> Response:
        path, method = request.path.rstrip("/"), request.method
        if path == INFO_PATH and method == "GET":
            return Response.json(self._venue_info(venue))
        if path in RECORDS_KEY and method == "GET":
            return self._list(venue, path, request)
        if path == CUSTOMERS_PATH and method == "POST":
            return self._create_customer(venue, request)
        match = _CUSTOMER_PATH.match(path)
        if match and method == "GET":
            row = venue.customers.get(int(match.group(1)))
            if row is None:
                return Response.json({"error": "Not Found"}, 404)
            return Response.json(
                {"customer": self._render(venue, CUSTOMERS_PATH, row, self._broken_id(venue, CUSTOMERS_PATH))}
            )
        return Response.json({"error": "Not Found"}, 404)

    @staticmethod
    def _venue_info(venue: Venue) -> dict[str, Any]:
        return {
            "id": venue.id,
            "name": venue.name,
            "license": f"{412000 + venue.id}",
            "region": venue.state,
            "locale": "en-US",
            "vertical": "dispensaries",
            "telephone": "",
            "city": "Springfield",
            "state": venue.state,
            "zip_code": "98000",
            "country": "USA",
            "timezone": venue.rails_zone,
            "payment_methods": PAYMENT_METHODS,
        }

    # --- lists ------------------------------------------------------------------------------------------------------
    def _int_arg(self, request: Request, name: str, default: int) -> int:
        raw = request.arg(name)
        if raw is None or raw == "":
            return default
        if not raw.isdigit() or int(raw) < 1:
            raise BadRequestError(f"{name} must be a positive integer")
        return int(raw)

    def _select(self, venue: Venue, path: str, request: Request) -> list[dict[str, Any]]:
        rows: Iterable[dict[str, Any]] = venue.table(path).values()
        bounds: list[tuple[str, datetime]] = []
        for op in ("gt", "gteq", "lt", "lteq"):
            raw = request.arg(f"q[updated_at_{op}]")
            if raw:
                try:
                    bounds.append((op, _parse_time(raw)))
                except ValueError:
                    raise BadRequestError(f"q[updated_at_{op}] is not a time") from None
        for op, bound in bounds:
            if op == "gt":
                rows = [r for r in rows if r["updated_at"] > bound]
            elif op == "gteq":
                rows = [r for r in rows if r["updated_at"] >= bound]
            elif op == "lt":
                rows = [r for r in rows if r["updated_at"] < bound]
            else:
                rows = [r for r in rows if r["updated_at"] <= bound]
        if path == CUSTOMERS_PATH:
            rows = self._customer_filters(rows, request)
        return self._sorted(list(rows), request.arg("q[s]"))

    def _customer_filters(self, rows: Iterable[dict[str, Any]], request: Request) -> list[dict[str, Any]]:
        first, last = request.arg("start_date"), request.arg("end_date")
        if not first or not last:
            raise BadRequestError("start_date and end_date are required")
        try:
            first_day, last_day = date.fromisoformat(first), date.fromisoformat(last)
        except ValueError:
            raise BadRequestError("start_date and end_date must be dates (YYYY-MM-DD)") from None
        selected = [r for r in rows if first_day <= r["created_at"].date() <= last_day]
        for name in request.query:
            match = _EQ_FILTER.match(name)
            if match and match.group(1) != "updated_at":
                wanted = request.arg(name)
                selected = [r for r in selected if str(r.get(match.group(1))) == wanted]
        return selected

    @staticmethod
    def _sorted(rows: list[dict[str, Any]], sort: str | None) -> list[dict[str, Any]]:
        column, _, direction = (sort or "updated_at asc").strip().partition(" ")
        if column not in SORTABLE:
            column = "updated_at"
        rows.sort(key=lambda r: (r[column], r["id"]), reverse=direction.strip().lower() == "desc")
        return rows

    def _list(self, venue: Venue, path: str, request: Request) -> Response:
        page = self._int_arg(request, "page", 1)
        asked = self._int_arg(request, "per_page", DEFAULT_PER_PAGE)
        refuse_over = self.faults.refuse_page_size_over
        if refuse_over is not None and asked > refuse_over:
            return Response.json({"code": 0, "message": "Invalid parameters: per_page"}, 422)
        per_page = min(asked, MAX_PER_PAGE[path])
        rows = self._select(venue, path, request)
        broken = self._broken_id(venue, path)
        start = (page - 1) * per_page
        chunk = rows[start : start + per_page]
        if self.faults.duplicate_across_pages and page > 1 and 0 < start <= len(rows):
            chunk = [rows[start - 1], *chunk]
        payload = {
            "total_records": len(rows),
            "current_page": page,
            "total_pages": max(1, -(-len(rows) // per_page)),
            "per_page": per_page,
            RECORDS_KEY[path]: [self._render(venue, path, row, broken) for row in chunk],
        }
        response = Response.json(payload)
        if page == 1 and chunk and self.faults.update_while_paging > 0:
            # Records already served change now: a pull with a fixed window end sees them leave the window.
            changed = chunk[: self.faults.update_while_paging]
            self.faults.update_while_paging -= len(changed)
            moment = self._now()
            for row in changed:
                row["updated_at"] = moment
                if "points" in row:
                    row["points"] = int(row["points"] or 0) + 1
        return response

    # --- rendering --------------------------------------------------------------------------------------------------
    def _timestamp(self, venue: Venue, moment: datetime) -> str:
        if self.faults.naive_timestamps:
            return moment.astimezone(venue.zone).replace(tzinfo=None).isoformat(timespec="milliseconds")
        if self.faults.offset_timestamps:
            return moment.astimezone(venue.zone).isoformat(timespec="milliseconds")
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _broken_id(self, venue: Venue, path: str) -> int | None:
        """With `invalid_record` on, the venue's oldest record of each list fails validation."""
        table = venue.table(path)
        return min(table) if self.faults.invalid_record and table else None

    def _render(self, venue: Venue, path: str, row: dict[str, Any], broken_id: int | None) -> dict[str, Any]:
        faults = self.faults
        out: dict[str, Any] = {}
        for key, value in row.items():
            out[key] = self._timestamp(venue, value) if isinstance(value, datetime) else value
        if path == SALES_PATH:
            out["items"] = [dict(item) for item in row["items"]]
            out["sales_tenders"] = [dict(t) for t in row["sales_tenders"]]
            out["ordered_at_local"] = (
                row["ordered_at"].astimezone(venue.zone).replace(tzinfo=None).isoformat(timespec="milliseconds")
            )
            if faults.refunds:
                self._as_refund(out)
        if faults.extra_fields:
            out["x_sim_note"] = "field the connector has never seen"
            out["x_sim_nested"] = {"tier": "gold", "tags": ["a", "b"]}
            for item in out.get("items", []):
                item["x_sim_line_note"] = 1
        if row["id"] == broken_id:
            self._corrupt(path, out)
        if self.wrap_ratio and (row["id"] * 2_654_435_761 % 1000) < self.wrap_ratio * 1000:
            return {WRAPPER_KEY[path]: out}
        return out

    @staticmethod
    def _as_refund(sale: dict[str, Any]) -> None:
        """Deterministic refunds: every 7th sale is given back whole (negative lines), every 11th in part (its first
        line), every 5th is an original sale later marked refunded."""
        sid, items = sale["id"], sale["items"]
        if sid % 7 == 0:
            negate = items
        elif sid % 11 == 0 and len(items) > 1:
            negate = items[:1]
        else:
            negate = []
        for item in negate:
            for key in ("quantity", "sub_total", "discount", "tax", "total"):
                item[key] = -item[key]
        if negate:
            for key in ("sub_total", "discount", "tax"):
                sale[key] = sum(i[key] for i in items)
            sale["total"] = sum(i["total"] for i in items)
            for tender in sale["sales_tenders"]:
                tender["total"] = sale["total"]
        if sid % 5 == 0:
            sale["status"] = "refunded"

    @staticmethod
    def _corrupt(path: str, out: dict[str, Any]) -> None:
        if path == CUSTOMERS_PATH:
            out["updated_at"] = "last tuesday"
        elif path == SALES_PATH:
            out["total"] = "twelve dollars"
        else:
            out["name"] = None

    # --- create -----------------------------------------------------------------------------------------------------
    def _create_customer(self, venue: Venue, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return Response.json({"error": "body is not JSON"}, 400)
        fields = body.get("customer") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return Response.json({"errors": {"customer": ["is missing"]}}, 422)
        if not str(fields.get("first_name") or "").strip():
            return Response.json({"errors": {"first_name": ["can't be blank"]}}, 422)
        # ASSUMED (POSaBIT publishes no create contract): Rails-style validations, 422 with the field's errors;
        # telephone is 10 digits, email has an @, and both are unique within the venue ("has already been taken").
        telephone, email = fields.get("telephone"), fields.get("email")
        if telephone is not None and not re.fullmatch(r"\d{10}", str(telephone)):
            return Response.json({"errors": {"telephone": ["must be 10 digits"]}}, 422)
        if email is not None and "@" not in str(email):
            return Response.json({"errors": {"email": ["is invalid"]}}, 422)
        for name, value in (("telephone", telephone), ("email", email)):
            if value and any(str(r.get(name) or "").lower() == str(value).lower() for r in venue.customers.values()):
                return Response.json({"errors": {name: ["has already been taken"]}}, 422)
        license_number = fields.get("drivers_license")
        if license_number and any(r.get("drivers_license") == license_number for r in venue.customers.values()):
            return Response.json({"errors": {"drivers_license": ["has already been taken"]}}, 422)
        moment = self._now()
        cid = self._new_id(CUSTOMERS_PATH)
        row: dict[str, Any] = {
            "id": cid,
            "first_name": None,
            "last_name": None,
            "telephone": None,
            "email": None,
            "loyalty_member": False,
            "marketing_opt_in": False,
            "sms_opt_in": False,
            "sms_opt_out": False,
            "points": 0,
            "birthday": None,
            "state": venue.state,
            "zipcode": None,
            "customer_type": "recreational",
            "drivers_license": None,
        }
        accepted = set(row) - {"id", "points"}
        row.update({key: copy.deepcopy(value) for key, value in fields.items() if key in accepted})
        row["created_at"] = row["updated_at"] = moment
        venue.customers[cid] = row
        rendered = self._render(venue, CUSTOMERS_PATH, row, None)
        # one wrapper: the create answer is {"customer": {...}} (the list items' random wrapping is not applied twice)
        return Response.json({"customer": rendered.get(WRAPPER_KEY[CUSTOMERS_PATH], rendered)}, 201)
