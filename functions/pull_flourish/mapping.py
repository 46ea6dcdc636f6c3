"""Pure mapping of Flourish customers, retail orders and items to canonical shoppers, sales and products."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Any, ClassVar, Final, NamedTuple
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from functions.core import zones
from functions.core.connector import MappingContext, MappingError
from functions.core.layout import Stream
from functions.core.models import (
    AppliedDiscount,
    CanonicalRecord,
    Discount,
    Product,
    Sale,
    SaleLineFields,
    Shopper,
    applied_discount,
    dollars_to_cents,
    normalize_phone,
    record_of,
    sale_with_lines,
)
from functions.core.payload_fastpath import IdentityOn, fast_validator, present_value
from functions.pull_flourish.constants import (
    FALLBACK_TIMEZONE,
    ORDER_STATUS_CANONICAL,
    PAYMENT_STATUS_CANONICAL,
    US_STATES,
    SaleStatus,
)
from functions.pull_flourish.plain import (
    UNITS_PER_CENT,
    Replacement,
    UnprovenError,
    cents,
    milli,
    plain_validator,
    units,
)

# MappingContext.extra keys the connector fills from the facilities endpoint.
FACILITY_TIMEZONES = "facility_timezones"  # {facility id: IANA zone}
FACILITY_ID = "facility_id"  # the credential's facility, when it has one


# A record with no update or creation time at all (an ASSUMED field absent) still maps: it carries this fixed time, so
# re-reading it unchanged gives the same record (and writes nothing) while any change of its content is written.
UNKNOWN_UPDATE_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)

# Field names CONTRACT.md marks ASSUMED, and the names an independent Flourish-shaped server may use instead, tried in
# order when the first is absent (None or ""). Documented fields have no alternatives.
UPDATED_NAMES: Final = ("updated_timestamp", "updated_at", "last_updated_at")
CUSTOMER_ALTERNATIVES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "created_timestamp": ("created_at",),
        "last_updated_timestamp": UPDATED_NAMES,
        # SMS consent as the POS recorded it (ASSUMED names, see CONTRACT.md): opted out / signed up with consent.
        "sms_opt_out": ("opt_out_sms", "text_opt_out"),
        "sms_opt_in": ("opt_in_sms", "text_opt_in"),
    }
)
ITEM_ALTERNATIVES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "item_name": ("name",),
        "item_category": ("category",),
        "brand": ("brand_name",),
        "created_timestamp": ("created_at",),
        "last_updated_timestamp": UPDATED_NAMES,
    }
)
ORDER_ALTERNATIVES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        # else the line totals plus tax and fees (order_money)
        "total_price": ("total", "total_paid"),
        "subtotal": ("sub_total",),
        "total_discounts": ("total_discount", "discount_total"),
        "total_tax": ("tax", "tax_total", "total_taxes"),
        "total_refunded": ("refunded_total", "refund_total"),
        "created_timestamp": ("created_at",),
        "completed_timestamp": ("completed_at",),
        "last_updated_timestamp": UPDATED_NAMES,
    }
)
LINE_ALTERNATIVES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "item_name": ("name", "product_name"),
        "item_category": ("category",),
        "brand": ("brand_name",),
        "total_price": ("line_total", "total"),  # else quantity x unit price
        "refunded_qty": ("returned_qty",),
    }
)


_NO_DOLLARS: Final = Decimal(0)


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class _Payload(BaseModel):
    """Vendor payloads: unknown fields are ignored, ids arrive as numbers or strings, ASSUMED fields have
    alternatives (ALTERNATIVES: field -> other names, tried in order when the field itself is absent)."""

    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True, hide_input_in_errors=True)
    ALTERNATIVES: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType({})

    @model_validator(mode="before")
    @classmethod
    def _take_alternatives(cls, data: Any) -> Any:
        if not cls.ALTERNATIVES or (data.__class__ is not dict and not isinstance(data, Mapping)):
            return data  # a plain dict (every JSON item) is told apart without the ABC check (measured per model)
        # A plain dict is copied only when a field takes an alternative (or None where it was missing).
        found: dict[str, Any] | None = None if isinstance(data, dict) else dict(data)
        for name, alternatives in cls.ALTERNATIVES.items():
            value = (data if found is None else found).get(name)
            if value is not None and (not isinstance(value, str) or value.strip()):
                continue  # present: `_absent` inlined, as this runs for every field of every item
            if found is None:
                found = dict(data)
            found[name] = next((data[a] for a in alternatives if not _absent(data.get(a))), None)
        return data if found is None else found


# --- payload models (documented fields, plus the ASSUMED ones listed in CONTRACT.md) ---------------------------------


class FlourishAddress(_Payload):
    address_line_1: str | None = None
    city: str | None = None
    state: str | None = None
    postcode: str | None = None
    country: str | None = None
    type: str | None = None


class FlourishCustomer(_Payload):
    ALTERNATIVES = CUSTOMER_ALTERNATIVES

    id: str = Field(min_length=1)
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    dob: date | None = None
    state: str | None = None
    patient_id: str | None = None
    sms_opt_in: bool | None = None
    sms_opt_out: bool | None = None
    address: list[FlourishAddress] = Field(default_factory=list, validation_alias=AliasChoices("address", "addresses"))
    created_timestamp: str | None = None
    last_updated_timestamp: str | None = None

    @field_validator("dob", mode="before")
    @classmethod
    def _date_part(cls, value: Any) -> Any:
        # Some exports send a midnight timestamp for a date of birth; the date is what counts.
        if isinstance(value, str) and "T" in value:
            return value.split("T", 1)[0]
        return value or None

    @field_validator("address", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, dict) else value


class FlourishDiscount(_Payload):
    ALTERNATIVES = MappingProxyType({"discount_id": ("id",), "discount_name": ("name",)})

    discount_id: str | None = None
    discount_name: str | None = None
    discount_value: Decimal | None = None


class FlourishOrderLine(_Payload):
    ALTERNATIVES = LINE_ALTERNATIVES

    id: str | None = None
    item_id: str | None = None
    sku: str | None = None
    item_name: str | None = None
    brand: str | None = None
    item_category: str | None = None
    order_qty: Decimal
    unit_price: Decimal | None = None
    total_price: Decimal | None = None
    refunded_qty: Decimal | None = None
    applied_discounts: list[FlourishDiscount] = Field(default_factory=list)

    @field_validator("applied_discounts", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    def discount_dollars(self) -> Decimal:
        if not self.applied_discounts:  # most lines: what the sum below gives for none
            return _NO_DOLLARS
        return sum((d.discount_value or Decimal(0) for d in self.applied_discounts), Decimal(0))


class FlourishRetailOrder(_Payload):
    ALTERNATIVES = ORDER_ALTERNATIVES

    id: str = Field(min_length=1)
    customer_id: str | None = None
    facility_id: str | None = None
    order_status: str
    order_payment_status: str | None = None
    order_timestamp: str | None = None
    created_timestamp: str | None = None
    completed_timestamp: str | None = None
    last_updated_timestamp: str | None = None
    subtotal: Decimal | None = None
    total_discounts: Decimal | None = None
    total_tax: Decimal | None = None
    delivery_fee: Decimal | None = None
    total_price: Decimal | None = None
    total_refunded: Decimal | None = None
    order_lines: list[FlourishOrderLine] = Field(default_factory=list)

    @field_validator("order_status")
    @classmethod
    def _known_status(cls, value: str) -> str:
        if value.strip().lower() not in ORDER_STATUS_CANONICAL:
            raise ValueError("order_status is not one of the documented retail order statuses")
        return value

    @field_validator("order_lines", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class FlourishItem(_Payload):
    ALTERNATIVES = ITEM_ALTERNATIVES

    id: str = Field(min_length=1)
    item_name: str = Field(min_length=1)
    sku: str | None = None
    brand: str | None = None
    item_category: str | None = None
    price: Decimal | None = None
    active: bool = True
    last_updated_timestamp: str | None = None
    created_timestamp: str | None = None


class FlourishDiscountDefinition(_Payload):
    """A discount as Flourish lists it (ASSUMED shape, CONTRACT.md). `start_time` / `end_time` are a daily window
    on the facility's wall clock ("16:00:00"); `start_date` / `end_date` bound the days it runs."""

    ALTERNATIVES = MappingProxyType({"discount_name": ("name",), "discount_type": ("method", "type")})

    id: str = Field(min_length=1)
    discount_name: str = Field(min_length=1)
    discount_type: str | None = None
    amount: Decimal | None = None
    active: bool = True
    facility_id: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    last_updated_timestamp: str | None = None
    created_timestamp: str | None = None


