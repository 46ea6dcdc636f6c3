"""AWS Signature Version 4 for the lean paths' fixed request shapes: a JSON-protocol POST to `/`, an S3 object PUT.

botocore's `SigV4Auth` builds the canonical request through an `AWSRequest`, walks and sorts its headers, splits the
URL and derives the signing key (four HMACs) for every request: about a quarter of a BatchWriteItem's CPU on the lean
path (`functions.core.ddb_lean`). For this one shape the canonical request is a handful of known lines, and the
signing key only changes with the secret key, the date, the region and the service, so it is derived once per day
(and per credential rotation). The credentials themselves are passed in per request (frozen by the caller) so a
refreshed role's keys and session token are used as soon as botocore has them.

The result is botocore's by construction (tests/unit/test_sigv4.py compares the Authorization header with
`SigV4Auth` for the same time, body and credentials); the signed headers are `content-type`, `host`, `x-amz-date`,
`x-amz-security-token` (with temporary credentials) and `x-amz-target`, exactly what `SigV4Auth` signs for these
headers (it never signs `User-Agent` or `X-Amzn-Trace-Id`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from typing import Protocol

ALGORITHM = "AWS4-HMAC-SHA256"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"


class Credentials(Protocol):
    """A frozen credential set (botocore's ReadOnlyCredentials)."""

    @property
    def access_key(self) -> str: ...

    @property
    def secret_key(self) -> str: ...

    @property
    def token(self) -> str | None: ...


@functools.lru_cache(maxsize=16)
def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """SigV4's derived key for one day, region and service (cached: it changes once a day or with the secret)."""
    key = hmac.digest(("AWS4" + secret_key).encode(), date.encode(), "sha256")
    key = hmac.digest(key, region.encode(), "sha256")
    key = hmac.digest(key, service.encode(), "sha256")
    return hmac.digest(key, b"aws4_request", "sha256")


def _value(header: str) -> str:
    """A header value as SigV4 canonicalizes it: trimmed, inner runs of whitespace collapsed to one space."""
    return " ".join(header.split())


class JsonPostSigner:
    """Signs POST `/` requests (no query) to one host for one region and service."""

    def __init__(self, host: str, region: str, service: str, content_type: str) -> None:
        self._region = region
        self._service = service
        self._host_line = "host:" + _value(host)
        self._content_type_line = "content-type:" + _value(content_type)

    def sign(self, credentials: Credentials, target: str, body: bytes, timestamp: str) -> list[tuple[str, str]]:
        """The headers that sign this request: X-Amz-Date, X-Amz-Security-Token (temporary credentials) and
        Authorization. `timestamp` is the request time as TIMESTAMP_FORMAT (UTC); `target` the X-Amz-Target."""
        date = timestamp[:8]
        canonical_headers = [self._content_type_line, self._host_line, "x-amz-date:" + timestamp]
        if credentials.token is not None:
            canonical_headers.append("x-amz-security-token:" + _value(credentials.token))
            signed = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        else:
            signed = "content-type;host;x-amz-date;x-amz-target"
        canonical_headers.append("x-amz-target:" + _value(target))
        canonical_request = "\n".join(
            ("POST", "/", "", *canonical_headers, "", signed, hashlib.sha256(body).hexdigest())
        )
        scope = f"{date}/{self._region}/{self._service}/aws4_request"
        string_to_sign = "\n".join(
            (ALGORITHM, timestamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest())
        )
        key = signing_key(credentials.secret_key, date, self._region, self._service)
        signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        headers = [("X-Amz-Date", timestamp)]
        if credentials.token is not None:
            headers.append(("X-Amz-Security-Token", credentials.token))
        headers.append(
            (
                "Authorization",
                f"{ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders={signed}, "
                f"Signature={signature}",
            )
        )
        return headers


def sign_headers(
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    payload_hash: str,
    credentials: Credentials,
    region: str,
    service: str,
    timestamp: str,
) -> list[tuple[str, str]]:
    """The headers that sign a request without a query string in which every header of `headers` is signed (Host and
    X-Amz-Content-SHA256 among them, each name once): X-Amz-Date, X-Amz-Security-Token (temporary credentials) and
    Authorization, as botocore's `S3SigV4Auth` signs them. `path` is the URL's path exactly as sent (S3 neither
    normalizes nor encodes it again); `payload_hash` the body's SHA-256 in hex or UNSIGNED-PAYLOAD."""
    date = timestamp[:8]
    canonical = [(name.lower(), _value(value)) for name, value in headers]
    canonical.append(("x-amz-date", timestamp))
    if credentials.token is not None:
        canonical.append(("x-amz-security-token", _value(credentials.token)))
    canonical.sort()
    signed = ";".join(name for name, _ in canonical)
    canonical_request = "\n".join(
        (method, path, "", *(f"{name}:{value}" for name, value in canonical), "", signed, payload_hash)
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join((ALGORITHM, timestamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()))
    key = signing_key(credentials.secret_key, date, region, service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    signing = [("X-Amz-Date", timestamp)]
    if credentials.token is not None:
        signing.append(("X-Amz-Security-Token", credentials.token))
    credential = f"{credentials.access_key}/{scope}"
    signing.append(
        ("Authorization", f"{ALGORITHM} Credential={credential}, SignedHeaders={signed}, Signature={signature}")
    )
    return signing
