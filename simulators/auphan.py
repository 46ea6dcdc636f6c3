"""Auphan store-server simulator (ASSUMED contract, see functions/pull_onprem/auphan/CONTRACT.md)."""

from __future__ import annotations

import base64
import binascii
import bisect
import hmac
import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from functions.core.layout import Stream
from simulators.base import APPLIED_DISCOUNTS, PRODUCTS, SIM_DISCOUNTS, People, Request, Response, spread, utc_now
from simulators.profitek import OnPremSimulator, Row, Table, TlsIdentity, format_phone, parse_instant, render
from simulators.profitek import timestamp_mode as _timestamp_mode

STORE_PATH = "/api/v2/store"
STREAM_PATHS = {
    "/api/v2/customers": Stream.CUSTOMERS,
    "/api/v2/sales": Stream.SALES,
    "/api/v2/products": Stream.INVENTORY,
    "/api/v2/discounts": Stream.DISCOUNTS,
}
STREAMS = (Stream.CUSTOMERS, Stream.SALES, Stream.INVENTORY, Stream.DISCOUNTS)
MAX_LIMIT = 500
DEFAULT_LIMIT = 100
SORT = "updatedAt:asc"
UNAUTHORIZED = {"error": "invalid_api_key", "message": "The API key is missing or not valid for any store."}

STORE_ZONES = [
    ("America/Los_Angeles", "WA", "Tacoma"),
    ("America/Los_Angeles", "CA", "Oakland"),
    ("America/Denver", "CO", "Boulder"),
    ("America/Detroit", "MI", "Lansing"),
    ("America/Vancouver", "BC", "Victoria"),
]
STORE_NAMES = ["Harbor Herb", "Bay Botanicals", "Flatirons Flower", "Motor City Meds", "Island Leaf"]
PAYMENT_METHODS = ["cash", "debit", "gift_card"]
TAX_RATE = 0.10
# Share of sales Auphan cannot link to a shopper (its FAQ: "may not have the data available to link a sale").
UNLINKED_SALE_SHARE = 0.4


