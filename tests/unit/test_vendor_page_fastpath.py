"""THSuite, Profitek and Auphan pages validated from their bytes in one call (functions.core.page_fastpath) map to
exactly what the per-item path (json.loads, each item validated and mapped alone) gives: the same stored JSON and
digests, and for a page the one call refuses, the same records, quarantine entries (ids, reasons, fields, item
indexes) and errors. Their payloads hold decimals and datetimes, which the one call reads from the values JSON
decoding gives (a float as json.loads has it), and THSuite's read a blank text as None as its model does."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.core.connector import MappingContext, RawPage
from functions.core.engine import derived_streams, map_page
from functions.core.layout import Stream, Vendor
from functions.core.page_fastpath import LazyItems, PageValidator
from functions.pull_onprem.auphan import client as auphan
from functions.pull_onprem.paging import count_field
from functions.pull_onprem.profitek import client as profitek
from functions.pull_thsuite import client as thsuite
from tests.mapping_corpus import BAD_VALUES, raw_pages, seeded_connector


@dataclass(frozen=True)
class Shape:
    """How one vendor's list page is written and read."""

    validators: Any  # Mapping[Stream, PageValidator]
    items: Callable[[Stream, bytes], list[dict[str, Any]]]  # the per-item path's items of a body
    records_key: str
    envelope: dict[str, Any]
    total_key: str


SHAPES = {
    Vendor.THSUITE: Shape(
        thsuite.PAGE_VALIDATORS,
        lambda stream, body: thsuite.page_items(thsuite.ThsuiteClient.path(stream), body),
        "data",
        {"page": 1, "limit": 100, "has_more": False},
        "total",
    ),
    Vendor.PROFITEK: Shape(
        profitek.PAGE_VALIDATORS, profitek.page_items, "Data", {"Page": 1, "TotalPages": 1}, "TotalCount"
    ),
    Vendor.AUPHAN: Shape(auphan.PAGE_VALIDATORS, auphan.page_items, "items", {"nextCursor": None}, "totalCount"),
}
VENDORS = list(SHAPES)


@pytest.fixture(scope="module")
def pulled() -> dict[Vendor, tuple[Any, MappingContext, list[tuple[Stream, RawPage]]]]:
    """Every page of every stream of each vendor's seeded simulator store (200 records), as its client yields them."""
    found = {}
    for vendor in VENDORS:
        with seeded_connector(vendor, 200, page_size=50) as (connector, ctx):
            found[vendor] = (connector, ctx, list(raw_pages(connector)))
    return found  # the simulators stopped: mapping needs no request


def _as_stored(mapped: tuple[list[Any], list[dict[str, str]]]) -> tuple[list[tuple[str, str, str]], list[Any]]:
    records, quarantined = mapped
    return [(r.pos_id, *r.stored_form()) for r in records], quarantined


def _streams_of(connector: Any, stream: Stream) -> list[Stream]:
    return [stream, *(d for d, source in derived_streams(connector).items() if source is stream)]


def _engine_maps(vendor: Vendor, connector: Any, stream: Stream, body: bytes, ctx: MappingContext) -> Any:
    """What a pull maps from a page body: its payloads when the one call takes the page, else its items one by one."""
    shape = SHAPES[vendor]
    validated = shape.validators[stream](body)
    if validated is None:
        items: Any = shape.items(stream, body)
        payloads = None
    else:
        items = LazyItems(len(validated.payloads), lambda: shape.items(stream, body))
        payloads = validated.payloads
    return {s: _as_stored(map_page(connector, s, items, ctx, "page", payloads)) for s in _streams_of(connector, stream)}


def _per_item_maps(vendor: Vendor, connector: Any, stream: Stream, body: bytes, ctx: MappingContext) -> Any:
    items = SHAPES[vendor].items(stream, body)
    return {s: _as_stored(map_page(connector, s, items, ctx, "page")) for s in _streams_of(connector, stream)}


