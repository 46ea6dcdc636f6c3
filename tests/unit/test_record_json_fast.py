"""A record's stored JSON is written by orjson from its fields (`functions.core.models.record_json`): it must be byte
for byte what pydantic's own serializer writes, for every value a record may hold, or the digest of every stored
record would change on the first pull after a deploy (each would be rewritten, and its consumers run again). What
orjson would write differently it must refuse, so that pydantic writes that record as before."""

from __future__ import annotations

import math
import struct
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, get_args
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from functions.core.engine import map_page
from functions.core.layout import Vendor
from functions.core.models import (
    _NESTED_MODELS,
    RECORD_MODELS,
    AppliedDiscount,
    CanonicalRecord,
    Discount,
    LoyaltyBalance,
    Product,
    Sale,
    SaleLine,
    Shopper,
    record_json,
)
from tests.mapping_corpus import simulator_pages

AT = datetime(2026, 3, 8, 9, 30, 1, 250, tzinfo=UTC)
ORIGIN: dict[str, Any] = {"tenant": "t1", "vendor": Vendor.POSABIT, "credential_id": "c1", "pos_id": "p1"}


def pydantic_json(record: CanonicalRecord) -> bytes:
    return record.__pydantic_serializer__.to_json(record)


def sale(**fields: Any) -> Sale:
    given_fields = {
        **ORIGIN,
        "source_updated_at": AT,
        "ordered_at": AT,
        "local_date": date(2026, 3, 8),
        "timezone": "America/Denver",
        "status": "completed",
        "subtotal_cents": 1000,
        "total_cents": 1100,
        **fields,
    }
    return Sale(**given_fields)


@pytest.mark.parametrize("vendor", list(Vendor), ids=lambda v: v.value)
def test_every_record_a_vendor_maps_is_written_as_pydantic_writes_it(vendor: Vendor) -> None:
    # Given every record mapped from the vendor's seeded simulator store (every kind it offers)
    records: list[CanonicalRecord] = []
    for connector, stream, items, ctx in simulator_pages(vendor, 300):
        records.extend(map_page(connector, stream, items, ctx, "archive/key")[0])
    assert {type(record) for record in records} >= {Shopper, Sale, Product}
    # Then each one's JSON is pydantic's, byte for byte, and orjson wrote it (no fallback on a POS's ordinary data)
    for record in records:
        assert record_json(record) == pydantic_json(record)
        orjson.dumps(record.__dict__, default=lambda m: m.__dict__, option=orjson.OPT_UTC_Z)


def _floats() -> list[float]:
    special = [0.0, -0.0, 0.1, 1.0, 2.5, 1e15, 1e16, 1e17, 1e21, 1e22, 1e-5, 1e-7, 5e-324, 1.7976931348623157e308]
    special += [float(2**53), float(2**53 + 2), 123456789.123, math.nan, math.inf, -math.inf]
    bits = [struct.unpack("<d", struct.pack("<Q", (n * 0x9E3779B97F4A7C15) % 2**64))[0] for n in range(1, 3000)]
    return special + bits


def test_float_text_is_the_same_for_every_kind_of_float() -> None:
    # Given line quantities and stock counts of every float shape: specials, shortest-repr edges, 3,000 bit patterns
    floats = _floats()
    lines = [SaleLine(quantity=value, total_cents=1) for value in floats]
    # Then a sale holding them, and products holding them, are written exactly as pydantic writes them
    for start in range(0, len(lines), 100):
        record = sale(lines=tuple(lines[start : start + 100]))
        assert record_json(record) == pydantic_json(record)
    for value in floats[:200]:
        product = Product(**ORIGIN, source_updated_at=AT, name="n", quantity_on_hand=value)
        assert record_json(product) == pydantic_json(product)


def test_text_of_every_character_class_is_escaped_as_pydantic_escapes_it() -> None:
    # Given names holding every character below U+0800, the line separators, a BOM, astral and combining characters
    characters = [chr(code) for code in range(0x800)] + ["\u2028", "\u2029", "\ufeff", "\U0001f600", "e\u0301", "\x7f"]
    for character in characters:
        shopper = Shopper(**ORIGIN, source_updated_at=AT, first_name=f"a{character}b", last_name=character * 3)
        # Then each one's JSON is pydantic's
        assert record_json(shopper) == pydantic_json(shopper), hex(ord(character[0]))


def test_timestamps_with_and_without_fractions_and_from_other_zones() -> None:
    moments = [
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 6, 1, 12, 0, 0, 500000, tzinfo=timezone(timedelta(hours=-6, seconds=30))),
    ]
    for moment in moments:
        balance = LoyaltyBalance(**ORIGIN, source_updated_at=moment, customer_pos_id="c", points=-5, as_of=moment)
        assert record_json(balance) == pydantic_json(balance)
        discount = Discount(**ORIGIN, source_updated_at=moment, name="d", starts_at=moment, ends_at=None)
        assert record_json(discount) == pydantic_json(discount)


