"""POSaBIT pages validated from their bytes in one call (functions.core.page_fastpath) map to exactly what the
per-item path (json.loads, each item validated and mapped alone) gives: the same stored JSON and digests, and for a
page the one call refuses, the same records and quarantine entries (ids, reasons, item indexes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, model_validator

from functions.core.connector import MappingContext, RawPage
from functions.core.engine import derived_streams, map_page
from functions.core.layout import Stream, Vendor
from functions.core.page_fastpath import LazyItems
from functions.core.payload_fastpath import fast_schema
from functions.pull_posabit.client import PAGE_VALIDATORS, page_items
from functions.pull_posabit.constants import STREAM_CONTRACTS
from functions.pull_posabit.mapping import IDENTITY_ON, map_page_sale, map_sale, page_form, validate_sale
from tests.mapping_corpus import BAD_VALUES, raw_pages, seeded_connector


@pytest.fixture(scope="module")
def pulled() -> Iterator[tuple[Any, MappingContext, list[tuple[Stream, RawPage]]]]:
    """Every page of every POSaBIT stream of a seeded simulator store (400 records), as the client yields them."""
    with seeded_connector(Vendor.POSABIT, 400, page_size=100) as (connector, ctx):
        yield connector, ctx, list(raw_pages(connector))


def _as_stored(mapped: tuple[list[Any], list[dict[str, str]]]) -> tuple[list[tuple[str, str, str]], list[Any]]:
    records, quarantined = mapped
    return [(r.pos_id, *r.stored_form()) for r in records], quarantined


def _streams_of(connector: Any, stream: Stream) -> list[Stream]:
    return [stream, *(d for d, source in derived_streams(connector).items() if source is stream)]


def _engine_maps(connector: Any, stream: Stream, body: bytes, ctx: MappingContext) -> dict[Stream, Any]:
    """What a pull maps from a page body: its payloads when the one call takes the page, else its items one by one."""
    validated = PAGE_VALIDATORS[stream](body)
    if validated is None:
        items: Any = page_items(stream, body)
        payloads = None
    else:
        items, payloads = LazyItems(len(validated.payloads), lambda: page_items(stream, body)), validated.payloads
    return {s: _as_stored(map_page(connector, s, items, ctx, "page", payloads)) for s in _streams_of(connector, stream)}


def _per_item_maps(connector: Any, stream: Stream, body: bytes, ctx: MappingContext) -> dict[Stream, Any]:
    items = page_items(stream, body)
    return {s: _as_stored(map_page(connector, s, items, ctx, "page")) for s in _streams_of(connector, stream)}


def test_every_simulator_page_is_validated_in_one_call_and_maps_as_item_by_item(pulled: Any) -> None:
    # Given every page the client read from the seeded POSaBIT simulator
    connector, ctx, pages = pulled
    pages = [(stream, page) for stream, page in pages if page.items]  # a window's last page may be empty
    assert {stream for stream, _ in pages} == {Stream.CUSTOMERS, Stream.SALES, Stream.INVENTORY, Stream.DISCOUNTS}
    for stream, page in pages:
        # Then the client validated it in one call (its items are decoded only when read)
        assert page.payloads is not None and len(page.payloads) == len(page.items) > 0, stream
        assert isinstance(page.items, LazyItems)
        # And each of its streams (customers: shoppers and loyalty balances) maps from the payloads to the records,
        # stored JSON and digests the items give mapped one by one
        for also in _streams_of(connector, stream):
            fast = _as_stored(map_page(connector, also, page.items, ctx, "page", page.payloads))
            slow = _as_stored(map_page(connector, also, page_items(stream, page.body), ctx, "page"))
            assert fast == slow and fast[0], also
        # And the items, when read, are the page's items as the per-item path decodes them
        assert list(page.items) == page_items(stream, page.body)


def _page_body(stream: Stream, items: list[Any], wrapped: bool = True) -> bytes:
    wrapper = STREAM_CONTRACTS[stream].wrapper_keys[0]
    listed = [{wrapper: item} if wrapped else item for item in items]
    key = STREAM_CONTRACTS[stream].records_key
    return json.dumps({key: listed, "total_records": len(items), "current_page": 1, "total_pages": 1}).encode()


def _first_items(pulled: Any, stream: Stream, count: int = 3) -> list[dict[str, Any]]:
    _, _, pages = pulled
    page = next(page for s, page in pages if s is stream and page.items)
    return [dict(item) for item in page_items(stream, page.body)[:count]]


@pytest.mark.parametrize("stream", list(PAGE_VALIDATORS), ids=lambda s: s.value)
def test_a_page_with_one_bad_field_maps_and_quarantines_as_item_by_item(pulled: Any, stream: Stream) -> None:
    # Given pages of three items whose middle one has one field replaced by a value a POS should not send
    connector, ctx, _ = pulled
    items = _first_items(pulled, stream)
    refused = 0
    for key in sorted(items[1]):
        for bad in BAD_VALUES:
            body = _page_body(stream, [items[0], {**items[1], key: bad}, items[2]])
            refused += PAGE_VALIDATORS[stream](body) is None
            # When the page is mapped as a pull maps it
            # Then its records and quarantine entries (stream, id, reason, field, item index) are the per-item path's
            assert _engine_maps(connector, stream, body, ctx) == _per_item_maps(connector, stream, body, ctx), (
                key,
                bad,
            )
    assert refused > 0  # the one call refused the pages it cannot take whole


def test_a_page_with_an_item_that_fails_mapping_quarantines_it_at_its_index(pulled: Any) -> None:
    # Given a sales page whose second sale has a status no mapping knows (valid payload, failing mapping)
    connector, ctx, _ = pulled
    items = _first_items(pulled, Stream.SALES)
    body = _page_body(Stream.SALES, [items[0], {**items[1], "status": "teleported"}, items[2]])
    assert PAGE_VALIDATORS[Stream.SALES](body) is not None
    # When it is mapped from its payloads
    records, quarantined = _engine_maps(connector, Stream.SALES, body, ctx)[Stream.SALES]
    # Then the other two are stored and that one is quarantined at index 1, exactly as item by item
    assert len(records) == 2
    assert [(q["item_index"], q["pos_id"], q["reason"]) for q in quarantined] == [
        ("1", str(items[1]["id"]), "unknown sale status 'teleported'")
    ]
    assert (records, quarantined) == _per_item_maps(connector, Stream.SALES, body, ctx)[Stream.SALES]


# Numbers as JSON text: out of float range, past 64 bits, fractions and exponents of whole numbers, signed zero.
NUMBERS = (
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "1" * 400,
    "1" * 309,
    "1" * 30,
    "-" + "9" * 20,
    "1.5",
    "12.0",
    "0.1e1",
    "-0",
    "1E+2",
    "1e-400",
    "2.5e-324",
    "0.30000000000000004",
    "12.340",
    "1e2",
    "123456789012345678901234567890.5",
)


def _value_paths(item: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every field of an item, and every field of the first element of each of its lists of objects."""
    for key, value in item.items():
        yield (*path, key)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            yield from _value_paths(value[0], (*path, key, 0))


