"""The wire body written by the operation's shape serializer: the same JSON value json.dumps writes, for the shape's
own types only; anything else is json.dumps's (or botocore's) to write."""

from __future__ import annotations

import datetime
import json
from typing import Any

import boto3
import pytest

from functions.core import ddb_wire
from functions.core.ddb_wire import wire_body

MODEL = boto3.client("dynamodb", region_name="us-east-1").meta.service_model
ITEM: dict[str, Any] = {
    "pk": {"S": "tenant#posabit#store-1#sale#42"},
    "text": {"S": 'Zoë\'s "quoted" \\ line\nbreak\x00\x1f\u2028 / 😀'},
    "data": {"S": json.dumps({"name": "Zoë", "lines": [{"qty": 2}]})},
    "version": {"N": "7"},
    "flag": {"BOOL": False},
    "nothing": {"NULL": True},
    "gz": {"B": b"\xfb\xff\x00>?"},  # base64 with '+' and '/': the standard alphabet, not the URL-safe one
    "blobs": {"BS": [b"\xfb", b""]},
    "nested": {"M": {"list": {"L": [{"S": "a"}, {"N": "-1.5"}, {"M": {}}, {"L": []}]}, "set": {"SS": ["x", "y"]}}},
}
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    (
        "BatchWriteItem",
        {
            "RequestItems": {
                "records": [{"PutRequest": {"Item": ITEM}}, {"DeleteRequest": {"Key": {"pk": ITEM["pk"]}}}]
            },
            "ReturnConsumedCapacity": "TOTAL",
        },
    ),
    (
        "BatchGetItem",
        {
            "RequestItems": {
                "records": {
                    "Keys": [{"pk": {"S": "k"}}, {"pk": {"B": b"\x00"}}],
                    "ConsistentRead": True,
                    "ProjectionExpression": "#d, data_z",
                    "ExpressionAttributeNames": {"#d": "data"},
                }
            }
        },
    ),
    ("GetItem", {"TableName": "control", "Key": {"pk": {"S": "k"}, "sk": {"S": "s"}}, "ConsistentRead": True}),
    ("PutItem", {"TableName": "control", "Item": ITEM, "ConditionExpression": "attribute_not_exists(pk)"}),
    (
        "Query",
        {
            "TableName": "t",
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "k"}},
            "Limit": 25,
        },
    ),
]


@pytest.mark.parametrize(("operation", "params"), REQUESTS, ids=[op for op, _ in REQUESTS])
def test_the_shape_serializer_writes_the_json_value_json_dumps_writes(operation: str, params: dict[str, Any]) -> None:
    operation_model = MODEL.operation_model(operation)
    assert ddb_wire._serializer(operation_model) is not None

    ours = wire_body(params, operation_model)

    assert json.loads(ours) == json.loads(wire_body(params))
    assert b'"gz":{"B":"+/8APj8="}' in ours or operation not in ("BatchWriteItem", "PutItem")


@pytest.mark.parametrize(
    ("value", "outcome"),
    [
        ({"SS": {"a"}}, TypeError),  # a set: botocore's serializer converts it
        ({"S": datetime.datetime(2026, 1, 1)}, TypeError),
        ({"N": 7}, b'{"N":7}'),  # the wrong type: written as json.dumps writes it (and DynamoDB refuses it)
        ({"B": bytearray(b"\xfb")}, b'{"B":"+w=="}'),
        ({"S": "\ud800"}, b'{"S":"\\ud800"}'),  # a lone surrogate is no UTF-8: json.dumps escapes it
    ],
    ids=["set", "datetime", "number as int", "bytearray", "surrogate"],
)
def test_a_value_not_of_its_shapes_type_is_json_dumpss_to_write(value: dict[str, Any], outcome: Any) -> None:
    params = {"TableName": "t", "Key": {"pk": value}}
    operation_model = MODEL.operation_model("GetItem")
    if isinstance(outcome, bytes):
        body = wire_body(params, operation_model)
        assert body == wire_body(params)
        assert outcome in body
    else:
        with pytest.raises(outcome):
            wire_body(params, operation_model)


def test_members_the_shape_does_not_name_are_written_as_they_are() -> None:
    params = {"TableName": "t", "Key": {"pk": {"S": "k"}}, "Unmodelled": {"x": [1, "y"]}}
    assert json.loads(wire_body(params, MODEL.operation_model("GetItem"))) == params


def test_each_operations_serializer_is_built_once_and_every_dynamodb_input_is_served() -> None:
    for name in MODEL.operation_names:
        operation_model = MODEL.operation_model(name)
        first = ddb_wire._serializer(operation_model)
        assert ddb_wire._serializer(operation_model) is first
    served = [n for n in MODEL.operation_names if ddb_wire._serializer(MODEL.operation_model(n)) is not None]
    assert {"BatchWriteItem", "BatchGetItem", "GetItem", "PutItem", "UpdateItem", "Query"} <= set(served)
    # an input with a timestamp member (a point-in-time export) is written by json.dumps instead
    assert ddb_wire._serializer(MODEL.operation_model("ExportTableToPointInTime")) is None