# --- shared helpers ------------------------------------------------------------------------------------------------


def facility_timezone(facility: Mapping[str, Any]) -> str:
    """The facility's IANA zone (ASSUMED field `timezone`), else its state's zone, else UTC."""
    return (
        zones.to_iana(facility.get("timezone"))
        or zones.state_zone(state_code(_address_state(facility)))
        or FALLBACK_TIMEZONE
    )


def _address_state(facility: Mapping[str, Any]) -> str | None:
    for key in ("state", "address_state", "license_state"):
        value = facility.get(key)
        if isinstance(value, str) and value:
            return value
    address = facility.get("address")
    if isinstance(address, Mapping):
        value = address.get("state")
        return value if isinstance(value, str) else None
    return None


def state_code(raw: str | None) -> str | None:
    """USPS code for a two-letter code or a full state name; None for anything else."""
    if raw is None:
        return None
    text = raw.strip()
    if len(text) == 2 and text.isalpha():
        return text.upper()
    return US_STATES.get(text.lower())


def parse_timestamp(raw: str, local: ZoneInfo) -> datetime:
    """UTC instant of a Flourish timestamp: `Z` and offsets are honoured, a naive value is in the facility's zone."""
    text = raw.strip()
    if not text:
        raise ValueError("empty timestamp")
    if text[-1] == "z":  # RFC 3339 allows a lower-case Z; fromisoformat refuses it
        text = text[:-1] + "Z"
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=local)
    return value.astimezone(UTC)


