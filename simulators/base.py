"""Shared machinery for the POS simulators: a loopback HTTP server, fault switches and seeded fake people."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Faults:
    """Switches that make the next requests misbehave; counters count down as requests consume them.

    Data endpoints only (paths the vendor module marks as data); the admin endpoint is never faulted.
    """

    rate_limit_with_retry_after: int = 0  # 429 + Retry-After: 1
    rate_limit_without_retry_after: int = 0  # 429, no header
    server_error: int = 0  # 503
    slow: int = 0  # answer after `slow_seconds`
    slow_seconds: float = 0.3
    timeout: int = 0  # hang longer than the client's read timeout, then drop the connection
    timeout_seconds: float = 3.0
    malformed_json: int = 0  # a truncated body with status 200
    # data-shaped faults: the vendor module reads these when building pages
    invalid_record: bool = False  # one record per stream fails validation
    extra_fields: bool = False  # unknown fields on every record
    duplicate_across_pages: bool = False  # the last item of a page repeats as the first of the next
    update_while_paging: int = 0  # after the first page is served, this many already-served records change
    naive_timestamps: bool = False
    offset_timestamps: bool = False
    refunds: bool = False
    # write faults (POSaBIT and Flourish customer creates; any non-GET data request)
    write_conflict: int = 0  # 409: the POS says the shopper exists
    write_invalid: int = 0  # 422: a validation error naming a field
    write_response_lost: int = 0  # the write is applied, then the connection drops before any answer
    write_rate_limited: int = 0  # 429 to a write, nothing applied
    write_server_error: int = 0  # 500 to a write, nothing applied (the client cannot know that)
    # A page size above this is refused with the vendor's "invalid parameters" answer (None: no such limit), as an
    # API that documents a larger size than a given account or endpoint accepts would.
    refuse_page_size_over: int | None = None

    def take(self, name: str) -> bool:
        """Consume one unit of a counted fault."""
        value = getattr(self, name)
        if value > 0:
            setattr(self, name, value - 1)
            return True
        return False


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(payload, separators=(",", ":")).encode(), {"Content-Type": "application/json"})


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Route = Callable[[Request], Response]


class Simulator:
    """Base class: subclasses implement `handle(request)`; this class applies faults and serves HTTP."""

    vendor = "base"

    def __init__(self) -> None:
        self.faults = Faults()
        self.lock = threading.RLock()
        self.request_log: list[tuple[str, str, dict[str, list[str]]]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def writes(self) -> list[tuple[str, str]]:
        """Every request that was not a GET (method, path): what a read-only vendor must never receive."""
        with self.lock:
            return [(method, path) for method, path, _ in self.request_log if method != "GET"]

    # --- to implement -------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def is_data_path(self, path: str) -> bool:
        return True

    # --- serving ------------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response | None:
        """Returns None to drop the connection without answering (a timeout)."""
        if request.path.startswith("/__sim/"):
            return self._admin(request)
        with self.lock:
            self.request_log.append((request.method, request.path, request.query))
            faulted = self.is_data_path(request.path)
            if faulted and self.faults.take("rate_limit_with_retry_after"):
                return Response(429, b'{"error":"rate limited"}', {"Retry-After": "1"})
            if faulted and self.faults.take("rate_limit_without_retry_after"):
                return Response(429, b'{"error":"rate limited"}')
            if faulted and self.faults.take("server_error"):
                return Response(503, b"<html>Service Unavailable</html>", {"Content-Type": "text/html"})
            write = faulted and request.method != "GET"
            if write and self.faults.take("write_conflict"):
                return Response.json({"errors": {"customer": ["conflicts with an existing customer"]}}, 409)
            if write and self.faults.take("write_invalid"):
                return Response.json({"errors": {"email": ["is invalid"]}}, 422)
            if write and self.faults.take("write_rate_limited"):
                return Response(429, b'{"error":"rate limited"}')
            if write and self.faults.take("write_server_error"):
                return Response.json({"error": "Internal Server Error"}, 500)
            lost = write and self.faults.take("write_response_lost")
            hang = faulted and self.faults.take("timeout")
            slow = faulted and self.faults.take("slow")
            malformed = faulted and self.faults.take("malformed_json")
        if hang:
            time.sleep(self.faults.timeout_seconds)
            return None
        if slow:
            time.sleep(self.faults.slow_seconds)
        response = self.handle(request)
        if lost:
            return None
        if malformed and response.status == 200:
            return Response(200, response.body[: max(1, len(response.body) // 2)], response.headers)
        return response

    def _admin(self, request: Request) -> Response:
        if request.path == "/__sim/faults" and request.method == "POST":
            with self.lock:
                for key, value in (request.json() or {}).items():
                    if not hasattr(self.faults, key):
                        return Response.json({"error": f"unknown fault {key}"}, 400)
                    setattr(self.faults, key, value)
            return Response.json(self.faults.__dict__)
        if request.path == "/__sim/faults":
            return Response.json(self.faults.__dict__)
        return Response.json({"error": "not found"}, 404)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on loopback in a daemon thread; returns the base URL."""
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; without this each keep-alive request waits ~40 ms on loopback.
            disable_nagle_algorithm = True

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

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server's method names

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name=f"sim-{self.vendor}", daemon=True
        )
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None, "simulator not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- seeded fake people ------------------------------------------------------------------------

