"""Auphan records to canonical ones: pure functions over the (ASSUMED) camelCase payloads of CONTRACT.md."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from functions.core.connector import MappingContext, MappingError
from functions.core.layout import Stream
from functions.core.models import (
    CanonicalRecord,
    Discount,
    Product,
    SaleLineFields,
    Shopper,
    discount_type_of,
    normalize_phone,
    record_of,
    sale_with_lines,
)
from functions.pull_onprem.auphan.constants import (
    ID_FIELDS,
    RETURN_SALE_TYPE,
    SALE_STATUSES,
    SMS_OPTED_IN,
    SMS_OPTED_OUT,
    SaleStatus,
)
from functions.pull_onprem.values import (
    amounts_as_floats,
    cents,
    line_discounts,
    list_or_empty,
    local_date,
    money_cents,
    optional_birth_date,
    page_form,
    page_line_discounts,
    parse_payload,
    stamp_utc,
    store_zone,
    text_field,
    text_or_none,
    to_utc,
    validation_reason,
)

INACTIVE_PRODUCT_STATUSES = frozenset({"discontinued", "inactive", "archived", "deleted"})


Id = Annotated[str, BeforeValidator(text_field), Field(min_length=1)]
OptionalId = Annotated[str | None, BeforeValidator(text_field)]
Text = Annotated[str | None, BeforeValidator(text_field)]
BirthDate = Annotated[date | None, BeforeValidator(optional_birth_date)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True, alias_generator=to_camel)


class AuphanAddress(_Payload):
    region: Text = None
    postal_code: Text = None


class AuphanCustomer(_Payload):
    customer_id: Id
    store_id: OptionalId = None
    first_name: Text = None
    last_name: Text = None
    mobile_phone: Text = None
    email: Text = None
    birth_date: BirthDate = None
    address: AuphanAddress | None = None
    customer_type: Text = None
    loyalty_enrolled: bool | None = None
    sms_consent: Text = None
    email_consent: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime


class AuphanLineDiscount(_Payload):
    """ASSUMED: a discount applied to a line, named as the store's discount list names it."""

    discount_id: OptionalId = None
    name: Text = None


class AuphanDiscount(_Payload):
    """ASSUMED (CONTRACT.md): a discount of the store's list; rewards are mirrored to it by name."""

    discount_id: Id
    store_id: OptionalId = None
    name: Annotated[str, BeforeValidator(text_field)]
    discount_type: Text = None  # "amount" (dollars) or "percent"
    value: Decimal | None = None
    status: Text = None  # "active" or "inactive"
    updated_at: datetime


class AuphanLine(_Payload):
    product_id: OptionalId = None
    sku: Text = None
    name: Text = None
    category: Text = None
    brand: Text = None
    quantity: Decimal
    amount: Decimal  # the line's total after discounts
    discount: Decimal = Decimal(0)
    discounts: Annotated[list[AuphanLineDiscount], BeforeValidator(list_or_empty)] = Field(default_factory=list)


class AuphanPayment(_Payload):
    method: Text = None
    amount: Decimal


class AuphanSale(_Payload):
    sale_id: Id
    store_id: OptionalId = None
    customer_id: OptionalId = None  # Auphan often cannot link a sale to a shopper (see its FAQ)
    sale_type: str = Field("sale", alias="type")
    status: str
    completed_at: datetime
    updated_at: datetime
    subtotal: Decimal
    discount_total: Decimal = Decimal(0)
    tax_total: Decimal = Decimal(0)
    total: Decimal
    refunded_amount: Decimal | None = None
    lines: Annotated[list[AuphanLine], BeforeValidator(list_or_empty)] = Field(default_factory=list)
    payments: Annotated[list[AuphanPayment], BeforeValidator(list_or_empty)] = Field(default_factory=list)


class AuphanProduct(_Payload):
    product_id: Id
    store_id: OptionalId = None
    sku: Text = None
    name: Text = None
    brand: Text = None
    category: Text = None
    retail_price: Decimal | None = None
    on_hand: Decimal | None = None
    status: Text = None
    updated_at: datetime


def item_id(stream: Stream, item: dict[str, Any]) -> str | None:
    key = ID_FIELDS.get(stream)
    return text_or_none(item.get(key)) if key is not None and isinstance(item, dict) else None


def _location(store_id: str | None, ctx: MappingContext) -> str | None:
    fallback = ctx.extra.get("store_id")
    return store_id or (None if fallback is None else str(fallback))


