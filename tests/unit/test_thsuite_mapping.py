"""THSuite mapping on recorded pages: patients, receipts with returns, inventory, loyalty; naive and offset times."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from functions.core.connector import MappingContext, MappingError
from functions.core.layout import RecordKind, Stream, Vendor
from functions.core.models import LoyaltyBalance, Product, Sale, Shopper, dollars_to_cents
from functions.pull_thsuite.mapping import (
    ThsuiteStore,
    _cents,
    item_id,
    map_record,
    mapping_context,
    resolve_timezone,
    to_utc,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "thsuite"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def page(name: str) -> dict[str, dict[str, Any]]:
    """A recorded page's items by their id (patient_id for loyalty balances)."""
    return {str(i.get("id", i.get("patient_id"))): i for i in load(name)["data"]}


@pytest.fixture
def pacific() -> MappingContext:
    """The WA store: its /store answer is a bare object with an IANA zone."""
    return mapping_context(ThsuiteStore.model_validate(load("store_iana_bare.json")), tenant="t1", credential_id="c1")


@pytest.fixture
def mountain() -> MappingContext:
    """The CO store: its /store answer is wrapped in data and names a Windows zone."""
    store = ThsuiteStore.model_validate(load("store_windows_timezone.json")["data"])
    return mapping_context(store, tenant="t1", credential_id="c2")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# --- store context and time ------------------------------------------------------------------------------------


def test_store_context_translates_a_windows_zone_and_keeps_the_store_id(mountain: MappingContext) -> None:
    assert mountain.timezone == "America/Denver"
    assert mountain.vendor is Vendor.THSUITE
    assert (mountain.tenant, mountain.credential_id) == ("t1", "c2")
    assert mountain.default_region == "US"
    assert mountain.extra == {"store_id": "1002", "timezone_known": True}


def test_store_context_accepts_an_iana_zone_and_defaults_the_country(pacific: MappingContext) -> None:
    assert pacific.timezone == "America/Los_Angeles"
    assert pacific.default_region == "US"
    assert pacific.extra["store_id"] == "1001"


def test_an_unknown_store_zone_falls_back_to_utc_and_says_so() -> None:
    store = ThsuiteStore(id="9", timezone="Martian Standard Time", country="ca")

    ctx = mapping_context(store, tenant="t1", credential_id="c1")

    assert ctx.timezone == "UTC"
    assert ctx.extra["timezone_known"] is False
    assert ctx.default_region == "CA"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Pacific Standard Time", "America/Los_Angeles"),
        (" US Mountain Standard Time ", "America/Phoenix"),
        ("Eastern Standard Time", "America/New_York"),
        ("America/Detroit", "America/Detroit"),
        ("UTC", "UTC"),
        ("Pacific Daylight Time", None),
        ("../../etc/passwd", None),
        ("", None),
        (None, None),
    ],
)
def test_resolve_timezone(name: str | None, expected: str | None) -> None:
    assert resolve_timezone(name) == expected


def test_naive_time_in_a_repeated_dst_hour_is_the_earlier_instant() -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/Los_Angeles")

    assert to_utc(datetime(2026, 11, 1, 1, 30), zone) == utc(2026, 11, 1, 8, 30)  # still PDT
    assert to_utc(datetime(2026, 11, 1, 2, 30), zone) == utc(2026, 11, 1, 10, 30)  # PST
    assert to_utc(datetime(2026, 11, 1, 1, 30, tzinfo=UTC), zone) == utc(2026, 11, 1, 1, 30)


# --- patients --------------------------------------------------------------------------------------------------


def test_patient_with_offset_times_and_extra_fields(pacific: MappingContext) -> None:
    shopper = map_record(Stream.CUSTOMERS, page("patients_page.json")["101"], pacific)

    assert isinstance(shopper, Shopper)
    assert shopper.kind is RecordKind.SHOPPER
    assert (shopper.tenant, shopper.vendor, shopper.credential_id) == ("t1", Vendor.THSUITE, "c1")
    assert shopper.pos_id == "101"
    assert shopper.location_id == "1001"
    assert shopper.source_updated_at == utc(2026, 10, 28, 23, 42, 7, 512000)
    assert shopper.pos_created_at == utc(2026, 9, 2, 17, 15)
    assert shopper.phone == "+12063842291"
    assert shopper.phone_raw == "(206) 384-2291"
    assert shopper.email == "ava.nguyen101@example.com"
    assert shopper.birth_date == date(1988, 4, 12)
    assert (shopper.state, shopper.postal_code) == ("WA", "98402")
    assert (shopper.loyalty_member, shopper.sms_opt_in, shopper.marketing_opt_in) == (True, True, False)
    assert shopper.customer_type == "recreational"
    assert "medical_card_number" not in shopper.model_dump_json()


