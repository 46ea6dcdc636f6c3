"""THSuite simulator: stores with their own integration tokens serving patients, receipts, inventory and points."""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from functions.core.layout import Stream
from functions.pull_thsuite.constants import MAX_PAGE_SIZE, STORE_PATH, STREAM_PATHS
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

_PATH_STREAMS = {path: stream for stream, path in STREAM_PATHS.items()}
_DEFAULT_LIMIT = 100

# (state, IANA zone used to render local times, the name /store reports, store name, tax in basis points). Half
# the stores report a Windows zone name so connectors exercise both spellings.
_STORE_PROFILES = [
    ("WA", "America/Los_Angeles", "America/Los_Angeles", "Evergreen Wellness Tacoma", 3700),
    ("CO", "America/Denver", "Mountain Standard Time", "Rocky Mountain Remedies", 1500),
    ("MI", "America/Detroit", "Eastern Standard Time", "Great Lakes Provisioning", 1600),
    ("OR", "America/Los_Angeles", "Pacific Standard Time", "Willamette Valley Dispensary", 2000),
    ("CA", "America/Los_Angeles", "America/Los_Angeles", "Golden Coast Collective", 2500),
]
_PRICES = ["12.00", "18.50", "25.00", "35.00", "45.00", "60.00"]
# Offsets deliberately unlike any store's own, for the offset_timestamps fault.
_ODD_OFFSETS = [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9, minutes=30))]
_SIZES = ["", " (Small Batch)", " (Reserve)", " - Value", " - Limited"]


