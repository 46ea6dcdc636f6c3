"""The lean path's own HTTP exchange (functions.core.keepalive) over real sockets: one kept-alive connection per
thread reused across requests, opened again once when the server had closed it, and botocore's call for anything
else; TLS with the client's CA bundle; the signature a server receives is botocore's for that request."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials

from functions.core import ddb_lean, ddb_wire
from functions.core.keepalive import KeptAlive

OK = b'{"UnprocessedItems":{}}'
ITEM = {"pk": {"S": "tenant#posabit#store-1#customer#42"}, "name": {"S": "Zoë"}}
WRITE = {"records": [{"PutRequest": {"Item": ITEM}}]}


class Scripted(socketserver.BaseRequestHandler):
    """Reads requests off one connection and answers each as the server's next scripted behaviour says."""

    def handle(self) -> None:
        server: Any = self.server
        server.connections += 1
        reader = self.request.makefile("rb")
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = reader.readline()
                if not line:
                    return
                head += line
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = reader.read(int(headers.get("content-length", "0")))
            server.received.append((lines[0], headers, body))
            server.senders.append("botocore" if "amz-sdk-invocation-id" in headers else "lean")
            behaviour, status, answer = server.script.pop(0) if server.script else ("keep", 200, OK)
            if behaviour == "hang":
                server.release.wait(5)
                return
            if behaviour == "garbage":
                self.request.sendall(b"SMTP ready\r\n\r\n")
                return
            if behaviour == "raw":  # these bytes, then the connection closed
                self.request.sendall(answer)
                return
            framing = {
                "keep": f"Content-Length: {len(answer)}\r\n",
                "close": f"Content-Length: {len(answer)}\r\nConnection: close\r\n",
                "drop": f"Content-Length: {len(answer)}\r\n",  # closed afterwards without saying so
                "chunked": "Transfer-Encoding: chunked\r\n",
                "eof": "",  # the body ends where the connection does
            }[behaviour]
            payload = answer
            if behaviour == "chunked":
                payload = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (answer[:5], answer[5:]))
                payload += b"0\r\nx-trailer: 1\r\n\r\n"
            self.request.sendall(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.0\r\n{framing}\r\n".encode() + payload
            )
            if behaviour in ("close", "drop", "eof"):
                return


class ScriptedServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Scripted)
        self.tls = tls
        self.script: list[tuple[str, int, bytes]] = []
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.senders: list[str] = []
        self.connections = 0
        self.release = threading.Event()

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True)
        return sock, address

    def reset(self, *script: tuple[str, int, bytes]) -> None:
        self.script[:], self.received[:], self.senders[:], self.connections = list(script), [], [], 0

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}"


def serve(server: ScriptedServer) -> Iterator[ScriptedServer]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedServer]:
    yield from serve(ScriptedServer())


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_server(certificate: tuple[Path, Path]) -> Iterator[ScriptedServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    yield from serve(ScriptedServer(context))


def lean_client(endpoint: str, attempts: int = 3, verify: bool | str | None = None, **config: Any) -> Any:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        verify=verify,
        config=Config(
            retries={"mode": "standard", "total_max_attempts": attempts}, parameter_validation=False, **config
        ),
    )
    return ddb_lean.use_lean_path(ddb_wire.use_wire_form(client))


def direct(client: Any) -> KeptAlive | None:
    lean: ddb_lean.LeanPath = client.__dict__["_make_api_call"]
    return lean.direct


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _: None)


def test_one_kept_alive_connection_carries_every_request(scripted: ScriptedServer) -> None:
    scripted.reset()
    client = lean_client(scripted.url)

    for _ in range(3):
        assert client.batch_write_item(RequestItems=WRITE)["UnprocessedItems"] == {}
    got = client.get_item(TableName="records", Key={"pk": ITEM["pk"]})

    assert scripted.senders == ["lean"] * 4
    assert scripted.connections == 1 and direct(client).connections_opened == 1  # type: ignore[union-attr]
    assert "ResponseMetadata" in got
    request_line, headers, body = scripted.received[0]
    assert request_line == "POST / HTTP/1.1"
    assert headers["host"] == scripted.url.removeprefix("http://")
    assert headers["x-amz-target"] == "DynamoDB_20120810.BatchWriteItem"
    assert json.loads(body) == {"RequestItems": WRITE}