def test_patient_with_naive_times_is_read_in_store_time(pacific: MappingContext) -> None:
    shopper = map_record(Stream.CUSTOMERS, page("patients_page.json")["102"], pacific)

    assert isinstance(shopper, Shopper)
    assert shopper.source_updated_at == utc(2026, 11, 1, 8, 30)
    assert shopper.pos_created_at == utc(2026, 11, 1, 1, 0)
    assert shopper.email == "mia.chen@example.com"
    assert shopper.postal_code is None  # a blank string is absent


def test_patient_with_placeholder_contact_and_string_ids(pacific: MappingContext) -> None:
    shopper = map_record(Stream.CUSTOMERS, page("patients_page.json")["P-103"], pacific)

    assert isinstance(shopper, Shopper)
    assert shopper.pos_id == "P-103"
    assert shopper.phone is None
    assert shopper.phone_raw == "1234567890"
    assert shopper.email == "test@test.com"
    assert shopper.matchable_email is None
    assert shopper.postal_code == "98101"  # a number in the payload
    assert shopper.customer_type == "medical"
    assert shopper.sms_opt_in is None
    assert shopper.pos_created_at is None
    assert shopper.source_updated_at == utc(2026, 11, 2, 9, 0)


def test_patient_without_store_id_takes_the_credentials_store(pacific: MappingContext) -> None:
    shopper = map_record(Stream.CUSTOMERS, page("patients_page.json")["105"], pacific)

    assert isinstance(shopper, Shopper)
    assert shopper.location_id == "1001"
    assert shopper.state == "WA"
    assert shopper.phone == "+15096274410"
    assert shopper.source_updated_at == utc(2026, 11, 2, 7, 0, 45, 1000)  # +05:30 converted


def test_invalid_patient_raises_mapping_error_without_personal_data(pacific: MappingContext) -> None:
    raw = page("patients_page.json")["104"]

    with pytest.raises(MappingError) as caught:
        map_record(Stream.CUSTOMERS, raw, pacific)

    assert caught.value.pos_id == "104"
    assert "date_of_birth" in caught.value.reason
    for value in ("1985-02-30", "Noah", "Garcia", "4253819072", "noah.garcia104"):
        assert value not in caught.value.reason
        assert value not in str(caught.value)


def test_patient_without_id_or_update_time_is_a_mapping_error(pacific: MappingContext) -> None:
    with pytest.raises(MappingError) as caught:
        map_record(Stream.CUSTOMERS, {"first_name": "Ivy", "id": ""}, pacific)

    assert caught.value.pos_id is None
    assert "id" in caught.value.reason
    assert "updated_at" in caught.value.reason


# --- receipts --------------------------------------------------------------------------------------------------


def sale(raw: dict[str, Any], ctx: MappingContext) -> Sale:
    record = map_record(Stream.SALES, raw, ctx)
    assert isinstance(record, Sale)
    return record


def test_completed_receipt_late_in_the_evening_keeps_its_local_date(mountain: MappingContext) -> None:
    record = sale(page("receipts_page.json")["5001"], mountain)

    assert record.kind is RecordKind.SALE
    assert (record.pos_id, record.customer_pos_id, record.location_id) == ("5001", "101", "1002")
    assert record.ordered_at == utc(2026, 11, 1, 5, 45)
    assert record.local_date == date(2026, 10, 31)
    assert record.timezone == "America/Denver"
    assert record.source_updated_at == utc(2026, 11, 1, 5, 45, 2, 318000)
    assert record.status == "completed"
    assert (record.subtotal_cents, record.discount_cents, record.tax_cents) == (6200, 500, 855)
    assert (record.total_cents, record.refunded_cents, record.net_cents) == (6055, 0, 6055)
    assert [(line.sku, line.quantity, line.total_cents, line.discount_cents) for line in record.lines] == [
        ("THS-000026", 2.0, 4675, 500),
        ("THS-000031", 1.0, 1380, 0),
    ]
    assert not any(line.is_refund for line in record.lines)
    assert record.tenders == ({"method": "cash", "amount_cents": 6055},)


def test_receipt_with_naive_times_and_numeric_money(mountain: MappingContext) -> None:
    record = sale(page("receipts_page.json")["5002"], mountain)

    assert record.ordered_at == utc(2026, 11, 1, 5, 50, 12, 250000)  # MDT, UTC-6
    assert record.local_date == date(2026, 10, 31)
    assert (record.subtotal_cents, record.tax_cents, record.total_cents) == (3500, 525, 4025)