def _dollars(cents: int) -> str:
    """Money as Auphan sends it (ASSUMED): a decimal string with two places."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _discount_id(store: AuphanStore, pos_id: int) -> str:
    return f"disc-{store.store_id}-{pos_id}"


def _line_discounts(store: AuphanStore, receipt: int) -> list[dict[str, Any]]:
    """The mirrored discount a discounted line carries (by receipt number: no extra draw on the seed)."""
    d = APPLIED_DISCOUNTS[receipt % len(APPLIED_DISCOUNTS)]
    return [{"discountId": _discount_id(store, d.pos_id), "name": d.name}]


@dataclass
class AuphanStore:
    store_id: str
    name: str
    region: str
    city: str
    zone: ZoneInfo
    api_key: str
    tables: dict[Stream, Table] = field(default_factory=lambda: {stream: Table() for stream in STREAMS})
    customer_ids: list[str] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)


def encode_cursor(row: Row) -> str:
    payload = json.dumps([row.updated_at.isoformat(), row.pos_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (updatedAt, id) position a cursor stands for; ValueError for anything we did not issue."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        updated, pos_id = json.loads(raw)
        moment = parse_instant(updated)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError("bad cursor") from exc
    if moment is None or not isinstance(pos_id, str):
        raise ValueError("bad cursor")
    return moment, pos_id


class AuphanSimulator(OnPremSimulator):
    """Serves /api/v2/{store,customers,sales,products} for several stores, one APIKey each (header `APIKey`).

    Lists take `updatedFrom` (inclusive) / `updatedTo` (exclusive), `limit` and an opaque `cursor`; they are in
    (updatedAt, id) order and answer {"items", "totalCount", "nextCursor"}. About 40% of sales carry no
    customerId. Every Faults switch is honoured; `power_off()` / `power_on()` switch the store PC off and on.
    """

    vendor = "auphan"

    def __init__(
        self,
        seed: int = 11,
        store_count: int = 2,
        customers_per_store: int = 40,
        sales_per_store: int = 80,
        products_per_store: int = 12,
        *,
        history_days: int = 60,
        tls: TlsIdentity | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(tls)
        self._now = now
        self._rng = random.Random(seed)
        self._stores: dict[str, AuphanStore] = {}
        self._by_key: dict[str, AuphanStore] = {}
        self._next_receipt = 40_001
        moment = now()
        start, end = moment - timedelta(days=history_days), moment - timedelta(minutes=1)
        for index in range(store_count):
            zone, region, city = STORE_ZONES[index % len(STORE_ZONES)]
            store = AuphanStore(
                store_id=str(1001 + index),
                name=f"{STORE_NAMES[index % len(STORE_NAMES)]} {city}",
                region=region,
                city=city,
                zone=ZoneInfo(zone),
                api_key=f"ak-{seed}-{index + 1:02d}-{self._rng.getrandbits(80):020x}",
            )
            self._stores[store.store_id] = store
            self._by_key[store.api_key] = store
            for d in SIM_DISCOUNTS:
                data = {"discountId": _discount_id(store, d.pos_id), "storeId": store.store_id, "name": d.name,
                        "discountType": "amount" if d.kind == "flat" else "percent", "value": d.value,
                        "status": "active"}  # fmt: skip
                store.tables[Stream.DISCOUNTS].put(Row(data["discountId"], data["discountId"], start, data))
            self._seed_products(store, products_per_store, start, end)
            self._seed_customers(store, People(seed * 1000 + index), customers_per_store, start, end)
            for completed in spread(start, end, sales_per_store, self._rng):
                self._add_sale(store, completed, completed + timedelta(seconds=self._rng.randint(0, 900)))

    # --- seeding --------------------------------------------------------------------------------------------------
    def _uuid(self) -> str:
        """A seeded, UUID-shaped id (Auphan ids are GUIDs, ASSUMED)."""
        h = f"{self._rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"

    def _seed_products(self, store: AuphanStore, count: int, start: datetime, end: datetime) -> None:
        rng = self._rng
        for position, updated in enumerate(spread(start, end, count, rng)):
            name, category, brand = PRODUCTS[position % len(PRODUCTS)]
            variant = position // len(PRODUCTS)
            product_id = self._uuid()
            price = rng.choice([900, 1400, 2200, 2800, 3600, 4800, 5500])
            data = {
                "productId": product_id,
                "storeId": store.store_id,
                "sku": f"AU-{store.store_id}-{position:04d}",
                "name": name if variant == 0 else f"{name} - Batch {variant + 1}",
                "brand": brand,
                "category": category,
                "retailPrice": _dollars(price),
                "onHand": f"{rng.randint(0, 250)}.000",
                "status": "discontinued" if position % 13 == 12 else "active",
                "_price": price,
            }
            store.tables[Stream.INVENTORY].put(Row(product_id, product_id, updated, data))
            store.products.append(data)

    def _seed_customers(self, store: AuphanStore, people: People, count: int, start: datetime, end: datetime) -> None:
        rng = self._rng
        stamps = spread(start, end, count, rng)
        rng.shuffle(stamps)
        for index, updated in enumerate(stamps):
            person = people.person(index, store.region if store.region != "BC" else "WA")
            customer_id = self._uuid()
            consent = "opted_out" if index % 23 == 7 else ("opted_in" if index % 4 != 0 else "unknown")
            data = {
                "customerId": customer_id,
                "storeId": store.store_id,
                "firstName": person["first_name"],
                "lastName": person["last_name"],
                "mobilePhone": format_phone(person["phone"], index),
                "email": None if index % 17 == 5 else person["email"],
                "birthDate": person["birth_date"],
                "address": {
                    "line1": f"{rng.randint(100, 9999)} {rng.choice(['Main', 'Pine', 'Oak', 'Cedar'])} St",
                    "city": store.city,
                    "region": person["state"],
                    "postalCode": person["zipcode"],
                },
                "customerType": "medical" if index % 9 == 0 else "adult-use",
                "loyaltyEnrolled": index % 5 != 4,
                "smsConsent": consent,
                "emailConsent": index % 3 != 0,
                "createdAt": updated - timedelta(days=rng.randint(0, 400), seconds=rng.randint(0, 86_399)),
            }
            store.tables[Stream.CUSTOMERS].put(Row(customer_id, customer_id, updated, data))
            store.customer_ids.append(customer_id)

    def _add_sale(self, store: AuphanStore, completed: datetime, updated: datetime) -> str:
        rng = self._rng
        sale_id = self._uuid()
        receipt = self._next_receipt
        self._next_receipt += 1
        lines: list[dict[str, Any]] = []
        for _ in range(rng.randint(1, 3)):
            product = rng.choice(store.products)
            quantity = rng.randint(1, 3)
            gross = product["_price"] * quantity
            discount = gross // 5 if rng.random() < 0.15 else 0
            lines.append(
                {
                    "lineId": receipt * 10 + len(lines) + 1,
                    "productId": product["productId"],
                    "sku": product["sku"],
                    "name": product["name"],
                    "category": product["category"],
                    "brand": product["brand"],
                    "quantity": str(quantity),
                    "amount": _dollars(gross - discount),
                    "discount": _dollars(discount),
                    "discounts": _line_discounts(store, receipt) if discount else [],
                    "_gross": gross,
                    "_discount": discount,
                }
            )
        subtotal = sum(line["_gross"] for line in lines)
        discount_total = sum(line["_discount"] for line in lines)
        tax = round((subtotal - discount_total) * TAX_RATE)
        total = subtotal - discount_total + tax
        linked = store.customer_ids and rng.random() >= UNLINKED_SALE_SHARE
        data = {
            "saleId": sale_id,
            "receiptNumber": receipt,
            "storeId": store.store_id,
            "customerId": rng.choice(store.customer_ids) if linked else None,
            "type": "sale",
            "status": "completed",
            "completedAt": completed,
            "subtotal": _dollars(subtotal),
            "discountTotal": _dollars(discount_total),
            "taxTotal": _dollars(tax),
            "total": _dollars(total),
            "refundedAmount": "0.00",
            "lines": lines,
            "payments": [{"method": rng.choice(PAYMENT_METHODS), "amount": _dollars(total)}],
            "_total": total,
        }
        store.tables[Stream.SALES].put(Row(sale_id, sale_id, updated, data))
        return sale_id

    # --- serving --------------------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        key = request.headers.get("apikey") or ""
        store = next(
            (s for k, s in self._by_key.items() if hmac.compare_digest(k.encode(), key.encode())),
            None,
        )
        if store is None:
            return Response.json(UNAUTHORIZED, 401)
        if request.method != "GET":
            return Response.json({"error": "method_not_allowed"}, 405)
        if request.path == STORE_PATH:
            return Response.json(
                {
                    "storeId": store.store_id,
                    "name": store.name,
                    "timeZone": store.zone.key,
                    "region": store.region,
                    "country": "CA" if store.region == "BC" else "US",
                }
            )
        stream = STREAM_PATHS.get(request.path)
        if stream is None:
            return Response.json({"error": "not_found"}, 404)
        try:
            start = parse_instant(request.arg("updatedFrom"))
            end = parse_instant(request.arg("updatedTo"))
            limit = int(request.arg("limit") or str(DEFAULT_LIMIT))
            cursor = request.arg("cursor")
            after = decode_cursor(cursor) if cursor else None
        except ValueError:
            return Response.json(
                {"error": "bad_request", "message": "bad updatedFrom, updatedTo, limit or cursor"}, 400
            )
        if not 1 <= limit <= MAX_LIMIT or (request.arg("sort") or SORT) != SORT:
            return Response.json({"error": "bad_request", "message": f"limit 1..{MAX_LIMIT}; sort {SORT} only"}, 400)
        return Response.json(self._page(store, stream, start, end, limit, after))

    def _page(
        self,
        store: AuphanStore,
        stream: Stream,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> dict[str, Any]:
        with self.lock:
            table = store.tables[stream]
            low, high = table.bounds(start, end)
            keys = table.index()
            first = low if after is None else max(low, bisect.bisect_right(keys, (after[0], after[1], after[1])))
            chunk = [table.rows[key[2]] for key in keys[first : min(first + limit, high)]]
            more = first + limit < high
            last = (
                chunk[-2] if self.faults.duplicate_across_pages and len(chunk) >= 2 else (chunk[-1] if chunk else None)
            )
            next_cursor = encode_cursor(last) if more and last is not None else None
            invalid_id = table.first_id() if self.faults.invalid_record else None
            items = [self._render(store, stream, row, invalid_id) for row in chunk]
            if after is None and self.faults.update_while_paging > 0:
                self._change(store, stream, [row.pos_id for row in chunk[: self.faults.update_while_paging]])
                self.faults.update_while_paging = 0
        return {"items": items, "totalCount": high - low, "nextCursor": next_cursor}

    def _render(self, store: AuphanStore, stream: Stream, row: Row, invalid_id: str | None) -> dict[str, Any]:
        faults = self.faults
        data = dict(row.data)
        data["updatedAt"] = row.updated_at
        if stream is Stream.SALES and faults.refunds:
            data = _with_refund(data)
        out = render(data, _timestamp_mode(faults), store.zone)
        if faults.extra_fields:
            out["externalRef"] = f"ext-{row.pos_id[:8]}"
            out["_links"] = {"self": f"/api/v2/{stream.value}/{row.pos_id}"}
            out["metadata"] = {"source": "register", "version": 4, "flags": ["synced"]}
        if row.pos_id == invalid_id:
            field_name, value = {
                Stream.CUSTOMERS: ("updatedAt", "yesterday"),
                Stream.SALES: ("total", "N/A"),
                Stream.INVENTORY: ("retailPrice", "free"),
                Stream.DISCOUNTS: ("value", "lots"),
            }[stream]
            out[field_name] = value
        return out

    def _change(self, store: AuphanStore, stream: Stream, ids: Iterable[str]) -> None:
        """Records edited in the POS now: a visible field changes and updatedAt moves to now."""
        moment = self._now()
        table = store.tables[stream]
        for pos_id in ids:
            row = table.touch(pos_id, moment)
            if stream is Stream.CUSTOMERS:
                row.data["email"] = f"updated.{pos_id[:8]}.{self._rng.randint(1, 9999)}@example.org"
            elif stream is Stream.INVENTORY:
                row.data["onHand"] = f"{self._rng.randint(0, 250)}.000"
            elif stream is Stream.DISCOUNTS:
                row.data["status"] = "inactive" if row.data["status"] == "active" else "active"
            else:
                row.data["payments"] = [{**row.data["payments"][0], "method": "debit"}]

    # --- helpers for tests and the local runtime ------------------------------------------------------------------
    @property
    def stores(self) -> list[str]:
        return list(self._stores)

    def timezone_for(self, store: str) -> str:
        return self._stores[store].zone.key

    def credential_for(self, store: str, *, via_ip_port: bool = False) -> dict[str, Any]:
        """The credential as `parse_credential` accepts it; `via_ip_port` fills the custom IP:PORT (and the pin)."""
        credential: dict[str, Any] = {"vendor": "auphan", "api_key": self._stores[store].api_key}
        if via_ip_port:
            credential["custom_ip_port"] = self.ip_port
            if self.tls is not None:
                credential["pinned_cert_pem"] = self.tls.cert_pem
        return credential

    def all_ids(self, stream: Stream | str) -> set[tuple[str, str]]:
        """Every (store, POS id) the simulator holds for a stream: what a complete pull must have seen."""
        wanted = Stream(stream)
        if wanted not in STREAMS:
            return set()
        with self.lock:
            return {(key, pos_id) for key, store in self._stores.items() for pos_id in store.tables[wanted].rows}

    def add_sales(self, store: str, n: int) -> list[str]:
        """n new sales rung up now (wall clock)."""
        with self.lock:
            record = self._stores[store]
            moment = self._now()
            return [self._add_sale(record, moment, moment) for _ in range(n)]

    def update_customers(self, store: str, n: int) -> list[str]:
        """n existing customers edited now (a new email each)."""
        with self.lock:
            table = self._stores[store].tables[Stream.CUSTOMERS]
            chosen = self._rng.sample(sorted(table.rows), min(n, len(table)))
            self._change(self._stores[store], Stream.CUSTOMERS, chosen)
            return chosen


def _with_refund(data: dict[str, Any]) -> dict[str, Any]:
    """The refunds fault, by receipt number: every 7th (+3) is a return at the till (negative lines and totals),
    every 5th is refunded in full afterwards, every 5th + 1 refunded in part (its first line)."""
    receipt = int(data["receiptNumber"])
    total = int(data["_total"])
    if receipt % 7 == 3:
        return {
            **data,
            "type": "return",
            "subtotal": "-" + data["subtotal"],
            "discountTotal": "-" + data["discountTotal"] if data["discountTotal"] != "0.00" else "0.00",
            "taxTotal": "-" + data["taxTotal"],
            "total": _dollars(-total),
            "lines": [
                {**line, "quantity": "-" + line["quantity"], "amount": _dollars(-(line["_gross"] - line["_discount"]))}
                for line in data["lines"]
            ],
            "payments": [{**p, "amount": _dollars(-total)} for p in data["payments"]],
        }
    if receipt % 5 == 0:
        return {**data, "status": "refunded", "refundedAmount": data["total"]}
    if receipt % 5 == 1:
        return {**data, "status": "partially_refunded", "refundedAmount": data["lines"][0]["amount"]}
    return data
