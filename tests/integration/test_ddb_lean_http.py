"""The lean DynamoDB path over real HTTP: against a moto server (as the local runtime and the bench run it) and a tiny
scripted server that answers 500s and throttles, through the client's own botocore HTTP session."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError
from moto.server import ThreadedMotoServer

from functions.core import aws, ddb_batch, ddb_lean, ddb_wire

ITEM: dict[str, Any] = {
    "pk": {"S": "tenant#posabit#store-1#customer#42"},
    "name": {"S": 'Zoë "Q" O\'Neil'},
    "points": {"N": "125.5"},
    "tags": {"L": [{"S": "vip"}, {"M": {"since": {"S": "2024-01-01"}}}]},
}
OK = b'{"UnprocessedItems":{}}'
THROTTLED = b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow"}'
INTERNAL = b'{"__type":"com.amazon.coral.service#InternalServerError","message":"oops"}'


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    yield moto_endpoint
    aws.reset_clients()


def test_against_a_moto_server_the_lean_path_stores_what_botocore_stores(moto_env: str) -> None:
    # Given the trusted client (lean, over HTTP to the moto server) and a plain botocore client
    lean, plain = aws.trusted_client("dynamodb"), aws.client("dynamodb")
    seen: list[str] = []
    assert ddb_lean.observe(lean, lambda op, *_: seen.append(op))
    for table in ("lean-http", "plain-http"):
        plain.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    items = [{**ITEM, "pk": {"S": f"item-{n}"}} for n in range(30)]

    # When the same items are written through each and read back through the lean client
    ddb_batch.batch_write(lean, "lean-http", [{"PutRequest": {"Item": i}} for i in items])
    ddb_batch.batch_write(plain, "plain-http", [{"PutRequest": {"Item": i}} for i in items])
    read = list(ddb_batch.batch_get(lean, {"plain-http": {"Keys": [{"pk": i["pk"]} for i in items]}}))

    # Then both tables hold the same items, and the lean reads return them as botocore's would
    def scan(table: str) -> list[dict[str, Any]]:
        return sorted(plain.scan(TableName=table)["Items"], key=str)

    assert scan("lean-http") == scan("plain-http") == sorted(items, key=str)
    assert sorted((item for _, item in read), key=str) == sorted(items, key=str)
    assert seen == ["BatchWriteItem", "BatchWriteItem", "BatchGetItem"]


class ScriptedDynamoDB(BaseHTTPRequestHandler):
    """Answers each POST with the next (status, body) of the server's script; records who sent it."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        server: Any = self.server
        self.rfile.read(int(self.headers["Content-Length"]))
        server.senders.append("botocore" if "amz-sdk-invocation-id" in self.headers else "lean")
        status, body = server.script.pop(0)
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def scripted() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedDynamoDB)
    server.script, server.senders = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def http_client(endpoint: str, attempts: int = 3) -> Any:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}, parameter_validation=False),
    )
    return ddb_lean.use_lean_path(ddb_wire.use_wire_form(client))


@pytest.mark.parametrize(("status", "body"), [(500, INTERNAL), (400, THROTTLED)], ids=["500", "throttled"])
def test_an_http_failure_is_resent_through_botocore_over_the_same_session(
    scripted: Any, monkeypatch: pytest.MonkeyPatch, status: int, body: bytes
) -> None:
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _: None)
    scripted.script[:], scripted.senders[:] = [(status, body), (200, OK)], []
    host, port = scripted.server_address
    client = http_client(f"http://{host}:{port}")
    ddb_lean.take_resent()

    got = client.batch_write_item(RequestItems={"records": [{"PutRequest": {"Item": ITEM}}]})

    assert got["UnprocessedItems"] == {}
    assert scripted.senders == ["lean", "botocore"]
    assert ddb_lean.take_resent() == 1  # counted for the pull's LeanRequestsResent metric


def test_a_refused_connection_ends_in_botocores_connection_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = http_client(f"http://127.0.0.1:{port}", attempts=1)

    with pytest.raises(EndpointConnectionError):
        client.batch_get_item(RequestItems={"records": {"Keys": [{"pk": {"S": "k"}}]}})
    with pytest.raises(ddb_batch.AwsServiceError, match="EndpointConnectionError"):
        list(ddb_batch.batch_get(client, {"records": {"Keys": [{"pk": {"S": "k"}}]}}))


def test_the_scripted_server_answers_a_clean_lean_request_once(scripted: Any) -> None:
    # The control case: a clean 200 is answered once, on the lean path, body parsed
    answer = {"Responses": {"records": [ITEM]}, "UnprocessedKeys": {}}
    scripted.script[:], scripted.senders[:] = [(200, json.dumps(answer).encode())], []
    host, port = scripted.server_address
    got = http_client(f"http://{host}:{port}").batch_get_item(RequestItems={"records": {"Keys": [{"pk": ITEM["pk"]}]}})
    assert got["Responses"] == answer["Responses"]
    assert scripted.senders == ["lean"]
