"""Record items written straight into their wire form: byte for byte what json.dumps writes for the item botocore
would be given, sized exactly as DynamoDB bills it, joined into BatchWriteItem bodies, resent as sent."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.serialize import create_serializer
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.core import ddb_batch, ddb_lean, ddb_wire, layout, record_items
from functions.core.layout import Vendor
from functions.core.models import CanonicalRecord, Shopper
from functions.core.record_items import DATA, DATA_Z, WRITE_UNIT_BYTES, attribute_bytes
from functions.core.store import RecordStore, WriteStats, _SharedMembers, record_item_key
from functions.core.wire_items import WireItem, quoted, quoted_long
from tests.unit.test_ddb_lean import Script, answer, lean_client

# Every kind of string json.dumps escapes: quotes, backslashes, control characters, DEL, non-ASCII, astral, and
# lone surrogates.
HOSTILE = [
    "",
    'a "quoted" \\ back\\slash /',
    "\x00\x01\x1f\x7f\b\f\n\r\t",
    "Zoë née Ünïcødé",
    "emoji 😀 and 𝄞",
    "lone \ud800 high and \udfff low",
    "\u2028\u2029 separators",
    "</script>",
]
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())


def wire(value: Any) -> Any:
    """An item's values as its JSON text carries them: binary values as base64 text."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    return value