def _page_with_raw(key: str, item: dict[str, Any], path: tuple[Any, ...], raw: str) -> bytes:
    """A one-item page whose value at `path` is the JSON text `raw` (json.dumps cannot write 1e400 or 400 digits)."""
    changed = json.loads(json.dumps(item))
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = "\x00raw\x00"
    return json.dumps({key: [changed], "total_records": 1}).replace(json.dumps("\x00raw\x00"), raw).encode()


def _one_item(key: str, members: str) -> bytes:
    """A page of one item whose members are the JSON text given (json.dumps cannot write duplicate keys)."""
    return ("{" + json.dumps(key) + ": [{" + members + "}]}").encode()


def _hostile_bodies(stream: Stream, items: list[dict[str, Any]]) -> Iterator[tuple[str, bytes]]:
    """Page bodies JSON decoding may read differently, or that only the per-item path's rules take."""
    key = STREAM_CONTRACTS[stream].records_key
    wrapper = STREAM_CONTRACTS[stream].wrapper_keys[0]
    first = json.dumps(items[0])
    yield "bare items", _page_body(stream, items, wrapped=False)
    yield "mixed wrapped and bare", json.dumps({key: [{wrapper: items[0]}, items[1]]}).encode()
    yield "wrapped with an id beside", json.dumps({key: [{wrapper: items[0], "id": "x1"}]}).encode()
    yield "wrapped with another key", json.dumps({key: [{wrapper: items[0], "note": 1}]}).encode()
    yield "item not an object", json.dumps({key: [{wrapper: items[0]}, 7, "x", None]}).encode()
    yield "items not a list", json.dumps({key: {"a": items[0]}}).encode()
    yield "no items key", json.dumps({"data": [items[0]]}).encode()
    yield "page not an object", json.dumps([items[0]]).encode()
    yield "empty page", json.dumps({key: [], "total_records": 0}).encode()
    for other in STREAM_CONTRACTS[stream].wrapper_keys:
        yield f"wrapped as {other}", json.dumps({key: [{other: items[0]}]}).encode()
        yield f"{other} beside a {wrapper} no object", json.dumps({key: [{wrapper: 5, other: items[0]}]}).encode()
        yield f"{other} beside an invalid {wrapper}", json.dumps({key: [{wrapper: {"x": 1}, other: items[0]}]}).encode()
    yield "duplicate id", _one_item(key, '"id": "dup-1", ' + first[1:-1])
    yield "duplicate field last wins", _one_item(key, first[1:-1] + ', "updated_at": "2026-01-02T03:04:05Z"')
    yield "lone surrogate", _one_item(key, first[1:-1] + ', "sku": "\\ud800", "first_name": "\\udfff"')
    yield "escaped text", _one_item(key, first[1:-1] + ', "sku": "a\\u00e9\\n", "first_name": "\\u0041b"')
    for path in _value_paths(items[0]):
        for number in NUMBERS:
            yield f"{'.'.join(map(str, path))}={number[:20]}", _page_with_raw(key, items[0], path, number)
    yield "envelope counts as text", json.dumps({key: [items[0]], "total_records": "1", "per_page": True}).encode()
    yield "not JSON", b'{"' + key.encode() + b'": [' + first.encode()[:40]


