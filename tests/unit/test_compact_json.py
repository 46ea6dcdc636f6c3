"""A Flourish page's identity (its items' compact JSON, functions.core.compact_json) is written by orjson: it must be
byte for byte what `json.dumps(items, separators=(",", ":"))` wrote before, for every document, or every deployed
credential's archived-page index would miss on the first re-pull after a deploy (each unchanged page archived again).
What orjson would write differently must be written by json.dumps."""

from __future__ import annotations

import json
import math
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.core import compact_json
from functions.core.compact_json import compact_member
from functions.core.layout import Vendor
from functions.pull_flourish import connector as flourish_connector
from tests.mapping_corpus import raw_pages, seeded_connector


def _before(document: bytes) -> bytes:
    """What the connector wrote before: json.dumps of the decoded document's items."""
    return json.dumps(json.loads(document)["data"], separators=(",", ":")).encode()


def _spellings(items: Any) -> list[bytes]:
    """One page's items in the documents a server may send: compact with escapes (as the simulator and Python write
    them) and with raw UTF-8 (as most servers write it), spaced, meta first, and the items alone under `data`."""
    compact = json.dumps({"data": items, "meta": {"next": None, "total": 1}}, separators=(",", ":"))
    raw = json.dumps({"data": items, "meta": {"next": None}}, separators=(",", ":"), ensure_ascii=False)
    return [
        compact.encode(),
        raw.encode("utf-8", "surrogatepass"),
        json.dumps({"data": items, "meta": {"next": "x"}}).encode(),
        json.dumps({"data": items, "meta": {}}, ensure_ascii=False).encode("utf-8", "surrogatepass"),
        json.dumps({"meta": {"total": 1}, "data": items}, separators=(",", ":")).encode(),
        json.dumps({"data": items}, separators=(",", ":")).encode(),
    ]


def _same_as_before(document: bytes) -> bytes:
    items = json.loads(document)["data"]
    written = compact_member(document, "data", items)
    assert written == _before(document), document[:200]
    return written


def test_every_simulator_page_is_identified_by_orjson_with_the_digest_json_dumps_gave() -> None:
    # Given every page a pull reads from a seeded Flourish simulator store, identified with json.dumps refusing to run
    with (
        seeded_connector(Vendor.FLOURISH, 400, page_size=100) as (connector, _),
        mock.patch.object(compact_json, "_stdlib", side_effect=AssertionError("json.dumps called")),
        mock.patch.object(flourish_connector, "compact_member", wraps=compact_member) as identify,
    ):
        pages = [page for _, page in raw_pages(connector) if page.items]
    # Then each identity is the bytes json.dumps wrote for its items (the digests the archive index holds)
    assert len(pages) >= 6
    assert identify.call_count >= len(pages)
    for page in pages:
        assert page.identity == _before(page.body)


def test_text_beyond_ascii_is_escaped_as_json_dumps_escapes_it_without_calling_it() -> None:
    # Given names beyond ASCII (and DEL), sent raw (most servers) or escaped (Python, PHP), compact or spaced
    items = [{"id": 1, "name": "José Ñandú\u2122 \U0001f600 \x7f 日本", "note": "\u00e9\n\u2028"}, "Ω"]
    for document in _spellings(items):
        # When it is identified with json.dumps refusing to run
        with mock.patch.object(compact_json, "_stdlib", side_effect=AssertionError("json.dumps called")):
            written = compact_member(document, "data", json.loads(document)["data"])
        # Then it is what json.dumps wrote: \uXXXX escapes in lower case, a surrogate pair beyond the BMP
        assert written == _before(document)
        assert b"\\ud83d\\ude00" in written and b"\\u007f" in written and written.isascii()


@pytest.mark.parametrize(
    "value",
    [
        "café",  # non-ASCII: json.dumps escapes it
        "\U0001f600 emoji",
        "\x7f",  # DEL: json.dumps escapes it, orjson does not
        "".join(chr(code) for code in range(0x7F)),  # every other ASCII character, controls among them
        "\ud800 lone surrogate",  # orjson refuses it
        "line\u2028separator",
        2**63 - 1,
        2**64 - 1,
        2**64,  # beyond 64 bits: orjson refuses it
        -(2**63) - 1,
        10**400,
        1e-4,
        9.99e-5,  # under 1e-4: 9.99e-05 by json.dumps, 0.0000999 by orjson
        1e-5,
        1.5e-7,
        -2.5e-6,
        5e-324,
        1e16,
        1.7976931348623157e308,
        -0.0,
        0.0,
        100.0,
        123456789012345.67,
        math.inf,  # NaN and Infinity: json.dumps writes them so, orjson writes null
        -math.inf,
        math.nan,
        True,
        None,
        "Pre-Roll e-7 1e-7 0.00001 NaN Infinity",  # what the checks look for, as text
        [[[[[[]]]]]],
    ],
)
def test_every_value_is_written_as_json_dumps_wrote_it_in_every_spelling(value: Any) -> None:
    items = [{"id": 1, "value": value, "list": [value]}, value]
    for document in _spellings(items):
        _same_as_before(document)


@pytest.mark.parametrize(
    "literal",
    ["1e400", "-1E+400", "1E0400", "1" + "0" * 400 + ".5", "1" + "0" * 250 + "e99", "10e308", "NaN", "-Infinity"],
)
def test_a_float_the_document_spells_as_infinite_or_nan_is_written_by_json_dumps(literal: str) -> None:
    # Given a number json.loads reads as infinite or NaN (orjson would write null for it)
    for document in (
        f'{{"data":[{{"price":{literal}}}],"meta":{{}}}}',
        f'{{"data": [ {{"price": {literal}}}, null ]}}',
        f'{{"meta":{{}},"data":[{literal}]}}',
    ):
        # Then its text is json.dumps'
        assert b"Infinity" in _same_as_before(document.encode()) or b"NaN" in _before(document.encode())


@pytest.mark.parametrize(
    "document",
    [
        b'{"data":[null],"data":[NaN]}',  # the last `data` is the one json.loads keeps
        b'{"data":[null],"meta":{},"data":[1e400]}',
        b'{"data":[null],"dat\\u0061":[Infinity]}',  # the same key, escaped
        b'{"data":[{"a":null,"a":NaN}]}',
        b'{"data":[{"a":null}],"x":"\\"data\\""}',
        b'{"data":[1],"data":[2]}',
        b'{"data":[0.00001],"meta":{}}',
        b'{"data":[1.0E-7, 1E2, 1e16, -0, 10.50]}',
        b'{"data":[{"a":"\\u00e9\\/\\u0041"}]}',  # escapes json.dumps does not write the same way
        b'\xef\xbb\xbf{"data":[1]}',  # a UTF-8 byte order mark, which json.loads skips
        b'{"data":{"id":1,"total":NaN}}',
        b'{"data":"text"}',
    ],
)
def test_documents_crafted_against_the_proof_are_written_as_json_dumps_wrote_them(document: bytes) -> None:
    _same_as_before(document)


_FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e-5, -3e-7, 9.9e-5, 1e16, 0.1, 12.5])
_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | _FLOATS
    | st.text(st.characters(codec=None, exclude_categories=()), max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(items=st.lists(_VALUES, max_size=4))
def test_any_decoded_items_are_written_as_json_dumps_wrote_them(items: list[Any]) -> None:
    for document in _spellings(items):
        _same_as_before(document)
