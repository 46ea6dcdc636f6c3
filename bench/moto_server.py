"""`python -m bench.moto_server -H 127.0.0.1 -p PORT`: moto's server app behind HTTP/1.1 keep-alive connections.

`moto_server` runs moto's WSGI app on werkzeug's development server, which answers every request with
`Connection: close`: each request a client sends costs it a new TCP connection (and botocore's urllib3 pool a new
connection object). DynamoDB and S3 keep connections alive, so a benchmark against `moto_server` charges the puller
for connections a Lambda in AWS does not open. This serves the same app (`moto.server`'s `DomainDispatcherApplication`
with moto's request handler's environ) on werkzeug's threaded server, but reads each request's body whole, answers
with a Content-Length and keeps the connection open for the client's next request.
"""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

# Hop-by-hop or framing headers the app may set; this server frames each answer itself.
_FRAMING = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})


class KeepAliveHandler(MotoRequestHandler):
    """Moto's request handler, answering over a kept-alive HTTP/1.1 connection."""

    protocol_version = "HTTP/1.1"

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
        pass  # one line per request would cost the bench's moto more than the request


def server(host: str, port: int) -> BaseWSGIServer:
    """Moto's app on `host:port` (0: any free port) with kept-alive connections; call `serve_forever`."""
    app = DomainDispatcherApplication(create_backend_app)
    return make_server(host, port, app, threaded=True, request_handler=KeepAliveHandler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    server(args.host, args.port).serve_forever()


if __name__ == "__main__":
    main()