def test_the_signature_the_server_receives_is_botocores(
    scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.datetime(2026, 11, 30, 12, 0, 0)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: now)
    scripted.reset()
    lean_client(scripted.url).batch_write_item(RequestItems=WRITE)

    ((_, headers, body),) = scripted.received
    request = AWSRequest(
        method="POST",
        url=scripted.url + "/",
        data=body,
        headers={"X-Amz-Target": headers["x-amz-target"], "Content-Type": headers["content-type"]},
    )
    SigV4Auth(ReadOnlyCredentials("testing", "testing", None), "dynamodb", "us-east-1").add_auth(request)
    assert headers["authorization"] == request.headers["Authorization"]
    assert headers["x-amz-date"] == "20261130T120000Z"


@pytest.mark.parametrize("behaviour", ["close", "drop"])
def test_a_connection_the_server_closed_is_opened_again(scripted: ScriptedServer, behaviour: str) -> None:
    # "close" says Connection: close; "drop" closes it after answering without a word (an idle timeout)
    scripted.reset((behaviour, 200, OK), ("keep", 200, OK), ("keep", 200, OK))
    client = lean_client(scripted.url)

    for _ in range(3):
        client.batch_write_item(RequestItems=WRITE)

    assert scripted.senders == ["lean"] * 3  # no request was lost or resent through botocore
    assert scripted.connections == 2


def test_a_connection_dropped_twice_in_a_row_falls_back_to_botocore(scripted: ScriptedServer) -> None:
    # Given a kept-alive connection, then the server dropping it and the next fresh one before answering
    scripted.reset(("drop", 200, OK), ("hang", 0, b""))
    client = lean_client(scripted.url, connect_timeout=1, read_timeout=0.2)
    client.batch_write_item(RequestItems=WRITE)

    got = client.batch_write_item(RequestItems=WRITE)  # dropped (reopened once), then no answer in time

    assert got["UnprocessedItems"] == {}
    assert scripted.senders == ["lean", "lean", "botocore"]


@pytest.mark.parametrize(
    ("behaviour", "status", "answer"),
    [("chunked", 200, OK), ("eof", 200, OK), ("keep", 200, b"")],
    ids=["chunked", "until EOF", "empty"],
)
def test_other_framings_of_a_clean_answer_are_read(
    scripted: ScriptedServer, behaviour: str, status: int, answer: bytes
) -> None:
    scripted.reset((behaviour, status, answer))
    got = lean_client(scripted.url).batch_write_item(RequestItems=WRITE)
    assert scripted.senders == ["lean"]
    assert set(got) <= {"UnprocessedItems", "ResponseMetadata"}


@pytest.mark.parametrize(
    ("behaviour", "status", "answer"),
    [("garbage", 0, b""), ("keep", 500, b'{"__type":"InternalServerError"}'), ("keep", 200, b"[1]")],
    ids=["not HTTP", "500", "not an object"],
)
def test_an_answer_that_is_not_clean_is_resent_through_botocore(
    scripted: ScriptedServer, behaviour: str, status: int, answer: bytes
) -> None:
    scripted.reset((behaviour, status, answer))
    got = lean_client(scripted.url).batch_write_item(RequestItems=WRITE)
    assert got["UnprocessedItems"] == {}
    assert scripted.senders == ["lean", "botocore"]


def test_a_binary_answer_read_off_the_connection_is_decoded_by_botocores_parser(scripted: ScriptedServer) -> None:
    scripted.reset(("keep", 200, b'{"Item":{"pk":{"S":"k"},"gz":{"B":"AP9neg=="}}}'))
    got = lean_client(scripted.url).get_item(TableName="records", Key={"pk": {"S": "k"}})
    assert scripted.senders == ["lean"]
    assert got["Item"] == {"pk": {"S": "k"}, "gz": {"B": b"\x00\xffgz"}}
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_each_thread_has_its_own_connection(scripted: ScriptedServer) -> None:
    scripted.reset()
    client = lean_client(scripted.url)
    errors: list[BaseException] = []

    def send() -> None:
        try:
            for _ in range(3):
                client.batch_write_item(RequestItems=WRITE)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert scripted.senders == ["lean"] * 9
    assert scripted.connections == 3


