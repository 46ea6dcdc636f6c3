"""DynamoDB's hot requests sent on a lean path beside botocore's per-request pipeline, falling back to it.

A BatchWriteItem through botocore's `_make_api_call` pays event hooks, endpoint-ruleset resolution, a request
dict, retry bookkeeping and a model-driven parse of the answer; for a pull that sends hundreds of them that was about
half its CPU. For the operations in `LEAN_OPERATIONS` on the trusted client (requests our own adapters build), the
lean path sends the same request with botocore's own parts and nothing else:

- the body is `json.dumps` of the parameters, binary values base64-encoded (the protocol's wire form,
  `functions.core.ddb_wire.wire_body`); a value the wire form has no place for (a datetime, a set) takes botocore's
  path;
- signed with SigV4 for this one request shape (`functions.core.sigv4`: botocore's signature by construction, the
  signing key derived once a day) with the client's credentials, frozen per request (so refresh still works);
- emitted as botocore's `before-send` event first (moto's in-process mock answers there; skipped when the client's
  emitter has looked up that event's handlers and found none), else sent over a kept-alive connection of this
  thread to the endpoint (`functions.core.keepalive`: one send, the answer read by its Content-Length, no
  urllib3/http.client/email layers) with the client's timeouts, socket options and TLS verification (its CA
  bundle); a client with a proxy, a client certificate or `verify=False` uses the client's own HTTP session
  (urllib3) instead;
- to the client's endpoint URL (AWS_ENDPOINT_URL when set) in its region, with its fixed User-Agent (an endpoint URL
  with a path or a query, or a scheme other than http/https, sends every request through botocore's call).

Anything but a clean answer (a status other than 200, a connection error (a kept-alive connection the server had
closed is opened again once first), a timeout, an answer that is not readable HTTP, a body that is not JSON, an
`x-amz-crc32` header that does not match the body: botocore checks that CRC only in its legacy retry mode, it is cheap
enough to check always) sends the same request again through botocore's normal call, whose retry mode and error
handling then apply: a throttle is retried with backoff, a lasting failure raises the same ClientError or
BotoCoreError it always did; each such request is logged and counted (`count_resent`, which s3_lean shares; the
pull emits the count as LeanRequestsResent). Sending a request twice is safe only because every lean operation is
idempotent: BatchWriteItem carries only PutRequest (the whole item, unconditional) and DeleteRequest entries, and
BatchGetItem and GetItem only read.
Conditional or incremental writes (PutItem with a condition, UpdateItem) therefore never take the lean path.

Requests of one operation that do not depend on each other (a page's version reads, its write batches:
functions.core.ddb_batch's `*_together`) go through `call_many`: each is offered to `before-send` as above, the rest
are in flight together on the direct route, up to IN_FLIGHT at once, each on a kept-alive connection of its own, all
sent before any answer is read (`KeptAlive.exchange_many`), so their round trips overlap; every answer is read before
any that was not clean is resent through botocore's call, as above.

Answers are decoded as `json.loads` decodes them (`functions.core.json_bytes`: orjson where the two agree); one that
may hold a binary value is parsed by botocore's parser instead (which decodes base64). Observers (`observe`) are told
of each request the lean path answered; a request that fell back is seen by botocore's own events instead, so each
call is observed exactly once. Nothing of a body reaches a log line.
"""

from __future__ import annotations

import functools
import os
import ssl
import threading
import time
from binascii import crc32
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import SplitResult, quote, urlsplit

import botocore.auth
from botocore.awsrequest import AWSPreparedRequest, HeadersDict, prepare_request_dict
from botocore.endpoint import convert_to_response_dict
from botocore.exceptions import BotoCoreError
from botocore.httpsession import get_cert_path

from functions.core import json_bytes
from functions.core.ddb_wire import wire_body
from functions.core.keepalive import KeptAlive
from functions.core.observability import logger
from functions.core.sigv4 import TIMESTAMP_FORMAT, JsonPostSigner

TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"
# Idempotent operations only (see the module docstring): a request that fell back is sent a second time.
LEAN_OPERATIONS = frozenset({"BatchWriteItem", "BatchGetItem", "GetItem"})
# An answer with one of these in it may carry a binary value, which botocore's parser base64-decodes.
_BINARY_MARKERS = (b'"B"', b'"BS"')
# Requests of one `call_many` in flight together on the direct route, each on a kept-alive connection of its own
# (connections per thread and client: at most this many stay open). Measured on a store's 1,000-record pages into
# bench.moto_server (median CPU a record): 2 in flight 47 µs, 4 35, 6 33, 8 45, 12 43; one at a time 54-68.
IN_FLIGHT = 6
_DEFAULT_PORTS = {"http": 80, "https": 443}

