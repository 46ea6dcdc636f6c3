"""Moto's server app on kept-alive HTTP/1.1 connections, as DynamoDB and S3 keep them: the local runtime's and the
bench's AWS stand-in.

`moto.server.ThreadedMotoServer` (and `moto_server`) run moto's WSGI app on werkzeug's development server, which
answers every request with `Connection: close`: each request a client sends costs it a new TCP connection (botocore's
urllib3 pool a new connection object, the lean DynamoDB path a reconnect). This serves the same app (`moto.server`'s
`DomainDispatcherApplication` with moto's request handler's environ) on werkzeug's threaded server, but reads each
request's body whole, answers with a Content-Length and keeps the connection open for the client's next request.
"""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

# Hop-by-hop or framing headers the app may set; this server frames each answer itself.
_FRAMING = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})


class KeepAliveHandler(MotoRequestHandler):
    """Moto's request handler, answering over a kept-alive HTTP/1.1 connection."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        opened = getattr(self.server, "opened", None)
        if opened is not None:  # a KeptAliveMotoServer's server: its stop() closes the connections still open
            opened.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            opened = getattr(self.server, "opened", None)
            if opened is not None:
                opened.discard(self.connection)

    def run_wsgi(self) -> None:
        environ = self.make_environ()  # BaseHTTPRequestHandler already answered an Expect: 100-continue
        if environ.get("wsgi.input_terminated"):  # a chunked body, de-chunked by werkzeug
            body = environ["wsgi.input"].read()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        environ.pop("wsgi.input_terminated", None)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        started: list[Any] = []
        written: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            started[:] = [status, headers]
            return written.append

        # moto's app answers its own failures with a 500 (Flask); anything it raises drops the connection (the
        # socketserver prints it), which a client sees as a connection error.
        result: Iterable[bytes] = self.server.app(environ, start_response)
        try:
            written.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        answer = b"".join(written)
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for name, value in headers:
            if name.lower() not in _FRAMING:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        # The head and the body in one write: two small writes wait on the client's delayed ACK (Nagle's algorithm).
        self._headers_buffer.append(b"\r\n" + (answer if self.command != "HEAD" else b""))
        self.flush_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per request would cost more than the request


def server(host: str, port: int) -> BaseWSGIServer:
    """Moto's app on `host:port` (0: any free port) with kept-alive connections; call `serve_forever`."""
    app = DomainDispatcherApplication(create_backend_app)
    return make_server(host, port, app, threaded=True, request_handler=KeepAliveHandler)


class KeptAliveMotoServer:
    """`server` in a thread of this process (`moto.server.ThreadedMotoServer`'s interface: start, get_host_and_port,
    stop). `stop` also closes the connections clients keep open, so their server threads end with it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = server(host, port)
        self._server.opened = set()  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for connection in list(self._server.opened):  # type: ignore[attr-defined]
            try:
                connection.shutdown(socket.SHUT_RDWR)  # the thread waiting for its next request reads the end
            except OSError:
                continue  # the client closed it already
        if self._thread is not None:
            self._thread.join()
            self._thread = None
