"""One HTTP/1.1 request-answer exchange at a time over a kept-alive connection per thread, for the lean DynamoDB path.

botocore sends through urllib3 and http.client: an `AWSRequest` turned into an `AWSPreparedRequest`, headers kept in
`email.message` objects and the answer's headers parsed by the email package, about half of a small request's CPU.
DynamoDB's answers are small JSON bodies with a Content-Length, so the exchange here is one `sendall` of the head and
body and a buffered read of the status line, the headers and that many bytes (a chunked or close-delimited body is
read too). Each thread keeps its own connection open between requests, as urllib3's pool does.

Anything unexpected is the caller's to handle: `exchange` returns None after a connection error, a timeout or an
answer it cannot read (the lean path then resends through botocore). A kept-alive connection the server closed in the
meantime (an idle DynamoDB connection is closed after a while) is opened again once and the request sent on it: only
if nothing at all was read back on the old one, and never after a timeout. A connection idle for longer than
`MAX_IDLE_SECONDS` is not reused at all: one dropped silently on the way (a NAT's idle timeout, a Lambda frozen
between invocations) would otherwise cost a whole read timeout before anything noticed.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import BinaryIO

# A connection idle longer than this is closed and a new one opened (well under the 350 s after which AWS NAT gateways
# drop idle TCP flows without a word).
MAX_IDLE_SECONDS = 60.0
# A status line or header longer than this is not DynamoDB's (http.client's own limit).
_MAX_LINE = 65536
_MAX_HEADERS = 100


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status, headers (names lower-cased) and the whole body."""

    status_code: int
    headers: dict[str, str]
    content: bytes


class _UnreadableError(Exception):
    """The answer is not HTTP/1.x this reader understands (the connection is closed, the request resent by botocore)."""


class _DroppedError(Exception):
    """The server closed a kept-alive connection before answering: safe to send again on a new one."""


class _Connection:
    __slots__ = ("pid", "reader", "sock", "used")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader: BinaryIO = sock.makefile("rb")
        self.pid = os.getpid()  # a forked child opens its own: the parent's stream is not its to read
        self.used = time.monotonic()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class KeptAlive:
    """Exchanges with one `host:port` (TLS if `tls` is given), a kept-alive connection per thread."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float | None,
        read_timeout: float | None,
        tls: ssl.SSLContext | None = None,
        socket_options: list[tuple[int, int, int]] | None = None,
    ) -> None:
        self._address = (host, port)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._tls = tls
        self._socket_options = list(socket_options or [])
        self._local = threading.local()
        self.connections_opened = 0

    def exchange(self, request: bytes) -> Answer | None:
        """Send one whole request (head and body) and read its answer; None if there is no answer to read."""
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is not None and (
            connection.pid != os.getpid() or time.monotonic() - connection.used > MAX_IDLE_SECONDS
        ):
            self._local.connection = None
            if connection.pid == os.getpid():
                connection.close()
            connection = None
        if connection is not None:
            try:
                return self._on(connection, request)
            except _DroppedError:
                pass  # closed by the server while idle: once more on a new connection
            except (OSError, _UnreadableError):
                return None
        try:
            connection = self._connect()
        except OSError:
            return None
        try:
            return self._on(connection, request)
        except (OSError, _UnreadableError, _DroppedError):
            return None

    def close(self) -> None:
        """Close this thread's connection (if any)."""
        connection: _Connection | None = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    def _connect(self) -> _Connection:
        sock = socket.create_connection(self._address, timeout=self._connect_timeout)
        try:
            for level, option, value in self._socket_options:
                sock.setsockopt(level, option, value)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._address[0])
            sock.settimeout(self._read_timeout)
        except BaseException:
            sock.close()
            raise
        self.connections_opened += 1
        return _Connection(sock)

    def _on(self, connection: _Connection, request: bytes) -> Answer:
        self._local.connection = None  # held again only once an answer was read whole
        try:
            try:
                connection.sock.sendall(request)
            except ConnectionError:  # reset or a broken pipe: the server had closed it
                raise _DroppedError from None
            answer, keep = _read_answer(connection.reader)
        except (OSError, _UnreadableError, _DroppedError):
            connection.close()
            raise
        if keep:
            connection.used = time.monotonic()
            self._local.connection = connection
        else:
            connection.close()
        return answer


def _read_answer(reader: BinaryIO) -> tuple[Answer, bool]:
    """The answer on `reader`, and whether the connection stays open after it."""
    try:
        status_line = reader.readline(_MAX_LINE + 1)
    except ConnectionError:  # reset before a byte of the answer: the server had closed it
        raise _DroppedError from None
    if not status_line:
        raise _DroppedError
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(status_line) > _MAX_LINE:
        raise _UnreadableError
    try:
        status = int(parts[1])
    except ValueError:
        raise _UnreadableError from None
    if status < 200:  # an interim answer (nothing here asks for one): the final one would be read as the next's
        raise _UnreadableError
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS + 1):
        line = reader.readline(_MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            break
        if not line or len(line) > _MAX_LINE:
            raise _UnreadableError
        name, colon, value = line.partition(b":")
        if not colon:
            raise _UnreadableError
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    else:
        raise _UnreadableError  # more header lines than any DynamoDB answer has
    connection = headers.get("connection", "").lower()
    keep = "close" not in connection and (parts[0] != b"HTTP/1.0" or "keep-alive" in connection)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        content = _read_chunked(reader)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise _UnreadableError from None
        content = reader.read(length)
        if len(content) != length:
            raise _UnreadableError
    elif status in (204, 304):
        content = b""
    else:  # delimited by the server closing the connection
        content = reader.read()
        keep = False
    return Answer(status, headers, content), keep


def _read_chunked(reader: BinaryIO) -> bytes:
    chunks = []
    while True:
        size_line = reader.readline(_MAX_LINE + 1)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _UnreadableError from None
        if size == 0:
            break
        chunk = reader.read(size)
        if len(chunk) != size or reader.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n"):
            raise _UnreadableError
        chunks.append(chunk)
    while True:  # trailers, up to the empty line
        line = reader.readline(_MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            return b"".join(chunks)
        if not line:
            raise _UnreadableError
