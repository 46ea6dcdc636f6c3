"""A page's DynamoDB requests in flight together: the version reads, then the write batches, each on a kept-alive
connection of its own, all sent before any answer is read (functions.core.keepalive.exchange_many, ddb_lean's
call_many, ddb_batch's batch_get_together / batch_write_together), with every guarantee of the one-at-a-time path:
leftovers resent after backoff, a dropped connection resent safely, a throttle loud, every request observed."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config

from functions.core import ddb_batch, ddb_lean, ddb_wire
from functions.core.errors import AwsServiceError
from functions.core.keepalive import KeptAlive
from functions.core.layout import Vendor
from functions.core.models import Shopper
from functions.core.store import RecordStore

TABLE = "records"
AT = datetime(2026, 11, 20, 18, 30, tzinfo=UTC)
ARCHIVE = "raw/tenant=t1/vendor=posabit/credential=c1/stream=customers/date=2026-11-20/run=r1/page-000001.json.gz"
THROTTLED = b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow"}'

# What the server does with one request: ("answer", status, body), ("drop", ...) closes the connection unanswered.
Decision = tuple[str, int, bytes]


def clean(target: str, body: dict[str, Any]) -> Decision:
    """DynamoDB's clean answer: nothing left over, no stored item."""
    if target.endswith("BatchGetItem"):
        return "answer", 200, json.dumps({"Responses": {t: [] for t in body["RequestItems"]}}).encode()
    return "answer", 200, b'{"UnprocessedItems":{}}'


class Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: FakeDynamoDB = self.server  # type: ignore[assignment]
        reader = self.request.makefile("rb")
        with server.lock:
            server.connections += 1
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = reader.readline()
                if not line:
                    return
                head += line
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
            body = json.loads(reader.read(int(headers.get("content-length", "0"))))
            target = headers.get("x-amz-target", "")
            sender = "botocore" if "amz-sdk-invocation-id" in headers else "lean"
            with server.lock:
                server.in_flight += 1
                server.most_in_flight = max(server.most_in_flight, server.in_flight)
                server.received.append((target, sender, body))
                behaviour, status, answer = server.decide(target, body, len(server.received))
                server.arrived.notify_all()
                # Answer once `gate` requests have arrived (or after a while: the old code sends one at a time).
                gate_open = server.arrived.wait_for(lambda: len(server.received) >= server.gate, server.gate_seconds)
                if not gate_open:
                    server.gate_timeouts += 1
                server.in_flight -= 1
            if behaviour == "drop":
                return
            self.request.sendall(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.0\r\n"
                f"Content-Length: {len(answer)}\r\n\r\n".encode()
                + answer
            )


class FakeDynamoDB(socketserver.ThreadingTCPServer):
    """Answers DynamoDB batch requests as `decide` says, holding each answer until `gate` requests have arrived, and
    records how many requests were in flight at once."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.reset()

    def reset(
        self, gate: int = 0, decide: Callable[[str, dict[str, Any], int], Decision] | None = None, seconds: float = 2.0
    ) -> None:
        self.gate, self.gate_seconds = gate, seconds
        self.decide = decide or (lambda target, body, _: clean(target, body))
        self.received: list[tuple[str, str, dict[str, Any]]] = []
        self.in_flight = self.most_in_flight = self.connections = self.gate_timeouts = 0

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def senders(self, target: str = "BatchWriteItem") -> list[str]:
        return [sender for t, sender, _ in self.received if t.endswith(target)]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeDynamoDB]:
    fake = FakeDynamoDB()
    thread = threading.Thread(target=fake.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.shutdown()
    fake.server_close()


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _: None)


def trusted(server: FakeDynamoDB, attempts: int = 3, **reset: Any) -> Any:
    """The trusted client (lean path, wire form) to `server`, warmed up as a pull's is by its first requests (a
    client's first request of an operation goes alone: it looks up the `before-send` handlers), then `server` reset."""
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=server.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            retries={"mode": "standard", "total_max_attempts": attempts},
            parameter_validation=False,
            read_timeout=5,
            connect_timeout=1,
        ),
    )
    client = ddb_lean.use_lean_path(ddb_wire.use_wire_form(client))
    server.reset()
    client.batch_write_item(RequestItems={TABLE: puts(1, "warm")})
    client.batch_get_item(RequestItems={TABLE: {"Keys": [{"pk": {"S": "warm"}}]}})
    server.reset(**reset)
    return client


