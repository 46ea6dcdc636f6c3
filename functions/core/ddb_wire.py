"""DynamoDB requests sent in their wire form: the JSON body is the request's parameters, serialized once.

DynamoDB speaks botocore's JSON protocol, whose body is the parameters exactly as boto3's low-level client takes them
(attribute values already typed: {"S": ...}, {"N": "..."}). botocore still walks every attribute of every item
through the service model to build that body, which was most of a pull's CPU per BatchWriteItem. For the requests our
adapters build themselves (the trusted client), `json.dumps` of the parameters is the same body, binary values
base64-encoded as the protocol (and botocore) sends them (`wire_body`). Any other value that is not plain JSON (a
datetime, a set) makes that request take botocore's own serializer.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any


def _blob(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not part of DynamoDB's wire form")


# One encoder for every body: parameters are trees our adapters build, so the per-container cycle check (a dict of
# ids kept across the whole walk) is skipped; a cycle still ends in an error (RecursionError), never a request.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_blob, check_circular=False)


def wire_body(parameters: Mapping[str, Any]) -> bytes:
    """The JSON body of a DynamoDB request with these parameters; TypeError/ValueError for a value botocore would
    have to convert (the caller then lets botocore serialize the request)."""
    return _ENCODER.encode(parameters).encode()


class WireFormSerializer:
    """Stands in for a DynamoDB client's request serializer: headers, method and URL from botocore's (for no
    parameters, which costs nothing), the body from one `json.dumps` of the parameters."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def serialize_to_request(self, parameters: dict[str, Any], operation_model: Any) -> dict[str, Any]:
        try:
            body = wire_body(parameters)
        except (TypeError, ValueError):  # datetimes, sets: what botocore converts, it converts
            return dict(self._inner.serialize_to_request(parameters, operation_model))
        request: dict[str, Any] = self._inner.serialize_to_request({}, operation_model)
        request["body"] = body
        return request


def use_wire_form(client: Any) -> Any:
    """Make a DynamoDB client send its requests in their wire form (see the module docstring); returns the client."""
    if client.meta.service_model.protocol != "json" or client.meta.service_model.service_name != "dynamodb":
        raise ValueError("only a DynamoDB client sends its parameters as its wire form")
    if not isinstance(client._serializer, WireFormSerializer):
        client._serializer = WireFormSerializer(client._serializer)
    return client