def test_return_receipt_is_refunded_and_nets_negative(mountain: MappingContext) -> None:
    record = sale(page("receipts_page.json")["5003"], mountain)

    assert record.status == "refunded"
    assert (record.total_cents, record.refunded_cents, record.net_cents) == (0, 2875, -2875)
    [line] = record.lines
    assert (line.is_refund, line.quantity, line.total_cents) == (True, -1.0, -2875)


def test_exchange_receipt_is_partially_refunded(mountain: MappingContext) -> None:
    record = sale(page("receipts_page.json")["5004"], mountain)

    assert record.status == "partially_refunded"
    assert (record.total_cents, record.refunded_cents, record.net_cents) == (4600, 2300, 2300)
    assert [line.is_refund for line in record.lines] == [False, True]


def test_negative_quantity_alone_flags_a_return(mountain: MappingContext) -> None:
    record = sale(page("receipts_page.json")["5008"], mountain)

    assert record.status == "refunded"
    assert record.lines[0].is_refund
    assert record.lines[0].quantity == -2.0
    assert record.net_cents == -2760
    assert record.local_date == date(2026, 11, 2)  # 19:30Z is 12:30 MST


def test_voided_walk_in_receipt_with_extra_fields(mountain: MappingContext) -> None:
    record = sale(page("receipts_page.json")["5005"], mountain)

    assert record.status == "cancelled"
    assert record.customer_pos_id is None
    assert record.total_cents == 2128
    assert record.tenders == ({"method": "cash", "amount_cents": 2128},)


@pytest.mark.parametrize(
    ("status", "expected"), [("refunded", "refunded"), ("OPEN", "pending"), ("closed", "completed")]
)
def test_receipt_status_without_return_lines(mountain: MappingContext, status: str, expected: str) -> None:
    raw = {**page("receipts_page.json")["5002"], "status": status}

    record = sale(raw, mountain)

    assert record.status == expected
    assert record.refunded_cents == (4025 if expected == "refunded" else 0)


def test_receipt_with_unreadable_total_is_a_mapping_error(mountain: MappingContext) -> None:
    with pytest.raises(MappingError) as caught:
        map_record(Stream.SALES, page("receipts_page.json")["5006"], mountain)

    assert caught.value.pos_id == "5006"
    assert caught.value.reason.startswith("total:")
    assert "12.5O" not in caught.value.reason


def test_receipt_with_an_unknown_status_is_a_mapping_error(mountain: MappingContext) -> None:
    with pytest.raises(MappingError) as caught:
        map_record(Stream.SALES, page("receipts_page.json")["5007"], mountain)

    assert caught.value.pos_id == "5007"
    assert "layaway" in caught.value.reason


def test_receipt_line_errors_name_the_line(mountain: MappingContext) -> None:
    raw = page("receipts_page.json")["5001"]
    raw = {**raw, "lines": [raw["lines"][0], {**raw["lines"][1], "quantity": "two"}]}

    with pytest.raises(MappingError) as caught:
        map_record(Stream.SALES, raw, mountain)

    assert caught.value.reason.startswith("lines.1.quantity:")


# --- inventory and loyalty -------------------------------------------------------------------------------------


def test_inventory_items(mountain: MappingContext) -> None:
    items = page("inventory_page.json")

    gelato = map_record(Stream.INVENTORY, items["26"], mountain)
    bar = map_record(Stream.INVENTORY, items["31"], mountain)
    house = map_record(Stream.INVENTORY, items["46"], mountain)

    assert isinstance(gelato, Product)
    assert (gelato.pos_id, gelato.product_id, gelato.sku, gelato.name) == ("26", "50026", "THS-000026", "Gelato 7g")
    assert (gelato.price_cents, gelato.quantity_on_hand, gelato.active) == (2500, 12.5, True)
    assert gelato.source_updated_at == utc(2026, 11, 1, 14, 0)
    assert isinstance(bar, Product)
    assert (bar.price_cents, bar.quantity_on_hand, bar.active) == (1200, 40.0, False)
    assert bar.source_updated_at == utc(2026, 11, 1, 16, 30)  # naive 09:30, MST since 02:00 that day
    assert isinstance(house, Product)
    assert (house.product_id, house.price_cents, house.quantity_on_hand, house.active) == (None, None, None, True)


