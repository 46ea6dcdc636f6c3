"""A number no POS would send (too large to turn into cents, or with an exponent past what Decimal arithmetic takes)
in any numeric field of an item is that item's problem: it is quarantined (or, in a field that is no amount such as an
id sent as a number, kept as text), and the rest of its page is mapped. An exception out of `map_page` would fail the
whole pull on one record, every time it is retried; a record holding such an amount would fail every consumer batch
that read it (a DynamoDB number holds 38 digits)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from functions.core.engine import map_page
from functions.core.layout import Vendor
from functions.core.models import MAX_WHOLE_AMOUNT
from tests.mapping_corpus import simulator_pages

HOSTILE = ("1E+999999", 10**400, "-1E+999999", 1e308)


def _numeric_paths(item: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every numeric value in an item: its own fields, and those of the first element of each list of objects."""
    if isinstance(item, dict):
        for key, value in item.items():
            yield from _numeric_paths(value, (*path, key))
    elif isinstance(item, list) and item and isinstance(item[0], dict):
        yield from _numeric_paths(item[0], (*path, 0))
    elif isinstance(item, (int, float)) and not isinstance(item, bool):
        yield path
    elif isinstance(item, str) and item.replace(".", "", 1).lstrip("-").isdigit() and "." in item:
        yield path  # money sent as text ("12.50")


def _whole_numbers(value: Any) -> Iterator[int]:
    if isinstance(value, dict):
        for part in value.values():
            yield from _whole_numbers(part)
    elif isinstance(value, (list, tuple)):
        for part in value:
            yield from _whole_numbers(part)
    elif isinstance(value, int) and not isinstance(value, bool):
        yield value


def _set(item: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(item)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize("vendor", list(Vendor), ids=lambda v: v.value)
def test_a_hostile_number_quarantines_its_item_and_spares_the_page(vendor: Vendor) -> None:
    tried = 0
    seen: set[object] = set()
    for connector, stream, items, ctx in simulator_pages(vendor, records=20):
        if not items or stream in seen:  # the first page of each stream
            continue
        seen.add(stream)
        first = items[0]
        for path in _numeric_paths(first):
            for value in HOSTILE:
                page = [_set(first, path, value), *items[1:3]]
                records, quarantined = map_page(connector, stream, page, ctx, "raw/key.json.gz")
                tried += 1
                assert len(records) + len(quarantined) == len(page), (stream, path, value)
                assert all(entry["item_index"] == "0" for entry in quarantined), (stream, path, value)
                for entry in quarantined:  # the reason names the problem, never the value
                    assert "999999" not in entry["reason"] and str(10**400)[:30] not in entry["reason"]
                for record in records:  # what is stored holds no amount a DynamoDB number or a consumer chokes on
                    record.stored_form()
                    assert all(abs(n) <= MAX_WHOLE_AMOUNT for n in _whole_numbers(record.model_dump())), (path, value)
    assert tried > 0