def reference_item(
    key: str, record: CanonicalRecord, digest: str, updated: str, version: int, archive_key: str, pulled_at: str,
    data: str, indexed_by: str = "", scoped: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """The record item as it was built as a dict before it was written straight into its wire form (the spec)."""
    item: dict[str, Any] = {
        "pk": {"S": key},
        "kind": {"S": record.kind.value},
        "vendor": {"S": record.vendor.value},
        "source_updated_at": {"S": updated},
        "content_hash": {"S": digest},
        "version": {"N": str(version)},
        "archive_key": {"S": archive_key},
        "pulled_at": {"S": pulled_at},
    }
    if indexed_by:
        item[layout.RECORDS_INDEXED_BY_ATTRIBUTE] = {"S": indexed_by}
    if scoped:
        item[layout.RECORDS_SCOPE_ATTRIBUTE] = {"S": layout.record_scope(record.tenant, record.vendor)}
        item[layout.RECORDS_SCOPE_KEY_ATTRIBUTE] = {
            "S": layout.record_scope_key(record.kind, record.credential_id, record.pos_id)
        }
    name, value = record_items.data_attribute(data, item)
    item[name] = value
    return item


def shopper(pos_id: str = "s1", tenant: str = "t1", name: str | None = None) -> Shopper:
    return Shopper(
        tenant=tenant,
        vendor=Vendor.POSABIT,
        credential_id="c1",
        pos_id=pos_id,
        first_name=name,
        source_updated_at=datetime(2026, 11, 1, tzinfo=UTC),
    )


def put(record: CanonicalRecord, data: str, **options: Any) -> tuple[WireItem, dict[str, Any]]:
    """The record's WireItem and the reference dict for the same parts."""
    parts = (record_item_key(record), record, "sha256:ab", "2026-11-01T00:00:00.000000+00:00", options.pop("v", 3))
    shared = ("raw/t1/page.json.gz", "2026-11-02T00:00:00.000000+00:00")
    item = RecordStore._put(*parts, _SharedMembers(*shared), data, **options)
    return item, reference_item(*parts, *shared, data, **options)


def assert_written_as_reference(item: WireItem, reference: dict[str, Any]) -> None:
    # Byte for byte json.dumps of the item botocore would be given (binary as base64), sized as DynamoDB bills it
    assert item.text == json.dumps(wire(reference), separators=(",", ":"))
    assert item.size == attribute_bytes(reference)
    assert item.form() == reference and dict(item) == reference
    assert item.key == reference["pk"]["S"]


@pytest.mark.parametrize("text", HOSTILE)
def test_strings_are_quoted_exactly_as_json_dumps_quotes_them(text: str) -> None:
    assert quoted(text) == json.dumps(text)


@settings(max_examples=150, deadline=None)
@given(st.text(ANY_CHARACTER))
def test_any_string_is_quoted_exactly_as_json_dumps_quotes_it(text: str) -> None:
    assert quoted(text) == json.dumps(text)


@pytest.mark.parametrize("text", HOSTILE + [chr(code) for code in range(128)] + ["".join(map(chr, range(128))) * 8])
def test_a_long_string_is_quoted_exactly_as_json_dumps_quotes_it(text: str) -> None:
    # Every ASCII character alone and together (DEL among them: orjson leaves it unescaped), and text beyond ASCII.
    assert quoted_long(text) == json.dumps(text)
    assert quoted_long(text * 50) == json.dumps(text * 50)


@settings(max_examples=150, deadline=None)
@given(st.text(ANY_CHARACTER))
def test_any_long_string_is_quoted_exactly_as_json_dumps_quotes_it(text: str) -> None:
    assert quoted_long(text) == json.dumps(text)


@pytest.mark.parametrize("text", HOSTILE[:5] + HOSTILE[6:])  # a lone surrogate has no UTF-8 size: see below
@pytest.mark.parametrize("options", [{}, {"indexed_by": "idx#1"}, {"scoped": True}, {"indexed_by": "é", "v": 10**12}])
def test_a_record_item_is_json_dumps_of_the_item_and_sized_as_dynamodb_bills_it(text: str, options: Any) -> None:
    record = shopper(pos_id=f"p{text}", tenant=f"t{text}", name=text)
    item, reference = put(record, record.model_dump_json(), **options)
    assert_written_as_reference(item, reference)


@settings(max_examples=60, deadline=None)
@given(pos_id=st.text(ANY_CHARACTER.filter(lambda c: not 0xD800 <= ord(c) <= 0xDFFF), min_size=1), scoped=st.booleans())
def test_any_record_item_is_json_dumps_of_the_item(pos_id: str, scoped: bool) -> None:
    record = shopper(pos_id=pos_id, name=pos_id * 40)  # long enough, sometimes, to be compressed
    item, reference = put(record, record.model_dump_json(), scoped=scoped)
    assert_written_as_reference(item, reference)


def test_a_lone_surrogate_in_a_key_fails_as_sizing_the_dict_item_failed() -> None:
    # (a record cannot hold one: the models refuse it; the key is a string like any other)
    with pytest.raises(UnicodeEncodeError):
        attribute_bytes({"pk": {"S": "k\ud800"}})
    with pytest.raises(UnicodeEncodeError):
        RecordStore._put("k\ud800", shopper(), "h", "u", 1, _SharedMembers("a", "p"), "{}")


@pytest.mark.parametrize("filler", ["a", "é"], ids=["ascii", "non-ascii"])
def test_an_item_of_exactly_one_write_unit_keeps_its_json_as_text_and_one_byte_more_is_compressed(filler: str) -> None:
    record = shopper()
    empty, _ = put(record, "")
    room = WRITE_UNIT_BYTES - empty.size  # bytes the data text may take with the item still in one unit
    width = len(filler.encode())
    at_limit = filler * (room // width) + "b" * (room % width)
    item, reference = put(record, at_limit)
    assert DATA in item and item.size == WRITE_UNIT_BYTES
    assert_written_as_reference(item, reference)
    over, reference = put(record, at_limit + "b")
    assert DATA_Z in over and attribute_bytes(reference) <= WRITE_UNIT_BYTES
    assert_written_as_reference(over, reference)
    assert record_items.record_json(over) == at_limit + "b"


def test_a_batch_write_body_is_joined_from_the_items_texts_exactly_as_json_dumps_writes_it() -> None:
    items = [put(shopper(f"s{n}", name=HOSTILE[n % len(HOSTILE)] * n), "x" * (60 * n))[0] for n in range(25)]
    items = [i for i in items if i.size]  # every item, some of them compressed
    assert any(DATA_Z in i for i in items) and any(DATA in i for i in items)
    params = {"RequestItems": {'re"cords': [{"PutRequest": {"Item": i}} for i in items]}}
    plain = {"RequestItems": {'re"cords': [{"PutRequest": {"Item": wire(i.form())}} for i in items]}}
    operation = lean_client().meta.service_model.operation_model("BatchWriteItem")

    body = ddb_wire.wire_body(params, operation)

    assert body == json.dumps(plain, separators=(",", ":")).encode()
    # the same JSON value botocore's own serializer writes for the dict form
    botocore_body = create_serializer("json").serialize_to_request(
        {"RequestItems": {'re"cords': [{"PutRequest": {"Item": i.form()}} for i in items]}}, operation
    )["body"]
    assert json.loads(body) == json.loads(botocore_body)


def test_a_request_mixing_wire_items_with_other_parameters_is_still_written_whole() -> None:
    item, _ = put(shopper(), '{"a":"é"}')
    params = {"RequestItems": {"records": [{"PutRequest": {"Item": item}}]}, "ReturnConsumedCapacity": "TOTAL"}
    operation = lean_client().meta.service_model.operation_model("BatchWriteItem")
    body = ddb_wire.wire_body(params, operation)
    assert json.loads(body) == {
        "RequestItems": {"records": [{"PutRequest": {"Item": wire(item.form())}}]},
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_unprocessed_items_are_resent_as_the_wire_items_they_were_sent_as() -> None:
    # Given DynamoDB leaving one compressed item of three unprocessed, answering with it as its dict form
    items = [put(shopper(f"s{n}"), "y" * 2000 if n == 1 else "{}")[0] for n in range(3)]
    left = {"UnprocessedItems": {"records": [{"PutRequest": {"Item": wire(items[1].form())}}]}}
    script = Script(answer(200, json.dumps(left)), answer(200, '{"UnprocessedItems":{}}'))
    client = lean_client(script)

    made = ddb_batch.batch_write(client, "records", [{"PutRequest": {"Item": i}} for i in items], sleep=lambda _: None)

    # Then the resend carried exactly that item's text, on the lean path
    assert made == 2 and script.paths == ["lean", "lean"]
    expected = '{"RequestItems":{"records":[{"PutRequest":{"Item":' + items[1].text + "}}]}}"
    assert script.requests[1].body == expected.encode()


def test_an_unprocessed_item_not_sent_as_a_wire_item_is_resent_as_returned() -> None:
    item, _ = put(shopper("s1"), "{}")
    other = {"pk": {"S": "other"}, "n": {"N": "1"}}
    left = {"UnprocessedItems": {"records": [{"PutRequest": {"Item": other}}, {"DeleteRequest": {"Key": {}}}]}}
    sent = [{"PutRequest": {"Item": item}}, {"PutRequest": {"Item": other}}]
    assert ddb_batch._as_sent(left["UnprocessedItems"], sent) == left["UnprocessedItems"]


def test_a_failed_lean_request_is_resent_through_botocore_with_the_same_body() -> None:
    item, _ = put(shopper("s1"), "{}")
    script = Script(answer(500, '{"__type":"InternalServerError"}'), answer(200, '{"UnprocessedItems":{}}'))
    client = lean_client(script)
    client.batch_write_item(RequestItems={"records": [{"PutRequest": {"Item": item}}]})
    assert script.paths == ["lean", "botocore"]
    assert script.requests[1].body == script.requests[0].body


def test_a_client_without_the_wire_form_is_given_the_dict_form() -> None:
    # Given a plain client with botocore's parameter validation (which takes only dicts)
    script = Script(answer(200, '{"UnprocessedItems":{}}'))
    plain = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret"
    )
    plain.meta.events.register_first("before-send.dynamodb", script)
    store = RecordStore(plain, "records")
    item, reference = put(shopper("s1"), '{"a":1}')

    store._batch_write([item], WriteStats())

    assert not ddb_wire.takes_wire_items(plain)
    assert json.loads(script.requests[0].body) == {
        "RequestItems": {"records": [{"PutRequest": {"Item": wire(reference)}}]}
    }


def test_the_bench_sees_every_wire_items_size_and_kind() -> None:
    from bench.pull import AwsCalls, item_size

    calls = AwsCalls("records")
    items = [put(shopper(f"s{n}"), "z" * (400 * n))[0] for n in range(4)]
    client = lean_client(Script(answer(200, '{"UnprocessedItems":{}}')))
    calls.register(client)
    client.batch_write_item(RequestItems={"records": [{"PutRequest": {"Item": i}} for i in items]})
    assert calls.item_sizes == {"shopper": [i.size for i in items]}
    assert [item_size(i.form()) for i in items] == [i.size for i in items]
    assert isinstance(client._make_api_call, ddb_lean.LeanPath)


def version_read(keys: list[str]) -> dict[str, Any]:
    """The version read's request for these keys, as a dict (the spec)."""
    return {
        "Keys": [{"pk": {"S": k}} for k in keys],
        "ProjectionExpression": "pk, content_hash, source_updated_at, version, #by, #scope",
        "ExpressionAttributeNames": {
            "#by": layout.RECORDS_INDEXED_BY_ATTRIBUTE,
            "#scope": layout.RECORDS_SCOPE_ATTRIBUTE,
        },
        "ConsistentRead": True,
    }


def test_a_version_read_is_written_as_json_dumps_writes_its_request_and_its_answer_read() -> None:
    # Given 101 keys, hostile ones among them (two requests: 100 keys, then 1)
    keys = [f"t1#posabit#c1#sale#{HOSTILE[n % len(HOSTILE)]}{n}" for n in range(101)]
    stored = {"pk": {"S": keys[3]}, "content_hash": {"S": "h"}, "source_updated_at": {"S": "u"}, "version": {"N": "4"}}
    script = Script(
        answer(200, json.dumps({"Responses": {"records": [stored]}, "UnprocessedKeys": {}})),
        answer(200, json.dumps({"Responses": {"records": []}, "UnprocessedKeys": {}})),
    )
    store = RecordStore(lean_client(script), "records")

    found = store._versions(keys, WriteStats())

    assert script.paths == ["lean", "lean"]
    for request, chunk in zip(script.requests, (keys[:100], keys[100:]), strict=True):
        spec = {"RequestItems": {"records": version_read(chunk)}}
        assert request.body == json.dumps(spec, separators=(",", ":")).encode()
    assert found == {keys[3]: ("h", "u", 4, "", False)}


def test_a_client_without_the_wire_form_reads_versions_with_the_dict_form() -> None:
    script = Script(answer(200, json.dumps({"Responses": {"records": []}, "UnprocessedKeys": {}})))
    plain = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret"
    )
    plain.meta.events.register_first("before-send.dynamodb", script)
    assert RecordStore(plain, "records")._versions(["k\u00e9"], WriteStats()) == {}
    assert json.loads(script.requests[0].body) == {"RequestItems": {"records": version_read(["k\u00e9"])}}


@pytest.mark.parametrize("version", [1, 9, 10, 99, 100, 101, 12345, 10**12, 10**12 + 1])
def test_a_versions_billed_size_is_one_byte_per_two_digits_plus_one_at_every_length(version: int) -> None:
    # The item's size takes a version's bytes from its digit count: exact at every number of digits
    record = shopper(name="x" * 900)  # over one write unit as text: the size also decides compression
    item, reference = put(record, record.model_dump_json(), v=version)
    assert_written_as_reference(item, reference)


@pytest.mark.parametrize("vendor", list(Vendor))
@pytest.mark.parametrize("kind", list(layout.RecordKind))
def test_record_keys_and_item_attributes_carry_each_enums_value(vendor: Vendor, kind: layout.RecordKind) -> None:
    # Given every vendor and kind (their text is read without the enum's `.value`)
    # Then the key and the item's kind and vendor attributes are exactly their values
    key = layout.record_pk("t1", vendor, "c1", kind, "p1")
    assert key == f"t1#{vendor.value}#c1#{kind.value}#p1" and type(key) is str
    record = shopper().model_copy(update={"vendor": vendor})
    item, reference = put(record, record.model_dump_json())
    assert item.form()["vendor"] == {"S": vendor.value} and type(item.form()["vendor"]["S"]) is str
    assert_written_as_reference(item, reference)


@pytest.mark.parametrize("vendor", list(Vendor))
def test_a_records_json_names_its_vendor_and_kind_by_value_and_python_dumps_keep_the_members(vendor: Vendor) -> None:
    record = shopper().model_copy(update={"vendor": vendor})
    data, _ = record.stored_form()
    assert json.loads(data)["vendor"] == vendor.value and json.loads(data)["kind"] == "shopper"
    assert f'"kind":"shopper","tenant":"t1","vendor":"{vendor.value}",' in data
    assert record.model_dump()["vendor"] is vendor and record.model_dump()["kind"] is layout.RecordKind.SHOPPER
    assert record.model_dump(mode="json")["vendor"] == vendor.value


def test_a_stored_version_is_read_from_a_whole_item_and_from_one_missing_attributes() -> None:
    from functions.core.store import StoredVersion, _stored_version

    whole = {
        "pk": {"S": "k"},
        "content_hash": {"S": "j1:ab"},
        "source_updated_at": {"S": "2026-11-01T00:00:00.000000+00:00"},
        "version": {"N": "12"},
        layout.RECORDS_INDEXED_BY_ATTRIBUTE: {"S": "idx"},
        layout.RECORDS_SCOPE_ATTRIBUTE: {"S": "t1#posabit"},
    }
    assert _stored_version(whole) == StoredVersion("j1:ab", "2026-11-01T00:00:00.000000+00:00", 12, "idx", True)
    # An item written by older code may lack any of them: each takes its default, the others are still read
    assert _stored_version({"pk": {"S": "k"}}) == StoredVersion("", "", 0, "", False)
    assert _stored_version({"pk": {"S": "k"}, "version": {"N": "4"}}) == StoredVersion("", "", 4, "", False)
    assert _stored_version({"pk": {"S": "k"}, "content_hash": {"S": "h"}}) == StoredVersion("h", "", 0, "", False)
