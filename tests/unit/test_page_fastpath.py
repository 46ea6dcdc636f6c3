"""functions.core.page_fastpath: a page validated from its bytes in one call answers only when that answer is the
per-item path's, and VendorHttp.get_validated falls back to decoding (and retrying a body that is not JSON)."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any

import httpx
import pytest
import stamina
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, computed_field

from functions.core.errors import MalformedPageError
from functions.core.http import RetryPolicy, VendorHttp
from functions.core.page_fastpath import PageValidator, ValidatedPage, model_as_typed_dict


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    quantity: float
    tags: list[Any] = []


class _Priced(BaseModel):
    id: str
    price: Decimal


def _validator() -> PageValidator:
    return PageValidator(_Item, {}, records_key="rows", wrapper_keys=("row",), envelope_keys=("total",))


def test_a_page_of_valid_items_gives_the_payloads_unwrapped_and_the_envelope() -> None:
    body = b'{"rows": [{"id": "a", "quantity": 2}, {"row": {"id": "b", "quantity": 1.5}}], "total": 2, "x": 1}'
    page = _validator()(body)
    assert isinstance(page, ValidatedPage) and page.envelope == {"total": 2}
    # instances of the model's class (a subclass adding nothing: payload_fastpath), holding the model's values
    assert all(isinstance(payload, _Item) for payload in page.payloads)
    assert [p.model_dump() for p in page.payloads] == [
        {"id": "a", "quantity": 2.0, "tags": []},
        {"id": "b", "quantity": 1.5, "tags": []},
    ]


@pytest.mark.parametrize(
    "body",
    [
        b'{"rows": [{"id": "a", "quantity": 1e400}]}',  # json.loads: inf; refused, not read as infinity
        b'{"rows": [{"id": "a", "quantity": ' + b"1" * 400 + b"}]}",  # json.loads: an int no float holds
        b'{"rows": [{"id": "a", "quantity": NaN}]}',
        b'{"rows": [{"id": "a", "quantity": 1}, {"id": "b"}]}',  # one invalid item: the whole page is refused
        b'{"rows": [{"row": {"id": "a", "quantity": 1}, "id": "c"}]}',  # an id beside the wrapper: not wrapped
        b'{"rows": [{"row": {"id": "a", "quantity": 1}, "note": 1}]}',
        b'{"rows": [7]}',
        b'{"rows": {"id": "a", "quantity": 1}}',
        b"[]",
        b'{"rows": [{"id": "a", "quantity": 1}',  # truncated
        b"\xff\xfe",
    ],
)
def test_anything_off_the_happy_path_is_refused_whole(body: bytes) -> None:
    assert _validator()(body) is None


class _Keyed(BaseModel):
    id: str
    key: bytes


def test_a_model_holding_values_json_mode_may_read_differently_is_refused_at_import() -> None:
    # Bytes read from JSON text follow the config's `val_json_bytes`, from a str they are its UTF-8: not proven equal
    with pytest.raises(TypeError, match="bytes"):
        PageValidator(_Keyed, {}, records_key="rows")


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("1e2", "Decimal('100.0')"),  # JSON mode alone reads Decimal('100')
        ("1.0", "Decimal('1.0')"),  # JSON mode alone: Decimal('1')
        ("1e16", "Decimal('1E+16')"),  # JSON mode alone: Decimal('10000000000000000')
        ("-0.0", "Decimal('-0.0')"),
        ("1e-400", "Decimal('0.0')"),
        ("0.1000000000000000055511151231257827", "Decimal('0.1')"),
        ("12.340", "Decimal('12.34')"),
        ('"1e2"', "Decimal('1E+2')"),
        ("7", "Decimal('7')"),
    ],
)
def test_a_decimal_is_read_from_the_value_json_loads_gives(number: str, expected: str) -> None:
    # A decimal node validates the decoded value (a float as json.loads has it), as the per-item path does
    body = b'{"rows": [{"id": "a", "price": ' + number.encode() + b"}]}"
    page = PageValidator(_Priced, {}, records_key="rows")(body)
    assert page is not None
    assert repr(page.payloads[0].price) == expected == repr(_Priced.model_validate(json.loads(body)["rows"][0]).price)


class _Row(BaseModel):
    """Required fields of each kind a wrapped item's try as a bare one reads cheaply."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    note: str | None  # required though None is a value of it: the default a missing one reads must not be None
    seen_at: Any  # required and Any: no default is refused by it
    quantity: float = 0


def _per_item(rows: list[Any]) -> list[dict[str, Any]] | None:
    """The payloads the per-item path gives (an item unwrapped as `unwrap_item` does), or None when one is invalid."""
    payloads = []
    for row in rows:
        if isinstance(row, dict) and "id" not in row and isinstance(row.get("row"), dict):
            row = row["row"]
        try:
            payloads.append(_Row.model_validate(row).model_dump())
        except ValidationError:
            return None
    return payloads


