"""phonenumbers' parse, validation and E.164 of the common +1 phone shapes, the same answers at a fraction of the cost.

A pull normalizes every shopper's phone; `phonenumbers.parse` + `is_valid_number` + `format_number` cost about
120 µs a number, most of it Python walking the metadata. Typed North American numbers come in a few shapes
("(206) 555-0147", "206-555-0147", "+1 206 555 0147", "12065550147"); for those, with a default region whose
parsing rules are the plain NANP ones, parse gives country code 1 and the ten digits, so only validity is left. It is
decided here by phonenumbers' own rules over its own metadata (loaded from the package, not retyped): the region
of the number (leading digits, else the first region whose number types match, in phonenumbers' order), then
whether its general pattern and one of its type patterns match. Any other text goes to phonenumbers itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import phonenumbers
from phonenumbers.phonemetadata import PhoneMetadata, PhoneNumberDesc

# Default regions whose parsing of a ten-digit number, with or without "1" / "+1" before it, is NANP's plain one:
# national prefix "1", no rule that rewrites a number of ten digits (the Caribbean regions' rules prepend their
# area code to a seven-digit local number; they are left to phonenumbers).
FAST_REGIONS = frozenset({"US", "CA"})

# "+1" or "1", then area code (optionally in parentheses), exchange and line, at most one space, dot or hyphen
# between the groups. Area codes and exchanges starting 0/1 are left to phonenumbers (parse treats a leading 1 as
# the country code).
_SHAPE = re.compile(r"(?:\+1[ .\-]?|1[ .\-]?)?(?:\(([2-9]\d\d)\)|([2-9]\d\d))[ .\-]?(\d{3})[ .\-]?(\d{4})")

# The number types phonenumbers' `_number_type_helper` tries, in its order, before fixed line and mobile.
_TYPE_DESCS = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail")


@dataclass(frozen=True)
class _Desc:
    lengths: frozenset[int]
    pattern: str | None  # compiled when first matched (`_regex`): most are never needed

    def matches(self, national: str) -> bool:
        """phonenumbers' `_is_number_matching_desc`: lengths first (when any are listed), then the full pattern."""
        if not self.admits(len(national)):
            return False
        return self.pattern is not None and _regex(self.pattern).fullmatch(national) is not None

    def admits(self, length: int) -> bool:
        return not self.lengths or length in self.lengths


@dataclass(frozen=True)
class _Region:
    code: str
    leading_digits: re.Pattern[str] | None
    general: _Desc | None
    types: tuple[_Desc, ...]  # a number of any of these types (with `general`) is valid for the region

    def number_type_known(self, national: str) -> bool:
        """phonenumbers' `_number_type_helper(...) != UNKNOWN`."""
        if self.general is None or not self.general.matches(national):
            return False
        return any(desc.matches(national) for desc in self.types)

    def ten_digits_known(self) -> re.Pattern[str] | None:
        """`number_type_known` of a ten-digit number as one regex (fullmatch), or None when no ten-digit number
        is known: the general pattern as a lookahead, then the patterns of the types whose lengths admit ten
        digits as alternatives (the same answers, in one call instead of several regexes and Python around each)."""
        general = self.general
        if general is None or general.pattern is None or not general.admits(_TEN):
            return None
        patterns = [d.pattern for d in self.types if d.pattern is not None and d.admits(_TEN)]
        if not patterns:
            return None
        alternatives = "|".join(f"(?:{pattern})" for pattern in patterns)
        return re.compile(f"(?=(?:{general.pattern})\\Z)(?:{alternatives})")


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _desc(desc: PhoneNumberDesc | None) -> _Desc | None:
    if desc is None:
        return None
    return _Desc(frozenset(desc.possible_length or ()), desc.national_number_pattern or None)


def _nanp_regions() -> tuple[_Region, ...]:
    """The +1 regions, in phonenumbers' order (those it has metadata for)."""
    return tuple(region for index in range(len(_REGION_CODES)) if (region := _region(index)) is not None)


# The +1 region codes in phonenumbers' order; each region is built when a number first needs it (its metadata
# imported, its leading digits compiled): a process of US numbers builds the first one only, where building all 25
# cost about 15 ms of CPU (measured).
_REGION_CODES: tuple[str, ...] = tuple(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])
_REGIONS: dict[int, _Region | None] = {}


def _region(index: int) -> _Region | None:
    try:
        return _REGIONS[index]
    except KeyError:
        region = _REGIONS[index] = _build_region(_REGION_CODES[index])
        return region


def _build_region(code: str) -> _Region | None:
    metadata = PhoneMetadata.metadata_for_region(code.upper(), None)
    if metadata is None:
        return None
    # Fixed line and mobile first: nearly every number is one, and whether any type matches does not depend on
    # the order in which they are tried (phonenumbers' order decides only which type it names).
    names = ["fixed_line"]
    if not metadata.same_mobile_and_fixed_line_pattern:
        names.append("mobile")
    names += _TYPE_DESCS
    types = tuple(d for d in (_desc(getattr(metadata, name)) for name in names) if d is not None)
    leading = re.compile(metadata.leading_digits) if metadata.leading_digits is not None else None
    return _Region(code, leading, _desc(metadata.general_desc), types)


def is_valid_nanp(national: str) -> bool:
    """`phonenumbers.is_valid_number` of +1 `national` (ten digits, no leading zero)."""
    if len(national) != _TEN:
        return _valid_by_descs(national)
    for index in range(len(_REGION_CODES)):
        region = _region(index)
        if region is None:
            continue
        if region.leading_digits is not None:
            if region.leading_digits.match(national):
                known = _ten_digits_known(region)
                return known is not None and known.fullmatch(national) is not None
        else:
            known = _ten_digits_known(region)
            if known is not None and known.fullmatch(national) is not None:
                return True
    return False


def _valid_by_descs(national: str) -> bool:
    for region in _nanp_regions():
        if region.leading_digits is not None:
            if region.leading_digits.match(national):
                return region.number_type_known(national)
        elif region.number_type_known(national):
            return True
    return False


_TEN = 10

# Each region's `ten_digits_known` by its code, compiled when a number first needs it (a process of US numbers
# compiles the US one only: about 1 ms, where compiling every pattern of the 25 regions took about 18).
_KNOWN_TEN: dict[str, re.Pattern[str] | None] = {}


def _ten_digits_known(region: _Region) -> re.Pattern[str] | None:
    try:
        return _KNOWN_TEN[region.code]
    except KeyError:
        known = _KNOWN_TEN[region.code] = region.ten_digits_known()
        return known


def nanp_national(text: str, default_region: str) -> str | None:
    """The ten digits phonenumbers parses `text` (stripped) to, when it has one of the common +1 shapes and the
    default region parses them the plain NANP way; None when phonenumbers must parse it itself."""
    if default_region not in FAST_REGIONS:
        return None
    shape = _SHAPE.fullmatch(text)
    if shape is None:
        return None
    area, bare_area, exchange, line = shape.groups()
    return f"{area or bare_area}{exchange}{line}"