Observer = Callable[[str, Mapping[str, Any], float], None]
"""Told (operation name, parameters, seconds waited) of every request the lean path answered."""


class LeanPath:
    """Stands in for a DynamoDB client's `_make_api_call`: the operations in LEAN_OPERATIONS are sent lean, everything
    else (and every lean request that did not get a clean answer) goes to botocore's own call."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._botocore_call: Callable[[str, Mapping[str, Any]], Any] = client._make_api_call
        self._observers: list[Observer] = []
        meta = client.meta
        self._user_agent = meta.config.user_agent
        self._url = _url(meta.endpoint_url)
        split = urlsplit(self._url)
        self._host = _host(split)
        self._signer: JsonPostSigner | None = None
        self.direct: KeptAlive | None = None
        if split.scheme in _DEFAULT_PORTS and split.path == "/" and not split.query and self._host:
            self._signer = JsonPostSigner(self._host, meta.region_name, meta.service_model.signing_name, CONTENT_TYPE)
            self.direct = _direct_route(client, split, self._url)

    def __call__(self, operation_name: str, api_params: Mapping[str, Any]) -> Any:
        if operation_name in LEAN_OPERATIONS and self._signer is not None:
            answer = self._lean(self._signer, operation_name, api_params)
            if answer is not None:
                return answer
        return self._botocore_call(operation_name, api_params)

    def observe(self, observer: Observer) -> None:
        self._observers.append(observer)

    def call_many(self, operation: str, params: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The answers to several requests of one operation that do not depend on each other, as `__call__` answers
        each: on the direct route, up to IN_FLIGHT of them are in flight together (`KeptAlive.exchange_many`: all sent
        before any answer is read); each one that did not get a clean answer is then sent again through botocore's
        call, in order (a lasting failure raises its error there, after every answer on the connections was read).
        A `before-send` handler is asked first, as for one request (moto's in-process mock answers there). Without
        the direct route (the client's own HTTP session), or for an operation outside LEAN_OPERATIONS, they are sent
        one after the other."""
        direct, signer = self.direct, self._signer
        if len(params) < 2 or direct is None or signer is None or operation not in LEAN_OPERATIONS:
            return [self(operation, one) for one in params]
        results: list[Any] = [None] * len(params)
        wanted: list[tuple[int, bytes]] = []
        event = f"before-send.dynamodb.{operation}"
        for index, one in enumerate(params):
            request = self._request(signer, operation, one)
            if request is None:
                continue
            headers, body = request
            if self._may_answer(event):  # as `_lean` does: a handler (moto's in-process mock) answers first
                started = time.perf_counter()
                try:
                    _, response = self._client.meta.events.emit_until_response(
                        event, request=_prepared(self._url, headers, body)
                    )
                except BotoCoreError as exc:
                    _fell_back(operation, f"{type(exc).__name__}")
                    continue
                if response is not None:
                    results[index] = self._accept(operation, one, response, time.perf_counter() - started)
                    continue
            wanted.append((index, _http_request(self._host, headers, body)))
        if wanted:
            started = time.perf_counter()
            answers = direct.exchange_many([request for _, request in wanted], IN_FLIGHT)
            # The time waited is told once: shared out between the requests that were in flight together.
            waited = (time.perf_counter() - started) / len(wanted)
            for (index, _), response in zip(wanted, answers, strict=True):
                if response is None:
                    _fell_back(operation, "no answer on the connection")
                else:
                    results[index] = self._accept(operation, params[index], response, waited)
        for index, result in enumerate(results):
            if result is None:
                results[index] = self._botocore_call(operation, params[index])
        return results

    def _lean(self, signer: JsonPostSigner, operation: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        request = self._request(signer, operation, params)
        if request is None:
            return None
        headers, body = request
        started = time.perf_counter()
        event = f"before-send.dynamodb.{operation}"
        try:
            response = None
            if self._may_answer(event):
                _, response = self._client.meta.events.emit_until_response(
                    event, request=_prepared(self._url, headers, body)
                )
            if response is None:
                if self.direct is not None:
                    response = self.direct.exchange(_http_request(self._host, headers, body))
                    if response is None:
                        _fell_back(operation, "no answer on the connection")
                        return None
                else:
                    response = self._client._endpoint.http_session.send(_prepared(self._url, headers, body))
        except BotoCoreError as exc:
            _fell_back(operation, f"{type(exc).__name__}")
            return None
        return self._accept(operation, params, response, time.perf_counter() - started)

    def _request(
        self, signer: JsonPostSigner, operation: str, params: Mapping[str, Any]
    ) -> tuple[list[tuple[str, str]], bytes] | None:
        """The signed request's headers and body; None if botocore's call is to send it instead."""
        try:
            body = wire_body(params, self._client.meta.service_model.operation_model(operation))
        except (TypeError, ValueError):  # datetimes, sets: botocore converts what it converts
            return None
        credentials = self._client._get_credentials()
        if credentials is None:  # an unsigned client: botocore says what is missing
            return None
        headers = self._headers(operation)
        timestamp = botocore.auth.get_current_datetime().strftime(TIMESTAMP_FORMAT)
        headers += signer.sign(credentials.get_frozen_credentials(), TARGET_PREFIX + operation, body, timestamp)
        return headers, body

    def _accept(self, operation: str, params: Mapping[str, Any], response: Any, waited: float) -> dict[str, Any] | None:
        """The parsed answer if it is clean (observers told of it); None if botocore's call is to send it again."""
        if response.status_code != 200:
            _fell_back(operation, f"HTTP {response.status_code}")
            return None
        content: bytes = response.content
        if not _crc_matches(response.headers.get("x-amz-crc32"), content):
            _fell_back(operation, "x-amz-crc32 mismatch")
            return None
        try:
            parsed = self._parse(operation, response, content)
        except ValueError:
            _fell_back(operation, "unreadable answer")
            return None
        for observer in self._observers:
            observer(operation, params, waited)
        return parsed

    def _may_answer(self, event: str) -> bool:
        return may_answer(self._client, event)

    def _headers(self, operation: str) -> list[tuple[str, str]]:
        headers = [
            ("X-Amz-Target", TARGET_PREFIX + operation),
            ("Content-Type", CONTENT_TYPE),
            ("User-Agent", self._user_agent),
        ]
        # What botocore's add_recursion_detection_header adds inside a Lambda function.
        trace_id = os.environ.get("_X_AMZN_TRACE_ID")
        if trace_id and "AWS_LAMBDA_FUNCTION_NAME" in os.environ:
            headers.append(("X-Amzn-Trace-Id", quote(trace_id, safe="-=;:+&[]{}\"',")))
        return headers

    def _parse(self, operation: str, response: Any, content: bytes) -> dict[str, Any]:
        if any(marker in content for marker in _BINARY_MARKERS):
            operation_model = self._client.meta.service_model.operation_model(operation)
            parsed: dict[str, Any] = self._client._response_parser.parse(
                convert_to_response_dict(response, operation_model), operation_model.output_shape
            )
        else:
            parsed = json_bytes.loads(content) if content else {}
            if not isinstance(parsed, dict):
                raise ValueError("a DynamoDB answer is a JSON object")
        headers = {name.lower(): value for name, value in response.headers.items()}
        parsed["ResponseMetadata"] = {
            "RequestId": headers.get("x-amzn-requestid", ""),
            "HTTPStatusCode": response.status_code,
            "HTTPHeaders": headers,
            "RetryAttempts": 0,
        }
        return parsed


def _fell_back(operation: str, why: str) -> None:
    logger.info("DynamoDB request resent through botocore", operation=operation, reason=why)
    count_resent()


_resent_lock = threading.Lock()
_resent = 0


def count_resent() -> None:
    """One more request a lean path (DynamoDB's or S3's) sent again through botocore's call."""
    global _resent
    with _resent_lock:
        _resent += 1


def take_resent() -> int:
    """How many requests the lean paths sent again through botocore since the last call (the pull's metric)."""
    global _resent
    with _resent_lock:
        taken, _resent = _resent, 0
    return taken


def _crc_matches(header: str | None, content: bytes) -> bool:
    """DynamoDB's CRC32 of the body, as botocore's CRC32Checker compares it (an absent header is not checked)."""
    if header is None:
        return True
    try:
        return int(header) == crc32(content) & 0xFFFFFFFF
    except ValueError:
        return False


def may_answer(client: Any, event: str) -> bool:
    """Whether a `before-send` handler may answer `event` on `client`: False only when botocore's own lookup of its
    handlers (the list `emit_until_response` would call, cached by the client's emitter until a handler is registered
    or unregistered) is cached and empty. moto registers one in every client made after it was imported."""
    events = client.meta.events
    cache = getattr(getattr(events, "_emitter", None), "_lookup_cache", None)
    alias = getattr(events, "_alias_event_name", None)
    if not isinstance(cache, dict) or alias is None:
        return True
    handlers = cache.get(alias(event))
    return handlers is None or len(handlers) > 0


def _prepared(url: str, headers: list[tuple[str, str]], body: bytes, method: str = "POST") -> AWSPreparedRequest:
    """The request as AWSRequest.prepare() makes it (botocore's HTTP session and moto's mock read this)."""
    prepared_headers = HeadersDict(headers)
    prepared_headers["Content-Length"] = str(len(body))
    return AWSPreparedRequest(method, url, prepared_headers, body, False)


def _http_request(
    host: str, headers: list[tuple[str, str]], body: bytes, method: str = "POST", path: str = "/"
) -> bytes:
    """The whole HTTP/1.1 request: `method path` with these headers, the Host and the Content-Length, then the body."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{lines}Content-Length: {len(body)}\r\n\r\n".encode() + body


def _host(split: SplitResult) -> str:
    """The Host header (and signed host) botocore derives from a URL: lower case, the port only if not the default."""
    try:
        host, port = split.hostname or "", split.port
    except ValueError:
        return ""
    if ":" in host:
        host = f"[{host}]"
    return host if port is None or port == _DEFAULT_PORTS.get(split.scheme) else f"{host}:{port}"


@functools.cache
def _tls_context(cert_path: str) -> ssl.SSLContext:
    """A verifying TLS context trusting the CA bundle (file or directory) botocore would use (one per process: the
    bundle is read once, and a context is safe to share between threads)."""
    if os.path.isdir(cert_path):
        return ssl.create_default_context(capath=cert_path)
    return ssl.create_default_context(cafile=cert_path)


def _direct_route(client: Any, split: SplitResult, url: str) -> KeptAlive | None:
    """A kept-alive connection per thread to the client's endpoint, with its timeouts, socket options and TLS
    verification; None (the client's own HTTP session sends) with a proxy, a client certificate or verify=False."""
    session = client._endpoint.http_session
    proxies = getattr(session, "_proxy_config", None)
    verify = getattr(session, "_verify", False)
    if proxies is None or proxies.proxy_url_for(url) or getattr(session, "_cert_file", True) is not None:
        return None
    tls: ssl.SSLContext | None = None
    if split.scheme == "https":
        if verify is False:
            return None
        tls = _tls_context(get_cert_path(verify))
    config = client.meta.config
    return KeptAlive(
        split.hostname or "",
        split.port or _DEFAULT_PORTS[split.scheme],
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        tls=tls,
        socket_options=list(getattr(session, "_socket_options", [])),
    )


def _url(endpoint_url: str) -> str:
    """The URL botocore sends a JSON-protocol request to: the endpoint joined with the operation's path, '/'."""
    request = {"url_path": "/", "query_string": "", "headers": {}, "body": b"", "method": "POST"}
    prepare_request_dict(request, endpoint_url)
    return str(request["url"])


class LeanCall(Protocol):
    """A lean path standing in for a botocore client's `_make_api_call` (LeanPath here, s3_lean.LeanPut)."""

    def __init__(self, client: Any) -> None: ...

    def observe(self, observer: Observer) -> None: ...


LeanT = TypeVar("LeanT", bound=LeanCall)


def installed(client: Any, kind: type[LeanT]) -> LeanT | None:
    """The lean path of `kind` that stands in for `client`'s `_make_api_call`, None if it has none."""
    lean = client.__dict__.get("_make_api_call")
    return lean if isinstance(lean, kind) else None


def install(client: Any, kind: type[LeanCall], *, service: str, refusal: str) -> Any:
    """`client` (of botocore's `service`, else ValueError(refusal)) with a lean path of `kind` as its
    `_make_api_call`, installed once; returns the client."""
    if client.meta.service_model.service_name != service:
        raise ValueError(refusal)
    if installed(client, kind) is None:
        client._make_api_call = kind(client)
    return client


def observe_lean(client: Any, kind: type[LeanCall], observer: Observer) -> bool:
    """Tell `observer` of every request `client`'s lean path of `kind` answered; False if it has none (botocore's own
    events, e.g. `before-parameter-build`, then see every request)."""
    lean = installed(client, kind)
    if lean is None:
        return False
    lean.observe(observer)
    return True


def use_lean_path(client: Any) -> Any:
    """Send a DynamoDB client's LEAN_OPERATIONS on the lean path (see the module docstring); returns the client."""
    return install(client, LeanPath, service="dynamodb", refusal="only a DynamoDB client takes the lean path")


def call_many(client: Any) -> Callable[[str, Sequence[Mapping[str, Any]]], list[Any]] | None:
    """The lean path's `call_many` of `client` (requests of one operation in flight together), None if it has none."""
    lean = installed(client, LeanPath)
    return lean.call_many if lean is not None else None


def observe(client: Any, observer: Observer) -> bool:
    """Tell `observer` of every request `client` answered on the lean path; False if the client has none."""
    return observe_lean(client, LeanPath, observer)
