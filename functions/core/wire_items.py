"""DynamoDB items written once, straight into their wire form: the JSON text a request body carries.

A pull writes thousands of record items, each of which used to be built as a dict of typed values, walked once to
size it (`record_items.attribute_bytes`) and once more to serialize the BatchWriteItem body. A `WireItem` is the item's
JSON text (every string escaped exactly as `json.dumps` escapes it: ASCII, `\\"`, `\\\\`, `\\n`, `\\u00e9`, lone
surrogates as `\\udXXX`; binary values base64-encoded, as the JSON protocol sends them), its billed size (summed from
the same parts as they are written) and its key. `functions.core.ddb_wire.wire_body` joins the texts of up to 25 of
them into a BatchWriteItem body without looking inside them.

A WireItem is also a read-only Mapping, the item as boto3's low-level client takes it (`{"pk": {"S": ...}}`, binary
values as bytes): parsed back from its own text on first use, so whoever reads it as a dict (botocore's serializer on
a client without the wire form, the bench's request observer, a test) sees exactly what is sent. Only items of
string, number and binary attributes are written this way.
"""

from __future__ import annotations

import base64
import json
from binascii import b2a_base64
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from json.encoder import encode_basestring_ascii
from typing import Any

import orjson

quoted = encode_basestring_ascii
"""A string as a JSON string: byte for byte what `json.dumps` (ensure_ascii, its default) writes."""

_dumps = orjson.dumps


def quoted_long(text: str) -> str:
    """`quoted(text)` for a long string (a record's JSON, the one big value of every item written).

    For ASCII text orjson writes the same JSON string (the same `\\"`, `\\\\`, `\\n`-style and `\\u00XX` escapes),
    except that it leaves DEL (U+007F) as it is where `json.dumps` writes `\\u007f`; such text, and any text beyond
    ASCII (which orjson would write as UTF-8, not `\\uXXXX`), is written by `quoted`. Measured: 5% fewer instructions
    in `RecordStore.upsert_changed` of 2,600 POSaBIT records (json's quoting of each record's JSON was 11% of them).
    tests/unit/test_wire_items.py compares the two on every ASCII character."""
    if text.isascii() and "\x7f" not in text:
        return _dumps(text).decode()
    return quoted(text)


def text_bytes(text: str) -> int:
    """A string's size as DynamoDB bills it: its UTF-8 bytes (one a character for ASCII, without encoding it)."""
    return len(text) if text.isascii() else len(text.encode())


def number_bytes(number: str) -> int:
    """A number's size as DynamoDB bills it: about one byte per two significant digits, plus one."""
    if number.isdigit() and number[0] != "0":  # a positive whole number (a version): every digit is significant
        return (len(number) + 1) // 2 + 1
    digits = number.lstrip("-").replace(".", "").lstrip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def member(name: str, kind: str) -> str:
    """The JSON text opening the attribute `name` of type `kind` ("S", "N", "B"), up to its value: `"name":{"S":`."""
    return f'{quoted(name)}:{{"{kind}":'


def binary_text(value: bytes) -> str:
    """A binary value as the JSON protocol carries it: base64 in a JSON string (`base64.b64encode`'s text, without its
    Python wrapper)."""
    return '"' + b2a_base64(value, newline=False).decode("ascii") + '"'


class WireText(Mapping[str, Any]):
    """A JSON object of request parameters written once as its text (`text`: what `json.dumps` writes for it), read
    as a Mapping from that same text when anything reads it as one."""

    __slots__ = ("_form", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._form: dict[str, Any] | None = None

    def form(self) -> dict[str, Any]:
        """The parameters as boto3's low-level client takes them, parsed from `text` (once)."""
        form = self._form
        if form is None:
            form = self._form = self._parsed()
        return form

    def _parsed(self) -> dict[str, Any]:
        return self.wire_form()

    def wire_form(self) -> dict[str, Any]:
        """The object as its JSON text holds it (binary values as base64 text): what `json.dumps` writes it from."""
        loaded: dict[str, Any] = json.loads(self.text)
        return loaded

    def __getitem__(self, name: str) -> Any:
        return self.form()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.form())

    def __len__(self) -> int:
        return len(self.form())

    def __contains__(self, name: object) -> bool:
        return name in self.form()

    def keys(self) -> KeysView[str]:
        return self.form().keys()

    def values(self) -> ValuesView[Any]:
        return self.form().values()

    def items(self) -> ItemsView[str, Any]:
        return self.form().items()

    def __repr__(self) -> str:  # never the values: they may carry personal data
        return f"{type(self).__name__}({len(self.text)} characters)"


class WireItem(WireText):
    """One item as its JSON text (`text`), its billed size in bytes (`size`) and its hash key: the string value `key`
    of the attribute `key_name`. Read as a Mapping, its binary values are bytes."""

    __slots__ = ("key", "key_name", "size")

    def __init__(self, key: str, text: str, size: int, key_name: str = "pk") -> None:
        self.text = text  # WireText's own two attributes, set here (one is made per record written)
        self._form = None
        self.key = key
        self.key_name = key_name
        self.size = size

    def _parsed(self) -> dict[str, Any]:
        form = self.wire_form()
        for value in form.values():
            if "B" in value:
                value["B"] = base64.b64decode(value["B"])
        return form