FIRST = [
    "Ava",
    "Liam",
    "Mia",
    "Noah",
    "Zoe",
    "Eli",
    "Ruby",
    "Owen",
    "Ivy",
    "Leo",
    "Nora",
    "Jack",
    "Luna",
    "Finn",
    "Iris",
    "Max",
    "Hazel",
    "Sam",
    "Cora",
    "Theo",
    "Maya",
    "Jude",
    "Rosa",
    "Cole",
    "Tess",
]
LAST = [
    "Nguyen",
    "Garcia",
    "Smith",
    "Patel",
    "Kim",
    "Lopez",
    "Brown",
    "Chen",
    "Davis",
    "Martin",
    "Clark",
    "Rivera",
    "Walker",
    "Young",
    "Hall",
    "Allen",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Hill",
]
PRODUCTS = [
    ("Blue Dream 3.5g", "Flower", "Evergreen"),
    ("Sour Diesel Pre-roll", "Pre-Roll", "Northwest"),
    ("Mango Gummies 100mg", "Edible", "Kiva"),
    ("OG Kush Cart 1g", "Vape", "Select"),
    ("Live Resin 1g", "Concentrate", "Dabstract"),
    ("CBD Tincture 30ml", "Tincture", "Papa & Barkley"),
    ("Gelato 7g", "Flower", "Cookies"),
    ("Mint Chocolate Bar", "Edible", "Wyld"),
]


@dataclass(frozen=True)
class SimDiscount:
    """A discount every simulated store lists (the demo's reward catalogue mirrors them, see DEMO_REWARDS)."""

    pos_id: int
    name: str  # as the POS lists it
    kind: str  # "flat" (dollars) or "percent"
    value: str
    applied: bool  # put on some discounted sales


# One mirrored exactly, one whose name differs from its reward only by case and spacing (the mis-mirror
# `possync rewards check` finds), and one with no reward at all.
SIM_DISCOUNTS: tuple[SimDiscount, ...] = (
    SimDiscount(14, "Loyalty $5 Off", "flat", "5.00", applied=True),
    SimDiscount(15, "loyalty 10%  OFF", "percent", "10", applied=True),
    SimDiscount(16, "Staff 20%", "percent", "20", applied=False),
)
APPLIED_DISCOUNTS: tuple[SimDiscount, ...] = tuple(d for d in SIM_DISCOUNTS if d.applied)


@dataclass(frozen=True)
class DemoReward:
    """A reward the demo adds to each tenant's catalogue: name, kind, value, points cost, Flourish discount id."""

    name: str
    kind: str
    value: str
    points: int
    flourish_discount_id: str


# "Birthday Treat" is mirrored nowhere (and its Flourish id does not exist): the check reports it missing.
DEMO_REWARDS: tuple[DemoReward, ...] = (
    DemoReward("Loyalty $5 Off", "flat", "5", 5, "14"),
    DemoReward("Loyalty 10% Off", "percent", "10", 8, "15"),
    DemoReward("Birthday Treat", "flat", "10", 10, "99"),
)

AREA_CODES = {
    "WA": ["206", "253", "360", "425", "509"],
    "CA": ["213", "415", "510", "619", "916"],
    "OR": ["503", "541", "971"],
    "MI": ["248", "313", "616"],
    "CO": ["303", "719", "970"],
}


class People:
    """Deterministic realistic shoppers for a seed; a few carry placeholder PII as real POS data does."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def person(self, index: int, state: str = "WA") -> dict[str, Any]:
        rng = self.rng
        first, last = rng.choice(FIRST), rng.choice(LAST)
        area = rng.choice(AREA_CODES.get(state, ["206"]))
        phone = f"{area}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
        email = f"{first}.{last}{index}@example.com".lower()
        if index % 97 == 13:
            phone, email = "1234567890", "test@test.com"
        born = datetime(1950, 1, 1) + timedelta(days=rng.randint(0, 365 * 50))
        return {
            "first_name": first,
            "last_name": last,
            "phone": phone,
            "email": email,
            "birth_date": born.date().isoformat(),
            "state": state,
            "zipcode": f"{rng.randint(98001, 99403)}" if state == "WA" else f"{rng.randint(10000, 99999)}",
        }


def spread(start: datetime, end: datetime, count: int, rng: random.Random) -> list[datetime]:
    """`count` sorted random instants in [start, end), to the millisecond, UTC."""
    span = (end - start).total_seconds()
    return sorted(
        (start + timedelta(seconds=rng.random() * span)).replace(microsecond=rng.randint(0, 999) * 1000)
        for _ in range(count)
    )


def utc_now() -> datetime:
    return datetime.now(UTC)