def _time(raw: str | None, local: ZoneInfo, field: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        return parse_timestamp(raw, local)
    except ValueError:
        raise ValueError(f"{field} is not an ISO-8601 timestamp") from None


def _zone_for(ctx: MappingContext, facility_id: str | None) -> tuple[str, ZoneInfo]:
    known = ctx.extra.get(FACILITY_TIMEZONES) or {}
    name = _iana(known.get(facility_id) if facility_id is not None else None)
    name = name or _iana(ctx.timezone) or FALLBACK_TIMEZONE
    return name, zones.zone(name)


@lru_cache(maxsize=256)  # every record asks for its facility's zone: a pull has a few
def _iana_of_text(name: str) -> str | None:
    return zones.to_iana(name)


def _iana(name: object) -> str | None:
    return _iana_of_text(name) if isinstance(name, str) else zones.to_iana(name)


# --- mappings ------------------------------------------------------------------------------------------------------


def map_customer(item: Mapping[str, Any], ctx: MappingContext) -> Shopper:
    """A Flourish customer as a shopper; its update time is `last_updated_timestamp` (else its creation time)."""
    fields = plain_customer(item)  # the model's fields, its addresses as dicts; None where only the model reads it
    if fields is not None:
        postal = next((a["postcode"] for a in fields["address"] if a["postcode"]), None)
    else:
        customer = FlourishCustomer.model_validate(item)
        fields = customer.__dict__
        postal = next((a.postcode for a in customer.address if a.postcode), None)
    _, local = _zone_for(ctx, ctx.extra.get(FACILITY_ID))
    created = _time(fields["created_timestamp"], local, "created_timestamp")
    updated = _time(fields["last_updated_timestamp"], local, "last_updated_timestamp") or created
    return record_of(
        Shopper,
        {
            "tenant": ctx.tenant,
            "vendor": ctx.vendor,
            "credential_id": ctx.credential_id,
            "pos_id": fields["id"],
            "source_updated_at": updated or UNKNOWN_UPDATE_TIME,
            "first_name": _blank_to_none(fields["first_name"]),
            "last_name": _blank_to_none(fields["last_name"]),
            "phone": normalize_phone(fields["phone"], ctx.default_region),
            "phone_raw": _blank_to_none(fields["phone"]),
            "email": fields["email"],
            "birth_date": fields["dob"],
            "state": state_code(fields["state"]),
            "postal_code": _blank_to_none(postal),
            # A state patient-registry id is what makes a Flourish customer a medical patient.
            "customer_type": "medical" if fields["patient_id"] else "recreational",
            "sms_opt_in": fields["sms_opt_in"],
            "sms_opt_out": fields["sms_opt_out"],
            "pos_created_at": created,
        },
    )


class LineMoney(NamedTuple):  # a tuple: built per line, it costs a third of a frozen dataclass
    """One order line in dollars: what it sold for before discounts, its discounts, and what was paid for it."""

    line: FlourishOrderLine
    gross: Decimal
    discount: Decimal
    paid: Decimal


class OrderMoney(NamedTuple):
    """An order's money with each discount taken once (dollars), and whether Flourish had taken it twice."""

    lines: tuple[LineMoney, ...]
    discount: Decimal
    tax: Decimal
    total: Decimal
    double_counted: bool


def line_money(line: FlourishOrderLine) -> LineMoney:
    """A line's gross, discounts and paid amount.

    Flourish takes a line's applied discounts off its line total (the public double-count quirk), though CONTRACT.md
    ASSUMED the line total to be quantity x unit price before discounts. A line total equal to quantity x unit price
    less the discounts already had them taken off; any other line total is before discounts. Without a line total,
    quantity x unit price is the gross; a line with neither cannot be valued (MissingFieldError).
    """
    discount = line.discount_dollars()
    listed = None if line.unit_price is None else line.order_qty * line.unit_price
    if line.total_price is None:
        if listed is None:
            names = ", ".join(LINE_ALTERNATIVES["total_price"])
            raise MissingFieldError(f"order_lines.total_price (nor {names}, nor unit_price)")
        gross = listed
    elif (
        discount
        and listed is not None
        and line.total_price != listed
        and _same_cents(line.total_price, listed - discount)
    ):
        gross = listed
    else:
        gross = line.total_price
    return LineMoney(line, gross, discount, gross - discount)


def order_money(order: FlourishRetailOrder) -> OrderMoney:
    """The order's total with each applied discount taken once.

    Flourish takes applied discounts off the line totals and again off the order total (public: Flourish's own
    WooCommerce plugin, see CONTRACT.md), so a discounted order's reported total is short of what was paid (the lines,
    net of their discounts once, plus tax and fees) by exactly its discounts; such a total is replaced by what was
    paid. Any other reported total is taken as it is. An order that reports no total (nor an alternative) is what was
    paid; one with no lines either cannot be valued and fails with the missing field named.
    """
    lines = tuple(line_money(line) for line in order.order_lines)
    sold = [m for m in lines if m.line.order_qty > 0]
    tax = order.total_tax or Decimal(0)
    line_discounts = sum((m.discount for m in sold), Decimal(0))
    discount = line_discounts if line_discounts else (order.total_discounts or Decimal(0))
    paid = sum((m.paid for m in sold), Decimal(0)) + tax + (order.delivery_fee or Decimal(0))
    if order.total_price is None:
        if not sold:
            names = ", ".join(ORDER_ALTERNATIVES["total_price"])
            raise MissingFieldError(f"total_price (nor {names}, nor order_lines to add up)")
        return OrderMoney(lines, discount, tax, paid, False)
    double_counted = (
        bool(sold)
        and bool(line_discounts)
        and order.total_price != paid
        and _same_cents(order.total_price, paid - line_discounts)
    )
    return OrderMoney(lines, discount, tax, paid if double_counted else order.total_price, double_counted)


def _same_cents(a: Decimal, b: Decimal) -> bool:
    """Equal to the cent, give or take one (Flourish rounds tax and percentage discounts per line)."""
    return abs(dollars_to_cents(a) - dollars_to_cents(b)) <= 1


def map_retail_order(item: Mapping[str, Any], ctx: MappingContext) -> Sale:
    """A Flourish retail order as a sale.

    Only a Completed order is a completed sale; Created..Out for Delivery are pending, Cancelled and Undeliverable
    are cancelled. A completed order whose payment status is Refunded is refunded in full (its net is zero); one that
    is Partially Refunded, or that has returned lines, is partially refunded by the amount reported (else the
    returned units at the price paid for them), never by more than the sale. Money is taken with each discount once.
    """
    plain = plain_retail_order(item)
    if plain is not None:
        try:
            return _plain_sale(plain, ctx)
        except (UnprovenError, ValueError, TypeError, ArithmeticError):
            pass  # the model's path below gives the same sale, or the error it raises (ValidationError included)
    order = validate_retail_order(item)
    tz_name, local = _zone_for(ctx, order.facility_id or ctx.extra.get(FACILITY_ID))
    created = _time(order.created_timestamp, local, "created_timestamp")
    placed = _time(order.order_timestamp, local, "order_timestamp")
    completed = _time(order.completed_timestamp, local, "completed_timestamp")
    updated = _time(order.last_updated_timestamp, local, "last_updated_timestamp")
    known = [t for t in (created, placed, completed) if t is not None]
    if not known:
        raise MissingFieldError("order_timestamp (nor completed_timestamp, created_timestamp)")
    ordered_at = completed or placed or created or known[0]
    money = order_money(order)

    lines: list[SaleLineFields] = []
    returned = Decimal(0)
    for m in money.lines:
        line = m.line
        lines.append(_sale_line(line, line.order_qty, m.paid, m.discount))
        if line.order_qty < 0:  # a return line
            returned -= m.paid
        if line.refunded_qty:  # units of a sold line given back later, at the price paid for them
            paid_each = m.paid / line.order_qty if line.order_qty else line.unit_price or Decimal(0)
            refund = -(paid_each * line.refunded_qty)
            lines.append(_sale_line(line, -line.refunded_qty, refund, Decimal(0)))
            returned -= refund

    total_cents = dollars_to_cents(money.total)
    status: SaleStatus = ORDER_STATUS_CANONICAL[order.order_status.strip().lower()]
    refunded_cents = 0
    if status == "completed":
        payment = PAYMENT_STATUS_CANONICAL.get((order.order_payment_status or "").strip().lower())
        if payment == "refunded":
            refunded_cents = total_cents
        elif order.total_refunded is not None:
            refunded_cents = dollars_to_cents(order.total_refunded)
        else:
            refunded_cents = dollars_to_cents(returned)
        refunded_cents = max(0, min(refunded_cents, total_cents))
        if payment is not None:
            status = payment
        elif refunded_cents > 0:
            status = "refunded" if refunded_cents >= total_cents else "partially_refunded"

    sold_gross, any_sold = Decimal(0), False
    for m in money.lines:  # the sum of the sold lines' gross, in their order
        if m.line.order_qty > 0:
            sold_gross, any_sold = sold_gross + m.gross, True
    if any_sold:
        subtotal = sold_gross
    else:
        subtotal = order.subtotal if order.subtotal is not None else money.total - money.tax + money.discount
    return sale_with_lines(
        tenant=ctx.tenant,
        vendor=ctx.vendor,
        credential_id=ctx.credential_id,
        pos_id=order.id,
        location_id=order.facility_id or _str_or_none(ctx.extra.get(FACILITY_ID)),
        source_updated_at=updated or max(known),
        customer_pos_id=order.customer_id,
        ordered_at=ordered_at,
        local_date=ordered_at.astimezone(local).date(),
        timezone=tz_name,
        status=status,
        subtotal_cents=dollars_to_cents(subtotal),
        discount_cents=dollars_to_cents(money.discount),
        tax_cents=dollars_to_cents(money.tax),
        total_cents=total_cents,
        refunded_cents=refunded_cents,
        lines=tuple(lines),
        discounts=order_discounts(order),
    )


def _plain_sale(order: dict[str, Any], ctx: MappingContext) -> Sale:
    """`map_retail_order` of an order `plain_retail_order` validated, by the same rules step for step (line_money,
    order_money), its money in exact integers (plain.units: what its Decimals hold). Raises UnprovenError where that is
    not proven (an amount with more decimals, a refunded quantity's share of a line) or where the rules would derive
    a field `plain_retail_order` requires (a total; never reached), and ValueError (a bad timestamp) or
    ValidationError (a sale out of bounds) where the model's path raises: that path then decides."""
    tz_name, local = _zone_for(ctx, order["facility_id"] or ctx.extra.get(FACILITY_ID))
    # An order is mostly placed when created and last updated when completed: the same text is read once.
    created_text, placed_text = order["created_timestamp"], order["order_timestamp"]
    completed_text, updated_text = order["completed_timestamp"], order["last_updated_timestamp"]
    created = _time(created_text, local, "created_timestamp")
    placed = created if placed_text == created_text else _time(placed_text, local, "order_timestamp")
    completed = _time(completed_text, local, "completed_timestamp")
    updated = completed if updated_text == completed_text else _time(updated_text, local, "last_updated_timestamp")
    known = [t for t in (created, placed, completed) if t is not None]
    if not known:
        raise UnprovenError
    ordered_at = completed or placed or created or known[0]

    lines: list[SaleLineFields] = []
    sold_gross = sold_discount = sold_paid = 0
    any_sold = False
    for line in order["order_lines"]:
        if line["refunded_qty"]:  # its refund is the paid amount's share of each unit: a Decimal division
            raise UnprovenError
        quantity = milli(line["order_qty"])
        discount = 0
        for applied in line["applied_discounts"]:
            if applied["discount_value"] is not None:
                discount += units(applied["discount_value"])
        unit_price = line["unit_price"]
        listed = None if unit_price is None else quantity * (units(unit_price) // UNITS_PER_CENT)
        total = _required_units(line["total_price"])
        if discount and listed is not None and total != listed and _same_units(total, listed - discount):
            gross = listed
        else:
            gross = total
        paid = gross - discount
        lines.append(
            {
                "product_id": line["item_id"],
                "sku": _blank_to_none(line["sku"]),
                "name": _blank_to_none(line["item_name"]),
                "category": _blank_to_none(line["item_category"]),
                "brand": _blank_to_none(line["brand"]),
                "quantity": float(line["order_qty"]),
                "total_cents": cents(paid),
                "discount_cents": cents(discount),
                "is_refund": quantity < 0,
            }
        )
        if quantity > 0:
            sold_gross += gross
            sold_discount += discount
            sold_paid += paid
            any_sold = True

    tax = 0 if order["total_tax"] is None else units(order["total_tax"])
    discount = sold_discount or (0 if order["total_discounts"] is None else units(order["total_discounts"]))
    paid = sold_paid + tax + (0 if order["delivery_fee"] is None else units(order["delivery_fee"]))
    reported = _required_units(order["total_price"])
    double_counted = bool(
        any_sold and sold_discount and reported != paid and _same_units(reported, paid - sold_discount)
    )
    total_cents = cents(paid if double_counted else reported)

    status: SaleStatus = ORDER_STATUS_CANONICAL[order["order_status"].strip().lower()]
    refunded_cents = 0
    if status == "completed":
        payment = PAYMENT_STATUS_CANONICAL.get((order["order_payment_status"] or "").strip().lower())
        refunded_cents = total_cents if payment == "refunded" else cents(_required_units(order["total_refunded"]))
        refunded_cents = max(0, min(refunded_cents, total_cents))
        if payment is not None:
            status = payment
        elif refunded_cents > 0:
            status = "refunded" if refunded_cents >= total_cents else "partially_refunded"

    return sale_with_lines(
        tenant=ctx.tenant,
        vendor=ctx.vendor,
        credential_id=ctx.credential_id,
        pos_id=order["id"],
        location_id=order["facility_id"] or _str_or_none(ctx.extra.get(FACILITY_ID)),
        source_updated_at=updated or max(known),
        customer_pos_id=order["customer_id"],
        ordered_at=ordered_at,
        local_date=ordered_at.astimezone(local).date(),
        timezone=tz_name,
        status=status,
        subtotal_cents=cents(sold_gross if any_sold else _required_units(order["subtotal"])),
        discount_cents=cents(discount),
        tax_cents=cents(tax),
        total_cents=total_cents,
        refunded_cents=refunded_cents,
        lines=tuple(lines),
        discounts=_plain_discounts(order),
    )


def _required_units(value: int | float | None) -> int:
    """`plain.units` of an amount the plain order has (ALTERNATIVES makes it required there)."""
    if value is None:
        raise UnprovenError
    return units(value)


def _same_units(a: int, b: int) -> bool:
    """`_same_cents` of two amounts in units."""
    return abs(cents(a) - cents(b)) <= 1


def _plain_discounts(order: dict[str, Any]) -> tuple[AppliedDiscount, ...]:
    """`order_discounts` of a plain order."""
    found: dict[tuple[str | None, str | None], AppliedDiscount] = {}
    for line in order["order_lines"]:
        for d in line["applied_discounts"]:
            pos_id, name = _blank_to_none(d["discount_id"]), _blank_to_none(d["discount_name"])
            if pos_id or name:
                found.setdefault((pos_id, None if pos_id else name), applied_discount(pos_id, name))
    return tuple(found.values())


def order_discounts(order: FlourishRetailOrder) -> tuple[AppliedDiscount, ...]:
    """The discounts applied to an order, each once: Flourish lists an order-wide discount on every line it touched
    (and counts it twice in the totals), so one discount id is one applied discount however often it appears."""
    found: dict[tuple[str | None, str | None], AppliedDiscount] = {}
    for line in order.order_lines:
        for d in line.applied_discounts:
            pos_id, name = _blank_to_none(d.discount_id), _blank_to_none(d.discount_name)
            if pos_id or name:
                found.setdefault((pos_id, None if pos_id else name), applied_discount(pos_id, name))
    return tuple(found.values())


def _sale_line(line: FlourishOrderLine, quantity: Decimal, paid: Decimal, discount: Decimal) -> SaleLineFields:
    return {
        "product_id": line.item_id,
        "sku": _blank_to_none(line.sku),
        "name": _blank_to_none(line.item_name),
        "category": _blank_to_none(line.item_category),
        "brand": _blank_to_none(line.brand),
        "quantity": float(quantity),
        "total_cents": dollars_to_cents(paid),
        "discount_cents": dollars_to_cents(discount),
        "is_refund": quantity < 0,
    }


def map_item(item: Mapping[str, Any], ctx: MappingContext) -> Product:
    """A Flourish catalog item as a product (quantities live in /inventory/summary and are not read)."""
    product = validate_item(item)
    _, local = _zone_for(ctx, ctx.extra.get(FACILITY_ID))
    created = _time(product.created_timestamp, local, "created_timestamp")
    updated = _time(product.last_updated_timestamp, local, "last_updated_timestamp") or created
    return record_of(
        Product,
        {
            "tenant": ctx.tenant,
            "vendor": ctx.vendor,
            "credential_id": ctx.credential_id,
            "pos_id": product.id,
            "source_updated_at": updated or UNKNOWN_UPDATE_TIME,
            "product_id": product.id,
            "name": product.item_name,
            "sku": _blank_to_none(product.sku),
            "brand": _blank_to_none(product.brand),
            "category": _blank_to_none(product.item_category),
            "price_cents": None if product.price is None else dollars_to_cents(product.price),
            "active": product.active,
        },
    )


def _wall_time(value: str | None, field: str) -> str | None:
    """A daily wall-clock time as "HH:MM" ("16:00:00" and "16:00" both read); a blank is none."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        return dt_time.fromisoformat(text).strftime("%H:%M")
    except ValueError:
        raise ValueError(f"{field} is not a time of day") from None


def _day_bound(value: str | None, local: ZoneInfo, field: str, end: bool) -> datetime | None:
    """A start or end date (facility-local) as the UTC instant its day starts, or the next day starts for an end."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"{field} is not a date") from None
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, dt_time(0), tzinfo=local)


def map_discount(item: Mapping[str, Any], ctx: MappingContext) -> Discount:
    """A Flourish discount, keyed by its id (what a Flourish reward is linked by). Its daily start and end times stay
    wall-clock times of its facility's zone (so a 16:00-18:00 happy hour stays so across DST changes)."""
    discount = validate_discount_definition(item)
    facility = discount.facility_id or ctx.extra.get(FACILITY_ID)
    tz_name, local = _zone_for(ctx, facility)
    created = _time(discount.created_timestamp, local, "created_timestamp")
    updated = _time(discount.last_updated_timestamp, local, "last_updated_timestamp") or created
    kind = (discount.discount_type or "").strip().lower()
    return record_of(
        Discount,
        {
            "tenant": ctx.tenant,
            "vendor": ctx.vendor,
            "credential_id": ctx.credential_id,
            "pos_id": discount.id,
            "location_id": _str_or_none(facility),
            "source_updated_at": updated or UNKNOWN_UPDATE_TIME,
            "name": discount.discount_name.strip(),
            "discount_type": "percent"
            if kind.startswith("percent")
            else "flat"
            if kind in ("dollar", "flat", "amount")
            else "other",
            "value": None if discount.amount is None else str(discount.amount),
            "active": discount.active,
            "starts_at": _day_bound(discount.start_date, local, "start_date", end=False),
            "ends_at": _day_bound(discount.end_date, local, "end_date", end=True),
            "daily_start": _wall_time(discount.start_time, "start_time"),
            "daily_end": _wall_time(discount.end_time, "end_time"),
            "timezone": tz_name,
        },
    )


# The payloads' before-validator and what it hands on unchanged (payload_fastpath): an item (and each of its lines)
# that has every field ALTERNATIVES lists is validated without calling it. Customers are validated by their model:
# the simulator's (as Flourish documents them) carry no SMS consent fields, so the fast path would refuse each one.
IDENTITY_ON: Final[Mapping[Callable[[Any], Any], IdentityOn]] = MappingProxyType(
    {_Payload._take_alternatives.__func__: "present_alternatives"}  # type: ignore[attr-defined]
)
validate_retail_order = fast_validator(FlourishRetailOrder, IDENTITY_ON)
validate_item = fast_validator(FlourishItem, IDENTITY_ON)
validate_discount_definition = fast_validator(FlourishDiscountDefinition, IDENTITY_ON)


def _alternatives(may_be_absent: Mapping[type[_Payload], frozenset[str]]) -> Replacement:
    """`_Payload._take_alternatives` compiled out for plain data. It hands a dict on unchanged when each field its
    model lists in ALTERNATIVES is present and, as text, not blank: so such a field is required, not None and its
    text refuses a blank (as payload_fastpath's "present_alternatives"). A field named in `may_be_absent` (one that
    defaults to None) may instead be None or missing when each of its alternatives is None or missing too (the
    before-validator then sets it None, its default): such a field's text refuses a blank, and each of its
    alternative names is read as a field that takes only None. The model reads the rest."""

    def replace(schema: dict[str, Any]) -> dict[str, Any]:
        owner = schema["function"]["function"].__self__
        fields = dict(schema["schema"]["fields"])
        for name, alternatives in owner.ALTERNATIVES.items():
            field = fields[name]
            inner = present_value(field, f"{owner.__name__}.{name}")  # the rule "present_alternatives" compiles
            default = field["schema"]
            nullable = default["schema"] if default.get("type") == "default" else default
            if name not in may_be_absent.get(owner, ()):
                fields[name] = {**field, "schema": inner}
                continue
            if default.get("type") != "default" or default.get("default") is not None or nullable is default:
                raise TypeError(f"{owner.__name__}.{name} does not default to None")
            fields[name] = {**field, "schema": {**default, "schema": {**nullable, "schema": inner}}}
            for alternative in alternatives:
                if alternative in schema["schema"]["fields"]:
                    raise TypeError(f"{owner.__name__}: {alternative} is a field of its own")
                fields[alternative] = {"type": "model-field", "schema": {**default, "schema": {"type": "none"}}}
        return {**schema["schema"], "fields": fields}

    return replace


# An order's fields as plain data where `validate_retail_order` would take it without the model (about 9 µs of its 22,
# measured), or would not only because the order has not completed (its completed_timestamp None): `_plain_sale`
# maps it.
_TAKE_ALTERNATIVES: Final = _Payload._take_alternatives.__func__  # type: ignore[attr-defined]
plain_retail_order = plain_validator(
    FlourishRetailOrder,
    {},
    {_TAKE_ALTERNATIVES: _alternatives({FlourishRetailOrder: frozenset({"completed_timestamp"})})},
)


def _date_text(schema: dict[str, Any]) -> dict[str, Any]:
    """`FlourishCustomer._date_part` compiled out: it hands on None, and a text with no "T" that is not empty."""
    nullable = schema["schema"]
    if nullable.get("type") != "nullable":
        raise TypeError("FlourishCustomer._date_part feeds no nullable date")
    steps = [{"type": "str", "strict": True, "pattern": r"\A[^T]+\z"}, nullable["schema"]]
    return {**nullable, "schema": {"type": "chain", "steps": steps}}


# A customer's fields as plain data where every before-validator of its model hands them on unchanged (about 5 µs of
# its 8 to validate, measured).
plain_customer = plain_validator(
    FlourishCustomer,
    {FlourishCustomer._one_or_many.__func__: "strict"},  # type: ignore[attr-defined]
    {
        _TAKE_ALTERNATIVES: _alternatives({FlourishCustomer: frozenset(CUSTOMER_ALTERNATIVES)}),
        FlourishCustomer._date_part.__func__: _date_text,  # type: ignore[attr-defined]
    },
)

MAPPERS: dict[Stream, Callable[[Mapping[str, Any], MappingContext], CanonicalRecord]] = {
    Stream.DISCOUNTS: map_discount,
    Stream.CUSTOMERS: map_customer,
    Stream.SALES: map_retail_order,
    Stream.INVENTORY: map_item,
}


def map_record(stream: Stream, item: Mapping[str, Any], ctx: MappingContext) -> CanonicalRecord:
    """One raw Flourish item to its canonical record, or MappingError naming the fields (never their values).

    A field that is absent and cannot be derived gives the reason "missing field: <name>" (list positions left out,
    so one missing field reads the same on every record it is missing from).
    """
    mapper = MAPPERS.get(stream)
    if mapper is None:
        raise MappingError(item_id(item), f"flourish has no {stream.value} stream")
    try:
        return mapper(item, ctx)
    except ValidationError as exc:
        problems = dict.fromkeys(_problem(error) for error in exc.errors(include_input=False))
        raise MappingError(item_id(item), "; ".join(problems)) from None
    except MissingFieldError as exc:
        raise MappingError(item_id(item), f"missing field: {exc}") from None
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise MappingError(item_id(item), f"{type(exc).__name__}: {exc}") from None


class MissingFieldError(ValueError):
    """A field the mapping needs is absent and cannot be derived from the rest of the record."""


def _problem(error: Any) -> str:
    field = ".".join(str(part) for part in error["loc"] if not isinstance(part, int)) or "record"
    if error["type"] == "missing":
        return f"missing field: {field}"
    return f"{field}: {error['msg']}"


def item_id(item: Mapping[str, Any]) -> str | None:
    value = item.get("id") if isinstance(item, Mapping) else None
    if value is None or isinstance(value, dict | list) or str(value) == "":
        return None
    return str(value)


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    return text or None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
