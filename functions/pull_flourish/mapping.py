"""Pure mapping of Flourish customers, retail orders and items to canonical shoppers, sales and products."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from functions.core import zones
from functions.core.connector import MappingContext, MappingError
from functions.core.layout import Stream
from functions.core.models import (
    CanonicalRecord,
    Product,
    Sale,
    SaleLine,
    Shopper,
    dollars_to_cents,
    normalize_phone,
)
from functions.pull_flourish.constants import (
    FALLBACK_TIMEZONE,
    ORDER_STATUS_CANONICAL,
    PAYMENT_STATUS_CANONICAL,
    US_STATES,
    SaleStatus,
)

# MappingContext.extra keys the connector fills from the facilities endpoint.
FACILITY_TIMEZONES = "facility_timezones"  # {facility id: IANA zone}
FACILITY_ID = "facility_id"  # the credential's facility, when it has one


class _Payload(BaseModel):
    """Vendor payloads: unknown fields are ignored, ids arrive as numbers or strings."""

    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True, hide_input_in_errors=True)


# --- payload models (documented fields, plus the ASSUMED ones listed in CONTRACT.md) ---------------------------------


class FlourishAddress(_Payload):
    address_line_1: str | None = None
    city: str | None = None
    state: str | None = None
    postcode: str | None = None
    country: str | None = None
    type: str | None = None


class FlourishCustomer(_Payload):
    id: str = Field(min_length=1)
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    dob: date | None = None
    state: str | None = None
    patient_id: str | None = None
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
    discount_value: Decimal | None = None


class FlourishOrderLine(_Payload):
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

    def gross_dollars(self) -> Decimal:
        if self.total_price is not None:
            return self.total_price
        return self.order_qty * (self.unit_price or Decimal(0))

    def discount_dollars(self) -> Decimal:
        return sum((d.discount_value or Decimal(0) for d in self.applied_discounts), Decimal(0))


class FlourishRetailOrder(_Payload):
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
    total_price: Decimal
    total_refunded: Decimal | None = None
    order_lines: list[FlourishOrderLine] = Field(default_factory=list)

    @field_validator("order_status")
    @classmethod
    def _known_status(cls, value: str) -> str:
        if value.strip().lower() not in ORDER_STATUS_CANONICAL:
            raise ValueError("order_status is not one of the documented retail order statuses")
        return value


class FlourishItem(_Payload):
    id: str = Field(min_length=1)
    item_name: str = Field(min_length=1)
    sku: str | None = None
    brand: str | None = None
    item_category: str | None = None
    price: Decimal | None = None
    active: bool = True
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


def _cents(value: Decimal | None) -> int:
    return 0 if value is None else dollars_to_cents(value)


def _zone_for(ctx: MappingContext, facility_id: str | None) -> tuple[str, ZoneInfo]:
    known = ctx.extra.get(FACILITY_TIMEZONES) or {}
    name = zones.to_iana(known.get(facility_id) if facility_id is not None else None)
    name = name or zones.to_iana(ctx.timezone) or FALLBACK_TIMEZONE
    return name, zones.zone(name)


# --- mappings ------------------------------------------------------------------------------------------------------


def map_customer(item: Mapping[str, Any], ctx: MappingContext) -> Shopper:
    """A Flourish customer as a shopper; its update time is `last_updated_timestamp` (else its creation time)."""
    customer = FlourishCustomer.model_validate(item)
    _, local = _zone_for(ctx, ctx.extra.get(FACILITY_ID))
    created = _time(customer.created_timestamp, local, "created_timestamp")
    updated = _time(customer.last_updated_timestamp, local, "last_updated_timestamp") or created
    if updated is None:
        raise ValueError("customer has neither last_updated_timestamp nor created_timestamp")
    postal = next((a.postcode for a in customer.address if a.postcode), None)
    return Shopper(
        tenant=ctx.tenant,
        vendor=ctx.vendor,
        credential_id=ctx.credential_id,
        pos_id=customer.id,
        source_updated_at=updated,
        first_name=_blank_to_none(customer.first_name),
        last_name=_blank_to_none(customer.last_name),
        phone=normalize_phone(customer.phone, ctx.default_region),
        phone_raw=_blank_to_none(customer.phone),
        email=customer.email,
        birth_date=customer.dob,
        state=state_code(customer.state),
        postal_code=_blank_to_none(postal),
        # A state patient-registry id is what makes a Flourish customer a medical patient.
        customer_type="medical" if customer.patient_id else "recreational",
        pos_created_at=created,
    )


def map_retail_order(item: Mapping[str, Any], ctx: MappingContext) -> Sale:
    """A Flourish retail order as a sale.

    Only a Completed order is a completed sale; Created..Out for Delivery are pending, Cancelled and Undeliverable
    are cancelled. A completed order whose payment status is Refunded / Partially Refunded (or that has returned
    lines) is refunded / partially refunded, with the refunded amount in cents.
    """
    order = FlourishRetailOrder.model_validate(item)
    tz_name, local = _zone_for(ctx, order.facility_id or ctx.extra.get(FACILITY_ID))
    created = _time(order.created_timestamp, local, "created_timestamp")
    placed = _time(order.order_timestamp, local, "order_timestamp")
    completed = _time(order.completed_timestamp, local, "completed_timestamp")
    updated = _time(order.last_updated_timestamp, local, "last_updated_timestamp")
    ordered_at = completed or placed or created
    if ordered_at is None:
        raise ValueError("retail order has no completed_timestamp, order_timestamp or created_timestamp")
    if updated is None:
        updated = max(t for t in (created, placed, completed) if t is not None)

    lines: list[SaleLine] = []
    returned_cents = 0
    for line in order.order_lines:
        net = line.gross_dollars() - line.discount_dollars()
        lines.append(_sale_line(line, line.order_qty, line.gross_dollars(), line.discount_dollars()))
        if line.order_qty < 0:  # a return line
            returned_cents -= _cents(net)
        if line.refunded_qty:  # units of a sold line given back later, at the price paid for them
            paid_each = net / line.order_qty if line.order_qty else line.unit_price or Decimal(0)
            refund = -(paid_each * line.refunded_qty)
            lines.append(_sale_line(line, -line.refunded_qty, refund, Decimal(0)))
            returned_cents -= _cents(refund)

    total_cents = _cents(order.total_price)
    status: SaleStatus = ORDER_STATUS_CANONICAL[order.order_status.strip().lower()]
    refunded_cents = 0
    if status == "completed":
        payment = PAYMENT_STATUS_CANONICAL.get((order.order_payment_status or "").strip().lower())
        if order.total_refunded is not None:
            refunded_cents = _cents(order.total_refunded)
        elif payment == "refunded":
            refunded_cents = total_cents
        else:
            refunded_cents = returned_cents
        if payment is not None:
            status = payment
        elif refunded_cents > 0:
            status = "refunded" if refunded_cents >= total_cents else "partially_refunded"

    line_gross = sum(line.total_cents + line.discount_cents for line in lines if not line.is_refund)
    return Sale(
        tenant=ctx.tenant,
        vendor=ctx.vendor,
        credential_id=ctx.credential_id,
        pos_id=order.id,
        location_id=order.facility_id or _str_or_none(ctx.extra.get(FACILITY_ID)),
        source_updated_at=updated,
        customer_pos_id=order.customer_id,
        ordered_at=ordered_at,
        local_date=ordered_at.astimezone(local).date(),
        timezone=tz_name,
        status=status,
        subtotal_cents=_cents(order.subtotal) if order.subtotal is not None else line_gross,
        discount_cents=_cents(order.total_discounts),
        tax_cents=_cents(order.total_tax),
        total_cents=total_cents,
        refunded_cents=refunded_cents,
        lines=tuple(lines),
    )


def _sale_line(line: FlourishOrderLine, quantity: Decimal, gross: Decimal, discount: Decimal) -> SaleLine:
    return SaleLine(
        product_id=line.item_id,
        sku=_blank_to_none(line.sku),
        name=_blank_to_none(line.item_name),
        category=_blank_to_none(line.item_category),
        brand=_blank_to_none(line.brand),
        quantity=float(quantity),
        total_cents=_cents(gross - discount),
        discount_cents=_cents(discount),
        is_refund=quantity < 0,
    )


def map_item(item: Mapping[str, Any], ctx: MappingContext) -> Product:
    """A Flourish catalog item as a product (quantities live in /inventory/summary and are not read)."""
    product = FlourishItem.model_validate(item)
    _, local = _zone_for(ctx, ctx.extra.get(FACILITY_ID))
    created = _time(product.created_timestamp, local, "created_timestamp")
    updated = _time(product.last_updated_timestamp, local, "last_updated_timestamp") or created
    if updated is None:
        raise ValueError("item has neither last_updated_timestamp nor created_timestamp")
    return Product(
        tenant=ctx.tenant,
        vendor=ctx.vendor,
        credential_id=ctx.credential_id,
        pos_id=product.id,
        source_updated_at=updated,
        product_id=product.id,
        name=product.item_name,
        sku=_blank_to_none(product.sku),
        brand=_blank_to_none(product.brand),
        category=_blank_to_none(product.item_category),
        price_cents=None if product.price is None else dollars_to_cents(product.price),
        active=product.active,
    )


MAPPERS: dict[Stream, Callable[[Mapping[str, Any], MappingContext], CanonicalRecord]] = {
    Stream.CUSTOMERS: map_customer,
    Stream.SALES: map_retail_order,
    Stream.INVENTORY: map_item,
}


def map_record(stream: Stream, item: Mapping[str, Any], ctx: MappingContext) -> CanonicalRecord:
    """One raw Flourish item to its canonical record, or MappingError naming the fields (never their values)."""
    mapper = MAPPERS.get(stream)
    if mapper is None:
        raise MappingError(item_id(item), f"flourish has no {stream.value} stream")
    try:
        return mapper(item, ctx)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise MappingError(item_id(item), problems) from None
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise MappingError(item_id(item), f"{type(exc).__name__}: {exc}") from None


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
