"""Profitek's sales pages are validated to a page form (functions.pull_onprem.values.page_form: transactions, lines and
tenders as dicts, amounts read as `amounts_as_floats` reads them) and `sale_page_record` maps each to exactly the Sale
the per-item path gives. Each payload is mapped here directly, without the engine's fallback to the item, so a
page-form mapping that raised or differed would show."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.core.layout import Stream, Vendor
from functions.core.models import Sale
from functions.pull_onprem.profitek import client, mapping
from tests.mapping_corpus import page_form_maps_as_item, raw_pages, seeded_connector
from tests.unit.test_auphan_page_form import _STAMP, STAMPS

# Amounts as Profitek sends them (JSON numbers: ties at the half cent, signs, zeros, whole numbers) and texts
AMOUNTS: tuple[Any, ...] = (
    0,
    -0.0,
    0.29,
    -1.15,
    4.35,
    1.005,
    -0.005,
    19.99,
    -7,
    12,
    1e9,
    "12.34",
    "-3",
    99999999999.99,
)
# Every branch of the status rule: Profitek's spellings, an unknown one
STATUSES = ("Completed", "Closed", "Return", "Partial Return", "Void", "On_Hold", "Bogus")


@pytest.fixture(scope="module")
def sale_and_ctx() -> tuple[dict[str, Any], Any]:
    with seeded_connector(Vendor.PROFITEK, 60, page_size=50) as (connector, ctx):
        body = next(page.body for stream, page in raw_pages(connector) if stream is Stream.SALES and page.items)
    sale = next(item for item in client.page_items(Stream.SALES, body) if len(item["Lines"]) > 1)
    return sale, ctx


def _mapped(function: Any, *args: Any) -> Any:
    try:
        record = function(*args)
    except Exception as exc:  # noqa: BLE001 - compared: the same error or the same record
        return type(exc), getattr(exc, "reason", None)
    assert isinstance(record, Sale)
    return record.stored_form()


def _page_form_maps_as_item(item: dict[str, Any], ctx: Any) -> bool:
    body = json.dumps({"Data": [item], "TotalCount": 1}).encode()
    return page_form_maps_as_item(client.PAGE_VALIDATORS[Stream.SALES], body, item, ctx, mapping, _mapped)


def test_simulator_transactions_are_page_form_dicts(sale_and_ctx: Any) -> None:
    sale, ctx = sale_and_ctx
    assert _page_form_maps_as_item(sale, ctx)


@pytest.mark.parametrize("status", STATUSES)
def test_amounts_in_every_field_map_as_item_by_item(sale_and_ctx: Any, status: str) -> None:
    sale, ctx = sale_and_ctx
    paths = (
        ("Total",), ("SubTotal",), ("DiscountTotal",), ("TaxTotal",), ("Lines", 0, "ExtPrice"),
        ("Lines", 1, "ExtPrice"), ("Lines", 0, "Discount"), ("Lines", 0, "Qty"), ("Tenders", 0, "Amount"),
    )  # fmt: skip
    taken = 0
    for value in AMOUNTS:
        for path in paths:
            # Given the transaction with one amount set to the value, When its one-item page is validated and its
            # payload mapped, Then it gives the record or error the item gives
            item = json.loads(json.dumps({**sale, "Status": status}))
            target = item
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
            try:
                taken += _page_form_maps_as_item(item, ctx)
            except AssertionError as exc:
                raise AssertionError(f"{'.'.join(map(str, path))}={value!r}") from exc
    assert taken == len(AMOUNTS) * len(paths)


@pytest.mark.parametrize(
    ("discounts", "taken"),
    [
        ([], True),
        ([{"DiscountID": 5, "Name": "Ten"}, {"DiscountID": "5", "Name": "Ten"}], True),
        ([{"Name": "Ten"}, {"DiscountID": 7}, {}, {"DiscountID": None, "Name": None}, {"DiscountID": 9}], True),
        ([{"DiscountID": 0, "Name": "Ten"}, {"DiscountID": "0"}], True),  # .NET's "none" id
        # a null list or an untrimmed text need the model's before-validators: the page is refused whole
        (None, False),
        ([{"DiscountID": 2, "Name": " Five "}], False),
    ],
)
def test_line_discounts_map_as_item_by_item(sale_and_ctx: Any, discounts: Any, taken: bool) -> None:
    sale, ctx = sale_and_ctx
    item = json.loads(json.dumps(sale))
    item["Lines"][0]["Discounts"] = discounts
    item["Lines"][1]["Discounts"] = [{"DiscountID": 3, "Name": "Three"}, *(discounts or [])]
    assert _page_form_maps_as_item(item, ctx) is taken


def test_absent_optional_fields_take_the_models_defaults(sale_and_ctx: Any) -> None:
    sale, ctx = sale_and_ctx
    item = {key: value for key, value in sale.items() if key not in ("DiscountTotal", "TaxTotal", "StoreID", "Tenders")}
    item["Lines"] = [{"Qty": line["Qty"], "ExtPrice": line["ExtPrice"]} for line in sale["Lines"]]
    assert _page_form_maps_as_item(item, ctx)
    assert _page_form_maps_as_item({**item, "Lines": []}, ctx)


@pytest.mark.parametrize("field", ["TransactionDate", "ModifiedDate"])
def test_timestamps_map_as_item_by_item(sale_and_ctx: Any, field: str) -> None:
    sale, ctx = sale_and_ctx
    texts = 0
    for stamp in STAMPS:
        # Given the transaction with that timestamp, When its one-item page is validated and its payload mapped
        # Then it gives the record or error the item gives, and a text of STAMP_TEXT's form is kept as that text
        item = {**sale, field: stamp}
        try:
            _page_form_maps_as_item(item, ctx)
        except AssertionError as exc:
            raise AssertionError(f"{field}={stamp!r}") from exc
        validated = client.PAGE_VALIDATORS[Stream.SALES](json.dumps({"Data": [item]}).encode())
        key = "transaction_date" if field == "TransactionDate" else "modified_date"
        if validated is not None and isinstance(stamp, str) and _STAMP.match(stamp):
            assert validated.payloads[0][key] == stamp
            texts += 1
    assert texts >= 15
