"""The item size rule and the text-or-compressed decision: exact at the 1 KB write unit, on both sides of it."""

from __future__ import annotations

import json
import random
import zlib
from typing import Any

import pytest
from isal import isal_zlib

from functions.core import record_items
from functions.core.record_items import DATA, DATA_Z, WRITE_UNIT_BYTES, attribute_bytes, data_attribute, record_json
from functions.core.wire_items import number_bytes


def test_every_attribute_type_is_sized_by_dynamodb_rules() -> None:
    item: dict[str, Any] = {
        "pk": {"S": "t1#posabit#c1#sale#5001"},  # 2 + 23
        "née": {"S": "Zoë"},  # names and values in UTF-8 bytes: 4 + 4
        "version": {"N": "12345"},  # 7 + (5 digits + 1) // 2 + 1
        "blob": {"B": b"\x00\x01\x02"},  # 4 + 3
        "flag": {"BOOL": True},  # 4 + 1
        "gone": {"NULL": True},  # 4 + 1
        "ids": {"SS": ["a", "bé"]},  # 3 + 1 + 3
        "m": {"M": {"a": {"S": "xy"}}},  # 1 + 3 + (1 + 2 + 1)
        "l": {"L": [{"N": "7"}, {"S": "ü"}]},  # 1 + 3 + (2 + 1) + (2 + 1)
    }
    expected = (2 + 23) + (4 + 4) + (7 + 4) + (4 + 3) + (4 + 1) + (4 + 1) + (3 + 4) + (1 + 3 + 4) + (1 + 3 + 3 + 3)
    assert attribute_bytes(item) == expected


def sized_rest(total_without_data: int) -> dict[str, Any]:
    """Attributes other than the JSON whose size is exactly `total_without_data` (one padded string)."""
    rest = {"pk": {"S": ""}, "kind": {"S": "sale"}, "version": {"N": "1"}}
    rest["pk"]["S"] = "p" * (total_without_data - attribute_bytes(rest))
    assert attribute_bytes(rest) == total_without_data
    return rest


@pytest.mark.parametrize("filler", ["a", "é"], ids=["ascii", "non-ascii"])
def test_an_item_of_exactly_one_write_unit_keeps_its_json_as_text_and_one_byte_more_is_compressed(filler: str) -> None:
    data = json.dumps({"name": filler * 200}, ensure_ascii=False)
    data_bytes = len(data.encode())
    at_limit = sized_rest(WRITE_UNIT_BYTES - len(DATA) - data_bytes)
    name, value = data_attribute(data, at_limit)
    assert name == DATA and attribute_bytes({**at_limit, name: value}) == WRITE_UNIT_BYTES
    over = sized_rest(WRITE_UNIT_BYTES - len(DATA) - data_bytes + 1)
    name, value = data_attribute(data, over)
    assert name == DATA_Z
    assert attribute_bytes({**over, name: value}) <= WRITE_UNIT_BYTES
    assert record_json({name: value}) == data


def sale_like_json(seed: int) -> tuple[str, bytes, bytes, bytes]:
    """Sale-like JSON of about 1.5 KB and its compressions: ISA-L's quick and fast levels, zlib's tightest."""
    rng = random.Random(seed)
    words = ["Sour", "Diesel", "Pre-roll", "Northwest", "Flower", "Gummies", "Vape", "Cart", "Indica", "Hybrid"]
    lines = [
        {"sku": f"SKU-{rng.randrange(10**6):06d}", "name": " ".join(rng.choices(words, k=4)), "q": rng.random()}
        for _ in range(12)
    ]
    data = json.dumps({"lines": lines})
    raw = data.encode()
    quick = isal_zlib.compress(raw, record_items.QUICK_LEVEL)
    fast = isal_zlib.compress(raw, record_items.FAST_LEVEL)
    tight = zlib.compress(raw, record_items.TIGHT_LEVEL)
    assert len(quick) > len(fast) > len(tight)
    return data, quick, fast, tight


def test_the_quick_level_is_used_when_it_fits_one_write_unit() -> None:
    data, quick, _, _ = sale_like_json(13)
    assert len(data) * record_items.QUICK_GUESS <= len(quick)  # the guess lets the quick level be tried
    rest = sized_rest(WRITE_UNIT_BYTES - len(DATA_Z) - len(quick))
    name, value = data_attribute(data, rest)
    assert name == DATA_Z and value["B"] == quick
    assert attribute_bytes({**rest, name: value}) == WRITE_UNIT_BYTES
    assert record_json({name: value}) == data


def test_the_fast_level_is_used_when_the_quick_one_leaves_the_item_over_one_write_unit() -> None:
    data, quick, fast, _ = sale_like_json(13)
    rest = sized_rest(WRITE_UNIT_BYTES - len(DATA_Z) - len(fast))
    name, value = data_attribute(data, rest)
    assert name == DATA_Z and value["B"] == fast
    assert attribute_bytes({**rest, name: value}) == WRITE_UNIT_BYTES < attribute_bytes(rest) + len(DATA_Z) + len(quick)
    assert record_json({name: value}) == data


def test_the_tightest_level_is_used_when_the_fast_one_leaves_the_item_over_one_write_unit() -> None:
    data, _, fast, tight = sale_like_json(13)
    rest = sized_rest(WRITE_UNIT_BYTES - len(DATA_Z) - len(tight))
    name, value = data_attribute(data, rest)
    assert name == DATA_Z and value["B"] == tight
    assert attribute_bytes({**rest, name: value}) == WRITE_UNIT_BYTES < attribute_bytes(rest) + len(DATA_Z) + len(fast)
    assert record_json({name: value}) == data


def test_json_that_compression_would_not_shrink_stays_text() -> None:
    data = '{"a":1}'  # zlib's header and checksum alone are longer than what it could save
    name, value = data_attribute(data, sized_rest(WRITE_UNIT_BYTES))
    assert name == DATA and value == {"S": data}


@pytest.mark.parametrize(
    ("number", "size"),
    [("0", 2), ("1", 2), ("9", 2), ("10", 2), ("99", 2), ("100", 3), ("12345", 4), ("1000000000000", 8),
     ("-12", 2), ("007", 2), ("0.5", 2), ("12.25", 3), ("-0.001", 2), ("1e5", 3)],
)  # fmt: skip
def test_a_number_is_billed_one_byte_per_two_significant_digits_plus_one(number: str, size: int) -> None:
    assert number_bytes(number) == size
