"""The lean S3 PutObject over real HTTP: against the kept-alive moto server the local runtime and the bench run, and a
scripted server whose failures (5xx, SlowDown, a closed connection, a bad answer) send the page through botocore."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config

from functions.core import aws, ddb_lean, s3_lean
from functions.core.archive import ArchiveError, S3Archive
from possync.local.moto_http import KeptAliveMotoServer

PAGE = b'{"data":[' + b",".join(b'{"id":%d,"name":"Zo\\u00eb"}' % n for n in range(400)) + b"]}"
METADATA = {"path": "/api/v3/venue/customers", "items": "400"}
SLOW_DOWN = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
INTERNAL = b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = KeptAliveMotoServer()
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_against_the_moto_server_the_lean_put_stores_what_botocore_stores(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the trusted client (lean, over HTTP to the kept-alive moto server) and a plain botocore client
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    lean, plain = aws.trusted_client("s3"), aws.client("s3")
    seen: list[str] = []
    assert s3_lean.observe(lean, lambda op, *_: seen.append(op))
    plain.create_bucket(Bucket="raw-http")

    # When the same pages are archived through each
    for n in range(3):
        S3Archive(lean, "raw-http").put_page(f"lean/p {n}+ü.json.gz", PAGE, METADATA)
    S3Archive(plain, "raw-http").put_page("plain/p 0+ü.json.gz", PAGE, METADATA)

    # Then the objects, their encoding, type, metadata and checksum are the same, all three lean puts were answered
    # on the lean path, over one kept-alive connection
    def stored(key: str) -> dict[str, Any]:
        got = plain.get_object(Bucket="raw-http", Key=key, ChecksumMode="ENABLED")
        fields = ("ContentType", "ContentEncoding", "Metadata", "ChecksumCRC32", "ETag")
        return {"Body": got["Body"].read(), **{name: got.get(name) for name in fields}}

    assert stored("lean/p 0+ü.json.gz") == stored("lean/p 2+ü.json.gz") == stored("plain/p 0+ü.json.gz")
    assert gzip.decompress(stored("lean/p 1+ü.json.gz")["Body"]) == PAGE
    assert seen == ["PutObject"] * 3
    routes = list(lean._make_api_call._routes.values())
    assert len(routes) == 1 and routes[0].connections_opened == 1
    aws.reset_clients()


class ScriptedS3(BaseHTTPRequestHandler):
    """Answers each PUT by the next step of the server's script; records who sent it and what."""

    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:
        server: Any = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.received.append(("botocore" if "amz-sdk-invocation-id" in self.headers else "lean", body))
        step = server.script.pop(0) if server.script else (200, b"")
        if step == "close":  # the connection closed without a word
            self.close_connection = True
            return
        if step == "garbage":
            self.wfile.write(b"HELLO\r\n\r\n")
            self.close_connection = True
            return
        status, answer = step
        self.send_response(status)
        crc = self.headers.get("x-amz-checksum-crc32")
        if crc and status == 200:
            self.send_header("x-amz-checksum-crc32", "AAAAAA==" if server.wrong_crc.pop(0) else crc)
        self.send_header("ETag", '"e"')
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def scripted() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedS3)
    server.script, server.received, server.wrong_crc = [], [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def archive_on(server: Any, attempts: int = 3) -> S3Archive:
    host, port = server.server_address
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=f"http://{host}:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}, parameter_validation=False),
    )
    return S3Archive(s3_lean.use_lean_path(client), "raw")


@pytest.mark.parametrize(
    ("step", "wrong_crc"),
    [
        ((500, INTERNAL), False),
        ((503, SLOW_DOWN), False),
        ("close", False),
        ("garbage", False),
        ((200, b""), True),
    ],
    ids=["500", "SlowDown", "closed connection", "bad answer", "another checksum echoed"],
)
def test_a_put_without_a_clean_answer_is_sent_again_through_botocore(
    scripted: Any, monkeypatch: pytest.MonkeyPatch, step: Any, wrong_crc: bool
) -> None:
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _: None)
    scripted.script[:], scripted.received[:], scripted.wrong_crc[:] = [step, (200, b"")], [], [wrong_crc, False]
    ddb_lean.take_resent()

    archive_on(scripted).put_page("p/1.json.gz", PAGE, METADATA)

    assert ddb_lean.take_resent() == 1  # counted for the pull's LeanRequestsResent metric

    # The same bytes went twice: first lean, then through botocore's call, which the server answered cleanly
    assert [sender for sender, _ in scripted.received] == ["lean", "botocore"]
    assert scripted.received[0][1] == scripted.received[1][1]
    assert gzip.decompress(scripted.received[1][1]) == PAGE


def test_a_lasting_slow_down_is_botocores_error_after_its_retries(
    scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _: None)
    scripted.script[:], scripted.received[:] = [(503, SLOW_DOWN)] * 4, []

    with pytest.raises(ArchiveError, match="SlowDown"):
        archive_on(scripted, attempts=3).put_page("p/2.json.gz", PAGE, METADATA)

    assert [sender for sender, _ in scripted.received] == ["lean", "botocore", "botocore", "botocore"]


def test_the_scripted_server_answers_a_clean_lean_put_once(scripted: Any) -> None:
    # The control case: a clean 200 is answered once, on the lean path
    scripted.script[:], scripted.received[:], scripted.wrong_crc[:] = [(200, b"")], [], [False]
    archive_on(scripted).put_page("p/3.json.gz", PAGE, METADATA)
    assert [sender for sender, _ in scripted.received] == ["lean"]
