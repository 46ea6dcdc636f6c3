"""bench.moto_server: moto's app answering several requests on one kept-alive connection, framed by Content-Length."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator, Mapping

import pytest

from bench import moto_server

SIGNED = "AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[str, int]]:
    server = moto_server.server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", server.server_port
    server.shutdown()
    server.server_close()


def call(
    connection: http.client.HTTPConnection, target: str, body: Mapping[str, object]
) -> tuple[int, dict[str, str], bytes]:
    connection.request(
        "POST",
        "/",
        body=json.dumps(body).encode(),
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0", "Authorization": SIGNED},
    )
    answer = connection.getresponse()
    return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()


def test_one_connection_carries_every_request_and_answer(endpoint: tuple[str, int]) -> None:
    connection = http.client.HTTPConnection(*endpoint, timeout=10)
    connection.connect()
    local = connection.sock.getsockname()
    table = {
        "TableName": "bench-keepalive",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }

    created = call(connection, "DynamoDB_20120810.CreateTable", table)
    put = call(connection, "DynamoDB_20120810.PutItem", {"TableName": "bench-keepalive", "Item": {"pk": {"S": "k"}}})
    got = call(connection, "DynamoDB_20120810.GetItem", {"TableName": "bench-keepalive", "Key": {"pk": {"S": "k"}}})
    missing = call(connection, "DynamoDB_20120810.GetItem", {"TableName": "nope", "Key": {"pk": {"S": "k"}}})

    assert [status for status, _, _ in (created, put, got, missing)] == [200, 200, 200, 400]
    assert json.loads(got[2]) == {"Item": {"pk": {"S": "k"}}}
    for _, headers, body in (created, put, got, missing):
        assert headers["content-length"] == str(len(body)) and "connection" not in headers
    assert connection.sock is not None and connection.sock.getsockname() == local  # never reconnected
    connection.close()