def opened(client: Any) -> int:
    """Connections the client's lean path opened."""
    lean: ddb_lean.LeanPath = client.__dict__["_make_api_call"]
    assert lean.direct is not None
    return lean.direct.connections_opened


def puts(count: int, prefix: str = "k") -> list[dict[str, Any]]:
    return [{"PutRequest": {"Item": {"pk": {"S": f"{prefix}{n:04d}"}, "n": {"N": str(n)}}}} for n in range(count)]


def written(server: FakeDynamoDB) -> list[str]:
    """Every item key the server was sent in a BatchWriteItem (in arrival order)."""
    return [
        entry["PutRequest"]["Item"]["pk"]["S"]
        for target, _, body in server.received
        if target.endswith("BatchWriteItem")
        for entry in body["RequestItems"][TABLE]
    ]


def shopper(pos_id: str) -> Shopper:
    return Shopper(
        tenant="t1",
        vendor=Vendor.POSABIT,
        credential_id="c1",
        pos_id=pos_id,
        source_updated_at=AT,
        first_name="Ada",
        phone="+12065550142",
    )


def test_a_pages_reads_then_its_writes_are_in_flight_together(server: FakeDynamoDB) -> None:
    # Given a page of 250 new records: 3 version reads (100 keys each), then 1 page index write and 10 record batches
    records = [shopper(f"s{n:04d}") for n in range(250)]
    # no answer until the third read has arrived: sent one at a time, the first would wait out the gate
    client = trusted(server, gate=3)

    stats = RecordStore(client, TABLE, sleep=lambda _: pytest.fail("nothing was left over")).upsert_changed(
        records, ARCHIVE
    )

    reads = server.senders("BatchGetItem")
    assert reads == ["lean"] * 3 and stats.get_requests == 3
    assert server.most_in_flight >= 3, "the page's reads were sent one at a time"
    assert server.gate_timeouts == 0  # nobody waited for a request that was never sent
    assert stats.changed == 250 and stats.write_requests == 1 + 10  # the page index item first, then the records
    assert server.senders() == ["lean"] * 11
    assert len(set(written(server))) == 251


def test_the_write_batches_of_a_page_are_in_flight_together_up_to_the_limit(server: FakeDynamoDB) -> None:
    client = trusted(server, gate=ddb_lean.IN_FLIGHT)

    made = ddb_batch.batch_write_together(client, TABLE, puts(25 * 2 * ddb_lean.IN_FLIGHT))

    assert made == 2 * ddb_lean.IN_FLIGHT
    assert server.most_in_flight == ddb_lean.IN_FLIGHT  # together, and never more than the limit
    assert opened(client) == ddb_lean.IN_FLIGHT  # a kept-alive connection each, reused for the next batch
    assert server.gate_timeouts == 0
    assert sorted(written(server)) == [f"k{n:04d}" for n in range(25 * 2 * ddb_lean.IN_FLIGHT)]
    assert server.senders() == ["lean"] * 2 * ddb_lean.IN_FLIGHT