def _row_shapes() -> Iterator[Any]:
    """Items bare and wrapped, each required field present, null or missing, beside an id or another key."""
    values = {"id": ("a", None, 7), "note": ("n", None), "seen_at": ("2026-04-17", None, 3)}
    absent = object()
    for chosen in itertools.product(*((*options, absent) for options in values.values())):
        row = {key: value for key, value in zip(values, chosen, strict=True) if value is not absent}
        yield row
        yield {"row": row}
        yield {"row": row, "id": "b"}
        yield {"row": row, "note": "x"}
        yield {"row": row, "seen_at": 1}
    yield {}
    yield {"row": {}}
    yield {"row": None}
    yield {"row": {"row": {"id": "a", "note": None, "seen_at": 1}}}


def test_a_wrapped_or_bare_item_gives_the_per_item_payload_or_the_page_is_refused() -> None:
    # A missing required field reads a default its schema refuses, or (Any) a factory that refuses the page: neither
    # may let a page through that the per-item path would quarantine, nor change a value
    validator = PageValidator(_Row, {}, records_key="rows", wrapper_keys=("row",))
    answered = 0
    for shape in _row_shapes():
        for rows in ([shape], [{"id": "z", "note": None, "seen_at": 0}, shape]):
            page = validator(json.dumps({"rows": rows}).encode())
            expected = _per_item(rows)
            if page is not None:
                answered += 1
                assert [payload.model_dump() for payload in page.payloads] == expected, rows
    # A complete item (id "a", note a text or null, seen_at a text, null or 3), bare or alone in its wrapper, in a page
    # of its own and after another: 2 x 3 x 2 x 2
    assert answered == 24


class _Late(BaseModel):
    seen_at: Any  # required, Any, and first: nothing before it fails a wrapped item cheaply
    id: str


def test_an_any_field_no_earlier_field_guards_stays_required() -> None:
    validator = PageValidator(_Late, {}, records_key="rows", wrapper_keys=("row",))
    for rows, expected in (
        ([{"row": {"seen_at": 1, "id": "a"}}, {"seen_at": None, "id": "b"}], [(1, "a"), (None, "b")]),
        ([{"row": {"id": "a"}}], None),
        ([{"id": "a"}], None),
        ([{"seen_at": 1}], None),
        ([{"row": {"seen_at": 1, "id": "a"}, "seen_at": 2}], None),
    ):
        page = validator(json.dumps({"rows": rows}).encode())
        assert (page and [(p.seen_at, p.id) for p in page.payloads]) == expected


class _Timed(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True, frozen=True)

    id: str
    at: datetime | None = None
    day: date | None = None
    clock: time | None = None
    label: Annotated[str, Field(min_length=2, pattern=r"^[^ ]")] | None = None


# Every character str.strip() removes (Unicode spaces among them), at either end of a value.
_SPACES = [chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()]
_HOSTILE_TEXTS = [
    *(json.dumps(space + text) for space in _SPACES for text in ("2026-04-17T11:24:56", "x1")),
    *(json.dumps(text + space) for space in _SPACES for text in ("2026-04-17", "11:24:56", "x1")),
    *(json.dumps(text) for text in ("", " ", "\u00a0", "1", "12.5", "1e2", "x", "xy", " xy", "-0", "NaN")),
    *(json.dumps(text) for text in ("2026-04-17T00:00:00", "2026-04-17T00:00:01", "2026-04-17", "2026-04-17 11:24")),
    *(json.dumps(text) for text in ("11:24", "11:24:56.1234567", "24:00:00", "2026-02-30", "1700000000", "t")),
    *("1", "0", "-1", "12.5", "1.0", "1e2", "1e16", "1e400", "1" * 30, "1" * 400, "1700000000", "1700000000.5"),
    *("true", "null", "[]", "{}", '"\\ud800"'),
]


@pytest.mark.parametrize("field", ["at", "day", "clock", "label"])
def test_a_text_or_timestamp_field_reads_each_hostile_value_as_the_per_item_path(field: str) -> None:
    # A JSON string is read by the strict form, anything else (and a text only the lax form reads) by the decoded
    # value's chain: whatever the page answers is what the model makes of json.loads' value
    validator = PageValidator(_Timed, {}, records_key="rows")
    answered = 0
    for raw in _HOSTILE_TEXTS:
        body = b'{"rows": [{"id": "a", "%s": %s}]}' % (field.encode(), raw.encode())
        page = validator(body)
        try:
            expected: Any = _Timed.model_validate(json.loads(body)["rows"][0])
        except ValidationError:
            expected = None
        except ValueError:  # json.loads refuses the body (a lone surrogate is valid JSON to it, so this is unused)
            expected = None
        if page is not None:
            answered += 1
            (payload,) = page.payloads
            assert expected is not None, raw
            value, wanted = getattr(payload, field), getattr(expected, field)
            assert (type(value), value) == (type(wanted), wanted), raw
            if isinstance(value, datetime | time):
                assert value.tzinfo == wanted.tzinfo, raw
    assert answered >= 4  # the fast path is taken, not only refused


