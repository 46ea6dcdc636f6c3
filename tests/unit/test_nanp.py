"""normalize_phone's fast path for +1 numbers gives exactly what phonenumbers gives, on a large generated corpus."""

from __future__ import annotations

import random
from collections.abc import Iterator

import phonenumbers
import pytest

from functions.core import nanp
from functions.core.models import PLACEHOLDER_PHONES, normalize_phone


def reference(raw: str | None, default_region: str = "US") -> str | None:
    """normalize_phone as it was before the fast path: phonenumbers parse, is_valid_number, format E.164."""
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits[-10:] in PLACEHOLDER_PHONES and len(digits) in (10, 11):
        return None
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# Area codes of every +1 region (US, Canada, Puerto Rico, the Caribbean, the Pacific territories), special ones.
NANP_AREAS = [
    "206",
    "212",
    "416",
    "604",
    "787",
    "939",
    "242",
    "246",
    "264",
    "268",
    "284",
    "340",
    "345",
    "441",
    "473",
    "649",
    "658",
    "664",
    "670",
    "671",
    "684",
    "721",
    "758",
    "767",
    "784",
    "809",
    "829",
    "849",
    "868",
    "869",
    "876",
    "800",
    "888",
    "877",
    "900",
    "555",
    "311",
    "411",
    "911",
    "200",
    "299",
    "999",
    "370",
    "960",
    "600",
    "700",
    "500",
    "533",
]
SEPARATORS = ["", " ", "-", ".", "  ", "--", "/", " - "]
PREFIXES = ["", "1", "+1", "1 ", "+1 ", "1-", "+1-", "+ 1 ", "+11", "011", "+44 ", "0", "+"]


def _shapes(area: str, exchange: str, line: str, rng: random.Random) -> str:
    sep = rng.choice(SEPARATORS)
    body = f"({area}){rng.choice(['', ' '])}" if rng.random() < 0.3 else f"{area}{sep}"
    text = rng.choice(PREFIXES) + body + exchange + sep + line
    roll = rng.random()
    if roll < 0.05:
        text += rng.choice([" x12", " ext. 7", "#3", " ext 1234", ";ext=5"])
    elif roll < 0.08:
        text = rng.choice([" ", "\t", "tel:", "(", ""]) + text + rng.choice([" ", ")", ".", "\n", ""])
    elif roll < 0.1:
        text = text[: rng.randrange(len(text))]
    return text


def corpus(size: int, seed: int) -> Iterator[tuple[str, str]]:
    rng = random.Random(seed)
    # every area code 000-999 once, with a random exchange and line, in the plain shapes
    for number in range(1000):
        area = f"{number:03d}"
        exchange, line = f"{rng.randrange(1000):03d}", f"{rng.randrange(10000):04d}"
        yield f"{area}{exchange}{line}", "US"
        yield f"+1 ({area}) {exchange}-{line}", "US"
    # every exchange 000-999 under a US, a Canadian and a Caribbean area code
    for area in ("206", "416", "876"):
        for number in range(0, 1000, 3):
            yield f"{area}-{number:03d}-{rng.randrange(10000):04d}", "US"
    for _ in range(size):
        area = rng.choice(NANP_AREAS) if rng.random() < 0.6 else f"{rng.randrange(1000):03d}"
        exchange = rng.choice(["555", "0", "1", "911", "958", "976"]) if rng.random() < 0.2 else ""
        exchange = (exchange + f"{rng.randrange(1000):03d}")[:3]
        line = rng.choice(["0100", "0199", "1212", "0000"]) if rng.random() < 0.1 else f"{rng.randrange(10000):04d}"
        region = rng.choice(["US", "US", "US", "CA", "PR", "JM", "BS", "GB", "MX"])
        yield _shapes(area, exchange, line, rng), region


