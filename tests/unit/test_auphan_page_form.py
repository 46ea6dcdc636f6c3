"""Auphan's sales pages are validated to a page form (functions.pull_onprem.values.page_form: sales, lines and payments
as dicts, two-place money texts kept as texts) and `sale_page_record` maps each to exactly the Sale the per-item path
gives: the same cents, refunds, statuses, stored JSON and digests. Each payload is mapped here directly, without the
engine's fallback to the item, so a page-form mapping that raised or differed would show."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import SchemaValidator

from functions.core.layout import Stream, Vendor
from functions.core.models import Sale
from functions.pull_onprem.auphan import client, mapping
from functions.pull_onprem.values import STAMP_TEXT, page_form, stamp_utc, store_zone, to_utc
from tests.mapping_corpus import page_form_maps_as_item, raw_pages, seeded_connector

# Two-place texts: signs, zeros, leading zeros, the 13 whole digits MONEY_TEXT takes and the 14 it leaves to the
# decimal; and amounts in the other forms a page may hold (JSON numbers, other texts), read as before.
MONEY_VALUES: tuple[Any, ...] = (
    "0.00", "-0.00", "0.01", "-0.01", "12.34", "-12.34", "007.50", "-000.99", "9999999999999.99", "99999999999999.99",
    "0.29", "-1.15", "4.35", "1.005", "-3", "12.5", 5, -7, 0, 19.99, -0.005,
)  # fmt: skip
# (status, type) pairs: every branch of the status and refund rules
STATUSES = (
    ("completed", "sale"),
    ("Refunded", "sale"),
    ("partially_refunded", "sale"),
    ("completed", "return"),
    ("refunded", "RETURN"),
    ("voided", "sale"),
    ("open", "sale"),
    ("bogus", "sale"),
)


@pytest.fixture(scope="module")
def sale_and_ctx() -> tuple[dict[str, Any], Any]:
    with seeded_connector(Vendor.AUPHAN, 60, page_size=50) as (connector, ctx):
        body = next(page.body for stream, page in raw_pages(connector) if stream is Stream.SALES and page.items)
    sale = next(item for item in client.page_items(Stream.SALES, body) if len(item["lines"]) > 1)
    return sale, ctx


def _stored(outcome: Any) -> Any:
    if isinstance(outcome, Sale):
        return outcome.stored_form()
    if isinstance(outcome, datetime):
        return datetime, outcome, outcome.isoformat()
    return type(outcome), getattr(outcome, "reason", None)


def _mapped(function: Any, *args: Any) -> Any:
    try:
        return _stored(function(*args))
    except Exception as exc:  # noqa: BLE001 - compared: the same error or the same record
        return _stored(exc)


def _page_form_maps_as_item(item: dict[str, Any], ctx: Any) -> bool:
    body = json.dumps({"items": [item], "totalCount": 1}).encode()
    return page_form_maps_as_item(client.PAGE_VALIDATORS[Stream.SALES], body, item, ctx, mapping, _mapped)


def test_simulator_sales_are_page_form_dicts_with_money_texts(sale_and_ctx: Any) -> None:
    sale, ctx = sale_and_ctx
    # Given a simulator sale, When its page is validated in one call
    # Then its payload is a dict whose two-place amounts are the texts sent, and it maps as the item does
    assert _page_form_maps_as_item(sale, ctx)
    validated = client.PAGE_VALIDATORS[Stream.SALES](json.dumps({"items": [sale]}).encode())
    assert validated is not None
    payload = validated.payloads[0]
    assert (payload["total"], payload["lines"][0]["amount"]) == (sale["total"], sale["lines"][0]["amount"])


@pytest.mark.parametrize(("status", "sale_type"), STATUSES)
def test_money_values_in_every_field_map_as_item_by_item(sale_and_ctx: Any, status: str, sale_type: str) -> None:
    sale, ctx = sale_and_ctx
    taken = 0
    for value in MONEY_VALUES:
        # Given the sale with one money field (its own, its lines', its payment's) set to the value
        for path in (
            ("total",), ("subtotal",), ("discountTotal",), ("taxTotal",), ("refundedAmount",),
            ("lines", 0, "amount"), ("lines", 1, "amount"), ("lines", 0, "discount"), ("payments", 0, "amount"),
        ):  # fmt: skip
            item = json.loads(json.dumps({**sale, "status": status, "type": sale_type}))
            target = item
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
            # When its one-item page is validated and its payload mapped
            # Then it gives the record or error the item gives
            try:
                taken += _page_form_maps_as_item(item, ctx)
            except AssertionError as exc:
                raise AssertionError(f"{'.'.join(map(str, path))}={value!r}") from exc
    assert taken == len(MONEY_VALUES) * 9


@pytest.mark.parametrize("quantity", ["1", "-1", "0", "-0", "2.5", -2, 1.5, "-0.001"])
def test_line_quantities_and_refund_lines_map_as_item_by_item(sale_and_ctx: Any, quantity: Any) -> None:
    sale, ctx = sale_and_ctx
    for amount in ("10.00", "-10.00", "0.00", "-0.00", -1.5, "-0.001"):
        item = json.loads(json.dumps(sale))
        item["lines"][0]["quantity"] = quantity
        item["lines"][0]["amount"] = amount
        assert _page_form_maps_as_item(item, ctx), (quantity, amount)


def test_absent_optional_fields_take_the_models_defaults(sale_and_ctx: Any) -> None:
    sale, ctx = sale_and_ctx
    item = {key: value for key, value in sale.items() if key not in ("discountTotal", "taxTotal", "refundedAmount")}
    del item["type"]
    item["lines"] = [{k: v for k, v in line.items() if k not in ("discount", "discounts")} for line in sale["lines"]]
    assert _page_form_maps_as_item(item, ctx)
    assert _page_form_maps_as_item({**item, "status": "refunded"}, ctx)


@pytest.mark.parametrize(
    ("discounts", "taken"),
    [
        ([], True),
        ([{"discountId": "d-1", "name": "Ten"}, {"discountId": "d-1", "name": "Ten"}], True),
        ([{"name": "Ten"}, {"discountId": 7}, {}, {"discountId": None, "name": None}, {"discountId": "d-3"}], True),
        # a null list, blank or untrimmed texts need the model's before-validators: the page is refused whole
        (None, False),
        ([{"discountId": " ", "name": ""}], False),
        ([{"discountId": "d-2", "name": " Five "}], False),
    ],
)
def test_line_discounts_map_as_item_by_item(sale_and_ctx: Any, discounts: Any, taken: bool) -> None:
    sale, ctx = sale_and_ctx
    item = json.loads(json.dumps(sale))
    item["lines"][0]["discounts"] = discounts
    item["lines"][1]["discounts"] = [{"discountId": "d-3", "name": "Three"}, *(discounts or [])]
    assert _page_form_maps_as_item(item, ctx) is taken


def test_a_schema_the_page_form_cannot_read_is_refused() -> None:
    # A money field that is no amounts_as_floats amount, and a validator written in Python
    with pytest.raises(TypeError):
        page_form(mapping.AuphanSale.__pydantic_core_schema__, frozenset({"total"}))
    with pytest.raises(TypeError):
        page_form({"type": "function-before", "function": {"type": "no-info", "function": str}}, frozenset())


# Timestamps: the simulator's form, fractions of 1 to 6 digits, offsets, the store's wall clock (in and around a DST
# gap and fold), texts the model refuses (which the page form keeps as texts too: their mapping raises, so the item
# is mapped by the per-item path), and forms STAMP_TEXT leaves to the model's datetime.
STAMPS = (
    "2026-04-16T19:55:29.019Z", "2026-04-16T19:55:29Z", "2026-04-16T19:55:29.1Z", "2026-04-16T19:55:29.123456Z",
    "2026-04-16T19:55:29+00:00", "2026-04-16T19:55:29-00:00", "2026-04-16T19:55:29.5+05:30",
    "2026-01-01T00:00:00-23:59",
    "2026-03-08T02:30:00", "2026-11-01T01:30:00", "2026-11-01T01:30:00.25", "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-05:00", "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
    "2026-04-16T24:00:00Z", "2026-04-16T23:59:60Z", "2026-04-16T19:55:29+00:60", "2026-04-16T19:55:29+24:00",
    "0000-01-01T00:00:00Z", "2026-04-16T19:55:29.1234567Z", "2026-04-16 19:55:29Z", "2026-04-16T19:55:29z",
    "2026-04-16T19:55Z", "2026-04-16", "2026-04-16T19:55:29+0530", 1776369329, 1776369329.5, "1776369329",
)  # fmt: skip


@pytest.mark.parametrize("field", ["completedAt", "updatedAt"])
def test_timestamps_map_as_item_by_item(sale_and_ctx: Any, field: str) -> None:
    sale, ctx = sale_and_ctx
    texts = 0
    for stamp in STAMPS:
        # Given the sale with that timestamp, When its one-item page is validated and its payload mapped
        # Then it gives the record or error the item gives
        item = {**sale, field: stamp}
        try:
            _page_form_maps_as_item(item, ctx)
        except AssertionError as exc:
            raise AssertionError(f"{field}={stamp!r}") from exc
        validated = client.PAGE_VALIDATORS[Stream.SALES](json.dumps({"items": [item]}).encode())
        key = "completed_at" if field == "completedAt" else "updated_at"
        # And a text of STAMP_TEXT's form is kept as that text
        if validated is not None and isinstance(stamp, str) and _STAMP.match(stamp):
            assert validated.payloads[0][key] == stamp
            texts += 1
    assert texts >= 15


@settings(max_examples=400, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(["", "Z", "+00:00", "-07:00", "+05:45", "-23:59", "+14:00"]),
    st.integers(min_value=0, max_value=6),
    st.sampled_from(["America/Los_Angeles", "Australia/Lord_Howe", "UTC"]),
)
def test_generated_stamps_read_as_the_model_reads_them(moment: datetime, offset: str, digits: int, zone: str) -> None:
    text = f"{moment:%m-%dT%H:%M:%S}" + (f".{moment.microsecond:06d}"[: digits + 1] if digits else "") + offset
    text = f"{moment.year:04d}-{text}"
    assert _STAMP.match(text)
    expected = _mapped(lambda: to_utc(_MODEL_STAMP(json.dumps(text)), store_zone(zone)))
    got = _mapped(lambda: stamp_utc(text, store_zone(zone)))
    assert got == expected or got[0] is not datetime  # a text it cannot read goes to the per-item path
    if got[0] is datetime:
        assert got[1].tzinfo is UTC


_STAMP = re.compile(STAMP_TEXT.replace(r"\z", r"\Z"))
_MODEL_STAMP = SchemaValidator({"type": "datetime", "microseconds_precision": "truncate"}).validate_json
