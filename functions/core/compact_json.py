"""A decoded document's member written back as the compact text `json.dumps(value, separators=(",", ":"))` gives, by
orjson where the two are proven to write the same bytes.

A Flourish page is identified by its items' compact JSON (its `meta.next` echoes the query, so its bytes differ on
every pull; functions.core.engine.page_digest). The archived-page index of every deployed credential holds digests
of the text json.dumps wrote, so the text must stay the same byte for byte; orjson writes it in a tenth of the CPU.
For a value `json.loads` made, the two write the same bytes except where orjson writes non-ASCII text and DEL raw
(json.dumps escapes them as `\\u00e9`, `\\u007f`, a pair of surrogates beyond the BMP: done here to orjson's text), a
float under 1e-4 as `0.00001` or `1e-7` (`1e-05`, `1e-07`) and a float that is not finite as `null` (`NaN`,
`Infinity`); ints beyond 64 bits, lone surrogates and nesting deeper than 255 it refuses. Small floats show in
orjson's text; for the others, either the document holds orjson's text verbatim as the member (a `null` there
decodes to None, never to a float) or no float of the document can be infinite or NaN. Anything else is written by
json.dumps, as before.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any, Final

import orjson

# orjson's forms of a float under 1e-4 (json.dumps writes `1e-05`): a negative exponent after a digit, or 0.0000….
_NEGATIVE_EXPONENT: Final = re.compile(rb"e-(?<=[0-9]e-)")  # a literal first: searched as fast as `in`
_FOUR_ZEROS: Final = b".0000"

# A JSON number that overflows a float (to infinity) has an exponent of three digits or more (`1e400`, `1E+0309`), or
# else 210 digits or more (`1` and 209 digits `e99`, 309 digits and no exponent): once every digit and point reads `0`,
# `E` reads `e` and `+` is dropped, it holds `e000` or 210 `0`s in a row.
_NUMBER_SHAPES: Final = bytes.maketrans(b"0123456789.E", b"00000000000e")
_OVERFLOWING: Final = (b"e000", b"0" * 210)


def compact_member(document: bytes, key: str, value: Any) -> bytes:
    """`json.dumps(value, separators=(",", ":")).encode()`, where `value` is `json.loads(document)[key]`."""
    try:
        text = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: an int beyond 64 bits, a lone surrogate, deep nesting
        return _stdlib(value)
    if _no_small_floats(text) and (_verbatim(document, key, text) or _finite_floats_only(document)):
        return _escaped_as_json_dumps(text)
    return _stdlib(value)


def _stdlib(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _no_small_floats(text: bytes) -> bool:
    """Whether orjson's `text` holds no float under 1e-4: then json.dumps writes what json.loads reads from it as
    `_escaped_as_json_dumps(text)` (every ASCII character, int and other finite float orjson writes as json.dumps)."""
    return _FOUR_ZEROS not in text and _NEGATIVE_EXPONENT.search(text) is None  # "Pre-Roll" is text, `1e-7` a number


def _escaped_as_json_dumps(text: bytes) -> bytes:
    """orjson's `text` (UTF-8 without lone surrogates) with DEL and every non-ASCII character escaped as json.dumps
    escapes them: they appear only inside strings there."""
    if not text.isascii():
        text = text.decode().encode("ascii", _JSON_ESCAPES)
    return text.replace(b"\x7f", b"\\u007f") if b"\x7f" in text else text


def _json_escapes(error: UnicodeError) -> tuple[str, int]:
    """The encoding error handler writing a run of non-ASCII characters as json.dumps' `ensure_ascii` does."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    escaped = []
    for character in error.object[error.start : error.end]:
        code = ord(character)
        if code > 0xFFFF:
            code -= 0x10000
            escaped.append(f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}")
        else:
            escaped.append(f"\\u{code:04x}")
    return "".join(escaped), error.end


_JSON_ESCAPES: Final = "possync.json_escapes"
codecs.register_error(_JSON_ESCAPES, _json_escapes)


def _verbatim(document: bytes, key: str, text: bytes) -> bool:
    """Whether `document` is `{"key":` + `text` + a rest naming no other `key` (not even escaped): then its member
    is what json.loads reads from `text` (an array or object ends where it closes), the value it was decoded to."""
    head = b'{"' + key.encode() + b'":'
    if text[:1] not in (b"[", b"{") or not document.startswith(head) or not document.startswith(text, len(head)):
        return False
    rest = document[len(head) + len(text) :]
    return b"\\" not in rest and b'"' + key.encode() + b'"' not in rest


def _finite_floats_only(document: bytes) -> bool:
    """No float decoded from `document` is infinite or NaN: it spells no `NaN` nor `Infinity` and holds no number
    that could overflow. Text that merely looks so (`E100` in a name) is refused too, at the price of json.dumps."""
    if b"NaN" in document or b"Infinity" in document:
        return False
    shapes = document.translate(_NUMBER_SHAPES, b"+")
    return not any(shape in shapes for shape in _OVERFLOWING)
