"""functions.core.page_fastpath: a page validated from its bytes in one call answers only when that answer is the
per-item path's, and VendorHttp.get_validated falls back to decoding (and retrying a body that is not JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import stamina
from pydantic import BaseModel, ConfigDict

from functions.core.errors import MalformedPageError
from functions.core.http import RetryPolicy, VendorHttp
from functions.core.page_fastpath import PageValidator, ValidatedPage


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
