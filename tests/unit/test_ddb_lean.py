"""The trusted DynamoDB client's lean path: the request botocore would send, the answer it would parse, and
botocore's own call for anything but a clean answer."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from functions.core import aws, ddb_batch, ddb_lean, ddb_wire
from functions.core.errors import AwsServiceError

ITEM: dict[str, Any] = {
    "pk": {"S": "tenant#posabit#store-1#customer#42"},
    "text": {"S": 'Zoë\'s "quoted" \\ line\nbreak'},
    "version": {"N": "7"},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
    "nested": {"M": {"list": {"L": [{"S": "a"}, {"N": "-1.5"}, {"M": {}}]}, "set": {"SS": ["x", "y"]}}},
}
THROTTLED = '{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}'
THROTTLING = '{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate of requests exceeds"}'
INTERNAL = '{"__type":"com.amazon.coral.service#InternalServerError","message":"oops"}'


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def answer(status: int, body: str | bytes, headers: dict[str, str] | None = None) -> AWSResponse:
    data = body.encode() if isinstance(body, str) else body
    return AWSResponse("https://dynamodb.us-east-1.amazonaws.com/", status, headers or {}, _Raw(data))


class Script:
    """A `before-send` handler answering each request with the next scripted answer (an exception is raised), and
    remembering every request: the lean path's carry no `amz-sdk-invocation-id`, botocore's do."""

    def __init__(self, *answers: AWSResponse | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[AWSPreparedRequest] = []

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        self.requests.append(request)
        next_answer = self.answers.pop(0)
        if isinstance(next_answer, Exception):
            raise next_answer
        return next_answer

    @property
    def paths(self) -> list[str]:
        return ["botocore" if "amz-sdk-invocation-id" in r.headers else "lean" for r in self.requests]


def text(header: str | bytes) -> str:
    return header.decode() if isinstance(header, bytes) else header


def lean_client(script: Script | None = None, max_attempts: int = 3, lean: bool = True) -> Any:
    config = Config(retries={"mode": "standard", "total_max_attempts": max_attempts}, parameter_validation=False)
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=config,
    )
    if script is not None:
        client.meta.events.register_first("before-send.dynamodb", script)
    ddb_wire.use_wire_form(client)
    return ddb_lean.use_lean_path(client) if lean else client


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore's standard retry mode sleeps between attempts; its decision to retry is what is under test.
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _: None)


def test_a_clean_answer_is_parsed_from_the_lean_request() -> None:
    # Given DynamoDB answering a batch read
    body = json.dumps({"Responses": {"records": [ITEM]}, "UnprocessedKeys": {}})
    script = Script(answer(200, body, {"x-amzn-RequestId": "req-1"}))
    seen: list[tuple[str, Any, float]] = []
    client = lean_client(script)
    assert ddb_lean.observe(client, lambda op, params, waited: seen.append((op, params, waited)))
    params = {"records": {"Keys": [{"pk": ITEM["pk"]}], "ConsistentRead": True}}

    got = client.batch_get_item(RequestItems=params)

    # Then one lean request carried the parameters as its JSON body, and the answer came back as botocore's would
    assert script.paths == ["lean"]
    request = script.requests[0]
    assert json.loads(request.body) == {"RequestItems": params}
    assert request.headers["X-Amz-Target"] == ddb_lean.TARGET_PREFIX + "BatchGetItem"
    assert request.headers["Content-Type"] == ddb_lean.CONTENT_TYPE
    assert request.headers["User-Agent"] == client.meta.config.user_agent
    assert request.url == "https://dynamodb.us-east-1.amazonaws.com/"
    assert got["Responses"] == {"records": [ITEM]}
    assert got["ResponseMetadata"]["RequestId"] == "req-1"
    assert [(op, p) for op, p, _ in seen] == [("BatchGetItem", {"RequestItems": params})]


def test_the_signature_is_botocores_for_the_same_time_and_body(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a fixed clock and one request sent by botocore's own call and by the lean path
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: datetime.datetime(2026, 11, 30, 10, 0, 0))
    ok = '{"UnprocessedItems":{}}'
    botocore_script, lean_script = Script(answer(200, ok)), Script(answer(200, ok))
    params = {"records": [{"PutRequest": {"Item": ITEM}}]}
    lean_client(botocore_script, lean=False).batch_write_item(RequestItems=params)  # the same wire-form body

    lean_client(lean_script).batch_write_item(RequestItems=params)

    # Then the lean request is signed exactly as botocore signs it
    (theirs,), (ours,) = botocore_script.requests, lean_script.requests
    assert (botocore_script.paths, lean_script.paths) == (["botocore"], ["lean"])
    assert ours.body == theirs.body
    assert text(ours.headers["X-Amz-Date"]) == text(theirs.headers["X-Amz-Date"]) == "20261130T100000Z"
    assert text(ours.headers["Authorization"]) == text(theirs.headers["Authorization"])
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-target," in ours.headers["Authorization"]


def test_session_credentials_are_sent_and_signed() -> None:
    # Given temporary credentials (a Lambda role's), refreshed behind the client
    client = boto3.client(
        "dynamodb",
        region_name="eu-west-1",
        aws_access_key_id="ASIAEXAMPLE",
        aws_secret_access_key="secret",
        aws_session_token="token-1",
        config=Config(parameter_validation=False),
    )
    script = Script(answer(200, '{"UnprocessedItems":{}}'))
    client.meta.events.register_first("before-send.dynamodb", script)
    ddb_lean.use_lean_path(client).batch_write_item(
        RequestItems={"t": [{"DeleteRequest": {"Key": {"pk": {"S": "k"}}}}]}
    )

    request = script.requests[0]
    assert text(request.headers["X-Amz-Security-Token"]) == "token-1"
    assert "/eu-west-1/dynamodb/aws4_request" in request.headers["Authorization"]
    assert "x-amz-security-token" in request.headers["Authorization"]


@pytest.mark.parametrize(
    ("first", "why"),
    [
        (answer(400, THROTTLED), "ProvisionedThroughputExceeded"),
        (answer(400, THROTTLING), "Throttling"),
        (answer(500, INTERNAL), "500"),
        (answer(503, "<html>unavailable</html>"), "503 not JSON"),
        (EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/"), "connection"),
        (answer(200, "not json"), "unreadable 200"),
        (answer(200, '{"UnprocessedItems":{}}', {"x-amz-crc32": "12345"}), "crc32 mismatch"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_anything_but_a_clean_answer_resends_through_botocore(first: Any, why: str) -> None:
    # Given a first answer that is not a clean 200, then a clean one
    ok = '{"UnprocessedItems":{}}'
    script = Script(first, answer(200, ok))
    seen: list[str] = []
    client = lean_client(script)
    ddb_lean.observe(client, lambda op, *_: seen.append(op))
    params = {"records": [{"PutRequest": {"Item": ITEM}}]}

    got = client.batch_write_item(RequestItems=params)

    # Then the same request went again through botocore's call, whose answer is the result
    assert script.paths == ["lean", "botocore"], why
    assert script.requests[1].body == script.requests[0].body
    assert got["UnprocessedItems"] == {}
    assert seen == []  # botocore's own events see the resent request, the lean observer does not


def test_a_lasting_throttle_is_retried_by_botocore_then_raises_its_error() -> None:
    # Given DynamoDB throttling every attempt
    script = Script(*[answer(400, THROTTLED) for _ in range(4)])
    client = lean_client(script, max_attempts=3)

    # Then botocore's retry mode retried the resent request and the caller gets the ClientError it always got
    with pytest.raises(ClientError) as raised:
        client.batch_write_item(RequestItems={"records": [{"PutRequest": {"Item": ITEM}}]})
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert script.paths == ["lean", "botocore", "botocore", "botocore"]


def test_a_lasting_failure_reaches_the_batch_adapter_as_a_transient_error_without_the_items() -> None:
    script = Script(*[answer(500, INTERNAL) for _ in range(3)])
    client = lean_client(script, max_attempts=2)

    with pytest.raises(AwsServiceError) as raised:
        ddb_batch.batch_write(client, "records", [{"PutRequest": {"Item": ITEM}}])

    assert "InternalServerError" in str(raised.value)
    assert "42" not in str(raised.value) and "Zo" not in str(raised.value)
    assert script.paths == ["lean", "botocore", "botocore"]


def test_a_lasting_connection_error_raises_botocores_error() -> None:
    failure = EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/")
    script = Script(failure, failure)
    client = lean_client(script, max_attempts=1)

    with pytest.raises(EndpointConnectionError):
        client.batch_get_item(RequestItems={"records": {"Keys": [{"pk": {"S": "k"}}]}})
    assert script.paths == ["lean", "botocore"]


def test_a_binary_value_is_sent_lean_base64_encoded_and_a_binary_answer_read_by_botocores_parser() -> None:
    # Given a write with a binary attribute (a compressed record) and a read answering one
    blob = {"pk": {"S": "k"}, "gz": {"B": "AP9neg=="}}
    script = Script(answer(200, '{"UnprocessedItems":{}}'), answer(200, json.dumps({"Item": blob})))
    client = lean_client(script)

    client.batch_write_item(RequestItems={"records": [{"PutRequest": {"Item": {"gz": {"B": b"\x00\xffgz"}}}}]})
    got = client.get_item(TableName="records", Key={"pk": {"S": "k"}})

    assert script.paths == ["lean", "lean"]
    assert json.loads(script.requests[0].body)["RequestItems"]["records"][0]["PutRequest"]["Item"] == {
        "gz": {"B": "AP9neg=="}
    }
    assert got["Item"] == {"pk": {"S": "k"}, "gz": {"B": b"\x00\xffgz"}}


def test_a_value_outside_the_wire_form_takes_botocores_call() -> None:
    script = Script(answer(200, '{"UnprocessedItems":{}}'))
    client = lean_client(script)

    client.batch_write_item(RequestItems={"records": [{"PutRequest": {"Item": {"tags": {"SS": {"a"}}}}}]})

    assert script.paths == ["botocore"]


def test_operations_outside_the_lean_list_take_botocores_call() -> None:
    # A conditional put or an update is not idempotent: it is never sent twice, so never lean
    script = Script(answer(200, "{}"), answer(200, "{}"))
    client = lean_client(script)

    client.put_item(TableName="t", Item={"pk": {"S": "k"}}, ConditionExpression="attribute_not_exists(pk)")
    client.update_item(
        TableName="t",
        Key={"pk": {"S": "k"}},
        UpdateExpression="ADD n :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )

    assert script.paths == ["botocore", "botocore"]
    assert {"PutItem", "UpdateItem"}.isdisjoint(ddb_lean.LEAN_OPERATIONS)


def test_only_a_dynamodb_client_takes_the_lean_path() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    with pytest.raises(ValueError, match="DynamoDB"):
        ddb_lean.use_lean_path(s3)
    assert ddb_lean.observe(s3, lambda *_: None) is False


@pytest.mark.usefixtures("moto_aws")
def test_under_moto_the_lean_path_stores_what_botocore_stores() -> None:
    # Given the trusted client (lean) and a plain botocore client over the same moto
    lean, plain = aws.trusted_client("dynamodb"), aws.client("dynamodb")
    seen: list[str] = []
    assert ddb_lean.observe(lean, lambda op, *_: seen.append(op))
    for table in ("lean", "plain"):
        plain.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    items = [{**ITEM, "pk": {"S": f"item-{n}"}, "version": {"N": str(n)}} for n in range(30)]

    # When the same items are written through each, and read back through each
    ddb_batch.batch_write(lean, "lean", [{"PutRequest": {"Item": i}} for i in items])
    ddb_batch.batch_write(plain, "plain", [{"PutRequest": {"Item": i}} for i in items])
    ddb_batch.batch_write(lean, "lean", [{"DeleteRequest": {"Key": {"pk": {"S": "item-0"}}}}])
    ddb_batch.batch_write(plain, "plain", [{"DeleteRequest": {"Key": {"pk": {"S": "item-0"}}}}])
    keys = [{"pk": i["pk"]} for i in items]
    read_lean = sorted((i for _, i in ddb_batch.batch_get(lean, {"plain": {"Keys": keys}})), key=str)
    read_plain = sorted((i for _, i in ddb_batch.batch_get(plain, {"lean": {"Keys": keys}})), key=str)
    one = lean.get_item(TableName="lean", Key={"pk": {"S": "item-1"}}, ConsistentRead=True)

    # Then both tables hold the same items, and each client reads what the other wrote
    def scan(table: str) -> list[dict[str, Any]]:
        return sorted(plain.scan(TableName=table)["Items"], key=str)

    assert scan("lean") == scan("plain") == sorted(items[1:], key=str)
    assert read_lean == read_plain == sorted(items[1:], key=str)
    assert one["Item"] == items[1]
    assert seen == ["BatchWriteItem", "BatchWriteItem", "BatchWriteItem", "BatchGetItem", "GetItem"]  # 25 + 5, 1


@pytest.mark.usefixtures("moto_aws")
def test_the_bench_counts_each_request_once_whichever_path_it_took() -> None:
    from bench.pull import AwsCalls, item_size, write_units

    # Given the bench's request counter on the trusted client
    lean = aws.trusted_client("dynamodb")
    for table in ("records", "control"):
        aws.client("dynamodb").create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    calls = AwsCalls("records")
    calls.register(lean)
    blob = {"pk": {"S": "blob"}, "kind": {"S": "raw"}, "gz": {"B": b"\x00\xff"}}
    item = {**ITEM, "kind": {"S": "customer"}}

    # When it writes on the lean path (twice, one with a binary value), reads lean and puts through botocore
    lean.batch_write_item(RequestItems={"records": [{"PutRequest": {"Item": item}}]})
    lean.batch_write_item(RequestItems={"records": [{"PutRequest": {"Item": blob}}]})
    lean.batch_get_item(RequestItems={"records": {"Keys": [{"pk": item["pk"]}], "ConsistentRead": True}})
    lean.put_item(TableName="control", Item={"pk": {"S": "lease"}, "sk": {"S": "LEASE"}})

    # Then every request is counted once, with the units of what it carried
    assert dict(calls.ops) == {
        "dynamodb.BatchWriteItem": 2,
        "dynamodb.BatchGetItem": 1,
        "dynamodb.PutItem": 1,
    }
    assert dict(calls.data_writes) == {"BatchWriteItem": 2} and dict(calls.bookkeeping_writes) == {"PutItem": 1}
    assert calls.write_units == write_units(item_size(item)) + write_units(item_size(blob)) + 1
    assert calls.read_units == 1.0
    assert calls.item_sizes == {"customer": [item_size(item)], "raw": [item_size(blob)]}


def test_the_target_prefix_and_content_type_are_the_service_models() -> None:
    metadata = boto3.client("dynamodb", region_name="us-east-1").meta.service_model.metadata
    assert metadata["targetPrefix"] + "." == ddb_lean.TARGET_PREFIX
    assert f"application/x-amz-json-{metadata['jsonVersion']}" == ddb_lean.CONTENT_TYPE