@pytest.mark.parametrize("stream", list(PAGE_VALIDATORS), ids=lambda s: s.value)
def test_hostile_pages_map_as_item_by_item(pulled: Any, stream: Stream) -> None:
    connector, ctx, _ = pulled
    items = _first_items(pulled, stream, 2)
    for name, body in _hostile_bodies(stream, items):
        # Given a page body with something awkward in it, When a pull maps it
        try:
            expected = _per_item_maps(connector, stream, body, ctx)
        except Exception as exc:  # noqa: BLE001 - the per-item path refuses the page: so must the one call
            assert PAGE_VALIDATORS[stream](body) is None, name
            with pytest.raises(type(exc)):
                _engine_maps(connector, stream, body, ctx)
            continue
        # Then it gives the records and quarantine entries the per-item path gives
        assert _engine_maps(connector, stream, body, ctx) == expected, name


def test_lazy_items_decode_only_when_read() -> None:
    decoded: list[int] = []

    def decode() -> list[dict[str, Any]]:
        decoded.append(1)
        return [{"id": "a"}, {"id": "b"}]

    items = LazyItems(2, decode)
    assert len(items) == 2 and bool(items) and not decoded
    assert items[1] == {"id": "b"} and list(items) == [{"id": "a"}, {"id": "b"}] and items == [{"id": "a"}, {"id": "b"}]
    assert decoded == [1]


def test_a_sales_page_holds_each_line_and_tender_as_a_dict_of_its_models_fields(pulled: Any) -> None:
    # Given the simulator's sales and a sale written with every alias and default a line and a tender may take
    _, _, pages = pulled
    bodies = [page.body for stream, page in pages if stream is Stream.SALES and page.items]
    sale = _first_items(pulled, Stream.SALES, 1)[0]
    line = {key: value for key, value in sale["items"][0].items() if key not in ("product_name", "discount_list")}
    odd = {
        **sale,
        "items": [
            {**line, "name": "Gelato", "discount": 0},
            {**line, "product_id": None, "discount": 50, "total": -100},
        ],
        "tenders": [{"id": 7, "payment_method": "Cash"}, {"name": "Card", "total": 100}],
    }
    del odd["sales_tenders"]
    bodies.append(_page_body(Stream.SALES, [odd], wrapped=False))
    for body in bodies:
        validated = PAGE_VALIDATORS[Stream.SALES](body)
        assert validated is not None
        for payload, item in zip(validated.payloads, page_items(Stream.SALES, body), strict=True):
            # Then each line and tender is a dict (no model instance built) of the fields and values the payload
            # model validates from the same item, and the sale maps to the same record from either
            model = validate_sale(item)
            assert all(type(part) is dict for part in [*payload.items, *payload.sales_tenders])
            assert payload.items == [part.model_dump() for part in model.items]
            assert payload.sales_tenders == [part.model_dump() for part in model.sales_tenders]
            assert map_page_sale(payload, ctx_of(pulled)).stored_form() == map_sale(model, ctx_of(pulled)).stored_form()


def ctx_of(pulled: Any) -> MappingContext:
    context: MappingContext = pulled[1]
    return context


def test_page_form_refuses_a_nested_model_it_cannot_read_as_a_dict() -> None:
    # Given sale models whose lines' model checks itself in Python, or has a model of its own
    class Checked(BaseModel):
        model_config = ConfigDict(extra="ignore")
        total: int

        @model_validator(mode="after")
        def _positive(self) -> Checked:
            return self

    class Deep(BaseModel):
        model_config = ConfigDict(extra="ignore")
        inner: Checked

    for line in (Checked, Deep):

        class Sale(BaseModel):
            model_config = ConfigDict(extra="ignore")
            items: list[line]  # type: ignore[valid-type]

        # Then the page form is refused when the page validator is built, not given a dict the model would not be
        with pytest.raises(TypeError):
            page_form(fast_schema(Sale, IDENTITY_ON))