def _ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _dollars(cents: int) -> str:
    """Money as THSuite sends it (ASSUMED): a decimal string with two places. Rows keep it rendered already."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _cents(dollars: str) -> int:
    """Exact for what _dollars writes (always two places)."""
    return int(dollars.replace(".", ""))


def _sum(values: Iterable[str]) -> int:
    return sum(_cents(v) for v in values)


@dataclass
class _Table:
    """One stream of one store: rows by key plus a sorted (updated_at, key) index for ordered window reads."""

    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    index: list[tuple[datetime, int]] = field(default_factory=list)

    def put(self, key: int, row: dict[str, Any]) -> None:
        old = self.rows.get(key)
        if old is not None:
            position = bisect.bisect_left(self.index, (old["updated_at"], key))
            del self.index[position]
        self.rows[key] = row
        bisect.insort(self.index, (row["updated_at"], key))

    def load(self, rows: Iterable[tuple[int, dict[str, Any]]]) -> None:
        for key, row in rows:
            self.rows[key] = row
        self.index = sorted((row["updated_at"], key) for key, row in self.rows.items())

    def bounds(self, since: datetime | None, before: datetime | None) -> tuple[int, int]:
        low = 0 if since is None else bisect.bisect_left(self.index, (since, -1))
        high = len(self.index) if before is None else bisect.bisect_left(self.index, (before, -1))
        return low, max(low, high)


@dataclass
class _Store:
    id: int
    name: str
    token: str
    state: str
    zone: ZoneInfo
    reported_timezone: str
    tax_basis_points: int
    tables: dict[Stream, _Table] = field(default_factory=lambda: {stream: _Table() for stream in STREAM_PATHS})


class ThsuiteSimulator(Simulator):
    """THSuite as CONTRACT.md assumes it: bearer token per store, page/limit envelope, updated_since/_before."""

    vendor = "thsuite"

    def __init__(
        self,
        seed: int = 1,
        store_count: int = 2,
        customers_per_store: int = 25,
        sales_per_store: int = 50,
        products_per_store: int = 12,
        *,
        history_days: int = 60,
    ) -> None:
        super().__init__()
        self.rng = random.Random(seed)
        self._people = People(seed)
        self._next_id = dict.fromkeys(STREAM_PATHS, 1)
        self._stores: dict[str, _Store] = {}
        now = _ms(utc_now())
        start = now - timedelta(days=history_days)
        for index in range(store_count):
            store = self._new_store(index)
            self._stores[str(store.id)] = store
            self._seed_store(
                store, start, now - timedelta(minutes=1), customers_per_store, sales_per_store, products_per_store
            )

    # --- public helpers -----------------------------------------------------------------------------------------
    @property
    def stores(self) -> list[str]:
        return list(self._stores)

    def credential_for(self, store: str) -> dict[str, Any]:
        """The credential as functions.core.credentials.parse_credential accepts it."""
        entry = self._stores[store]
        return {"vendor": "thsuite", "integration_token": entry.token, "store_name": entry.name}

    def store_timezone(self, store: str) -> str:
        """The IANA zone the store's local times are rendered in (what /store reports may be a Windows name)."""
        return self._stores[store].zone.key

    def all_ids(self, stream: Stream | str) -> set[tuple[str, str]]:
        stream = Stream(stream)
        with self.lock:
            return {(sid, str(key)) for sid, store in self._stores.items() for key in store.tables[stream].rows}

    def items(self, store: str, stream: Stream | str) -> list[dict[str, Any]]:
        """Every record of a store's stream in API shape and order, with the current faults applied."""
        entry, stream = self._stores[store], Stream(stream)
        with self.lock:
            table = entry.tables[stream]
            broken = self._broken_key(entry, stream)
            return [self._render(entry, stream, key, table.rows[key], broken) for _, key in table.index]

    def invalid_record_id(self, store: str, stream: Stream | str) -> str:
        """The POS id the invalid_record fault breaks in that store's stream (its lowest id)."""
        with self.lock:
            return str(min(self._stores[store].tables[Stream(stream)].rows))

    def add_sales(self, store: str, n: int, *, earn_points: bool = False) -> list[str]:
        """n new completed receipts stamped now; with earn_points, the members' balances move with them too."""
        entry = self._stores[store]
        with self.lock:
            patients = list(entry.tables[Stream.CUSTOMERS].rows.values())
            products = list(entry.tables[Stream.INVENTORY].rows.values())
            ids = []
            for _ in range(n):
                now = _ms(utc_now())
                patient = self.rng.choice(patients) if patients and self.rng.random() < 0.9 else None
                receipt = self._receipt(entry, products, patient, now, now)
                entry.tables[Stream.SALES].put(receipt["id"], receipt)
                if earn_points and patient is not None and patient["loyalty_member"]:
                    self._earn_points(entry, patient["id"], receipt["total"], now)
                ids.append(str(receipt["id"]))
            return ids

    def update_customers(self, store: str, n: int) -> list[str]:
        """n existing patients edit their contact preferences now."""
        entry = self._stores[store]
        with self.lock:
            table = entry.tables[Stream.CUSTOMERS]
            chosen = self.rng.sample(sorted(table.rows), min(n, len(table.rows)))
            for key in chosen:
                self._touch(entry, Stream.CUSTOMERS, key, _ms(utc_now()))
            return [str(key) for key in chosen]

    # --- HTTP ---------------------------------------------------------------------------------------------------
    def __enter__(self) -> ThsuiteSimulator:
        self.start()
        return self

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        url = super().start(host, port)
        assert self._server is not None
        # The base handler writes headers and body separately; without TCP_NODELAY every keep-alive request waits
        # ~40 ms for a delayed ACK. The handler class is this server's own, so nothing else is touched.
        setattr(self._server.RequestHandlerClass, "disable_nagle_algorithm", True)  # noqa: B010
        return url

    def is_data_path(self, path: str) -> bool:
        return path in _PATH_STREAMS

    def handle(self, request: Request) -> Response:
        if request.method != "GET":
            return Response.json({"error": "method not allowed"}, 405)
        store = self._authenticate(request)
        if store is None:
            return Response.json({"error": "unauthorized", "message": "invalid or missing integration token"}, 401)
        if request.path == STORE_PATH:
            return Response.json({"data": self._store_info(store)})
        stream = _PATH_STREAMS.get(request.path)
        if stream is None:
            return Response.json({"error": "not found"}, 404)
        return self._list(store, stream, request)

    def _authenticate(self, request: Request) -> _Store | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return next((store for store in self._stores.values() if store.token == token.strip()), None)

    @staticmethod
    def _store_info(store: _Store) -> dict[str, Any]:
        return {
            "id": store.id,
            "name": store.name,
            "timezone": store.reported_timezone,
            "state": store.state,
            "country": "US",
            "license_number": f"{store.state}-{store.id * 7919 % 1000000:06d}",
        }

    def _list(self, store: _Store, stream: Stream, request: Request) -> Response:
        try:
            page = int(request.arg("page") or 1)
            limit = int(request.arg("limit") or _DEFAULT_LIMIT)
            since = self._instant(request.arg("updated_since"), store)
            before = self._instant(request.arg("updated_before"), store)
        except ValueError:
            return Response.json({"error": "bad request", "message": "invalid page, limit or updated_* filter"}, 400)
        if page < 1 or not 1 <= limit <= MAX_PAGE_SIZE:
            return Response.json({"error": "bad request", "message": f"page >= 1, 1 <= limit <= {MAX_PAGE_SIZE}"}, 400)
        if request.arg("sort", "updated_at") != "updated_at":
            return Response.json({"error": "bad request", "message": "sort must be updated_at"}, 400)
        with self.lock:
            table = store.tables[stream]
            low, high = table.bounds(since, before)
            start = low + (page - 1) * limit
            keys = [key for _, key in table.index[start : min(start + limit, high)]]
            if self.faults.duplicate_across_pages and page > 1 and low < start < high:
                keys.insert(0, table.index[start - 1][1])
            broken = self._broken_key(store, stream)
            data = [self._render(store, stream, key, table.rows[key], broken) for key in keys]
            total = high - low
            payload = {
                "data": data,
                "page": page,
                "limit": limit,
                "total": total,
                "has_more": start + limit < high,
            }
            response = Response.json(payload)
            if page == 1 and self.faults.update_while_paging > 0:
                now = _ms(utc_now())
                for key in keys[: self.faults.update_while_paging]:
                    self._touch(store, stream, key, now)
                self.faults.update_while_paging = 0
        return response

    @staticmethod
    def _instant(value: str | None, store: _Store) -> datetime | None:
        if value is None:
            return None
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=store.zone)

    # --- rendering (where the data-shaped faults apply) ---------------------------------------------------------
    def _broken_key(self, store: _Store, stream: Stream) -> int | None:
        rows = store.tables[stream].rows
        return min(rows) if self.faults.invalid_record and rows else None

    def _render(
        self, store: _Store, stream: Stream, key: int, row: dict[str, Any], broken: int | None
    ) -> dict[str, Any]:
        faults = self.faults
        if stream is Stream.SALES and faults.refunds:
            row = _with_returns(row)
        out = {
            name: self._timestamp(value, store, key) if type(value) is datetime else value
            for name, value in row.items()
        }
        if key == broken:
            out.update(_BROKEN[stream])
        if faults.extra_fields:
            out.update(
                {
                    "register_id": key % 7 + 1,
                    "medical_card_expires_on": "2027-06-30",
                    "x_internal": {"row_version": key % 5 + 1, "flags": ["migrated"]},
                }
            )
            if "lines" in out:
                out["lines"] = [
                    {**line, "batch_id": f"B-{key}-{i}", "cost": "3.10"} for i, line in enumerate(out["lines"])
                ]
        return out

    def _timestamp(self, value: datetime, store: _Store, key: int) -> str:
        naive, odd = self.faults.naive_timestamps, self.faults.offset_timestamps
        if naive and odd:
            naive, odd = key % 2 == 0, key % 2 == 1
        if naive:
            return value.astimezone(store.zone).replace(tzinfo=None).isoformat(timespec="milliseconds")
        if odd:
            return value.astimezone(_ODD_OFFSETS[key % len(_ODD_OFFSETS)]).isoformat(timespec="milliseconds")
        return value.astimezone(store.zone).isoformat(timespec="milliseconds")

    # --- seeded data --------------------------------------------------------------------------------------------
    def _id(self, stream: Stream) -> int:
        value = self._next_id[stream]
        self._next_id[stream] = value + 1
        return value

    def _new_store(self, index: int) -> _Store:
        state, zone, reported, name, tax = _STORE_PROFILES[index % len(_STORE_PROFILES)]
        suffix = "" if index < len(_STORE_PROFILES) else f" #{index // len(_STORE_PROFILES) + 1}"
        return _Store(
            id=1001 + index,
            name=name + suffix,
            token=f"ths_{self.rng.getrandbits(128):032x}",
            state=state,
            zone=ZoneInfo(zone),
            reported_timezone=reported,
            tax_basis_points=tax,
        )

    def _seed_store(
        self, store: _Store, start: datetime, end: datetime, customers: int, sales: int, products: int
    ) -> None:
        rng = self.rng
        store.tables[Stream.DISCOUNTS].load((d["id"], d) for d in _discounts(store, start))
        inventory = [self._product(store, t) for t in spread(start, end, products, rng)]
        store.tables[Stream.INVENTORY].load((p["id"], p) for p in inventory)
        patients = [self._patient(store, created, end) for created in spread(start, end, customers, rng)]
        store.tables[Stream.CUSTOMERS].load((p["id"], p) for p in patients)
        receipts = []
        spent: dict[int, tuple[int, datetime]] = {}  # cents per member
        for completed in spread(start, end, sales, rng):
            patient = rng.choice(patients) if patients and rng.random() < 0.9 else None
            updated = min(end, completed + timedelta(seconds=rng.randint(0, 300)))
            receipt = self._receipt(store, inventory, patient, completed, updated)
            receipts.append(receipt)
            if patient is not None and patient["loyalty_member"] and receipt["status"] == "completed":
                total, _ = spent.get(patient["id"], (0, updated))
                spent[patient["id"]] = (total + _cents(receipt["total"]), updated)
        store.tables[Stream.SALES].load((r["id"], r) for r in receipts)
        balances = []
        for patient in patients:
            if patient["loyalty_member"]:
                total, updated = spent.get(patient["id"], (0, patient["created_at"]))
                balances.append(_balance(store, patient["id"], total // 100, updated))
        store.tables[Stream.LOYALTY].load((b["patient_id"], b) for b in balances)

    def _product(self, store: _Store, updated: datetime) -> dict[str, Any]:
        rng = self.rng
        key = self._id(Stream.INVENTORY)
        name, category, brand = rng.choice(PRODUCTS)
        return {
            "id": key,
            "product_id": 50000 + key,
            "store_id": store.id,
            "sku": f"THS-{key:06d}",
            "name": name + rng.choice(_SIZES),
            "brand": brand,
            "category": category,
            "unit_price": rng.choice(_PRICES),
            "quantity_on_hand": rng.randint(0, 250),
            "unit": "each",
            "active": rng.random() > 0.05,
            "updated_at": updated,
        }

    def _patient(self, store: _Store, created: datetime, latest: datetime) -> dict[str, Any]:
        rng = self.rng
        key = self._id(Stream.CUSTOMERS)
        person = self._people.person(key, store.state)
        digits = person["phone"]
        phone = [
            digits,
            f"({digits[:3]}) {digits[3:6]}-{digits[6:]}",
            f"{digits[:3]}-{digits[3:6]}-{digits[6:]}",
            f"+1{digits}",
        ][key % 4]
        updated = created + timedelta(seconds=rng.randint(0, 86400))
        return {
            "id": key,
            "store_id": store.id,
            "first_name": person["first_name"],
            "last_name": person["last_name"],
            "phone": phone,
            "email": person["email"] if key % 11 else "",
            "date_of_birth": person["birth_date"],
            "state": person["state"],
            "zip_code": person["zipcode"],
            "patient_type": "medical" if rng.random() < 0.3 else "recreational",
            "loyalty_member": rng.random() < 0.7,
            "sms_opt_in": rng.random() < 0.5,
            "email_opt_in": rng.random() < 0.6,
            "created_at": created,
            "updated_at": min(updated, latest),
        }

    def _receipt(
        self,
        store: _Store,
        inventory: list[dict[str, Any]],
        patient: dict[str, Any] | None,
        completed: datetime,
        updated: datetime,
    ) -> dict[str, Any]:
        rng = self.rng
        key = self._id(Stream.SALES)
        lines = []
        sums = [0, 0, 0, 0]  # subtotal, discount, tax, total in cents
        for number, product in enumerate(rng.sample(inventory, min(len(inventory), rng.randint(1, 4))), start=1):
            quantity = rng.randint(1, 3)
            gross = _cents(product["unit_price"]) * quantity
            discount = (gross + 5) // 10 if rng.random() < 0.2 else 0  # 10% off, half up
            tax = ((gross - discount) * store.tax_basis_points + 5000) // 10000
            for position, cents in enumerate((gross, discount, tax, gross - discount + tax)):
                sums[position] += cents
            lines.append(
                {
                    "id": key * 10 + number,
                    "product_id": product["product_id"],
                    "inventory_id": product["id"],
                    "sku": product["sku"],
                    "product_name": product["name"],
                    "category": product["category"],
                    "brand": product["brand"],
                    "quantity": quantity,
                    "unit_price": product["unit_price"],
                    "discount": _dollars(discount),
                    "tax": _dollars(tax),
                    "total": _dollars(gross - discount + tax),
                    "is_return": False,
                    "discounts": _line_discounts(key) if discount else [],
                }
            )
        subtotal, discount_total, tax_total, total = map(_dollars, sums)
        return {
            "id": key,
            "receipt_number": f"R{store.id}-{key:08d}",
            "store_id": store.id,
            "patient_id": patient["id"] if patient is not None else None,
            "status": "voided" if rng.random() < 0.03 else "completed",
            "completed_at": completed,
            "created_at": completed - timedelta(seconds=rng.randint(30, 600)),
            "updated_at": updated,
            "subtotal": subtotal,
            "discount_total": discount_total,
            "tax_total": tax_total,
            "total": total,
            "lines": lines,
            "payments": [{"method": rng.choice(["cash", "debit", "cash"]), "amount": total}],
        }

    def _earn_points(self, store: _Store, patient_id: int, amount: str, now: datetime) -> None:
        table = store.tables[Stream.LOYALTY]
        current = table.rows.get(patient_id)
        points = (current["points"] if current else 0) + _cents(amount) // 100
        table.put(patient_id, _balance(store, patient_id, points, now))

    def _touch(self, store: _Store, stream: Stream, key: int, now: datetime) -> None:
        """A change made in the POS: the record differs and its updated_at moves to now."""
        table = store.tables[stream]
        row = dict(table.rows[key])
        if stream is Stream.CUSTOMERS:
            row["sms_opt_in"] = not row["sms_opt_in"]
        elif stream is Stream.INVENTORY:
            row["quantity_on_hand"] = max(0, row["quantity_on_hand"] - 1)
        elif stream is Stream.LOYALTY:
            row["points"] += 10
        elif stream is Stream.DISCOUNTS:
            row["active"] = not row["active"]
        else:
            row["status"] = "voided"  # a sale voided after the fact
        row["updated_at"] = now
        table.put(key, row)


# --- receipts arithmetic and the data-shaped faults ---------------------------------------------------------------


def _discounts(store: _Store, updated: datetime) -> list[dict[str, Any]]:
    """The store's discounts (ASSUMED shape): the shared simulated set, ids made unique per store."""
    return [
        {
            "id": store.id * 100 + d.pos_id,
            "store_id": store.id,
            "name": d.name,
            "discount_type": "amount" if d.kind == "flat" else "percent",
            "amount": d.value,
            "active": True,
            "updated_at": updated,
        }
        for d in SIM_DISCOUNTS
    ]


def _line_discounts(receipt_id: int) -> list[dict[str, Any]]:
    """The mirrored discount a discounted line carries (chosen by the receipt id: no extra draw on the seed)."""
    d = APPLIED_DISCOUNTS[receipt_id % len(APPLIED_DISCOUNTS)]
    return [{"discount_id": d.pos_id, "name": d.name}]


def _balance(store: _Store, patient_id: int, points: int, updated: datetime) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "store_id": store.id,
        "points": points,
        "lifetime_points": max(points, 0),
        "updated_at": updated,
    }


def _with_totals(receipt: dict[str, Any]) -> dict[str, Any]:
    """Receipt totals from its lines: subtotal before discount and tax, total net of returns with tax."""
    lines = receipt["lines"]
    total = _dollars(_sum(line["total"] for line in lines))
    method = receipt["payments"][0]["method"] if receipt["payments"] else "cash"
    head = {k: v for k, v in receipt.items() if k not in ("lines", "payments")}
    return {
        **head,
        "subtotal": _dollars(sum(_cents(line["unit_price"]) * line["quantity"] for line in lines)),
        "discount_total": _dollars(_sum(line["discount"] for line in lines)),
        "tax_total": _dollars(_sum(line["tax"] for line in lines)),
        "total": total,
        "lines": lines,
        "payments": [{"method": method, "amount": total}],
    }


def _returned(line: dict[str, Any], line_id: int | None = None) -> dict[str, Any]:
    return {
        **line,
        "id": line["id"] if line_id is None else line_id,
        "quantity": -line["quantity"],
        "discount": _dollars(-_cents(line["discount"])),
        "tax": _dollars(-_cents(line["tax"])),
        "total": _dollars(-_cents(line["total"])),
        "is_return": True,
    }


def _with_returns(receipt: dict[str, Any]) -> dict[str, Any]:
    """The refunds fault: every fifth receipt is a return of all its lines, every fifth+1 returns one line."""
    kind = receipt["id"] % 5
    if kind == 0:
        return _with_totals({**receipt, "lines": [_returned(line) for line in receipt["lines"]]})
    if kind == 1 and receipt["lines"]:
        extra = _returned(receipt["lines"][0], receipt["id"] * 10 + 9)
        return _with_totals({**receipt, "lines": [*receipt["lines"], extra]})
    return receipt


# The invalid_record fault: one field per stream that no reasonable reader accepts; the id stays readable.
_BROKEN: dict[Stream, dict[str, Any]] = {
    Stream.CUSTOMERS: {"date_of_birth": "1985-02-30"},
    Stream.SALES: {"total": "12.5O"},
    Stream.INVENTORY: {"quantity_on_hand": "plenty"},
    Stream.LOYALTY: {"points": "n/a"},
    Stream.DISCOUNTS: {"amount": "ten"},
}
