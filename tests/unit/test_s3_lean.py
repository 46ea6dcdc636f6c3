"""The lean S3 PutObject (functions.core.s3_lean) sends what botocore sends and stores what botocore stores."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import ParamValidationError
from moto import mock_aws

from bench.pull import AwsCalls
from functions.core import aws, s3_lean, sigv4
from functions.core.archive import S3Archive

NOW = datetime.datetime(2026, 11, 30, 23, 59, 58)
PAGE = json.dumps({"data": [{"id": n, "name": f"Zoë {n}", "price": n * 1.25} for n in range(300)]}).encode()
BLOB = gzip.compress(PAGE, mtime=0)
METADATA = {"path": "/api/v3/venue/customers", "items": "300"}
PUT: dict[str, Any] = {
    "Body": BLOB,
    "ContentType": "application/json",
    "ContentEncoding": "gzip",
    "Metadata": METADATA,
}
KEY = "raw/t1/posabit/cred 1/customers/2026-11-30/p+1=ü~x.json.gz"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset_clients()
    yield
    aws.reset_clients()


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////wEaDH token+/="], ids=["keys", "session token"])
@pytest.mark.parametrize(
    ("url", "payload"),
    [
        ("https://raw.s3.eu-west-1.amazonaws.com/a/p%2B1%3D%C3%BC~x.json.gz", s3_lean.UNSIGNED_PAYLOAD),
        ("http://127.0.0.1:4566/raw/a/p%2B1%3D%C3%BC~x.json.gz", hashlib.sha256(BLOB).hexdigest()),
    ],
    ids=["https unsigned payload", "http signed payload"],
)
def test_the_signature_is_botocores_s3_signature(token: str | None, url: str, payload: str) -> None:
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    host = url.split("/")[2]
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
        ("x-amz-meta-path", "/api/v3/venue/customers"),
        ("x-amz-meta-items", "300"),
        ("x-amz-checksum-crc32", "Dlzc6g=="),
        ("x-amz-sdk-checksum-algorithm", "CRC32"),
    ]
    request = AWSRequest(method="PUT", url=url, data=BLOB, headers=dict([*headers, ("User-Agent", "possync test")]))
    # What botocore's PutObject puts in the request's context: a checksum in a header, a streaming input.
    request.context.update(
        {
            "checksum": {"request_algorithm": {"in": "header", "name": "x-amz-checksum-crc32"}},
            "has_streaming_input": True,
        }
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("botocore.auth.get_current_datetime", lambda: NOW)
        S3SigV4Auth(credentials, "s3", "eu-west-1").add_auth(request)

    path = "/" + url.split("/", 3)[3]
    ours = dict(
        sigv4.sign_headers(
            "PUT",
            path,
            [("Host", host), *headers, ("X-Amz-Content-SHA256", payload)],
            payload,
            credentials,
            "eu-west-1",
            "s3",
            NOW.strftime(sigv4.TIMESTAMP_FORMAT),
        )
    )

    assert request.headers["X-Amz-Content-SHA256"] == payload  # botocore's own choice of payload hash
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["X-Amz-Date"] == request.headers["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == request.headers.get("X-Amz-Security-Token")


class _EmptyBody:
    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        yield b""


def captured_put(client: Any, key: str = KEY) -> Any:
    """The request `client` sends for PUT, answered 200 by a `before-send` handler (nothing leaves the process)."""
    sent: list[Any] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {"ETag": '"e"'}, _EmptyBody())

    client.meta.events.register_first("before-send.s3.PutObject", answer)
    client.put_object(Bucket="raw", Key=key, **PUT)
    assert len(sent) == 1
    return sent[0]


def trailer_checksum(request: Any) -> str:
    """The CRC32 botocore's aws-chunked HTTPS body carries in its trailer."""
    streamed: bytes = request.body.read()
    return streamed.split(b"x-amz-checksum-crc32:")[1].split(b"\r\n")[0].decode()


