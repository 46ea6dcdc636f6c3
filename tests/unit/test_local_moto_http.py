"""The local runtime's moto server: kept-alive connections, and stopping it ends the connections clients keep open."""

from __future__ import annotations

import http.client
import json
import threading

from possync.local.moto_http import KeptAliveMotoServer

SIGNED = "AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x"


def list_tables(connection: http.client.HTTPConnection) -> int:
    connection.request(
        "POST",
        "/",
        body=json.dumps({}).encode(),
        headers={
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": SIGNED,
        },
    )
    answer = connection.getresponse()
    answer.read()
    return answer.status


def test_requests_share_one_connection_and_stop_closes_it_and_its_thread() -> None:
    running = set(threading.enumerate())
    server = KeptAliveMotoServer()
    server.start()
    host, port = server.get_host_and_port()
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.connect()
    local = connection.sock.getsockname()

    assert [list_tables(connection) for _ in range(3)] == [200, 200, 200]
    assert connection.sock is not None and connection.sock.getsockname() == local  # never reconnected
    ours = set(threading.enumerate()) - running
    assert len(ours) == 2  # the serving thread and the connection's thread, waiting for its next request

    server.stop()
    assert connection.sock.recv(1) == b""  # the server ended the kept-alive connection
    for thread in ours:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in ours)  # both ended with the server
    connection.close()