@pytest.mark.parametrize(
    "tender",
    [
        {"reference": 2**64},  # beyond 64 bits: orjson refuses, pydantic writes it
        {"reference": -(2**63) - 1},
        {"type": "cash", "ids": {1, 2}},  # a set
        {"raw": b"\x00bytes"},
        {"nested": {1: "non-text key"}},
        {"how_long": timedelta(seconds=90)},
        {"amount": Decimal("1.10")},
        {"reference": 2**63 - 1, "note": None, "tags": ("a", 1, 2.5, True), "at": AT, "on": date(2026, 1, 1)},
        {"nested": {"deeper": [{"x": [1.5, None, "é"]}]}, "at": datetime(2026, 1, 1, tzinfo=timezone(timedelta(0)))},
        {
            "zones": [
                datetime(2026, 1, 1, 1, 2, 3, tzinfo=ZoneInfo(name))
                for name in ("UTC", "Europe/London", "Asia/Kolkata")
            ]
        },
        {"odd_offset": datetime(2026, 1, 1, 1, 2, 3, 4, tzinfo=timezone(timedelta(seconds=-1)))},
    ],
    ids=lambda tender: ",".join(sorted(tender)),
)
def test_tender_values_orjson_would_write_differently_are_written_by_pydantic(tender: dict[str, Any]) -> None:
    # Given a sale whose tender holds values of every kind (some orjson refuses to write, some it writes natively)
    record = sale(tenders=(tender,), discounts=(AppliedDiscount(pos_discount_id="d1", name="Ten off"),))
    # Then its JSON is pydantic's all the same
    assert record_json(record) == pydantic_json(record)


def test_text_pydantic_refuses_to_write_is_refused_the_same_way() -> None:
    # Given a name holding a lone surrogate (no UTF-8 for it): pydantic refused to write such a record
    shopper = Shopper(**ORIGIN, source_updated_at=AT, first_name="a\ud800b")
    # Then it still does, with the same error (the pull quarantines nothing new and writes nothing wrong)
    with pytest.raises(PydanticSerializationError, match="surrogates not allowed"):
        pydantic_json(shopper)
    with pytest.raises(PydanticSerializationError, match="surrogates not allowed"):
        record_json(shopper)


def test_every_model_a_record_holds_is_one_record_json_writes_itself() -> None:
    # Given every field of every record model: a nested model missing from _NESTED_MODELS would still be written
    # right (pydantic writes the record) but without the speed-up, silently
    nested: set[type[BaseModel]] = set()

    def collect(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested.add(annotation)
        for inner in get_args(annotation):
            collect(inner)

    for model in RECORD_MODELS.values():
        for info in model.model_fields.values():
            collect(info.annotation)
    assert nested == set(_NESTED_MODELS)


text = st.text(max_size=12)
optional_text = st.none() | text
whole = st.integers(min_value=-(10**15), max_value=10**15)
offsets = st.integers(min_value=-86_399, max_value=86_399).map(lambda seconds: timezone(timedelta(seconds=seconds)))
# Moments a record holds: a day inside datetime's range, so that every offset converts to UTC (one that cannot is the
# record's validation error, tests/unit/test_models.py).
inside = {"min_value": datetime(1, 1, 2), "max_value": datetime(9999, 12, 30)}
moment = st.datetimes(timezones=st.just(UTC), **inside) | st.datetimes(timezones=offsets, **inside)


@settings(max_examples=100, deadline=None)
@given(
    first_name=optional_text,
    email=optional_text,
    birth_date=st.none() | st.dates(),
    flags=st.lists(st.none() | st.booleans(), min_size=4, max_size=4),
    created=st.none() | moment,
    updated=moment,
)
def test_any_shopper_is_written_as_pydantic_writes_it(
    first_name: str | None,
    email: str | None,
    birth_date: date | None,
    flags: list[bool | None],
    created: datetime | None,
    updated: datetime,
) -> None:
    shopper = Shopper(
        **ORIGIN,
        source_updated_at=updated,
        first_name=first_name,
        email=email,
        birth_date=birth_date,
        loyalty_member=flags[0],
        marketing_opt_in=flags[1],
        sms_opt_in=flags[2],
        sms_opt_out=flags[3],
        pos_created_at=created,
    )
    try:
        expected = pydantic_json(shopper)
    except PydanticSerializationError:
        with pytest.raises(PydanticSerializationError):
            record_json(shopper)
        return
    assert record_json(shopper) == expected


@settings(max_examples=100, deadline=None)
@given(
    lines=st.lists(
        st.builds(
            SaleLine,
            name=optional_text,
            quantity=st.floats(allow_nan=True, allow_infinity=True),
            total_cents=whole,
            discount_cents=whole,
            is_refund=st.booleans(),
        ),
        max_size=4,
    ),
    tenders=st.lists(
        st.dictionaries(
            text,
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats() | text,
                lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                max_leaves=6,
            ),
            max_size=3,
        ),
        max_size=3,
    ),
    amounts=st.lists(whole, min_size=3, max_size=3),
    customer=optional_text,
)
def test_any_sale_is_written_as_pydantic_writes_it(
    lines: list[SaleLine], tenders: list[dict[str, Any]], amounts: list[int], customer: str | None
) -> None:
    record = sale(
        lines=tuple(lines),
        tenders=tuple({**tender, "amount_cents": amounts[0]} for tender in tenders),
        subtotal_cents=amounts[1],
        total_cents=amounts[2],
        customer_pos_id=customer,
    )
    try:
        expected = pydantic_json(record)
    except PydanticSerializationError:
        with pytest.raises(PydanticSerializationError):
            record_json(record)
        return
    assert record_json(record) == expected
