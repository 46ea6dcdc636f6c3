"""A canonical record's stored JSON and digest, and the per-record shortcuts of the mappings, give exactly what the
general code gives: pydantic's own `model_dump_json`, `astimezone(UTC)`, `str.strip()`, an ABC check, for hostile
values too (unicode, huge strings, offsets, naive times, blanks of every whitespace kind, mapping types)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from functions.core.connector import MappingContext, MappingError
from functions.core.layout import RecordKind, Stream, Vendor
from functions.core.models import (
    CONTENT_HASH_PREFIX,
    MAX_WHOLE_AMOUNT,
    RECORD_MODELS,
    AppliedDiscount,
    CanonicalRecord,
    Discount,
    LoyaltyBalance,
    Product,
    Sale,
    SaleLine,
    Shopper,
    read_record,
)
from functions.pull_flourish.mapping import FlourishCustomer
from functions.pull_posabit import mapping as posabit
from functions.pull_thsuite.mapping import ThsuitePatient

AT = datetime(2026, 3, 8, 9, 30, tzinfo=UTC)
HOSTILE_TEXT = ('Zoë 😀 \u202e "quoted" \\ back \u0000', "x" * 200_000, "日本語", "")


def origin(**extra: Any) -> dict[str, Any]:
    return {
        "tenant": "t1",
        "vendor": Vendor.POSABIT,
        "credential_id": "c1",
        "pos_id": "p1",
        "source_updated_at": AT,
    } | extra


def one_of_each(text: str) -> list[CanonicalRecord]:
    line = SaleLine(name=text or None, quantity=-1.5, total_cents=-250, is_refund=True)
    return [
        Shopper(**origin(first_name=text, email="A@B.COM", phone="+14155550100", birth_date=date(1990, 1, 1))),
        Sale(
            **origin(
                ordered_at=AT,
                local_date=date(2026, 3, 8),
                timezone="America/Los_Angeles",
                status="partially_refunded",
                subtotal_cents=-MAX_WHOLE_AMOUNT,  # the largest amounts a record may hold
                total_cents=MAX_WHOLE_AMOUNT,
                lines=(line, line),
                tenders=({"method": text, "amount_cents": 1, "nested": {"a": [1, 2.5, None]}},),
                discounts=(AppliedDiscount(pos_discount_id="d1", name=text),),
            )
        ),
        Product(**origin(name=text or "n", quantity_on_hand=1e-7, price_cents=None)),
        LoyaltyBalance(**origin(customer_pos_id="p1", points=-5, as_of=AT)),
        Discount(**origin(name=text or "n", starts_at=AT, daily_start="16:00", daily_end="18:00")),
    ]


@pytest.mark.parametrize("text", HOSTILE_TEXT, ids=["unicode", "huge", "cjk", "empty"])
def test_the_stored_json_is_pydantic_own_json_and_the_digest_is_of_exactly_it(text: str) -> None:
    for record in one_of_each(text):
        data, digest = record.stored_form()
        assert data == record.model_dump_json()
        assert digest == CONTENT_HASH_PREFIX + hashlib.blake2b(data.encode(), digest_size=16).hexdigest()
        assert json.loads(data)["kind"] == record.kind.value
        assert read_record(record.kind, data) == record  # the stored JSON reads back into the same record


def test_the_kind_is_its_value_in_json_and_the_member_in_python() -> None:
    for kind, model in RECORD_MODELS.items():
        record = next(r for r in one_of_each("n") if isinstance(r, model))
        assert record.model_dump()["kind"] is kind
        assert record.model_dump(mode="json")["kind"] == kind.value
        assert record.model_dump_json().startswith('{"kind":"' + kind.value + '","tenant":')
        assert type(read_record(kind, record.model_dump_json()).kind) is RecordKind


def test_a_kind_other_than_the_model_own_is_still_refused() -> None:
    with pytest.raises(ValidationError):
        Shopper.model_validate_json(Sale.model_validate(one_of_each("n")[1]).model_dump_json().replace("sale", "shop"))
    with pytest.raises(ValidationError):
        Shopper(**origin(kind=RecordKind.SALE))


@pytest.mark.parametrize(
    "moment",
    [
        AT,
        AT.replace(tzinfo=timezone(timedelta(hours=-7))),
        AT.replace(tzinfo=ZoneInfo("UTC")),  # UTC, but not the `UTC` object: converted like any other zone
        AT.replace(tzinfo=ZoneInfo("America/Los_Angeles"), fold=1),
        datetime.fromisoformat("2026-03-08T10:00:00Z"),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_a_timestamp_is_stored_as_its_utc_instant_whatever_zone_it_came_in(moment: datetime) -> None:
    shopper = Shopper(**origin(source_updated_at=moment, pos_created_at=moment))
    for value in (shopper.source_updated_at, shopper.pos_created_at):
        assert value == moment.astimezone(UTC) and value.tzinfo is UTC
        assert value.utcoffset() == timedelta(0)


def test_a_naive_timestamp_is_still_refused() -> None:
    with pytest.raises(ValidationError, match="timestamp has no timezone"):
        Shopper(**origin(source_updated_at=AT.replace(tzinfo=None)))


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(seconds=1))),  # before year 1 in UTC
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(-timedelta(hours=1))),  # after year 9999 in UTC
    ],
)
def test_a_timestamp_outside_utc_range_is_the_fields_validation_error(moment: datetime) -> None:
    # A plain OverflowError would name no field (map_page quarantined it as "a number out of range").
    with pytest.raises(ValidationError, match="source_updated_at") as raised:
        Shopper(**origin(source_updated_at=moment))
    assert "timestamp out of range once converted to UTC" in str(raised.value)


BLANKS = ["", " ", "\t\n\r\x0b\x0c", "\u3000", "\u00a0", "\u2028", "\x1c\x1d\x1e\x1f", "\u1680\u2000\u200a"]
NOT_BLANK = ["\u200b", "x", " x ", "\ufeff", "0"]


@pytest.mark.parametrize("value", BLANKS + NOT_BLANK)
def test_thsuite_reads_a_value_as_blank_exactly_when_strip_leaves_nothing(value: str) -> None:
    # Given a patient whose first name is only whitespace of some kind (or not whitespace at all)
    patient = ThsuitePatient.model_validate({"id": "7", "first_name": value, "updated_at": "2026-01-01T00:00:00Z"})
    # Then it is absent exactly when str.strip() (the rule before) leaves nothing
    assert (patient.first_name is None) == (not value.strip())
    assert patient.first_name in (None, value)


def test_flourish_alternatives_apply_to_any_mapping_not_only_a_dict() -> None:
    item = {"id": "c1", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z"}
    for given in (item, MappingProxyType(item)):
        customer = FlourishCustomer.model_validate(given)
        assert customer.created_timestamp == "2026-01-01T00:00:00Z"
        assert customer.last_updated_timestamp == "2026-01-02T00:00:00Z"


def test_posabit_names_a_stream_it_does_not_offer() -> None:
    ctx = MappingContext(tenant="t1", vendor=Vendor.POSABIT, credential_id="c1")
    with pytest.raises(MappingError, match="POSaBIT does not offer the weather stream"):
        posabit.map_record(cast(Stream, _UnknownStream()), {"id": 1}, ctx)
    with pytest.raises(MappingError) as bad:
        posabit.map_record(Stream.CUSTOMERS, {"id": True, "updated_at": "2026-01-01T00:00:00Z"}, ctx)
    assert bad.value.reason == "id: Value error, an id cannot be a boolean"


class _UnknownStream:
    """Stands for a stream member the mapping does not know."""

    value = "weather"
