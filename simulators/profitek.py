"""Profitek store-server simulator, plus the on-premises serving (TLS, power switch) the Auphan simulator shares."""

from __future__ import annotations

import bisect
import contextlib
import hmac
import ipaddress
import math
import random
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

from functions.core.layout import Stream
from simulators.base import (
    APPLIED_DISCOUNTS,
    PRODUCTS,
    SIM_DISCOUNTS,
    Faults,
    People,
    Request,
    Response,
    Simulator,
    spread,
    utc_now,
)

# ==================================================================================================================
# On-premises serving, shared with simulators.auphan: a store server that can speak TLS and be switched off.
# ==================================================================================================================

IDLE_CONNECTION_SECONDS = 10.0


@dataclass(frozen=True)
class TlsIdentity:
    """A store server's certificate and key, PEM."""

    cert_pem: str
    key_pem: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as folder:
            cert, key = Path(folder, "cert.pem"), Path(folder, "key.pem")
            cert.write_text(self.cert_pem)
            key.write_text(self.key_pem)
            context.load_cert_chain(cert, key)
        return context


def self_signed_identity(
    common_name: str = "store-server.sim", ip: str = "127.0.0.1", *, valid_days: int = 7, expired: bool = False
) -> TlsIdentity:
    """A fresh self-signed certificate, as store servers have (needs the `cryptography` package: tests only)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    if expired:
        start, end = now - timedelta(days=30), now - timedelta(days=1)
    else:
        start, end = now - timedelta(hours=1), now + timedelta(days=valid_days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip)), x509.DNSName(common_name)]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return TlsIdentity(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )


class StoreServer(ThreadingHTTPServer):
    """A threading HTTP server that does its TLS handshakes in the connection's thread and can drop every
    open connection at once (a store PC switched off takes its keep-alive connections with it)."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None
    ) -> None:
        self.tls = tls
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(IDLE_CONNECTION_SECONDS)
        # http.server writes headers and body separately: without this, Nagle + delayed ACK stall every response.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client refused our certificate (or hung up): nothing to serve
        with self.connections_lock:
            self.connections.add(request)
        try:
            super().finish_request(request, client_address)
        except OSError:
            pass  # the connection was dropped under the handler (power off) or timed out idle
        finally:
            with self.connections_lock:
                self.connections.discard(request)
            if self.tls is not None:
                request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # hang-ups and refused handshakes are part of the simulation, not errors worth a traceback

    def drop_connections(self) -> None:
        with self.connections_lock:
            open_connections = list(self.connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _handler_for(simulator: Simulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                self.command,
                split.path,
                parse_qs(split.query, keep_blank_values=True),
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
            try:
                response = simulator.dispatch(request)
            except Exception as exc:  # noqa: BLE001 - a simulator bug must surface as a 500, not a hang
                response = Response.json({"error": f"simulator error: {exc!r}"}, 500)
            if response is None:
                self.close_connection = True
                return
            self.send_response(response.status)
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


class OnPremSimulator(Simulator):
    """A store server on loopback: optional TLS with a given identity, and a power switch.

    `power_off()` closes the listening socket and every open connection (clients then get connection
    refused), `power_on()` listens again on the same port.
    """

    def __init__(self, tls: TlsIdentity | None = None) -> None:
        super().__init__()
        self.tls = tls
        self.last_host_header: str | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._store_server: StoreServer | None = None

    def is_data_path(self, path: str) -> bool:
        return path.startswith("/api/")

    def dispatch(self, request: Request) -> Response | None:
        self.last_host_header = request.headers.get("host")
        return super().dispatch(request)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        context = self.tls.server_context() if self.tls is not None else None
        server = StoreServer((host, port), _handler_for(self), context)
        self._store_server = server
        self._server = server
        self._host, self._port = host, server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"sim-{self.vendor}", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        server = self._store_server
        if server is not None:
            server.shutdown()
            server.drop_connections()
            server.server_close()
        self._store_server = None
        self._server = None

    @property
    def url(self) -> str:
        assert self._port is not None, "simulator not started"
        return f"{'https' if self.tls else 'http'}://{self._host}:{self._port}"

    @property
    def ip_port(self) -> str:
        """The store server's address as an admin types it into the credential's custom IP:PORT field."""
        assert self._port is not None, "simulator not started"
        return f"{self._host}:{self._port}"

    @property
    def powered(self) -> bool:
        return self._store_server is not None

    def power_off(self) -> None:
        """The store PC is switched off: connections are refused until power_on()."""
        self.stop()

    def power_on(self) -> None:
        assert self._port is not None, "simulator never started"
        self.start(self._host, self._port)


@dataclass
class Row:
    pos_id: str
    sort_id: int | str
    updated_at: datetime
    data: dict[str, Any]


class Table:
    """One store's records of one stream, indexed by (updated_at, id) for windowed, ordered reads."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self._index: list[tuple[datetime, int | str, str]] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, pos_id: object) -> bool:
        return pos_id in self.rows

    def put(self, row: Row) -> None:
        self.rows[row.pos_id] = row
        self._index = None

    def touch(self, pos_id: str, when: datetime) -> Row:
        row = self.rows[pos_id]
        row.updated_at = when
        self._index = None
        return row

    def index(self) -> list[tuple[datetime, int | str, str]]:
        if self._index is None:
            self._index = sorted((row.updated_at, row.sort_id, row.pos_id) for row in self.rows.values())
        return self._index

    def bounds(self, start: datetime | None, end: datetime | None) -> tuple[int, int]:
        """Index positions of the records updated in [start, end)."""
        keys = self.index()
        low = 0 if start is None else bisect.bisect_left(keys, (start,))
        high = len(keys) if end is None else bisect.bisect_left(keys, (end,))
        return low, max(low, high)

    def window(self, start: datetime | None, end: datetime | None, *, by_update: bool = True) -> list[Row]:
        low, high = self.bounds(start, end)
        rows = [self.rows[key[2]] for key in self.index()[low:high]]
        return rows if by_update else sorted(rows, key=lambda row: row.sort_id)

    def first_id(self) -> str | None:
        """The least recently updated record: the one the invalid_record fault corrupts."""
        keys = self.index()
        return keys[0][2] if keys else None


TimestampMode = Literal["utc", "naive", "offset"]


def timestamp_mode(faults: Faults) -> TimestampMode:
    if faults.naive_timestamps:
        return "naive"
    if faults.offset_timestamps:
        return "offset"
    return "utc"


def stamp(value: datetime, mode: TimestampMode, zone: ZoneInfo) -> str:
    """UTC with a Z by default; the store's wall clock without an offset (naive) or with its offset."""
    if mode == "naive":
        return value.astimezone(zone).replace(tzinfo=None).isoformat(timespec="milliseconds")
    if mode == "offset":
        return value.astimezone(zone).isoformat(timespec="milliseconds")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render(data: dict[str, Any], mode: TimestampMode, zone: ZoneInfo) -> dict[str, Any]:
    """A stored record as the server would send it: datetimes formatted, internal `_` keys left out."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key.startswith("_"):
            continue
        if isinstance(value, datetime):
            out[key] = stamp(value, mode, zone)
        elif isinstance(value, list):
            out[key] = [render(v, mode, zone) if isinstance(v, dict) else v for v in value]
        elif isinstance(value, dict):
            out[key] = render(value, mode, zone)
        else:
            out[key] = value
    return out


def parse_instant(value: str | None) -> datetime | None:
    """A filter bound; one without an offset is read as UTC (ASSUMED server behaviour)."""
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(value.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_phone(digits: str, index: int) -> str:
    """Phones as cashiers type them."""
    style = index % 4
    if style == 0 or len(digits) != 10:
        return digits
    if style == 1:
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    if style == 2:
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return f"+1 {digits[:3]} {digits[3:6]} {digits[6:]}"


# ==================================================================================================================
# Profitek
# ==================================================================================================================

API_ROOT = "/api/v1/stores/"
STREAM_PATHS = {
    "/customers": Stream.CUSTOMERS,
    "/transactions": Stream.SALES,
    "/items": Stream.INVENTORY,
    "/loyalty/balances": Stream.LOYALTY,
    "/discounts": Stream.DISCOUNTS,
}
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
UNAUTHORIZED = {"Message": "Authorization has been denied for this request."}

# (Windows zone id, IANA zone it means, state): the stores take these in turn.
STORE_ZONES = [
    ("Pacific Standard Time", "America/Los_Angeles", "WA"),
    ("Mountain Standard Time", "America/Denver", "CO"),
    ("Eastern Standard Time", "America/New_York", "MI"),
    ("Pacific Standard Time", "America/Los_Angeles", "OR"),
    ("US Mountain Standard Time", "America/Phoenix", "AZ"),
]
STORE_NAMES = ["Evergreen Dispensary", "Cascade Cannabis Co", "Mile High Remedies", "Great Lakes Green", "Desert Bloom"]
TENDERS = ["Cash", "Debit", "CanPay"]
TAX_RATE = 0.10


@dataclass
class ProfitekStore:
    store_id: int
    name: str
    state: str
    windows_zone: str
    zone: ZoneInfo
    auth_key: str
    tables: dict[Stream, Table] = field(default_factory=lambda: {stream: Table() for stream in Stream})
    customer_ids: list[int] = field(default_factory=list)
    item_list: list[dict[str, Any]] = field(default_factory=list)


def _line_discounts(store: ProfitekStore, transaction_id: int) -> list[dict[str, Any]]:
    """The mirrored discount a discounted line carries (by transaction id: no extra draw on the seed)."""
    d = APPLIED_DISCOUNTS[transaction_id % len(APPLIED_DISCOUNTS)]
    return [{"DiscountID": store.store_id * 100 + d.pos_id, "Name": d.name}]


class ProfitekSimulator(OnPremSimulator):
    """Serves /api/v1/stores/{store name}/{info,customers,transactions,items,loyalty/balances}.

    Each store has its own AuthKey (header `AuthKey`); a key sent with another store's name, or an unknown name,
    gets 401. Lists page with `page`/`pageSize`, filter on `modifiedSince` (inclusive) / `modifiedBefore`
    (exclusive) and sort by (ModifiedDate, id) with `orderBy=ModifiedDate` (by id otherwise). Every Faults switch
    is honoured; `power_off()` / `power_on()` switch the store PC off and on.
    """

    vendor = "profitek"

    def __init__(
        self,
        seed: int = 7,
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
        self._stores: dict[str, ProfitekStore] = {}
        self._by_name: dict[str, ProfitekStore] = {}
        self._next_id = {Stream.CUSTOMERS: 1001, Stream.SALES: 200_001, Stream.INVENTORY: 5001}
        moment = now()
        start, end = moment - timedelta(days=history_days), moment - timedelta(minutes=1)
        for index in range(store_count):
            windows_zone, zone, state = STORE_ZONES[index % len(STORE_ZONES)]
            store = ProfitekStore(
                store_id=101 + index,
                name=f"{STORE_NAMES[index % len(STORE_NAMES)]} #{index + 1}",
                state=state,
                windows_zone=windows_zone,
                zone=ZoneInfo(zone),
                auth_key=f"pk-{seed}-{index + 1:02d}-{self._rng.getrandbits(64):016x}",
            )
            self._stores[str(store.store_id)] = store
            self._by_name[store.name] = store
            for d in SIM_DISCOUNTS:
                discount_id = store.store_id * 100 + d.pos_id
                data = {"DiscountID": discount_id, "StoreID": store.store_id, "Name": d.name,
                        "DiscountType": "Amount" if d.kind == "flat" else "Percent", "Amount": float(d.value),
                        "Active": True}  # fmt: skip
                store.tables[Stream.DISCOUNTS].put(Row(str(discount_id), discount_id, start, data))
            self._seed_items(store, products_per_store, start, end)
            self._seed_customers(store, People(seed * 1000 + index), customers_per_store, start, end)
            for ordered in spread(start, end, sales_per_store, self._rng):
                self._add_sale(store, ordered, ordered + timedelta(seconds=self._rng.randint(0, 600)))

    # --- seeding --------------------------------------------------------------------------------------------------
    def _new_id(self, stream: Stream) -> int:
        value = self._next_id[stream]
        self._next_id[stream] = value + 1
        return value

    def _seed_items(self, store: ProfitekStore, count: int, start: datetime, end: datetime) -> None:
        rng = self._rng
        for position, updated in enumerate(spread(start, end, count, rng)):
            name, category, brand = PRODUCTS[position % len(PRODUCTS)]
            variant = position // len(PRODUCTS)
            item_id = self._new_id(Stream.INVENTORY)
            price_cents = rng.choice([1000, 1500, 2000, 2500, 3500, 4500, 6000]) - rng.choice([0, 1, 5])
            data = {
                "ItemID": item_id,
                "StoreID": store.store_id,
                "SKU": f"PT{store.store_id}-{position:05d}",
                "Description": name if variant == 0 else f"{name} (lot {variant + 1})",
                "Brand": brand,
                "Category": category,
                "Price": price_cents / 100,
                "QtyOnHand": float(rng.randint(0, 300)),
                "Active": position % 11 != 10,
                "_price_cents": price_cents,
            }
            store.tables[Stream.INVENTORY].put(Row(str(item_id), item_id, updated, data))
            store.item_list.append(data)

    def _seed_customers(self, store: ProfitekStore, people: People, count: int, start: datetime, end: datetime) -> None:
        stamps = spread(start, end, count, self._rng)
        self._rng.shuffle(stamps)  # ids follow sign-up order, edits come in any order
        for index, updated in enumerate(stamps):
            customer_id = self._new_id(Stream.CUSTOMERS)
            data = self._customer(store, customer_id, index, people.person(index, store.state), updated)
            store.tables[Stream.CUSTOMERS].put(Row(str(customer_id), customer_id, updated, data))
            store.customer_ids.append(customer_id)
            if data["LoyaltyMember"]:
                balance = {
                    "CustomerID": customer_id,
                    "StoreID": store.store_id,
                    "PointsBalance": self._rng.randint(0, 1500) + (0.5 if index % 13 == 0 else 0),
                }
                store.tables[Stream.LOYALTY].put(Row(str(customer_id), customer_id, updated, balance))

    def _customer(
        self, store: ProfitekStore, customer_id: int, index: int, person: dict[str, Any], updated: datetime
    ) -> dict[str, Any]:
        rng = self._rng
        member = index % 5 != 4
        birth = f"{person['birth_date']}T00:00:00" if index % 19 != 7 else "0001-01-01T00:00:00"
        return {
            "CustomerID": customer_id,
            "StoreID": store.store_id,
            "FirstName": person["first_name"],
            "LastName": person["last_name"],
            "Phone": format_phone(person["phone"], index),
            "Email": None if index % 17 == 5 else person["email"],
            "BirthDate": birth,
            "State": person["state"],
            "Zip": person["zipcode"],
            "CustomerType": "Medical" if index % 9 == 0 else "Recreational",
            "LoyaltyMember": member,
            "MarketingOptIn": member and index % 3 != 0,
            "SmsOptIn": member and index % 4 != 0,
            "SmsOptOut": index % 23 == 7,
            "DriversLicense": f"WDL{customer_id:09d}",
            "CreatedDate": updated - timedelta(days=rng.randint(0, 500), seconds=rng.randint(0, 86_399)),
        }

    def _add_sale(self, store: ProfitekStore, ordered: datetime, updated: datetime) -> str:
        rng = self._rng
        transaction_id = self._new_id(Stream.SALES)
        lines: list[dict[str, Any]] = []
        for line_no in range(1, rng.randint(1, 3) + 1):
            item = rng.choice(store.item_list)
            qty = rng.randint(1, 3)
            gross = item["_price_cents"] * qty
            discount = gross // 10 if rng.random() < 0.2 else 0
            lines.append(
                {
                    "LineNo": line_no,
                    "ItemID": item["ItemID"],
                    "SKU": item["SKU"],
                    "Description": item["Description"],
                    "Category": item["Category"],
                    "Brand": item["Brand"],
                    "Qty": qty,
                    "UnitPrice": item["Price"],
                    "Discount": discount / 100,
                    "ExtPrice": (gross - discount) / 100,
                    "Discounts": _line_discounts(store, transaction_id) if discount else [],
                    "_gross": gross,
                    "_discount": discount,
                }
            )
        sub_total = sum(line["_gross"] for line in lines)
        discount_total = sum(line["_discount"] for line in lines)
        tax = round((sub_total - discount_total) * TAX_RATE)
        total = sub_total - discount_total + tax
        customers = store.customer_ids
        data = {
            "TransactionID": transaction_id,
            "StoreID": store.store_id,
            "RegisterID": 1 + transaction_id % 3,
            "CustomerID": rng.choice(customers) if customers and rng.random() < 0.9 else 0,  # 0 = walk-in
            "TransactionDate": ordered,
            "Status": "Completed",
            "SubTotal": sub_total / 100,
            "DiscountTotal": discount_total / 100,
            "TaxTotal": tax / 100,
            "Total": total / 100,
            "Lines": lines,
            "Tenders": [{"TenderType": rng.choice(TENDERS), "Amount": total / 100}],
        }
        store.tables[Stream.SALES].put(Row(str(transaction_id), transaction_id, updated, data))
        return str(transaction_id)

    # --- serving --------------------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if not request.path.startswith(API_ROOT):
            return Response.json({"Message": "No HTTP resource was found that matches the request URI."}, 404)
        name_segment, slash, rest = request.path[len(API_ROOT) :].partition("/")
        store = self._by_name.get(unquote(name_segment))
        key = request.headers.get("authkey")
        if store is None or key is None or not hmac.compare_digest(key.encode(), store.auth_key.encode()):
            return Response.json(UNAUTHORIZED, 401)
        if request.method != "GET":
            return Response.json({"Message": "The requested resource does not support this method."}, 405)
        if slash + rest == "/info":
            return Response.json(
                {
                    "StoreID": store.store_id,
                    "StoreName": store.name,
                    "TimeZone": store.windows_zone,
                    "State": store.state,
                    "Country": "US",
                }
            )
        stream = STREAM_PATHS.get(slash + rest)
        if stream is None:
            return Response.json({"Message": "No HTTP resource was found that matches the request URI."}, 404)
        try:
            since = parse_instant(request.arg("modifiedSince"))
            before = parse_instant(request.arg("modifiedBefore"))
            page = int(request.arg("page") or "1")
            size = int(request.arg("pageSize") or str(DEFAULT_PAGE_SIZE))
        except ValueError:
            return Response.json({"Message": "The request is invalid: bad modifiedSince, modifiedBefore or page."}, 400)
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            return Response.json({"Message": f"page must be >= 1 and pageSize 1..{MAX_PAGE_SIZE}."}, 400)
        by_update = (request.arg("orderBy") or "").lower() == "modifieddate"
        return Response.json(self._page(store, stream, since, before, page, size, by_update))

    def _page(
        self,
        store: ProfitekStore,
        stream: Stream,
        since: datetime | None,
        before: datetime | None,
        page: int,
        size: int,
        by_update: bool,
    ) -> dict[str, Any]:
        with self.lock:
            table = store.tables[stream]
            rows = table.window(since, before, by_update=by_update)
            first = (page - 1) * size
            chunk = rows[first : first + size]
            if self.faults.duplicate_across_pages and page > 1 and 0 < first <= len(rows):
                chunk = [rows[first - 1], *chunk]
            invalid_id = table.first_id() if self.faults.invalid_record else None
            items = [self._render(store, stream, row, invalid_id) for row in chunk]
            if page == 1 and self.faults.update_while_paging > 0:
                self._change(store, stream, [row.pos_id for row in chunk[: self.faults.update_while_paging]])
                self.faults.update_while_paging = 0
        return {
            "Page": page,
            "PageSize": size,
            "TotalCount": len(rows),
            "TotalPages": math.ceil(len(rows) / size),
            "Data": items,
        }

    def _render(self, store: ProfitekStore, stream: Stream, row: Row, invalid_id: str | None) -> dict[str, Any]:
        faults = self.faults
        data = dict(row.data)
        data["ModifiedDate"] = row.updated_at
        if stream is Stream.SALES and faults.refunds:
            data = _as_refund(data, int(row.sort_id))
        out = render(data, timestamp_mode(faults), store.zone)
        if faults.extra_fields:
            out["LegacyCode"] = f"LC{row.sort_id}"
            out["AuditInfo"] = {"Workstation": "REG-01", "Rev": 3, "Tags": ["sync", "v9"]}
        if row.pos_id == invalid_id:
            broken = {
                Stream.CUSTOMERS: ("ModifiedDate", "last tuesday"),
                Stream.SALES: ("Total", "N/A"),
                Stream.INVENTORY: ("Price", "call for price"),
                Stream.LOYALTY: ("PointsBalance", "lots"),
                Stream.DISCOUNTS: ("Amount", "plenty"),
            }[stream]
            out[broken[0]] = broken[1]
        return out

    def _change(self, store: ProfitekStore, stream: Stream, ids: Iterable[str]) -> None:
        """Records edited at the till now: a visible field changes and ModifiedDate moves to now."""
        moment = self._now()
        table = store.tables[stream]
        for pos_id in ids:
            row = table.touch(pos_id, moment)
            if stream is Stream.CUSTOMERS:
                row.data["Email"] = f"changed.{pos_id}.{self._rng.randint(1, 9999)}@example.org"
            elif stream is Stream.INVENTORY:
                row.data["QtyOnHand"] = float(self._rng.randint(0, 300))
            elif stream is Stream.LOYALTY:
                row.data["PointsBalance"] = float(row.data["PointsBalance"]) + self._rng.randint(1, 40)
            elif stream is Stream.DISCOUNTS:
                row.data["Active"] = not row.data["Active"]
            else:
                row.data["RegisterID"] = int(row.data["RegisterID"]) + 10

    # --- helpers for tests and the local runtime ------------------------------------------------------------------
    @property
    def stores(self) -> list[str]:
        return list(self._stores)

    def store_name(self, store: str) -> str:
        return self._stores[store].name

    def timezone_for(self, store: str) -> str:
        return self._stores[store].zone.key

    def credential_for(self, store: str, *, via_ip_port: bool = False) -> dict[str, Any]:
        """The credential as `parse_credential` accepts it; `via_ip_port` fills the custom IP:PORT (and the pin)."""
        record = self._stores[store]
        credential: dict[str, Any] = {"vendor": "profitek", "store_name": record.name, "auth_key": record.auth_key}
        if via_ip_port:
            credential["custom_ip_port"] = self.ip_port
            if self.tls is not None:
                credential["pinned_cert_pem"] = self.tls.cert_pem
        return credential

    def all_ids(self, stream: Stream | str) -> set[tuple[str, str]]:
        """Every (store, POS id) the simulator holds for a stream: what a complete pull must have seen."""
        with self.lock:
            return {
                (key, pos_id) for key, store in self._stores.items() for pos_id in store.tables[Stream(stream)].rows
            }

    def add_sales(self, store: str, n: int) -> list[str]:
        """n new transactions rung up now (wall clock)."""
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


def _as_refund(data: dict[str, Any], transaction_id: int) -> dict[str, Any]:
    """The refunds fault: every 5th transaction is a return (negative lines and totals); the one after it an
    exchange, a completed transaction with one unit given back on a negative line."""
    if transaction_id % 5 == 0:
        return {
            **data,
            "Status": "Return",
            "OriginalTransactionID": transaction_id - 1,
            "SubTotal": -data["SubTotal"],
            "DiscountTotal": -data["DiscountTotal"],
            "TaxTotal": -data["TaxTotal"],
            "Total": -data["Total"],
            "Lines": [
                {**line, "Qty": -line["Qty"], "ExtPrice": -line["ExtPrice"], "Discount": -line["Discount"]}
                for line in data["Lines"]
            ],
            "Tenders": [{**tender, "Amount": -tender["Amount"]} for tender in data["Tenders"]],
        }
    if transaction_id % 5 == 1:
        first = data["Lines"][0]
        back_cents = round(first["UnitPrice"] * 100)
        back = {**first, "LineNo": len(data["Lines"]) + 1, "Qty": -1, "ExtPrice": -back_cents / 100, "Discount": 0.0}
        total = (round(data["Total"] * 100) - back_cents) / 100
        return {
            **data,
            "SubTotal": (round(data["SubTotal"] * 100) - back_cents) / 100,
            "Total": total,
            "Lines": [*data["Lines"], back],
            "Tenders": [{**data["Tenders"][0], "Amount": total}],
        }
    return data