def test_unprocessed_items_are_resent_together_after_one_backoff(server: FakeDynamoDB) -> None:
    def some_left(target: str, body: dict[str, Any], nth: int) -> Decision:
        entries = body["RequestItems"][TABLE]
        if nth <= 4 and nth % 2 == 0:  # two of the first four batches: their last three items left over
            return "answer", 200, json.dumps({"UnprocessedItems": {TABLE: entries[-3:]}}).encode()
        return clean(target, body)

    client = trusted(server, decide=some_left)
    slept: list[float] = []

    made = ddb_batch.batch_write_together(client, TABLE, puts(100), sleep=slept.append)

    assert made == 4 + 2
    assert len(slept) == 1 and 0 <= slept[0] <= ddb_batch.BACKOFF_BASE_SECONDS
    resent = [body["RequestItems"][TABLE] for _, _, body in server.received[4:]]
    assert [len(entries) for entries in resent] == [3, 3]
    assert sorted(set(written(server))) == [f"k{n:04d}" for n in range(100)]  # every item, and the 6 twice


def test_leftovers_resent_past_the_bound_end_in_a_loud_throttle(server: FakeDynamoDB) -> None:
    def always_left(target: str, body: dict[str, Any], nth: int) -> Decision:
        return "answer", 200, json.dumps({"UnprocessedItems": body["RequestItems"]}).encode()

    client = trusted(server, decide=always_left)
    with pytest.raises(ddb_batch.BatchThrottledError, match="kept throttling a batch write on records"):
        ddb_batch.batch_write_together(client, TABLE, puts(50), sleep=lambda _: None, max_resends=2)
    assert len(server.received) == 2 * 3  # two batches, sent and resent twice


