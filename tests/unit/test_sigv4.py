"""The lean path's SigV4 (functions.core.sigv4) is botocore's SigV4Auth for the same time, body and credentials."""

from __future__ import annotations

import datetime
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from functions.core import ddb_lean, sigv4

NOW = datetime.datetime(2026, 11, 30, 23, 59, 58)
BODY = '{"RequestItems":{"records":[{"PutRequest":{"Item":{"pk":{"S":"Zoë \\"q\\""}}}}]}}'.encode()


def botocores(url: str, credentials: ReadOnlyCredentials, region: str, target: str, body: bytes) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"X-Amz-Target": target, "Content-Type": ddb_lean.CONTENT_TYPE, "User-Agent": "possync test"},
    )
    SigV4Auth(credentials, "dynamodb", region).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: NOW)


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////wEaDH token+/="], ids=["keys", "session token"])
@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://dynamodb.eu-west-1.amazonaws.com/", "dynamodb.eu-west-1.amazonaws.com"),
        ("http://127.0.0.1:4566/", "127.0.0.1:4566"),
        ("https://DynamoDB.eu-west-1.amazonaws.com:443/", "dynamodb.eu-west-1.amazonaws.com"),
    ],
    ids=["aws", "local port", "default port"],
)
@pytest.mark.parametrize("body", [BODY, b"", b"{}"], ids=["body", "empty", "braces"])
def test_the_authorization_header_is_botocores(token: str | None, url: str, host: str, body: bytes) -> None:
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    target = ddb_lean.TARGET_PREFIX + "BatchWriteItem"
    signer = sigv4.JsonPostSigner(host, "eu-west-1", "dynamodb", ddb_lean.CONTENT_TYPE)

    ours = dict(signer.sign(credentials, target, body, NOW.strftime(sigv4.TIMESTAMP_FORMAT)))

    theirs = botocores(url, credentials, "eu-west-1", target, body)
    assert ddb_lean._host(urlsplit(url)) == host  # the host the lean path signs and sends for this endpoint
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"] == "20261130T235958Z"
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token") == token
    assert set(ours) == {"Authorization", "X-Amz-Date"} | ({"X-Amz-Security-Token"} if token else set())


def test_the_signing_key_is_derived_once_a_day_per_secret() -> None:
    sigv4.signing_key.cache_clear()
    signer = sigv4.JsonPostSigner("localhost:8000", "us-east-1", "dynamodb", ddb_lean.CONTENT_TYPE)
    first = ReadOnlyCredentials("AKID", "secret-1", None)

    for _ in range(3):
        signer.sign(first, "T", b"{}", "20261130T100000Z")
    signer.sign(first, "T", b"{}", "20261201T000001Z")  # the next day
    signer.sign(ReadOnlyCredentials("AKID", "secret-2", None), "T", b"{}", "20261201T000002Z")  # rotated

    info = sigv4.signing_key.cache_info()
    assert (info.misses, info.hits) == (3, 2)


def test_a_rotated_key_signs_differently_and_as_botocore_does() -> None:
    signer = sigv4.JsonPostSigner("localhost:8000", "us-east-1", "dynamodb", ddb_lean.CONTENT_TYPE)
    signatures = []
    for secret in ("secret-1", "secret-2"):
        credentials = ReadOnlyCredentials("AKID", secret, "t")
        ours = dict(signer.sign(credentials, "DynamoDB_20120810.GetItem", b"{}", "20261130T235958Z"))
        theirs = botocores("http://localhost:8000/", credentials, "us-east-1", "DynamoDB_20120810.GetItem", b"{}")
        assert ours["Authorization"] == theirs["Authorization"]
        signatures.append(ours["Authorization"])
    assert signatures[0] != signatures[1]