@pytest.mark.parametrize(("pos_id", "field"), [("44", "quantity_on_hand"), ("45", "name")])
def test_invalid_inventory_items_are_mapping_errors(mountain: MappingContext, pos_id: str, field: str) -> None:
    with pytest.raises(MappingError) as caught:
        map_record(Stream.INVENTORY, page("inventory_page.json")[pos_id], mountain)

    assert caught.value.pos_id == pos_id
    assert field in caught.value.reason


def test_loyalty_balances(mountain: MappingContext) -> None:
    items = page("loyalty_page.json")

    first = map_record(Stream.LOYALTY, items["101"], mountain)
    fractional = map_record(Stream.LOYALTY, items["102"], mountain)
    negative = map_record(Stream.LOYALTY, items["105"], mountain)

    assert isinstance(first, LoyaltyBalance)
    assert (first.pos_id, first.customer_pos_id, first.points, first.location_id) == ("101", "101", 263, "1002")
    assert first.as_of == first.source_updated_at == utc(2026, 11, 2, 17, 5, 1)
    assert isinstance(fractional, LoyaltyBalance)
    assert fractional.points == 120
    assert fractional.as_of == utc(2026, 11, 1, 7, 30)  # naive, the earlier of the two 01:30s (MDT)
    assert isinstance(negative, LoyaltyBalance)
    assert (negative.points, negative.location_id) == (-15, "1002")


def test_invalid_loyalty_balance_is_a_mapping_error(mountain: MappingContext) -> None:
    with pytest.raises(MappingError) as caught:
        map_record(Stream.LOYALTY, page("loyalty_page.json")["104"], mountain)

    assert (caught.value.pos_id, caught.value.reason.split(":")[0]) == ("104", "points")


@pytest.mark.parametrize(
    "text",
    [
        "305.00",
        "-0.00",
        "0",
        "7",
        "0.5",
        "1.005",
        "-1.015",
        "2.675",
        "12.345678901234567890123456789",
        "99999999999999999999999999.99",
        "1E+30",
        "9E+999999",
        "-9E+999999",
        "0E-1000",
        "1E-999999",
        "NaN",
        "-Infinity",
        "Infinity",
    ],
)
def test_cents_of_an_amount_is_dollars_to_cents_exactly(text: str) -> None:
    def outcome(convert: Callable[[Decimal], int]) -> tuple[str, int | None]:
        try:
            return "ok", convert(Decimal(text))
        except (ArithmeticError, ValueError) as exc:
            return type(exc).__name__, None

    assert outcome(_cents) == outcome(dollars_to_cents)


def test_a_receipt_with_two_unusable_values_fails_on_the_one_it_always_failed_on(mountain: MappingContext) -> None:
    # Given an update time whose UTC instant is before year 1 and, later in the old order, a line discount too large
    # for cents: the quarantine reason names the error's type, so the order the values are read in is kept
    raw = page("receipts_page.json")["5001"]
    raw = {**raw, "updated_at": "0001-01-01T00:00:00+01:00", "lines": [{**raw["lines"][0], "discount": "9E+999999"}]}

    with pytest.raises(ArithmeticError) as caught:
        map_record(Stream.SALES, raw, mountain)

    assert caught.type is OverflowError  # the update time's (the discount's would be decimal.Overflow)


# --- whole pages -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "fixture", "bad"),
    [
        (Stream.CUSTOMERS, "patients_page.json", {"104"}),
        (Stream.SALES, "receipts_page.json", {"5006", "5007"}),
        (Stream.INVENTORY, "inventory_page.json", {"44", "45"}),
        (Stream.LOYALTY, "loyalty_page.json", {"104"}),
    ],
)
def test_every_recorded_item_maps_or_fails_alone(
    pacific: MappingContext, stream: Stream, fixture: str, bad: set[str]
) -> None:
    failed = set()
    for raw in load(fixture)["data"]:
        try:
            record = map_record(stream, raw, pacific)
        except MappingError as exc:
            failed.add(exc.pos_id)
        else:
            assert record.pos_id == item_id(stream, raw)
            assert record.source_updated_at.tzinfo is UTC
    assert failed == bad


@pytest.mark.parametrize(
    ("stream", "raw", "expected"),
    [
        (Stream.CUSTOMERS, {"id": 7}, "7"),
        (Stream.SALES, {"id": " R-9 "}, "R-9"),
        (Stream.LOYALTY, {"patient_id": 12, "id": 99}, "12"),
        (Stream.INVENTORY, {"id": None}, None),
        (Stream.INVENTORY, {"id": {"nested": 1}}, None),
        (Stream.CUSTOMERS, {}, None),
    ],
)
def test_item_id(stream: Stream, raw: dict[str, Any], expected: str | None) -> None:
    assert item_id(stream, raw) == expected
