"""functions.core.json_bytes.loads gives json.loads' value, or its error, for every input orjson reads otherwise."""

from __future__ import annotations

import json
import random
import re
import struct

import pytest

from functions.core import json_bytes
from functions.core.errors import MalformedPageError

# Where orjson and json.loads differ or one of them refuses, and the ordinary cases beside them.
CASES = [
    b'{"a":1,"a":2}',
    b"[NaN, Infinity, -Infinity]",
    b"[1e400, -1e400, 1.7976931348623159e308, 1e-400]",
    b'["\\ud800", "\\udc00\\ud800", "\\ud83d\\ude00"]',
    b'"\xed\xa0\x80"',
    b'\xef\xbb\xbf{"a": 1}',
    '["Zoë"]'.encode("utf-16"),
    '["Zoë"]'.encode("utf-32-le"),
    b"[18446744073709551615, 18446744073709551616, -9223372036854775808, -9223372036854775809]",
    b"[123456789012345678901234567890, 1000000000000000000, 999999999999999999]",
    b'{"id": 12345678901234567890123, "name": "x"}',
    b"[9007199254740993, 9007199254740993.0, 2.2250738585072011e-308, 4.9406564584124654e-324, -0, -0.0, 1E2]",
    b'["\\u0000", "\\/", "\xe2\x80\xa8", "Zo\xc3\xab"]',
    b' {"a" : [true, false, null] }\r\n',
]
BAD = [b"", b'"\xff"', b'["\xc0\x80"]', b'["a\x01b"]', b"[01]", b"[1.]", b"[.5]", b"[+1]", b"[1,]", b"[1]\x00"]


def same(a: object, b: object) -> bool:
    """Equal values of the same types throughout (repr tells 1 from 1.0 and nan from nan)."""
    return repr(a) == repr(b)


@pytest.mark.parametrize("data", CASES)
def test_the_value_is_json_loads(data: bytes) -> None:
    assert same(json_bytes.loads(data), json.loads(data))


@pytest.mark.parametrize("data", BAD)
def test_bad_bytes_raise_json_loads_error(data: bytes) -> None:
    with pytest.raises(ValueError) as theirs:
        json.loads(data)
    with pytest.raises(ValueError) as ours:
        json_bytes.loads(data)
    assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


def test_random_numbers_decode_to_json_loads_values() -> None:
    rng = random.Random(13)
    floats: list[str] = []
    integers: list[str] = []
    for _ in range(20_000):
        kind = rng.random()
        if kind < 0.4:  # any finite double, as repr writes it
            value = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
            if value == value and abs(value) != float("inf"):
                floats.append(repr(value))
        elif kind < 0.7:  # long mantissas, exponents down to the subnormals
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 17)))
            floats.append(f"{rng.choice(['', '-'])}{rng.randint(1, 9)}.{digits}e{rng.randint(-340, 300)}")
        else:  # integers of up to 25 digits
            integers.append(f"{rng.choice(['', '-'])}{rng.randint(0, 10 ** rng.randint(1, 25))}")
    # floats with a run of 19 digits (repr writes 0.00012345678901234567 so) go to json.loads: tested apart
    long_floats = [literal for literal in floats if re.search(r"[0-9]{19}", literal)]
    floats = [literal for literal in floats if literal not in long_floats]
    for literals in (floats, long_floats, integers):
        data = ("[" + ",".join(literals) + "]").encode()
        assert same(json_bytes.loads(data), json.loads(data))
    # the floats were orjson's to decode (nothing in them refused, no run of 19 digits sent them to json.loads)
    assert json_bytes._NINETEEN_DIGITS not in ("[" + ",".join(floats) + "]").encode().translate(json_bytes._DIGITS_ONLY)


def test_a_vendor_page_that_is_not_json_is_a_malformed_page() -> None:
    import httpx

    from functions.core.http import parse_json

    request = httpx.Request("GET", "https://pos.example/api/customers")
    for body in [*BAD, b"[tru]", b"[NaN]"]:
        response = httpx.Response(200, content=body, request=request)
        try:
            expected = json.loads(body)
        except ValueError:
            with pytest.raises(MalformedPageError, match="not JSON for GET /api/customers"):
                parse_json(response, "posabit")
        else:
            assert same(parse_json(response, "posabit"), expected)