def _same_as_item_by_item(vendor: Vendor, connector: Any, stream: Stream, body: bytes, ctx: MappingContext) -> bool:
    """Whether the page maps as the per-item path maps it (or both refuse it with the same error); True when the one
    call took it."""
    try:
        expected = _per_item_maps(vendor, connector, stream, body, ctx)
    except Exception as exc:  # noqa: BLE001 - the per-item path refuses the page: so must the one call
        assert SHAPES[vendor].validators[stream](body) is None
        with pytest.raises(type(exc)):
            _engine_maps(vendor, connector, stream, body, ctx)
        return False
    assert _engine_maps(vendor, connector, stream, body, ctx) == expected
    return SHAPES[vendor].validators[stream](body) is not None


def _page_body(vendor: Vendor, items: list[Any]) -> bytes:
    shape = SHAPES[vendor]
    return json.dumps({shape.records_key: items, shape.total_key: len(items), **shape.envelope}).encode()


def _first_items(pulled: Any, vendor: Vendor, stream: Stream, count: int = 3) -> list[dict[str, Any]]:
    _, _, pages = pulled[vendor]
    page = next(page for s, page in pages if s is stream and page.items)
    return [dict(item) for item in SHAPES[vendor].items(stream, page.body)[:count]]


STREAMS = [(vendor, stream) for vendor in VENDORS for stream in SHAPES[vendor].validators]


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.value)
def test_every_simulator_page_is_validated_in_one_call_and_maps_as_item_by_item(pulled: Any, vendor: Vendor) -> None:
    # Given every page the client read from the vendor's seeded simulator
    connector, ctx, pages = pulled[vendor]
    pages = [(stream, page) for stream, page in pages if page.items]  # a window's last page may be empty
    assert {stream for stream, _ in pages} == set(SHAPES[vendor].validators)
    for stream, page in pages:
        # Then the client validated it in one call (its items are decoded only when read)
        assert page.payloads is not None and len(page.payloads) == len(page.items) > 0, stream
        assert isinstance(page.items, LazyItems)
        # And it maps from the payloads to the records, stored JSON and digests the items give one by one
        for also in _streams_of(connector, stream):
            fast = _as_stored(map_page(connector, also, page.items, ctx, "page", page.payloads))
            slow = _as_stored(map_page(connector, also, SHAPES[vendor].items(stream, page.body), ctx, "page"))
            assert fast == slow and fast[0], also
        # And the items, when read, and the envelope's total are the per-item path's
        assert list(page.items) == SHAPES[vendor].items(stream, page.body)
        assert page.total_records == count_field(json.loads(page.body), SHAPES[vendor].total_key)


@pytest.mark.parametrize(("vendor", "stream"), STREAMS, ids=lambda x: x.value)
def test_a_page_with_one_bad_field_maps_and_quarantines_as_item_by_item(
    pulled: Any, vendor: Vendor, stream: Stream
) -> None:
    # Given pages of three items whose middle one has one field replaced by a value a POS should not send
    connector, ctx, _ = pulled[vendor]
    items = _first_items(pulled, vendor, stream)
    taken = refused = 0
    for key in sorted(items[1]):
        for bad in BAD_VALUES:
            body = _page_body(vendor, [items[0], {**items[1], key: bad}, items[2]])
            # When the page is mapped as a pull maps it
            # Then its records and quarantine entries (stream, id, reason, field, item index) are the per-item path's
            if _same_as_item_by_item(vendor, connector, stream, body, ctx):
                taken += 1
            else:
                refused += 1
    assert taken > 0 and refused > 0  # the one call took some of them whole and refused others


def test_a_thsuite_blank_is_read_as_none_in_one_call(pulled: Any) -> None:
    # Given a patients page whose items have blank text in nullable fields (the model reads a blank as None)
    connector, ctx, _ = pulled[Vendor.THSUITE]
    items = _first_items(pulled, Vendor.THSUITE, Stream.CUSTOMERS)
    blanks = [{**items[0], "email": ""}, {**items[1], "phone": " \t", "loyalty_member": "\u3000"}, items[2]]
    body = _page_body(Vendor.THSUITE, blanks)
    # Then the one call takes the page, and its records are the per-item path's (no email, no phone)
    page = SHAPES[Vendor.THSUITE].validators[Stream.CUSTOMERS](body)
    assert page is not None
    assert page.payloads[0].email is None and page.payloads[1].phone is None and page.payloads[1].loyalty_member is None
    assert _same_as_item_by_item(Vendor.THSUITE, connector, Stream.CUSTOMERS, body, ctx)
    # And a blank where None is no value (a required id) refuses the page, mapped item by item
    body = _page_body(Vendor.THSUITE, [{**items[0], "id": " "}, items[1]])
    assert not _same_as_item_by_item(Vendor.THSUITE, connector, Stream.CUSTOMERS, body, ctx)


