"""How a record's JSON is held in its records table item: as text, or zlib-compressed where text would cost twice.

DynamoDB charges one write unit per started kilobyte of an item. Most records fit in one; a sale with a few lines
does not (its JSON alone is about 900 bytes), so every new or changed sale cost two units. An item that would be over
1 KB with its JSON as text stores the JSON zlib-compressed in `data_z` (binary) instead of `data` (text), when that
is smaller. The content digest is always taken over the JSON text (`CanonicalRecord.stored_form`), so whichever form
an item holds, an unchanged record is recognised as unchanged and nothing is rewritten. Every reader goes through
`record_json`, which takes either form: bytes (boto3), or base64 text (a Lambda stream event's JSON).
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping
from typing import Any

from isal import isal_zlib

from functions.core.wire_items import number_bytes, text_bytes

DATA = "data"  # the record's JSON as text
DATA_Z = "data_z"  # the record's JSON, zlib-compressed (binary)
# One write unit covers an item of up to this many bytes (attribute names and values, UTF-8).
WRITE_UNIT_BYTES = 1024
# How `data_z` is compressed. Only the write units an item takes count (a byte saved under 1 KB saves nothing; storage
# of a few bytes more is free next to a second write unit, $0.625 per 1M), so the cheapest compression that fits the
# item in one unit wins. Measured on every vendor's sales: ISA-L's level 0 takes about a third of the CPU of its level
# 1 but fits only 12-69% of them; its level 1 fits all but the largest (Auphan's, 7%) at under half of zlib's CPU;
# zlib's level 9 is the last resort. Level 0 is tried only where it is likely to fit: its output is about 40-45% of
# the JSON, so when half the JSON fits. Every choice is checked by its exact size. All write the zlib format (RFC
# 1950): every reader decompresses any of them with `zlib.decompress`.
QUICK_LEVEL = 0  # isal_zlib, tried when QUICK_GUESS of the JSON would fit
QUICK_GUESS = 0.5
FAST_LEVEL = 1  # isal_zlib
TIGHT_LEVEL = 9  # zlib


def _value_bytes(kind: str, inner: Any) -> int:
    if kind == "S":
        return text_bytes(inner)
    if kind == "N":
        return number_bytes(str(inner))
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_bytes(*next(iter(v.items()))) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(_value_bytes(*next(iter(v.items()))) + 1 for v in inner)
    return sum(len(str(v).encode()) for v in inner)  # SS, NS, BS


def attribute_bytes(item: Mapping[str, Mapping[str, Any]]) -> int:
    """The size DynamoDB bills for an item (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/
    CapacityUnitCalculations.html): names and values in UTF-8 bytes, numbers about one byte per two digits + 1,
    3 bytes per map or list plus 1 per element."""
    # Every item is sized before it is written, so the common case is quick: the names at once, and ASCII strings
    # (nearly every value) as one byte a character, without encoding them.
    names = "".join(item)
    size = len(names) if names.isascii() else len(names.encode())
    for value in item.values():
        text = value.get("S")
        if text is not None and text.isascii():
            size += len(text)
        else:
            for kind, inner in value.items():
                size += _value_bytes(kind, inner)
    return size


def data_attribute(data: str, rest: Mapping[str, Mapping[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The attribute (name, value) holding `data` in an item whose other attributes are `rest`: text when the item
    fits one write unit that way (the size is exact: `attribute_bytes` of the whole item), else compressed when that
    is smaller."""
    name, value = data_value(data, attribute_bytes(rest))
    return name, ({"B": value} if isinstance(value, bytes) else {"S": value})


def data_value(data: str, rest_bytes: int) -> tuple[str, str | bytes]:
    """The attribute name holding `data` and its value (`data` itself, or its compressed bytes) in an item whose other
    attributes take `rest_bytes` (as `attribute_bytes` sizes them): text when the item fits one write unit that way,
    else compressed when that is smaller."""
    ascii_text = data.isascii()
    if rest_bytes + len(DATA) + (len(data) if ascii_text else len(data.encode())) <= WRITE_UNIT_BYTES:
        return DATA, data
    raw = data.encode("ascii") if ascii_text else data.encode()
    packed = _compress(raw, WRITE_UNIT_BYTES - rest_bytes - len(DATA_Z))
    if len(packed) + len(DATA_Z) < len(raw) + len(DATA):
        return DATA_Z, packed
    return DATA, data


def _compress(raw: bytes, room: int) -> bytes:
    """`raw` zlib-compressed by the cheapest level whose output is at most `room` bytes (else the smallest)."""
    if len(raw) * QUICK_GUESS <= room:
        quick = isal_zlib.compress(raw, QUICK_LEVEL)
        if len(quick) <= room:
            return quick
    packed = isal_zlib.compress(raw, FAST_LEVEL)
    if len(packed) > room:
        tighter = zlib.compress(raw, TIGHT_LEVEL)
        if len(tighter) < len(packed):
            return tighter
    return packed


def record_json(item: Mapping[str, Any]) -> str | None:
    """The record's JSON from a records table item in either form; None when the item holds neither. Raises
    ValueError when `data_z` is not valid base64/zlib (a damaged item)."""
    text = item.get(DATA)
    if isinstance(text, Mapping) and isinstance(text.get("S"), str):
        return str(text["S"])
    packed = item.get(DATA_Z)
    if not isinstance(packed, Mapping) or "B" not in packed:
        return None
    value = packed["B"]
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else bytes(value)
        return zlib.decompress(raw).decode()
    except (binascii.Error, zlib.error, UnicodeDecodeError, TypeError) as exc:
        raise ValueError(f"the item's {DATA_Z} is not zlib-compressed JSON ({type(exc).__name__})") from None


# Attributes a reader projects to get the record's JSON in either form.
PROJECTION = f"#{DATA}, {DATA_Z}"
PROJECTION_NAMES = {f"#{DATA}": DATA}


def record_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    """The record's fields (tenant, credential_id, pos_id, ...) as its item holds them, decoded from either form."""
    text = record_json(item)
    if text is None:
        raise ValueError("the item holds no record JSON")
    fields: dict[str, Any] = json.loads(text)
    return fields
