"""POS servers written apart from the simulators: each vendor's documented shapes, served the way real servers differ.

A `HostileServer` answers every request with what its `route` returns (a `Reply`, or None to hang up without a word);
the vendor helpers below hold a small list of records and page it as the vendor's contract says, with hooks for what
the simulators never do (records moving while a pull pages, counts that drift, repeated or missing pages).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from functions.core.layout import Stream
from tests.integration.pulls import PullWorld


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]

    def int_arg(self, name: str, default: int) -> int:
        raw = self.params.get(name)
        return int(raw) if raw else default


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a server slower than the read timeout)
    cut_after: int | None = None  # send only this many body bytes of the announced length, then hang up

    @classmethod
    def json(cls, payload: Any, status: int = 200, **kwargs: Any) -> Reply:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json"}, **kwargs)


Route = Callable[[Call], Reply | None]


class HostileServer:
    """A loopback HTTP/1.1 server that answers with whatever `route` says; every call is kept in `calls`."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.calls: list[Call] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> HostileServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                call = Call(
                    self.command,
                    split.path,
                    {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                )
                owner.calls.append(call)
                reply = owner.route(call)
                if reply is None:
                    self.close_connection = True
                    return
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if reply.cut_after is not None:
                    self.wfile.write(reply.body[: reply.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(reply.body)

            do_GET = do_POST = _serve  # noqa: N815 - http.server's method names

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        server = self._server
        threading.Thread(target=lambda: server.serve_forever(poll_interval=0.02), daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_z(text: str) -> datetime:
    """How these servers read their own timestamps (and the filters sent to them): naive ones are UTC."""
    moment = datetime.fromisoformat(text.upper().replace(" UTC", "Z").replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# Forms of one instant a server may write, all valid ISO 8601 / RFC 3339 (strftime patterns of a UTC time).
RFC3339_FORMS = {
    "no seconds": "%Y-%m-%dT%H:%MZ",
    "lower-case z": "%Y-%m-%dT%H:%M:%Sz",
    "+00:00": "%Y-%m-%dT%H:%M:%S+00:00",
    "one fraction digit": "%Y-%m-%dT%H:%M:%S.0Z",
    "nine fraction digits": "%Y-%m-%dT%H:%M:%S.000000000Z",
}


def stored_sale_ids(world: PullWorld) -> list[int]:
    """The POS ids of the sales stored, sorted, one entry per stored item (so a duplicate would show)."""
    return sorted(int(pos_id) for _, pos_id in world.stored().get(Stream.SALES, []))


class VendorServer:
    """One vendor's server on a HostileServer: `answer` gives its documented answers; a test can run `on_page`
    before a page is answered (records moving while a pull pages) or answer a call itself with `override` (False:
    answer normally)."""

    def __init__(self) -> None:
        self.on_page: Callable[[int], None] | None = None
        self.override: Callable[[Call], Reply | bool | None] | None = None
        self.server = HostileServer(self.route)

    @property
    def url(self) -> str:
        return self.server.url

    def route(self, call: Call) -> Reply | None:
        if self.override is not None:
            answer = self.override(call)
            if answer is not False:
                return answer  # type: ignore[return-value]
        return self.answer(call)

    def answer(self, call: Call) -> Reply | None:
        raise NotImplementedError