# Non-ASCII digits (phonenumbers reads them; the fast path leaves them to it).
ARABIC_INDIC_DIGITS = "".join(chr(0x0660 + int(d)) for d in "2065550100")
FULLWIDTH_DIGITS = "".join(chr(0xFF10 + int(d)) for d in "2065550100")
EDGE_CASES = [
    "",
    " ",
    "1234567890",
    "(123) 456-7890",
    "11234567890",
    "+1 123 456 7890",
    "0000000000",
    "555-555-5555",
    "5555555555",
    "206-555-0100",
    "206.555.0100",
    "(206)555-0100",
    "(206 555-0100",
    "206) 555-0100",
    "1-800-FLOWERS",
    "1-800-356-9377",
    "206-JKL-0100",
    "+44 20 7946 0958",
    "+52 55 1234 5678",
    "020 7946 0958",
    "+1",
    "1",
    "206",
    "2065550100 ext 12",
    "206-555-0100x4",
    "+12065550100",
    "12065550100",
    "2065550100",
    "+1 206 555 0100",
    "+1-206-555-0100",
    "1 (206) 555-0100",
    "+1(206)555-0100",
    "206 555 010",
    "206555010000",
    "+1 876 555 0100",
    "876-927-1234",
    "787-555-1234",
    "939 555 1234",
    "416-555-0199",
    "604 555 1234",
    "(671) 555-1234",
    "+16715551234",
    "911",
    "+1 911 555 1234",
    ARABIC_INDIC_DIGITS,
    FULLWIDTH_DIGITS,
    "+1 206 555 01 00",
    "206--555--0100",
    "206 - 555 - 0100",
    "1206 555 0100",
    "1 206 5550100",
    "+1 1 206 555 0100",
]


@pytest.mark.parametrize("region", ["US", "CA", "PR", "GB"])
def test_edge_cases_match_phonenumbers(region: str) -> None:
    for text in EDGE_CASES:
        assert normalize_phone(text, region) == reference(text, region), (text, region)


def test_generated_corpus_matches_phonenumbers() -> None:
    # Given every area code, every exchange of three areas, and random numbers of every +1 region in many typed
    # shapes (prefixes, punctuation, extensions, truncation, other countries), under several default regions
    mismatches = [
        (text, region, normalize_phone(text, region), reference(text, region))
        for text, region in corpus(2500, seed=13)
        if normalize_phone(text, region) != reference(text, region)
    ]
    # Then the fast path answers each exactly as phonenumbers does
    assert mismatches == []


def test_fast_path_takes_the_common_shapes_only() -> None:
    assert nanp.nanp_national("(206) 555-0147", "US") == "2065550147"
    assert nanp.nanp_national("+1 206 555 0147", "CA") == "2065550147"
    assert nanp.nanp_national("12065550147", "US") == "2065550147"
    # a Caribbean default region, letters, extensions and other countries are left to phonenumbers
    assert nanp.nanp_national("2065550147", "JM") is None
    assert nanp.nanp_national("206-555-CALL", "US") is None
    assert nanp.nanp_national("206-555-0147 x2", "US") is None
    assert nanp.nanp_national("+44 20 7946 0958", "US") is None


def test_validity_follows_the_number_region_rules() -> None:
    # a US number, a Jamaican one (region chosen by leading digits), an unassigned area code, a 555 exchange
    for national in ("2064281234", "8769271234", "3705551234", "2065550147", "8005550100", "9115551234"):
        expected = phonenumbers.is_valid_number(phonenumbers.PhoneNumber(country_code=1, national_number=int(national)))
        assert nanp.is_valid_nanp(national) is expected, national


def test_placeholders_in_every_typed_shape_match_the_reference() -> None:
    shapes = ("{}", "1{}", "+1{}", "+1 {}", "1-{}", "({}) {}-{}", "{}-{}-{}", "{}.{}.{}", "+1 ({}) {} {}", "{} {} {}x9")
    texts: list[str] = []
    for placeholder in [*sorted(PLACEHOLDER_PHONES), "9999999998", "5555555556", "2065550100"]:
        parts = (placeholder[:3], placeholder[3:6], placeholder[6:])
        texts += [shape.format(*parts) if shape.count("{}") == 3 else shape.format(placeholder) for shape in shapes]
    for region in ("US", "CA", "PR"):
        for text in texts:
            assert normalize_phone(text, region) == reference(text, region), (text, region)


def test_ten_digit_validity_in_one_regex_per_region_is_the_desc_by_desc_answer() -> None:
    # Given numbers of every area code and exchange first digit, and random ones
    rng = random.Random(29)
    numbers = [f"{area}{first}{rng.randint(0, 999999):06d}" for area in range(200, 1000) for first in range(2, 10)]
    numbers += [str(rng.randint(2 * 10**9, 10**10 - 1)) for _ in range(20000)]
    # Then the combined pattern of each region answers as its general and type patterns tried one by one
    assert [n for n in numbers if nanp.is_valid_nanp(n) != nanp._valid_by_descs(n)] == []
    assert sum(map(nanp.is_valid_nanp, numbers)) > len(numbers) // 4  # many valid, many not