@pytest.mark.parametrize(
    ("region", "endpoint"),
    [
        ("us-east-1", None),
        ("eu-west-1", None),
        ("us-east-1", "http://127.0.0.1:5077"),
        ("eu-west-1", "https://s3.example.test:8443"),
    ],
    ids=["aws us-east-1", "aws eu-west-1", "http endpoint (moto)", "https endpoint"],
)
def test_the_lean_request_is_the_one_botocore_sends(region: str, endpoint: str | None) -> None:
    # Given the trusted client's configuration, once with the lean path and once botocore alone
    def client() -> Any:
        return boto3.client(
            "s3",
            region_name=region,
            endpoint_url=endpoint,
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
            config=aws._TRUSTED_CONFIG,
        )

    lean_client = s3_lean.use_lean_path(client())
    seen: list[str] = []
    assert s3_lean.observe(lean_client, lambda op, *_: seen.append(op))

    # When each sends the same PutObject
    lean, botocore = captured_put(lean_client), captured_put(client())

    # Then the lean one went to the same URL with the same object headers, checksum and payload hash
    def header(request: Any, name: str) -> str:
        value = request.headers[name]
        return value.decode() if isinstance(value, bytes) else str(value)

    assert seen == ["PutObject"]
    assert "amz-sdk-invocation-id" not in lean.headers and "amz-sdk-invocation-id" in botocore.headers
    assert (lean.method, lean.url) == (botocore.method, botocore.url)
    assert lean.body == BLOB
    for name in ("Content-Type", "x-amz-meta-path", "x-amz-meta-items", "x-amz-sdk-checksum-algorithm"):
        assert header(lean, name) == header(botocore, name)
    signed = header(lean, "Authorization").split("SignedHeaders=")[1].split(",")[0]
    if botocore.url.startswith("https"):
        # botocore streams the body aws-chunked over HTTPS, its CRC32 in a trailer: the same checksum, in a header
        assert header(botocore, "Content-Encoding") == "gzip,aws-chunked"
        assert header(lean, "Content-Encoding") == "gzip"
        assert header(lean, "x-amz-checksum-crc32") == trailer_checksum(botocore)
        assert header(lean, "X-Amz-Content-SHA256") == s3_lean.UNSIGNED_PAYLOAD
    else:
        for name in ("Content-Encoding", "x-amz-checksum-crc32", "X-Amz-Content-SHA256"):
            assert header(lean, name) == header(botocore, name)
        assert signed == header(botocore, "Authorization").split("SignedHeaders=")[1].split(",")[0]
    assert f"/{region}/s3/aws4_request" in header(lean, "Authorization")
    assert signed.split(";") == sorted(
        [
            *("host", "x-amz-date", "x-amz-checksum-crc32", "x-amz-sdk-checksum-algorithm", "x-amz-content-sha256"),
            *("content-type", "content-encoding", "x-amz-meta-path", "x-amz-meta-items"),
        ]
    )


def test_under_moto_the_lean_put_stores_what_botocore_stores(aws_env: None) -> None:
    with mock_aws():
        plain = boto3.client("s3", region_name="us-east-1")
        plain.create_bucket(Bucket="raw")
        lean = aws.trusted_client("s3")
        seen: list[str] = []
        assert s3_lean.observe(lean, lambda op, *_: seen.append(op))
        calls = AwsCalls("records")  # the bench's request counter
        calls.register(lean)
        archive = S3Archive(lean, "raw")

        archive.put_page("lean/" + KEY, PAGE, METADATA)
        S3Archive(plain, "raw").put_page("botocore/" + KEY, PAGE, METADATA)

        def stored(key: str) -> dict[str, Any]:
            got = plain.get_object(Bucket="raw", Key=key, ChecksumMode="ENABLED")
            fields = ("ContentType", "ContentEncoding", "Metadata", "ChecksumCRC32", "ETag", "ContentLength")
            return {"Body": got["Body"].read(), **{name: got.get(name) for name in fields}}

        assert stored("lean/" + KEY) == stored("botocore/" + KEY)
        assert gzip.decompress(stored("lean/" + KEY)["Body"]) == PAGE
        assert archive.get_page("lean/" + KEY) == PAGE
        assert seen == ["PutObject"]

        # The bench counts each PutObject once, whichever path it took (lean, then one botocore sends)
        lean.put_object(Bucket="raw", Key=KEY, ACL="private", **PUT)
        assert seen == ["PutObject"]
        assert calls.ops["s3.PutObject"] == 2


REFUSED: dict[str, dict[str, Any]] = {
    "another parameter": {"ACL": "private"},
    "upper-case metadata name": {"Metadata": {"Path": "/a"}},
    "a run of spaces": {"Metadata": {"path": "/a  b"}},
    "a control character": {"ContentType": "application/json; charset=\x7f"},
    "the caller's MD5": {"Body": b"x", "ContentMD5": "LjhuVa5KYCnFWzHw7Nm1Xg=="},
}


def test_what_the_lean_path_cannot_prove_goes_through_botocore(aws_env: None) -> None:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="raw")
        lean = aws.trusted_client("s3")
        seen: list[str] = []
        botocore_saw: list[str] = []
        s3_lean.observe(lean, lambda op, *_: seen.append(op))
        lean.meta.events.register("before-parameter-build.s3.PutObject", lambda **_: botocore_saw.append("put"))

        for why, extra in REFUSED.items():
            lean.put_object(Bucket="raw", Key=KEY, **{**PUT, **extra})
            assert (seen, botocore_saw) == ([], ["put"]), why
            botocore_saw.clear()

        # non-ASCII metadata: botocore's error, as before
        with pytest.raises(ParamValidationError, match="ASCII"):
            lean.put_object(Bucket="raw", Key=KEY, **{**PUT, "Metadata": {"path": "/zoë"}})
        # and the control case: a plain put is the lean path's
        lean.put_object(Bucket="raw", Key=KEY, **PUT)
        assert (seen, botocore_saw) == (["PutObject"], [])


def test_only_an_s3_client_takes_the_lean_put_and_it_is_installed_once() -> None:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    with pytest.raises(ValueError, match="only an S3 client"):
        s3_lean.use_lean_path(dynamodb)
    s3 = boto3.client("s3", region_name="us-east-1")
    assert s3_lean.observe(s3, lambda *_: None) is False  # no lean path yet: botocore's events see every request
    s3_lean.use_lean_path(s3)
    lean = s3.__dict__["_make_api_call"]
    assert isinstance(lean, s3_lean.LeanPut)
    assert s3_lean.use_lean_path(s3) is s3 and s3.__dict__["_make_api_call"] is lean
    assert s3_lean.observe(s3, lambda *_: None) is True