class _Ided(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: Annotated[str, BeforeValidator(lambda value: str(value) if type(value) is int else value)]
    other_id: Annotated[str | None, BeforeValidator(lambda value: str(value) if type(value) is int else value)] = None


def _id_validator(numeric_ids: bool) -> PageValidator:
    # Both ids compiled as payload_fastpath's "id_text": a text with nothing to strip, or a whole number as its text
    identity = {_Ided.model_fields[name].metadata[0].func: "id_text" for name in ("id", "other_id")}
    return PageValidator(_Ided, identity, records_key="rows", wrapper_keys=("row",), numeric_ids=numeric_ids)


_HOSTILE_IDS = [
    *("7", "0", "-7", str(2**63 - 1), str(2**63), str(-(2**63)), "1" * 30, "7.0", "7e0", "1e400", "true", "null"),
    *('"7"', '"a"', '" a"', '"a "', '""', '" "', '"\\u3000a"', '"a\\u2029"', "[]", "{}"),
]


def test_numeric_ids_reads_every_id_as_the_text_first_order_does() -> None:
    # The number is tried first; a text is never a number, so what is taken and its value are the same
    text_first, numbers_first = _id_validator(False), _id_validator(True)
    answered = 0
    for raw in _HOSTILE_IDS:
        for body in (
            b'{"rows": [{"id": %s}]}' % raw.encode(),
            b'{"rows": [{"row": {"id": "a", "other_id": %s}}]}' % raw.encode(),
        ):
            expected, page = text_first(body), numbers_first(body)
            assert (page and [p.model_dump() for p in page.payloads]) == (
                expected and [p.model_dump() for p in expected.payloads]
            ), body
            answered += page is not None
    assert answered >= 8


@pytest.fixture
def no_backoff() -> Iterator[None]:
    with stamina.set_testing(True, attempts=3):
        yield


def _http(bodies: list[bytes]) -> tuple[VendorHttp, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=bodies.pop(0))

    client = httpx.Client(base_url="https://pos.example", transport=httpx.MockTransport(handle))
    return VendorHttp(client, "posabit", RetryPolicy(attempts=3), sleep=lambda _: None), seen


@pytest.mark.usefixtures("no_backoff")
def test_get_validated_answers_from_the_bytes_or_decodes_when_refused() -> None:
    http, seen = _http([b'{"rows": [{"id": "a", "quantity": 1}]}', b'{"rows": [{"id": "a"}]}'])
    response, validated, payload = http.get_validated("/rows", None, _validator())
    assert validated is not None and payload is None and response.content.startswith(b'{"rows"')
    response, validated, payload = http.get_validated("/rows", None, _validator())
    assert validated is None and payload == {"rows": [{"id": "a"}]}
    assert len(seen) == 2  # one request each: a refused page is decoded, not fetched again


@pytest.mark.usefixtures("no_backoff")
def test_get_validated_retries_a_body_that_is_not_json_like_get_json() -> None:
    http, seen = _http([b"<html>", b'{"rows": [{"id": "a", "quantity": 1}]}'])
    _, validated, _ = http.get_validated("/rows", None, _validator())
    assert validated is not None and len(seen) == 2 and http.stats.retries == 1
    http, _ = _http([b"<html>"] * 3)
    with pytest.raises(MalformedPageError, match="not JSON"):
        http.get_validated("/rows", None, _validator())


class _Line(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: str = Field(validation_alias="product_sku")
    quantity: float
    note: str | None = None


def test_a_model_as_a_typed_dict_takes_what_the_model_takes_as_a_dict_of_its_fields() -> None:
    from pydantic_core import SchemaValidator

    form = SchemaValidator(model_as_typed_dict(_Line.__pydantic_core_schema__, lambda _name, field: field))
    for raw in ({"product_sku": "A1", "quantity": 2, "extra": 1}, {"product_sku": "B", "quantity": "1.5"}):
        assert form.validate_python(raw) == _Line.model_validate(raw).model_dump()
    for bad in ({"sku": "A1", "quantity": 2}, {"product_sku": "A1"}, {"product_sku": 1, "quantity": 2}):
        with pytest.raises(ValidationError):
            _Line.model_validate(bad)
        with pytest.raises(ValidationError):
            form.validate_python(bad)


class _Computed(_Line):
    @computed_field  # type: ignore[prop-decorator]
    @property
    def doubled(self) -> float:
        return self.quantity * 2


class _Forbidding(_Line):
    model_config = ConfigDict(extra="forbid")


@pytest.mark.parametrize("model", [_Computed, _Forbidding])
def test_a_model_that_is_more_than_its_fields_has_no_typed_dict_form(model: type[BaseModel]) -> None:
    with pytest.raises(TypeError):
        model_as_typed_dict(model.__pydantic_core_schema__, lambda _name, field: field)  # type: ignore[arg-type]
