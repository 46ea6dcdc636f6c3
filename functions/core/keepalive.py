"""HTTP/1.1 request-answer exchanges over kept-alive connections of each thread, for the lean DynamoDB path.

botocore sends through urllib3 and http.client: an `AWSRequest` turned into an `AWSPreparedRequest`, headers kept in
`email.message` objects and the answer's headers parsed by the email package, about half of a small request's CPU.
DynamoDB's answers are small JSON bodies with a Content-Length, so the exchange here is one `sendall` of the head and
body and a buffered read of the status line, the headers and that many bytes (a chunked or close-delimited body is
read too). Each thread keeps its own connections open between requests, as urllib3's pool does: one for requests
sent one at a time (`exchange`), up to `width` for requests sent together (`exchange_many`: each on a connection of its
own, all sent before any answer is read, so their round trips overlap instead of adding up).

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
from collections import deque
from collections.abc import Sequence
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
        return self.exchange_many([request])[0]

    def exchange_many(self, requests: Sequence[bytes], width: int = 1) -> list[Answer | None]:
        """Each request's answer (None where there is none to read), up to `width` of them in flight together.

        Request i is sent on a connection of its own before the answers of the requests sent before it are read: the
        first `width` are sent at once, then each time an answer has been read whole the next request goes on the
        connection that answer freed (HTTP/1.1 without pipelining: one request at a time on a connection). Every
        answer is read before this returns (an exception on the way closes the connections still awaiting theirs),
        so a kept-alive connection never holds an answer nobody read. A request whose kept-alive connection the
        server had closed is sent once more on a new connection, as `exchange` does."""
        answers: list[Answer | None] = [None] * len(requests)
        in_flight: deque[tuple[int, _Connection, bool]] = deque()
        sent = 0
        try:
            while sent < len(requests) or in_flight:
                while sent < len(requests) and len(in_flight) < max(1, width):
                    started = self._send(requests[sent])
                    if started is not None:
                        in_flight.append((sent, *started))
                    sent += 1
                if not in_flight:
                    continue
                index, connection, reused = in_flight.popleft()
                answers[index] = self._answer(connection, reused, requests[index])
        finally:
            for _, connection, _ in in_flight:
                connection.close()
        return answers

    def close(self) -> None:
        """Close this thread's connections (if any)."""
        pool = self._pool()
        while pool:
            pool.pop().close()

    def _pool(self) -> list[_Connection]:
        """This thread's idle connections, the most recently used last."""
        pool: list[_Connection] | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = []
        return pool

    def _idle(self) -> _Connection | None:
        """A kept-alive connection of this thread to send on (taken out of its pool), or None: one from a parent
        process, or idle for longer than MAX_IDLE_SECONDS, is not reused."""
        pool = self._pool()
        while pool:
            connection = pool.pop()
            if connection.pid == os.getpid() and time.monotonic() - connection.used <= MAX_IDLE_SECONDS:
                return connection
            if connection.pid == os.getpid():
                connection.close()
        return None

    def _send(self, request: bytes) -> tuple[_Connection, bool] | None:
        """The connection `request` was sent on and whether it was kept alive from before; None if it could not be."""
        connection = self._idle()
        if connection is not None:
            try:
                connection.sock.sendall(request)
                return connection, True
            except ConnectionError:  # reset or a broken pipe: the server had closed it
                connection.close()
            except OSError:
                connection.close()
                return None
        try:
            connection = self._connect()
        except OSError:
            return None
        try:
            connection.sock.sendall(request)
        except OSError:
            connection.close()
            return None
        return connection, False

    def _answer(self, connection: _Connection, reused: bool, request: bytes) -> Answer | None:
        """The answer to `request` on `connection` (the connection then kept if it may be); None if there is none.
        On a kept-alive connection the server had closed before answering, `request` is sent once more on a new one."""
        try:
            return self._read(connection)
        except _DroppedError:
            if not reused:
                return None
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
        try:
            connection.sock.sendall(request)
        except ConnectionError:  # reset or a broken pipe: the server had closed it
            connection.close()
            raise _DroppedError from None
        except OSError:
            connection.close()
            raise
        return self._read(connection)

    def _read(self, connection: _Connection) -> Answer:
        """The answer on `connection`, which goes back to this thread's pool if it stays open (else is closed)."""
        try:
            answer, keep = _read_answer(connection.reader)
        except (OSError, _UnreadableError, _DroppedError):
            connection.close()
            raise
        if keep:
            connection.used = time.monotonic()
            self._pool().append(connection)
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
