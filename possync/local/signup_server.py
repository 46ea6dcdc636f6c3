"""The signup endpoint on 127.0.0.1: a small HTTP server that builds API Gateway's HTTP API event (payload 2.0)
and calls the same handler the deployed HTTP API invokes, with the environment the CDK app gives it."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from functions.core.signups.endpoint import FUNCTION, ROUTE_PATH
from possync.local.lambda_shim import HandlerRunner

# API Gateway refuses a payload over 10 MB itself; the local server stops reading far earlier (the handler's own
# limit, a few KB, is what a client meets first: this one only keeps a runaway client from filling memory).
MAX_READ_BYTES = 1024 * 1024
_PATH = re.compile(r"^/tenants/(?P<tenant>[^/?#]+)/signups/?$")


def http_api_event(method: str, path: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The event API Gateway's HTTP API sends a Lambda integration (payload format 2.0) for this request."""
    found = _PATH.match(path.split("?", 1)[0])
    now = datetime.now(UTC)
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    return {
        "version": "2.0",
        "routeKey": f"{method} {ROUTE_PATH}",
        "rawPath": path.split("?", 1)[0],
        "rawQueryString": path.split("?", 1)[1] if "?" in path else "",
        "headers": {k.lower(): v for k, v in headers.items()},
        "pathParameters": {"tenant": found["tenant"]} if found else {},
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": uuid.uuid4().hex,
            "routeKey": f"{method} {ROUTE_PATH}",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


class LocalSignupServer:
    """`with LocalSignupServer(runner, env) as server:` serves POST/OPTIONS /tenants/{tenant}/signups at server.url."""

    def __init__(self, runner: HandlerRunner, env: Mapping[str, str], host: str = "127.0.0.1", port: int = 0) -> None:
        self.runner = runner
        self.env = dict(env)
        self.handled = 0
        self.handler_seconds: list[float] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Requests are not logged to the terminal (their bodies carry personal data anyway)."""

            def _answer(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_READ_BYTES:
                    self.close_connection = True
                    body = json.dumps({"error": "too_large", "message": "the body is far too large"}).encode()
                    self._answer(413, {"content-type": "application/json"}, body)
                    return
                raw = self.rfile.read(length) if length else b""
                if not _PATH.match(self.path.split("?", 1)[0]):
                    message = {"error": "not_found", "message": f"POST signups to {ROUTE_PATH}"}
                    self._answer(404, {"content-type": "application/json"}, json.dumps(message).encode())
                    return
                event = http_api_event(self.command, self.path, dict(self.headers.items()), raw)
                response = server.invoke(event)
                text = response.get("body") or ""
                payload = base64.b64decode(text) if response.get("isBase64Encoded") else str(text).encode("utf-8")
                self._answer(int(response.get("statusCode", 502)), response.get("headers") or {}, payload)

            do_POST = _handle  # noqa: N815 - BaseHTTPRequestHandler's names
            do_OPTIONS = _handle  # noqa: N815
            do_GET = _handle  # noqa: N815
            do_PUT = _handle  # noqa: N815
            do_DELETE = _handle  # noqa: N815

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="signups", daemon=True)
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """One request through the handler; one at a time, as one warm Lambda takes them."""
        with self._lock:
            started = time.perf_counter()
            response: dict[str, Any] = self.runner.invoke(FUNCTION, event, self.env, 10.0)
            self.handler_seconds.append(time.perf_counter() - started)
            self.handled += 1
            return response

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def signups_url(self, tenant: str) -> str:
        return f"{self.url}{ROUTE_PATH.replace('{tenant}', tenant)}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalSignupServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_signups(rt: Any, created_by: str = "possync local serve") -> LocalSignupServer:
    """The signup endpoint of a running LocalRuntime, with a demo key of its first tenant, both published in its
    state (so `possync --local personas signup` finds them)."""
    from functions.core.signups.keys import SignupKeys

    resources = rt.resources
    server = LocalSignupServer(rt.runner, resources.lambda_env(FUNCTION))
    server.start()
    tenant = rt.plan[0].tenant
    _, key = SignupKeys(rt.client("dynamodb"), resources.control_table).create(tenant, created_by=created_by)
    rt.add_state(signups_url=server.url, signup_demo_tenant=tenant, signup_demo_key=key)
    return server