def test_an_item_that_fails_mapping_is_quarantined_at_its_index(pulled: Any) -> None:
    # Given a Profitek transactions page whose second has a status no mapping knows (valid payload, failing mapping)
    connector, ctx, _ = pulled[Vendor.PROFITEK]
    items = _first_items(pulled, Vendor.PROFITEK, Stream.SALES)
    body = _page_body(Vendor.PROFITEK, [items[0], {**items[1], "Status": "Teleported"}, items[2]])
    assert SHAPES[Vendor.PROFITEK].validators[Stream.SALES](body) is not None
    # When it is mapped from its payloads
    records, quarantined = _engine_maps(Vendor.PROFITEK, connector, Stream.SALES, body, ctx)[Stream.SALES]
    # Then the other two are stored and that one is quarantined at index 1, exactly as item by item
    assert len(records) == 2
    assert [(q["item_index"], q["pos_id"], q["reason"]) for q in quarantined] == [
        ("1", str(items[1]["TransactionID"]), "unknown transaction status 'Teleported'")
    ]
    assert _same_as_item_by_item(Vendor.PROFITEK, connector, Stream.SALES, body, ctx)


# Numbers and timestamps as JSON text: whole numbers written as floats (JSON mode alone reads `1.0` as Decimal('1')
# where json.loads' float gives Decimal('1.0')), exponents, out of range, past 64 bits, signed zero; timestamps
# naive, offset, as numbers, out of range once in UTC, odd spellings.
RAW_VALUES = (
    "1.0",
    "35.0",
    "0.0",
    "-0.0",
    "-0",
    "1e2",
    "1E+2",
    "1e16",
    "1.5e-7",
    "1e-400",
    "1e400",
    "-1e400",
    "NaN",
    "1" * 400,
    "1" * 30,
    "9007199254740993.0",
    "0.1000000000000000055511151231257827",
    "0.30000000000000004",
    "12.340",
    '"1e2"',
    '" 12.5 "',
    '"12.50"',
    "1700000000",
    "1700000000.5",
    '"1700000000"',
    "1e20",
    '"2026-04-17T11:24:56"',
    '"2026-04-17T11:24:56.1234567Z"',
    '"2026-04-17 11:24:56+05:30"',
    '"2026-04-17"',
    '"2026-04-17t11:24:56z"',
    '"9999-12-31T23:59:59-01:00"',
    '"0001-01-01T00:00:00+01:00"',
    '"2026-02-30T00:00:00Z"',
    '"2026-04-17T24:00:00"',
)


