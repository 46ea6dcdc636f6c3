"""DynamoDB requests sent in their wire form: the JSON body is the request's parameters, serialized once.

DynamoDB speaks botocore's JSON protocol, whose body is the parameters exactly as boto3's low-level client takes them
(attribute values already typed: {"S": ...}, {"N": "..."}). botocore still walks every attribute of every item
through the service model to build that body, which was most of a pull's CPU per BatchWriteItem. For the requests our
adapters build themselves (the trusted client), `json.dumps` of the parameters is the same body, binary values
base64-encoded as the protocol (and botocore) sends them (`wire_body`). Any other value that is not plain JSON (a
datetime, a set) makes that request take botocore's own serializer.

Given the operation, the body is written by a pydantic-core serializer built once from the operation's input shape
in botocore's service model (structures, lists, maps, strings, booleans, numbers and base64 blobs, recursive
attribute values included), about a third of `json.dumps`'s CPU for a batch of record items (whose JSON text it
carries as a string). It accepts only the types the shape names, strictly: anything else (a set, a datetime, a value
of the wrong type) makes it refuse, and the body is then `json.dumps`-ed as above, so the bytes differ only in form
(non-ASCII characters as UTF-8 rather than escaped), never in the JSON value. Members the shape does not name are
written as they are.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from pydantic_core import CoreSchema, SchemaSerializer
from pydantic_core import core_schema as cs

from functions.core.wire_items import WireItem, WireText, quoted


def _blob(value: object) -> str | dict[str, Any]:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, WireText):
        return value.wire_form()
    raise TypeError(f"{type(value).__name__} is not part of DynamoDB's wire form")


# One encoder for every body: parameters are trees our adapters build, so the per-container cycle check (a dict of
# ids kept across the whole walk) is skipped; a cycle still ends in an error (RecursionError), never a request.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_blob, check_circular=False)


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


class _ShapeUnsupportedError(Exception):
    """The input shape has a member type the shape serializer does not write (a timestamp): json.dumps writes it."""


def _shape_schema(shape: Any, definitions: dict[str, CoreSchema]) -> CoreSchema:
    kind = shape.type_name
    if kind == "structure":
        if shape.name not in definitions:
            definitions[shape.name] = cs.any_schema()  # a placeholder while its members refer back to it
            fields = {
                name: cs.typed_dict_field(_shape_schema(member, definitions), required=False)
                for name, member in shape.members.items()
            }
            definitions[shape.name] = cs.typed_dict_schema(fields, extra_behavior="allow", ref=shape.name)
        return cs.definition_reference_schema(shape.name)
    if kind == "list":
        return cs.list_schema(_shape_schema(shape.member, definitions))
    if kind == "map":
        return cs.dict_schema(_shape_schema(shape.key, definitions), _shape_schema(shape.value, definitions))
    if kind == "string":
        return cs.str_schema(strict=True)
    if kind == "boolean":
        return cs.bool_schema(strict=True)
    if kind in ("integer", "long"):
        return cs.int_schema(strict=True)
    if kind in ("float", "double"):
        return cs.float_schema(strict=True)
    if kind == "blob":
        return cs.bytes_schema(strict=True, serialization=cs.plain_serializer_function_ser_schema(_base64))
    raise _ShapeUnsupportedError(kind)


_SERIALIZERS: dict[tuple[str, str, str], SchemaSerializer | None] = {}


def _serializer(operation_model: Any) -> SchemaSerializer | None:
    """The operation's body serializer (built once per API version and operation); None if its input has a member
    type it does not write."""
    service = operation_model.service_model
    key = (service.service_name, service.api_version, operation_model.name)
    if key not in _SERIALIZERS:
        definitions: dict[str, CoreSchema] = {}
        try:
            root = _shape_schema(operation_model.input_shape, definitions)
        except _ShapeUnsupportedError:
            _SERIALIZERS[key] = None
        else:
            _SERIALIZERS[key] = SchemaSerializer(cs.definitions_schema(root, list(definitions.values())))
    return _SERIALIZERS[key]


def wire_body(parameters: Mapping[str, Any], operation_model: Any = None) -> bytes:
    """The JSON body of a DynamoDB request with these parameters (for `operation_model`, botocore's OperationModel,
    written by its shape's serializer when the values are the shape's types); TypeError/ValueError for a value
    botocore would have to convert (the caller then lets botocore serialize the request)."""
    written = _put_items_body(parameters)
    if written is not None:
        return written
    serializer = None if operation_model is None else _serializer(operation_model)
    if serializer is not None:
        try:
            return serializer.to_json(parameters, warnings="error")
        except ValueError:  # a value not of its shape's type (PydanticSerializationError): json.dumps decides
            pass
    return _ENCODER.encode(parameters).encode()


_PUT_OPEN = '{"PutRequest":{"Item":'
_PUT_CLOSE = "}}"


def _put_items_body(parameters: Mapping[str, Any]) -> bytes | None:
    """The body of a BatchWriteItem of PutRequests whose items are all WireItems, or of a BatchGetItem whose tables'
    requests are WireTexts, joined from their texts (exactly what `json.dumps` writes for the same parameters); None
    for any other request."""
    request_items = parameters.get("RequestItems")
    if len(parameters) != 1 or type(request_items) is not dict or not request_items:
        return None
    tables = []
    for table, entries in request_items.items():
        if type(table) is not str:
            return None
        if type(entries) is WireText:
            tables.append(f"{quoted(table)}:{entries.text}")
            continue
        if type(entries) is not list or not entries:
            return None
        texts = []
        for entry in entries:
            if type(entry) is not dict or len(entry) != 1:
                return None
            put = entry.get("PutRequest")
            if type(put) is not dict or len(put) != 1:
                return None
            item = put.get("Item")
            if type(item) is not WireItem:
                return None
            texts.append(item.text)
        tables.append(f"{quoted(table)}:[{_PUT_OPEN}" + f"{_PUT_CLOSE},{_PUT_OPEN}".join(texts) + f"{_PUT_CLOSE}]")
    return ('{"RequestItems":{' + ",".join(tables) + "}}").encode()


def takes_wire_items(client: Any) -> bool:
    """Whether `client` sends WireItems as they are (a client with the wire form: `use_wire_form`); any other client
    is given their dict form (botocore's parameter validation takes only dicts)."""
    return isinstance(getattr(client, "_serializer", None), WireFormSerializer)


class WireFormSerializer:
    """Stands in for a DynamoDB client's request serializer: headers, method and URL from botocore's (for no
    parameters, which costs nothing), the body from one `json.dumps` of the parameters."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def serialize_to_request(self, parameters: dict[str, Any], operation_model: Any) -> dict[str, Any]:
        try:
            body = wire_body(parameters, operation_model)
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