REQUEST = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Amz-Crc32: 1\r\n\r\n{}", (200, {"x-amz-crc32": "1"}, b"{}")),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", (200, {}, b"{}")),
        (b"HTTP/1.1 204 No Content\r\n\r\n", (204, {}, b"")),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", None),  # cut short
        (b"HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\n{}", None),
        (b"HTTP/1.1 2xx OK\r\nContent-Length: 2\r\n\r\n{}", None),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", None),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n{}", None),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", None),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 101 + b"Content-Length: 0\r\n\r\n", None),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", None),  # the headers never end
        (b"", None),  # closed without a word, on a fresh connection
    ],
    ids=[
        "clean",
        "HTTP/1.0",
        "204",
        "short body",
        "bad length",
        "bad status",
        "interim",
        "bad header",
        "bad chunk",
        "too many headers",
        "unterminated head",
        "nothing",
    ],
)
def test_the_reader_takes_a_clean_answer_and_nothing_else(
    scripted: ScriptedServer, raw: bytes, expected: tuple[int, dict[str, str], bytes] | None
) -> None:
    scripted.reset(("raw", 0, raw))
    host, port = scripted.server_address[:2]
    connection = KeptAlive(str(host), port, connect_timeout=1, read_timeout=1)

    answer = connection.exchange(REQUEST)

    if expected is None:
        assert answer is None
    else:
        assert answer is not None
        status, headers, content = expected
        assert (answer.status_code, answer.content) == (status, content)
        assert headers.items() <= answer.headers.items()


def test_a_before_send_handler_registered_later_still_answers_first(scripted: ScriptedServer) -> None:
    from botocore.awsrequest import AWSResponse

    class Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield b'{"UnprocessedItems":{"answered":[]}}'

    def handler(**_: Any) -> AWSResponse:
        return AWSResponse(scripted.url, 200, {}, Raw())

    scripted.reset()
    client = lean_client(scripted.url)
    client.batch_write_item(RequestItems=WRITE)  # the emitter has looked up before-send: nothing registered
    client.meta.events.register("before-send.dynamodb.BatchWriteItem", handler)

    assert client.batch_write_item(RequestItems=WRITE)["UnprocessedItems"] == {"answered": []}
    client.meta.events.unregister("before-send.dynamodb.BatchWriteItem", handler)
    client.batch_write_item(RequestItems=WRITE)
    assert scripted.senders == ["lean", "lean"]  # the second request never reached the server


def test_a_connection_idle_too_long_or_from_the_parent_process_is_not_reused(
    scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.core import keepalive

    scripted.reset()
    host, port = scripted.server_address[:2]
    connection = KeptAlive(str(host), port, connect_timeout=1, read_timeout=1)
    clock = [1000.0]
    monkeypatch.setattr(keepalive.time, "monotonic", lambda: clock[0])

    connection.exchange(REQUEST)
    clock[0] += keepalive.MAX_IDLE_SECONDS - 1
    connection.exchange(REQUEST)  # idle just under the limit: reused
    clock[0] += keepalive.MAX_IDLE_SECONDS + 1
    connection.exchange(REQUEST)  # idle past it: a new connection
    pid = keepalive.os.getpid()
    monkeypatch.setattr(keepalive.os, "getpid", lambda: pid + 1)  # as in a forked child
    connection.exchange(REQUEST)

    assert connection.connections_opened == 3 and scripted.connections == 3
    assert len(scripted.received) == 4


def test_a_refused_connection_returns_no_answer() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert KeptAlive("127.0.0.1", port, connect_timeout=1, read_timeout=1).exchange(b"POST / HTTP/1.1\r\n\r\n") is None


def test_https_is_sent_direct_over_tls_verified_with_the_clients_ca_bundle(
    tls_server: ScriptedServer, certificate: tuple[Path, Path]
) -> None:
    tls_server.reset()
    client = lean_client(tls_server.url, verify=str(certificate[0]))

    client.batch_write_item(RequestItems=WRITE)
    client.batch_write_item(RequestItems=WRITE)

    assert tls_server.senders == ["lean", "lean"] and tls_server.connections == 1
    assert direct(client) is not None


def test_an_https_certificate_the_client_does_not_trust_is_refused_then_botocore_says_so(
    tls_server: ScriptedServer,
) -> None:
    from botocore.exceptions import SSLError

    tls_server.reset()
    client = lean_client(tls_server.url, attempts=1)  # the default CA bundle: the self-signed certificate fails

    with pytest.raises(SSLError):
        client.batch_write_item(RequestItems=WRITE)
    assert tls_server.received == []


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_false_a_proxy_or_a_client_certificate_use_botocores_http_session(
    tls_server: ScriptedServer, certificate: tuple[Path, Path]
) -> None:
    unverified = lean_client(tls_server.url, verify=False)
    proxied = lean_client("http://127.0.0.1:9", proxies={"http": "http://127.0.0.1:3128"})
    with_cert = lean_client(tls_server.url, verify=str(certificate[0]), client_cert=str(certificate[0]))
    assert direct(unverified) is None and direct(proxied) is None and direct(with_cert) is None

    tls_server.reset()
    unverified.batch_write_item(RequestItems=WRITE)
    assert tls_server.senders == ["lean"]  # still lean, sent through botocore's session (urllib3)