def test_unprocessed_keys_of_reads_sent_together_are_read_again(server: FakeDynamoDB) -> None:
    def half_left(target: str, body: dict[str, Any], nth: int) -> Decision:
        keys = body["RequestItems"][TABLE]["Keys"]
        found = [{"pk": key["pk"], "v": {"N": "1"}} for key in keys[: len(keys) // 2 or 1]]
        left = keys[len(keys) // 2 or 1 :]
        unprocessed = {TABLE: {"Keys": left}} if left else {}
        return "answer", 200, json.dumps({"Responses": {TABLE: found}, "UnprocessedKeys": unprocessed}).encode()

    client = trusted(server, decide=half_left)
    requests = [{TABLE: {"Keys": [{"pk": {"S": f"{c}{n}"}} for n in range(4)]}} for c in "abc"]
    slept: list[float] = []

    got = sorted(item["pk"]["S"] for _, item in ddb_batch.batch_get_together(client, requests, sleep=slept.append))

    assert got == sorted(f"{c}{n}" for c in "abc" for n in range(4))
    assert len(slept) == 2  # 4 keys: 2 found, then 1 of the 2 left, then the last one
    assert len(server.received) == 3 * 3


def test_a_connection_dropped_in_flight_is_resent_through_botocore(server: FakeDynamoDB) -> None:
    dropped: list[str] = []

    def drop_the_second(target: str, body: dict[str, Any], nth: int) -> Decision:
        # the second batch, sent on a new connection (the first takes the kept-alive one), lean: no answer
        first = body["RequestItems"][TABLE][0]["PutRequest"]["Item"]["pk"]["S"]
        if first == "k0025" and server.received[-1][1] == "lean":
            dropped.append(first)
            return "drop", 0, b""
        return clean(target, body)

    client = trusted(server, decide=drop_the_second)

    made = ddb_batch.batch_write_together(client, TABLE, puts(100))

    assert made == 4
    # the batch whose answer never came was sent again whole, through botocore (its retries and errors apply)
    assert server.senders() == ["lean"] * 4 + ["botocore"]
    assert written(server).count(dropped[0]) == 2
    assert sorted(set(written(server))) == [f"k{n:04d}" for n in range(100)]
    # the connections left are clean: the next batches are answered lean on them
    server.reset()
    assert ddb_batch.batch_write_together(client, TABLE, puts(50, "next")) == 2
    assert server.senders() == ["lean", "lean"] and server.connections == 0


def test_kept_alive_connections_the_server_closed_are_opened_again_for_requests_in_flight(server: FakeDynamoDB) -> None:
    client = trusted(server)
    ddb_batch.batch_write_together(client, TABLE, puts(75))  # three kept-alive connections
    closed: set[str] = set()

    def close_two(target: str, body: dict[str, Any], nth: int) -> Decision:
        # The first two batches' kept-alive connections are closed by the server, once each. Decided by the batch,
        # not by arrival order: a resend may arrive before the third batch (threads under load), and must be answered.
        first = body["RequestItems"][TABLE][0]["PutRequest"]["Item"]["pk"]["S"]
        if first in ("k0000", "k0025") and first not in closed:
            closed.add(first)
            return "drop", 0, b""
        return clean(target, body)

    server.reset(decide=close_two)

    assert ddb_batch.batch_write_together(client, TABLE, puts(75)) == 3

    # two of them had been closed by the server (as an idle timeout does): sent once more on new connections, lean
    assert server.senders() == ["lean"] * 5 and server.connections == 2


def test_a_throttled_batch_in_flight_is_loud_and_the_others_answers_are_read(server: FakeDynamoDB) -> None:
    def throttle_one(target: str, body: dict[str, Any], nth: int) -> Decision:
        first = body["RequestItems"][TABLE][0]["PutRequest"]["Item"]["pk"]["S"]
        if first == "k0025":
            return "answer", 400, THROTTLED
        return clean(target, body)

    client = trusted(server, attempts=2, decide=throttle_one)

    with pytest.raises(AwsServiceError, match="DynamoDB batch_write_item on records failed: Provisioned") as raised:
        ddb_batch.batch_write_together(client, TABLE, puts(100))

    assert "k00" not in str(raised.value)  # nothing of the items in the message
    # lean for all four, then botocore's call (2 attempts) for the throttled one only
    assert server.senders() == ["lean"] * 4 + ["botocore"] * 2
    server.reset()
    ddb_batch.batch_write_together(client, TABLE, puts(50))
    assert server.senders() == ["lean", "lean"] and server.connections == 0  # no answer was left unread


def test_the_observer_is_told_of_each_request_in_flight_once(server: FakeDynamoDB) -> None:
    client = trusted(server)
    told: list[tuple[str, int, float]] = []
    assert ddb_lean.observe(
        client, lambda op, params, waited: told.append((op, len(params["RequestItems"][TABLE]), waited))
    )

    def drop_the_first_batch(target: str, body: dict[str, Any], nth: int) -> Decision:
        first = body["RequestItems"][TABLE][0]["PutRequest"]["Item"]["pk"]["S"]
        lean = server.received[-1][1] == "lean"  # on the kept-alive connection, then again on a new one
        return ("drop", 0, b"") if first == "k0000" and lean else clean(target, body)

    server.reset(decide=drop_the_first_batch)

    ddb_batch.batch_write_together(client, TABLE, puts(60))

    # the two answered lean are told by the lean path; the one resent through botocore by botocore's own events
    assert sorted((op, size) for op, size, _ in told) == [("BatchWriteItem", 10), ("BatchWriteItem", 25)]
    assert all(waited >= 0 for _, _, waited in told)


def test_answers_come_back_in_the_order_the_requests_were_given(server: FakeDynamoDB) -> None:
    def echo(target: str, body: dict[str, Any], nth: int) -> Decision:
        return "answer", 200, json.dumps({"echo": body["n"]}).encode()

    server.reset(decide=echo)
    host, port = server.server_address[:2]
    connection = KeptAlive(str(host), port, connect_timeout=1, read_timeout=2)
    requests = [
        f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(b)}\r\n\r\n".encode() + b
        for b in (json.dumps({"n": n}).encode() for n in range(7))
    ]

    answers = connection.exchange_many(requests, 3)

    assert [json.loads(a.content)["echo"] for a in answers if a is not None] == list(range(7))
    assert server.most_in_flight <= 3 and connection.connections_opened == 3
