"""S3 PutObject of archived pages sent on a lean path beside botocore's per-request pipeline, falling back to it.

An archived page's PutObject through botocore cost 1.3-4.4 ms of CPU (its event hooks, a serializer, a checksum
computed in an aws-chunked stream over HTTPS, a signer walking an `AWSRequest`, urllib3 and http.client, a parse
of the answer): the largest per-page cost of a pull. On the trusted client (requests our own adapters build) a
PutObject of bytes with only a content type, a content encoding and ASCII metadata is sent lean, with what botocore
would send for it and nothing else:

- to the URL botocore's endpoint ruleset resolves for the bucket (virtual-hosted in AWS; path-style for an
  AWS_ENDPOINT_URL such as moto's, the client's own resolution with its config), the key percent-encoded as botocore
  encodes it;
- with the same headers: Content-Type, Content-Encoding, `x-amz-meta-*`, the body's CRC32 as `x-amz-checksum-crc32`
  (botocore's default checksum; S3 checks it and stores it with the object, as it does botocore's), all signed with
  SigV4 (`functions.core.sigv4.sign_headers`, equal to botocore's `S3SigV4Auth` by test) with the client's credentials
  frozen per request; the payload's SHA-256 is signed over HTTP, `UNSIGNED-PAYLOAD` over HTTPS where the signed CRC32
  and TLS guard the body (botocore's own rule; its HTTPS form streams the body aws-chunked with the CRC32 as a
  trailer, the same object stored);
- offered to botocore's `before-send` event first (moto's in-process mock answers there), else sent over a kept-alive
  connection of this thread to that host (`functions.core.keepalive`, the client's timeouts and TLS verification;
  the client's own HTTP session with a proxy, a client certificate or `verify=False`, as `functions.core.ddb_lean`).

Anything else (another parameter, a non-ASCII or unusual header value, a bucket name botocore would check, an
endpoint with headers or another signing scheme, a client configured otherwise) goes to botocore's call as before.
Anything but a clean answer (not HTTP 200, a connection error or timeout, an unreadable answer, a CRC32 echoed back
that is not the one sent) sends the same request again through botocore's normal call, whose retries (SlowDown
among them) and errors then apply: safe because a PUT of the same key with the same bytes stores the same object.
Observers (`observe`) are told of each PutObject the lean path answered; one that fell back is seen by botocore's own
events instead, so each is observed exactly once. Nothing of a body, key or metadata reaches a log line.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit

import botocore
import botocore.auth
from botocore.awsrequest import HeadersDict, _urljoin
from botocore.endpoint import convert_to_response_dict
from botocore.exceptions import BotoCoreError
from botocore.utils import percent_encode

from functions.core.ddb_lean import (
    _DEFAULT_PORTS,
    _direct_route,
    _host,
    _http_request,
    _prepared,
    count_resent,
    install,
    may_answer,
    observe_lean,
)
from functions.core.keepalive import KeptAlive
from functions.core.observability import logger
from functions.core.sigv4 import TIMESTAMP_FORMAT, sign_headers

OPERATION = "PutObject"
# The parameters a lean PutObject may carry; any other one (an ACL, SSE settings, a checksum of the caller's, a
# Content-MD5, a storage class) sends it through botocore's call.
LEAN_PARAMS = frozenset({"Bucket", "Key", "Body", "ContentType", "ContentEncoding", "Metadata"})
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# A bucket name that addresses nothing but a plain bucket (no ARN, access point or S3 Express directory bucket),
# which botocore's validate_bucket_name accepts as well.
_PLAIN_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# Header values sent as given: printable ASCII without runs of spaces, which every form of header parsing and SigV4's
# canonical form keep unchanged (botocore refuses non-ASCII metadata; anything else unusual takes its path).
_PLAIN_VALUE = re.compile(r"[!-~]+(?: [!-~]+)*")
# A metadata name: lower case (S3 stores names lower-cased; two names differing in case alone are botocore's to send).
_PLAIN_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")

Observer = Callable[[str, Mapping[str, Any], float], None]
"""Told (operation name, parameters, seconds waited) of every request the lean path answered."""


class LeanPut:
    """Stands in for an S3 client's `_make_api_call`: a plain PutObject (see the module docstring) is sent lean;
    every other call, and every lean one that did not get a clean answer, goes to botocore's own call."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._botocore_call: Callable[[str, Mapping[str, Any]], Any] = client._make_api_call
        self._observers: list[Observer] = []
        self._operation_model = client.meta.service_model.operation_model(OPERATION)
        config = client.meta.config
        s3_config = config.s3 or {}
        # The trusted client's fixed User-Agent; a client without one sends botocore's name (it is never signed).
        self._user_agent = config.user_agent or f"Botocore/{botocore.__version__}"
        # botocore's defaults only: a checksum other than "when supported", forced payload signing, another signature
        # version, addressing or endpoint options in the s3 config are botocore's to honour.
        self.enabled = (
            config.request_checksum_calculation == "when_supported"
            and config.signature_version == "s3v4"
            and not {key for key, value in s3_config.items() if value is not None} - {"addressing_style"}
            and s3_config.get("addressing_style") in (None, "auto")
        )
        self._routes: dict[tuple[str, str], KeptAlive | None] = {}

    def __call__(self, operation_name: str, api_params: Mapping[str, Any]) -> Any:
        if operation_name == OPERATION and self.enabled:
            answer = self._lean(api_params)
            if answer is not None:
                return answer
        return self._botocore_call(operation_name, api_params)

    def observe(self, observer: Observer) -> None:
        self._observers.append(observer)

    def _lean(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        request = self._request(params)
        if request is None:
            return None
        url, split, headers, body, crc = request
        started = time.perf_counter()
        event = f"before-send.s3.{OPERATION}"
        try:
            response = None
            if self._may_answer(event):
                _, response = self._client.meta.events.emit_until_response(
                    event, request=_prepared(url, headers, body, "PUT")
                )
            if response is None:
                direct = self._route(split, url)
                if direct is not None:
                    response = direct.exchange(_http_request(_host(split), headers, body, "PUT", split.path))
                    if response is None:
                        _fell_back("no answer on the connection")
                        return None
                else:
                    response = self._client._endpoint.http_session.send(_prepared(url, headers, body, "PUT"))
        except BotoCoreError as exc:
            _fell_back(type(exc).__name__)
            return None
        return self._accept(params, response, crc, time.perf_counter() - started)

    def _request(self, params: Mapping[str, Any]) -> tuple[str, SplitResult, list[tuple[str, str]], bytes, str] | None:
        """The URL, the signed headers, the body and its CRC32 header value; None if botocore's call is to send it."""
        if not params.keys() <= LEAN_PARAMS:
            return None
        bucket, key, body = params.get("Bucket"), params.get("Key"), params.get("Body")
        if not isinstance(bucket, str) or not _PLAIN_BUCKET.fullmatch(bucket) or ".." in bucket:
            return None
        if not isinstance(key, str) or not key or not isinstance(body, bytes):
            return None
        headers: list[tuple[str, str]] = []
        for param, name in (("ContentType", "Content-Type"), ("ContentEncoding", "Content-Encoding")):
            value = params.get(param)
            if value is not None:
                if not isinstance(value, str) or not _PLAIN_VALUE.fullmatch(value):
                    return None
                headers.append((name, value))
        metadata = params.get("Metadata") or {}
        if not isinstance(metadata, Mapping):
            return None
        for name, value in metadata.items():
            if not (isinstance(name, str) and isinstance(value, str)):
                return None
            if not _PLAIN_NAME.fullmatch(name) or not _PLAIN_VALUE.fullmatch(value):
                return None
            headers.append(("x-amz-meta-" + name, value))
        endpoint = self._endpoint(params)
        if endpoint is None:
            return None
        base, region = endpoint
        url = _urljoin(base, "/" + percent_encode(key, safe="/~"), None)
        split = urlsplit(url)
        host = _host(split)
        if split.scheme not in _DEFAULT_PORTS or split.query or not host:
            return None
        credentials = self._client._get_credentials()
        if credentials is None:  # an unsigned client: botocore says what is missing
            return None
        crc = base64.b64encode((zlib.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big")).decode()
        # botocore's rule (S3SigV4Auth): the payload is signed over HTTP; over HTTPS the signed checksum and TLS
        # guard it.
        payload_hash = UNSIGNED_PAYLOAD if split.scheme == "https" else hashlib.sha256(body).hexdigest()
        headers += [
            ("x-amz-checksum-crc32", crc),
            ("x-amz-sdk-checksum-algorithm", "CRC32"),
            ("X-Amz-Content-SHA256", payload_hash),
        ]
        timestamp = botocore.auth.get_current_datetime().strftime(TIMESTAMP_FORMAT)
        headers += sign_headers(
            "PUT",
            split.path,
            [("Host", host), *headers],
            payload_hash,
            credentials.get_frozen_credentials(),
            region,
            "s3",
            timestamp,
        )
        headers.append(("User-Agent", self._user_agent))
        # What botocore's add_recursion_detection_header adds inside a Lambda function (never signed).
        trace_id = os.environ.get("_X_AMZN_TRACE_ID")
        if trace_id and "AWS_LAMBDA_FUNCTION_NAME" in os.environ:
            headers.append(("X-Amzn-Trace-Id", quote(trace_id, safe="-=;:+&[]{}\"',")))
        return url, split, headers, body, crc

    def _endpoint(self, params: Mapping[str, Any]) -> tuple[str, str] | None:
        """The endpoint URL (the bucket in it) and signing region botocore resolves for this PutObject; None unless
        it is plain SigV4 for S3 with no headers of its own."""
        context: dict[str, Any] = {}
        try:
            url, extra_headers, _ = self._client._resolve_endpoint_ruleset(self._operation_model, params, context)
        except Exception:  # noqa: BLE001 - whatever botocore makes of it, its own call raises again
            return None
        signing = context.get("signing") or {}
        region = signing.get("region")
        if (
            extra_headers
            or context.get("auth_type") != "v4"
            or signing.get("signing_name") != "s3"
            or signing.get("disableDoubleEncoding") is not True
            or not isinstance(region, str)
            or not isinstance(url, str)
        ):
            return None
        return url, region

    def _route(self, split: SplitResult, url: str) -> KeptAlive | None:
        """This host's kept-alive connections (one KeptAlive per scheme and host: in AWS each bucket is a host)."""
        route_key = (split.scheme, split.netloc)
        if route_key not in self._routes:
            self._routes[route_key] = _direct_route(self._client, split, url)
        return self._routes[route_key]

    def _accept(self, params: Mapping[str, Any], response: Any, crc: str, waited: float) -> dict[str, Any] | None:
        """The parsed answer if it is clean (observers told of it); None if botocore's call is to send it again."""
        if response.status_code != 200:
            _fell_back(f"HTTP {response.status_code}")
            return None
        headers = {name.lower(): value for name, value in response.headers.items()}
        if headers.get("x-amz-checksum-crc32", crc) != crc:
            _fell_back("x-amz-checksum-crc32 mismatch")
            return None
        # botocore's parser looks its headers up case-insensitively (AWSResponse's HeadersDict).
        answer = _Answer(response.status_code, HeadersDict(headers), response.content)
        try:
            parsed: dict[str, Any] = self._client._response_parser.parse(
                convert_to_response_dict(answer, self._operation_model), self._operation_model.output_shape
            )
        except Exception:  # noqa: BLE001 - an answer botocore cannot parse is not a clean one
            _fell_back("unreadable answer")
            return None
        parsed.setdefault("ResponseMetadata", {})["RetryAttempts"] = 0
        for observer in self._observers:
            observer(OPERATION, params, waited)
        return parsed

    def _may_answer(self, event: str) -> bool:
        return may_answer(self._client, event)


@dataclass(frozen=True, slots=True)
class _Answer:
    status_code: int
    headers: HeadersDict
    content: bytes


def _fell_back(why: str) -> None:
    logger.info("S3 request resent through botocore", operation=OPERATION, reason=why)
    count_resent()


def use_lean_path(client: Any) -> Any:
    """Send an S3 client's plain PutObject on the lean path (see the module docstring); returns the client."""
    return install(client, LeanPut, service="s3", refusal="only an S3 client takes the lean S3 path")


def observe(client: Any, observer: Observer) -> bool:
    """Tell `observer` of every PutObject `client` answered on the lean path; False if the client has none (botocore's
    own events then see every request)."""
    return observe_lean(client, LeanPut, observer)