def _record(model: type[CanonicalRecord], pos_id: str, fields: dict[str, Any]) -> CanonicalRecord:
    try:
        return record_of(model, fields)
    except ValidationError as exc:
        raise MappingError(pos_id, validation_reason(exc)) from None


@lru_cache(maxsize=256)  # a handful of states
def sms_flags(consent: str | None) -> tuple[bool | None, bool | None]:
    """(sms_opt_in, sms_opt_out) from Auphan's consent state; an unknown state says nothing either way."""
    state = (consent or "").strip().lower()
    if state == SMS_OPTED_IN:
        return True, False
    if state == SMS_OPTED_OUT:
        return False, True
    return None, None


def map_customer(item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    return customer_record(parse_payload(AuphanCustomer, item, lambda i: item_id(Stream.CUSTOMERS, i)), ctx)


def customer_record(raw: AuphanCustomer, ctx: MappingContext) -> CanonicalRecord:
    zone = store_zone(ctx.timezone)
    sms_opt_in, sms_opt_out = sms_flags(raw.sms_consent)
    address = raw.address or AuphanAddress()
    return _record(
        Shopper,
        raw.customer_id,
        {
            "tenant": ctx.tenant,
            "vendor": ctx.vendor,
            "credential_id": ctx.credential_id,
            "pos_id": raw.customer_id,
            "location_id": _location(raw.store_id, ctx),
            "source_updated_at": to_utc(raw.updated_at, zone),
            "first_name": raw.first_name,
            "last_name": raw.last_name,
            "phone": normalize_phone(raw.mobile_phone, ctx.default_region),
            "phone_raw": raw.mobile_phone,
            "email": raw.email,
            "birth_date": raw.birth_date,
            "state": address.region,
            "postal_code": address.postal_code,
            "loyalty_member": raw.loyalty_enrolled,
            "marketing_opt_in": raw.email_consent,
            "sms_opt_in": sms_opt_in,
            "sms_opt_out": sms_opt_out,
            "customer_type": raw.customer_type,
            "pos_created_at": None if raw.created_at is None else to_utc(raw.created_at, zone),
        },
    )


def sale_line(line: AuphanLine) -> SaleLineFields:
    """A line gives goods or money back (a refund) when its quantity or amount is negative."""
    return {
        "product_id": line.product_id,
        "sku": line.sku,
        "name": line.name,
        "category": line.category,
        "brand": line.brand,
        "quantity": float(line.quantity),
        "total_cents": cents(line.amount),
        "discount_cents": cents(line.discount),
        "is_refund": line.quantity < 0 or line.amount < 0,
    }


def sale_status(raw: AuphanSale, lines: list[SaleLineFields]) -> tuple[SaleStatus, int]:
    """Canonical status and `refunded_cents`, the money given back that `total` does not already net out.

    A refund after the sale changes its status and refundedAmount while its total stays as sold, so the
    refunded amount (the whole total when Auphan omits it) is counted. A return at the till is its own sale
    with negative lines already netted in its total: refunded (all lines) or partly so, counting nothing more.
    An unknown status is quarantined rather than guessed.
    """
    return _sale_status(raw.sale_id, raw.status, raw.sale_type, raw.total, raw.refunded_amount, lines, cents)


def _sale_status(
    sale_id: str,
    raw_status: str,
    sale_type: str,
    total_amount: Any,
    refunded_amount: Any,
    lines: list[SaleLineFields],
    to_cents: Callable[[Any], int],
) -> tuple[SaleStatus, int]:
    """`sale_status` of a sale's values, its amounts turned into cents by `to_cents`."""
    status = _status_of(raw_status)
    if status is None:
        raise MappingError(sale_id, f"unknown sale status {raw_status.strip()[:40]!r}")
    total = to_cents(total_amount)
    refunds = len([line for line in lines if line["is_refund"]])
    if refunds or _is_return(sale_type):
        if status == "completed" and refunds:
            return ("refunded" if refunds == len(lines) else "partially_refunded"), 0
        if status == "completed":  # a return with no lines: the negative total is the refund
            return "refunded", 0
        return status, 0
    if status == "refunded":
        return status, to_cents(refunded_amount) if refunded_amount is not None else max(total, 0)
    if status == "partially_refunded":
        return status, to_cents(refunded_amount)
    return status, 0


@lru_cache(maxsize=256)  # a store uses a handful of spellings
def _status_of(raw_status: str) -> SaleStatus | None:
    return SALE_STATUSES.get(raw_status.strip().lower())


@lru_cache(maxsize=256)
def _is_return(sale_type: str) -> bool:
    return sale_type.strip().lower() == RETURN_SALE_TYPE


def map_sale(item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    return sale_record(parse_payload(AuphanSale, item, lambda i: item_id(Stream.SALES, i)), ctx)


def sale_record(raw: AuphanSale, ctx: MappingContext) -> CanonicalRecord:
    zone = store_zone(ctx.timezone)
    ordered_at = to_utc(raw.completed_at, zone)
    try:
        lines = [sale_line(line) for line in raw.lines]
        status, refunded_cents = sale_status(raw, lines)
        return sale_with_lines(
            tenant=ctx.tenant,
            vendor=ctx.vendor,
            credential_id=ctx.credential_id,
            pos_id=raw.sale_id,
            location_id=_location(raw.store_id, ctx),
            source_updated_at=to_utc(raw.updated_at, zone),
            customer_pos_id=raw.customer_id,
            ordered_at=ordered_at,
            local_date=local_date(ordered_at, zone),
            timezone=ctx.timezone,
            status=status,
            subtotal_cents=cents(raw.subtotal),
            discount_cents=cents(raw.discount_total),
            tax_cents=cents(raw.tax_total),
            total_cents=cents(raw.total),
            refunded_cents=refunded_cents,
            lines=tuple(lines),
            tenders=tuple([{"type": p.method, "amount_cents": cents(p.amount)} for p in raw.payments]),
            discounts=line_discounts(raw.lines),
        )
    except ValidationError as exc:
        raise MappingError(raw.sale_id, validation_reason(exc)) from None


# --- sales as a page gives them -----------------------------------------------------------------------------------

# The amounts of a sale (its own, its lines' and its payments') whose two-place texts its page form keeps as texts
# (values.page_form); a line's quantity is read as before.
SALE_MONEY = frozenset({"subtotal", "discount_total", "tax_total", "total", "refunded_amount", "amount", "discount"})


SALE_STAMPS = frozenset({"completed_at", "updated_at"})


def sale_page_form(schema: Any) -> Any:
    return page_form(schema, SALE_MONEY, SALE_STAMPS)


def _page_line(line: dict[str, Any]) -> SaleLineFields:
    """`sale_line` of a line of a sale's page form."""
    amount = line["amount"]
    total_cents = money_cents(amount)
    quantity = line["quantity"]
    return {
        "product_id": line["product_id"],
        "sku": line["sku"],
        "name": line["name"],
        "category": line["category"],
        "brand": line["brand"],
        "quantity": float(quantity),
        "total_cents": total_cents,
        "discount_cents": money_cents(line["discount"]),
        # a two-place text is negative exactly when its cents are
        "is_refund": quantity < 0 or (total_cents < 0 if amount.__class__ is str else amount < 0),
    }


def sale_page_record(raw: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    """`sale_record` of a sale in its page form (`sale_page_form`): the same Sale."""
    zone = store_zone(ctx.timezone)
    sale_id = raw["sale_id"]
    ordered_at = stamp_utc(raw["completed_at"], zone)
    try:
        sale_lines = raw["lines"]
        lines = [_page_line(line) for line in sale_lines]
        status, refunded_cents = _sale_status(
            sale_id, raw["status"], raw["sale_type"], raw["total"], raw["refunded_amount"], lines, money_cents
        )
        return sale_with_lines(
            tenant=ctx.tenant,
            vendor=ctx.vendor,
            credential_id=ctx.credential_id,
            pos_id=sale_id,
            location_id=_location(raw["store_id"], ctx),
            source_updated_at=stamp_utc(raw["updated_at"], zone),
            customer_pos_id=raw["customer_id"],
            ordered_at=ordered_at,
            local_date=local_date(ordered_at, zone),
            timezone=ctx.timezone,
            status=status,
            subtotal_cents=money_cents(raw["subtotal"]),
            discount_cents=money_cents(raw["discount_total"]),
            tax_cents=money_cents(raw["tax_total"]),
            total_cents=money_cents(raw["total"]),
            refunded_cents=refunded_cents,
            lines=tuple(lines),
            tenders=tuple([{"type": p["method"], "amount_cents": money_cents(p["amount"])} for p in raw["payments"]]),
            discounts=page_line_discounts(sale_lines),
        )
    except ValidationError as exc:
        raise MappingError(sale_id, validation_reason(exc)) from None


def map_product(item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    return product_record(parse_payload(AuphanProduct, item, lambda i: item_id(Stream.INVENTORY, i)), ctx)


def product_record(raw: AuphanProduct, ctx: MappingContext) -> CanonicalRecord:
    name = raw.name or raw.sku
    if name is None:
        raise MappingError(raw.product_id, "product has neither name nor sku")
    return _record(
        Product,
        raw.product_id,
        {
            "tenant": ctx.tenant,
            "vendor": ctx.vendor,
            "credential_id": ctx.credential_id,
            "pos_id": raw.product_id,
            "location_id": _location(raw.store_id, ctx),
            "source_updated_at": to_utc(raw.updated_at, store_zone(ctx.timezone)),
            "product_id": raw.product_id,
            "name": name,
            "sku": raw.sku,
            "brand": raw.brand,
            "category": raw.category,
            "price_cents": None if raw.retail_price is None else cents(raw.retail_price),
            "quantity_on_hand": None if raw.on_hand is None else float(raw.on_hand),
            "active": (raw.status or "active").lower() not in INACTIVE_PRODUCT_STATUSES,
        },
    )


def map_discount(item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    return discount_record(parse_payload(AuphanDiscount, item, lambda i: item_id(Stream.DISCOUNTS, i)), ctx)


def discount_record(raw: AuphanDiscount, ctx: MappingContext) -> CanonicalRecord:
    return _record(
        Discount,
        raw.discount_id,
        {
            "tenant": ctx.tenant,
            "vendor": ctx.vendor,
            "credential_id": ctx.credential_id,
            "pos_id": raw.discount_id,
            "location_id": _location(raw.store_id, ctx),
            "source_updated_at": to_utc(raw.updated_at, store_zone(ctx.timezone)),
            "name": raw.name,
            "discount_type": discount_type_of(raw.discount_type),
            "value": None if raw.value is None else str(raw.value),
            "active": (raw.status or "active").strip().lower() == "active",
            "timezone": ctx.timezone,
        },
    )


MAPPERS: dict[Stream, Callable[[dict[str, Any], MappingContext], CanonicalRecord]] = {
    Stream.CUSTOMERS: map_customer,
    Stream.SALES: map_sale,
    Stream.INVENTORY: map_product,
    Stream.DISCOUNTS: map_discount,
}

# Each stream's payload model (its list pages are validated from their bytes: functions.core.page_fastpath) and the
# mapping of a validated payload. Sales and inventory read their amounts as floats there (`amounts_as_floats`: their
# mappings read amounts only through `cents`, `float` and signs); discounts keep decimals (a value's text is stored).
PAGE_MODELS: dict[Stream, type[BaseModel]] = {
    Stream.CUSTOMERS: AuphanCustomer,
    Stream.SALES: amounts_as_floats(AuphanSale, texts_first=True),
    Stream.INVENTORY: amounts_as_floats(AuphanProduct, texts_first=True),
    Stream.DISCOUNTS: AuphanDiscount,
}
# The streams whose pages are validated in a form of their own (functions.core.page_fastpath's `rewrite`), mapped by
# their PAYLOAD_MAPPERS in that form: sales.
PAGE_FORMS: dict[Stream, Callable[[Any], Any]] = {Stream.SALES: sale_page_form}
PAYLOAD_MAPPERS: dict[Stream, Callable[[Any, MappingContext], CanonicalRecord]] = {
    Stream.CUSTOMERS: customer_record,
    Stream.SALES: sale_page_record,  # in its page form (PAGE_FORMS)
    Stream.INVENTORY: product_record,
    Stream.DISCOUNTS: discount_record,
}


def map_record(stream: Stream, item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    """One Auphan item to its canonical record, or MappingError (the item is quarantined, the pull goes on)."""
    if not isinstance(item, dict):
        raise MappingError(None, f"{stream.value} item is not a JSON object")
    mapper = MAPPERS.get(stream)
    if mapper is None:
        raise MappingError(None, f"auphan has no {stream.value} stream")
    return mapper(item, ctx)


def map_payload(stream: Stream, payload: Any, ctx: MappingContext) -> CanonicalRecord:
    """The record `map_record` gives for the item `payload` was validated from (its stream's PAGE_MODELS instance);
    whatever it raises, the engine maps that item with `map_record` instead (functions.core.engine.map_page)."""
    return PAYLOAD_MAPPERS[stream](payload, ctx)