def _value_paths(item: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every field of an item, of its objects, and of the first element of each of its lists of objects."""
    for key, value in item.items():
        yield (*path, key)
        if isinstance(value, dict):
            yield from _value_paths(value, (*path, key))
        if isinstance(value, list) and value and isinstance(value[0], dict):
            yield from _value_paths(value[0], (*path, key, 0))


def _page_with_raw(vendor: Vendor, item: dict[str, Any], path: tuple[Any, ...], raw: str) -> bytes:
    """A one-item page whose value at `path` is the JSON text `raw` (json.dumps cannot write 1e400 or 1.0 as such)."""
    changed = json.loads(json.dumps(item))
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = "\x00raw\x00"
    return _page_body(vendor, [changed]).replace(json.dumps("\x00raw\x00").encode(), raw.encode())


@pytest.mark.parametrize(("vendor", "stream"), STREAMS, ids=lambda x: x.value)
def test_hostile_numbers_and_timestamps_map_as_item_by_item(pulled: Any, vendor: Vendor, stream: Stream) -> None:
    connector, ctx, _ = pulled[vendor]
    item = _first_items(pulled, vendor, stream, 1)[0]
    taken = 0
    for path in _value_paths(item):
        for raw in RAW_VALUES:
            # Given a page whose one item has that JSON text at that field, When a pull maps it
            # Then it gives the records and quarantine entries the per-item path gives (or fails as it fails)
            body = _page_with_raw(vendor, item, path, raw)
            try:
                taken += _same_as_item_by_item(vendor, connector, stream, body, ctx)
            except AssertionError as exc:
                raise AssertionError(f"{'.'.join(map(str, path))}={raw[:24]}") from exc
    assert taken > 0


def _bodies_json_loads_reads_otherwise(vendor: Vendor, item: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    key = SHAPES[vendor].records_key
    one = json.dumps(item)
    yield "lone surrogate", ('{"' + key + '": [' + one[:-1] + ', "note": "\\ud800"}]}').encode()
    yield "encoded surrogate", ('{"' + key + '": [' + one[:-1] + ', "note": "').encode() + b'\xed\xa0\x80"}]}'
    yield "duplicate field, last wins", ('{"' + key + '": [' + one + "], " + '"' + key + '": []}').encode()
    yield "byte order mark", b"\xef\xbb\xbf" + _page_body(vendor, [item])
    yield "trailing text", _page_body(vendor, [item]) + b" x"
    yield (
        "an ignored int past json.loads' digits",
        ('{"' + key + '": [' + one[:-1] + ', "n": 1' + "0" * 4300 + "}]}").encode(),
    )
    yield "not JSON", _page_body(vendor, [item])[:50]
    yield "items not a list", json.dumps({key: item}).encode()
    yield "an item not an object", json.dumps({key: [item, 7]}).encode()
    yield "empty page", _page_body(vendor, [])


@pytest.mark.parametrize(("vendor", "stream"), STREAMS, ids=lambda x: x.value)
def test_bodies_json_decoding_may_read_otherwise_map_as_item_by_item(
    pulled: Any, vendor: Vendor, stream: Stream
) -> None:
    connector, ctx, _ = pulled[vendor]
    item = _first_items(pulled, vendor, stream, 1)[0]
    for name, body in _bodies_json_loads_reads_otherwise(vendor, item):
        try:
            _same_as_item_by_item(vendor, connector, stream, body, ctx)
        except AssertionError as exc:
            raise AssertionError(name) from exc


# JSON texts for a decimal or datetime field (and whatever field they land in): floats in every spelling JSON allows,
# whole numbers, decimal texts with exponents, timestamps as text and as numbers.
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
_JSON_VALUES = st.one_of(
    _FLOATS.map(repr),
    _FLOATS.map(lambda f: format(f, ".17e")),
    _FLOATS.filter(lambda f: abs(f) < 1e22).map(lambda f: format(f, "f")),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.integers(min_value=-(10**6), max_value=10**6).map(lambda n: f"{n}.0"),
    st.decimals(allow_nan=False, allow_infinity=False).map(str).filter(lambda t: t[0] != "+"),
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: json.dumps(str(d))),
    st.datetimes().map(lambda d: json.dumps(d.isoformat())),
    st.datetimes(timezones=st.timezones()).map(lambda d: json.dumps(d.isoformat())),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.sampled_from(RAW_VALUES),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_values_map_as_item_by_item(pulled: Any, data: st.DataObject) -> None:
    vendor, stream = data.draw(st.sampled_from(STREAMS))
    connector, ctx, _ = pulled[vendor]
    item = _first_items(pulled, vendor, stream, 1)[0]
    path = data.draw(st.sampled_from(list(_value_paths(item))))
    raw = data.draw(_JSON_VALUES)
    _same_as_item_by_item(vendor, connector, stream, _page_with_raw(vendor, item, path, raw), ctx)


def test_page_validators_read_decimals_and_datetimes_from_the_decoded_value() -> None:
    # The payload models hold decimals and datetimes: compiled, not refused at import
    for shape in SHAPES.values():
        assert all(isinstance(validator, PageValidator) for validator in shape.validators.values())
