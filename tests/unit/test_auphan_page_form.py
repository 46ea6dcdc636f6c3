"""Auphan's sales pages are validated to a page form (functions.pull_onprem.values.page_form: sales, lines and payments
as dicts, two-place money texts kept as texts) and `sale_page_record` maps each to exactly the Sale the per-item path
gives: the same cents, refunds, statuses, stored JSON and digests. Each payload is mapped here directly, without the
engine's fallback to the item, so a page-form mapping that raised or differed would show."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.core.layout import Stream, Vendor
from functions.core.models import Sale
from functions.pull_onprem.auphan import client, mapping
from functions.pull_onprem.values import page_form
from tests.mapping_corpus import raw_pages, seeded_connector

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
    return type(outcome), getattr(outcome, "reason", None)


def _mapped(function: Any, *args: Any) -> Any:
    try:
        return _stored(function(*args))
    except Exception as exc:  # noqa: BLE001 - compared: the same error or the same record
        return _stored(exc)


def _page_form_maps_as_item(item: dict[str, Any], ctx: Any) -> bool:
    """Whether the one-item page's payload maps to what the item maps to; True when the page form took it."""
    validated = client.PAGE_VALIDATORS[Stream.SALES](json.dumps({"items": [item], "totalCount": 1}).encode())
    expected = _mapped(mapping.map_record, Stream.SALES, item, ctx)
    if validated is None:
        return False
    (payload,) = validated.payloads
    assert type(payload) is dict and all(type(line) is dict for line in payload["lines"])
    assert _mapped(mapping.map_payload, Stream.SALES, payload, ctx) == expected
    return True


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
