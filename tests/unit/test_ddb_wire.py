"""DynamoDB requests in their wire form: the same body botocore builds, one json.dumps instead of a model walk."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config

from functions.core import aws
from functions.core.ddb_wire import WireFormSerializer, use_wire_form

ITEM: dict[str, Any] = {
    "pk": {"S": "tenant#posabit#store-1#sale#42"},
    "text": {"S": 'Zoë\'s "quoted" \\ line\nbreak'},
    "version": {"N": "7"},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
    "nested": {"M": {"list": {"L": [{"S": "a"}, {"N": "-1.5"}, {"M": {}}]}, "set": {"SS": ["x", "y"]}}},
}
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    (
        "BatchWriteItem",
        {"RequestItems": {"records": [{"PutRequest": {"Item": ITEM}}, {"DeleteRequest": {"Key": {"pk": {"S": "k"}}}}]}},
    ),
    (
        "BatchGetItem",
        {
            "RequestItems": {
                "records": {"Keys": [{"pk": {"S": "k"}}], "ConsistentRead": True, "ProjectionExpression": "pk, version"}
            }
        },
    ),
    ("PutItem", {"TableName": "control", "Item": ITEM, "ConditionExpression": "attribute_not_exists(pk)"}),
    ("GetItem", {"TableName": "control", "Key": {"pk": {"S": "k"}, "sk": {"S": "s"}}, "ConsistentRead": True}),
    (
        "Query",
        {
            "TableName": "control",
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "k"}},
            "Limit": 25,
        },
    ),
]


@pytest.fixture(scope="module")
def botocore_serializer() -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1", config=Config(parameter_validation=False))
    return client._serializer, client.meta.service_model


@pytest.mark.parametrize(("operation", "params"), REQUESTS, ids=[op for op, _ in REQUESTS])
def test_the_wire_form_is_the_body_botocore_builds(
    botocore_serializer: Any, operation: str, params: dict[str, Any]
) -> None:
    inner, model = botocore_serializer
    operation_model = model.operation_model(operation)
    expected = inner.serialize_to_request(params, operation_model)

    sent = WireFormSerializer(inner).serialize_to_request(params, operation_model)

    assert json.loads(sent["body"]) == json.loads(expected["body"])
    assert {k: v for k, v in sent.items() if k != "body"} == {k: v for k, v in expected.items() if k != "body"}


def test_a_binary_attribute_is_base64_encoded_as_botocore_encodes_it(botocore_serializer: Any) -> None:
    # Given an item with a binary value (the protocol sends it base64-encoded)
    inner, model = botocore_serializer
    params = {"TableName": "t", "Item": {"pk": {"S": "k"}, "blob": {"B": b"\x00\xffgz"}}}
    operation_model = model.operation_model("PutItem")

    sent = WireFormSerializer(inner).serialize_to_request(params, operation_model)

    # Then its body says what botocore's says
    assert json.loads(sent["body"]) == json.loads(inner.serialize_to_request(params, operation_model)["body"])
    assert json.loads(sent["body"])["Item"]["blob"] == {"B": "AP9neg=="}


def test_a_value_outside_the_wire_form_takes_botocores_serializer(botocore_serializer: Any) -> None:
    # Given a parameter json cannot send and the wire form has no place for (a set)
    inner, model = botocore_serializer
    params = {"TableName": "t", "Item": {"pk": {"S": "k"}, "tags": {"SS": {"a"}}}}
    operation_model = model.operation_model("PutItem")

    sent = WireFormSerializer(inner).serialize_to_request(params, operation_model)

    # Then botocore serialized the request itself
    assert sent["body"] == inner.serialize_to_request(params, operation_model)["body"]


def test_only_a_dynamodb_client_sends_its_wire_form() -> None:
    with pytest.raises(ValueError, match="DynamoDB"):
        use_wire_form(boto3.client("s3", region_name="us-east-1"))


@pytest.mark.usefixtures("moto_aws")
def test_the_trusted_dynamodb_client_writes_and_reads_items_in_wire_form() -> None:
    # Given the trusted client the pull's stores use
    ddb = aws.trusted_client("dynamodb")
    assert isinstance(ddb._serializer, WireFormSerializer)
    ddb.create_table(
        TableName="records",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # When an item goes through a batch write and comes back through a batch read
    ddb.batch_write_item(RequestItems={"records": [{"PutRequest": {"Item": ITEM}}]})
    got = ddb.batch_get_item(RequestItems={"records": {"Keys": [{"pk": ITEM["pk"]}], "ConsistentRead": True}})

    # Then it is stored exactly as sent
    assert got["Responses"]["records"] == [ITEM]
