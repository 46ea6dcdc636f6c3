"""Profitek records to canonical ones: pure functions over the (ASSUMED) PascalCase payloads of CONTRACT.md."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from functions.core import zones
from functions.core.connector import MappingContext, MappingError
from functions.core.layout import Stream
from functions.core.models import (
    BoundedDecimal,
    CanonicalRecord,
    Discount,
    LoyaltyBalance,
    Product,
    SaleLineFields,
    Shopper,
    discount_type_of,
    normalize_phone,
    record_of,
    sale_with_lines,
)
from functions.core.payload_fastpath import IdentityOn
from functions.pull_onprem.profitek.constants import ID_FIELDS, SALE_STATUSES, STORE_ZONE_NAMES, SaleStatus
from functions.pull_onprem.values import (
    IDENTITY_ON,
    amounts_as_floats,
    cents,
    line_discounts,
    list_or_empty,
    local_date,
    optional_birth_date,
    page_form,
    page_line_discounts,
    parse_payload,
    stamp_utc,
    store_zone,
    text_field,
    to_utc,
    validation_reason,
    whole_points,
)


def _id(value: Any) -> Any:
    """Ids arrive as numbers or strings; 0 or a blank is .NET's "none"."""
    text = text_field(value)
    return None if text in (None, "0") else text


Id = Annotated[str, BeforeValidator(_id), Field(min_length=1)]
OptionalId = Annotated[str | None, BeforeValidator(_id)]
Text = Annotated[str | None, BeforeValidator(text_field)]
BirthDate = Annotated[date | None, BeforeValidator(optional_birth_date)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)


class ProfitekCustomer(_Payload):
    customer_id: Id = Field(alias="CustomerID")
    store_id: OptionalId = Field(None, alias="StoreID")
    first_name: Text = Field(None, alias="FirstName")
    last_name: Text = Field(None, alias="LastName")
    phone: Text = Field(None, alias="Phone")
    email: Text = Field(None, alias="Email")
    birth_date: BirthDate = Field(None, alias="BirthDate")
    state: Text = Field(None, alias="State")
    zip: Text = Field(None, alias="Zip")
    customer_type: Text = Field(None, alias="CustomerType")
    loyalty_member: bool | None = Field(None, alias="LoyaltyMember")
    marketing_opt_in: bool | None = Field(None, alias="MarketingOptIn")
    sms_opt_in: bool | None = Field(None, alias="SmsOptIn")
    sms_opt_out: bool | None = Field(None, alias="SmsOptOut")
    created_date: datetime | None = Field(None, alias="CreatedDate")
    modified_date: datetime = Field(alias="ModifiedDate")


class ProfitekLineDiscount(_Payload):
    """ASSUMED: a discount applied to a line, named as the store's discount list names it."""

    discount_id: OptionalId = Field(None, alias="DiscountID")
    name: Text = Field(None, alias="Name")


class ProfitekLine(_Payload):
    item_id: OptionalId = Field(None, alias="ItemID")
    sku: Text = Field(None, alias="SKU")
    description: Text = Field(None, alias="Description")
    category: Text = Field(None, alias="Category")
    brand: Text = Field(None, alias="Brand")
    qty: Decimal = Field(alias="Qty")
    ext_price: Decimal = Field(alias="ExtPrice")
    discount: Decimal = Field(Decimal(0), alias="Discount")
    discounts: Annotated[list[ProfitekLineDiscount], BeforeValidator(list_or_empty)] = Field(
        default_factory=list, alias="Discounts"
    )


class ProfitekDiscount(_Payload):
    """ASSUMED (CONTRACT.md): a discount of the store's list; rewards are mirrored to it by name."""

    discount_id: Id = Field(alias="DiscountID")
    store_id: OptionalId = Field(None, alias="StoreID")
    name: Annotated[str, BeforeValidator(text_field)] = Field(alias="Name")
    discount_type: Text = Field(None, alias="DiscountType")  # "Amount" (dollars) or "Percent"
    amount: Decimal | None = Field(None, alias="Amount")
    active: bool = Field(True, alias="Active")
    modified_date: datetime = Field(alias="ModifiedDate")


class ProfitekTender(_Payload):
    tender_type: Text = Field(None, alias="TenderType")
    amount: Decimal = Field(alias="Amount")


class ProfitekTransaction(_Payload):
    transaction_id: Id = Field(alias="TransactionID")
    store_id: OptionalId = Field(None, alias="StoreID")
    customer_id: OptionalId = Field(None, alias="CustomerID")
    transaction_date: datetime = Field(alias="TransactionDate")
    status: str = Field(alias="Status")
    sub_total: Decimal = Field(alias="SubTotal")
    discount_total: Decimal = Field(Decimal(0), alias="DiscountTotal")
    tax_total: Decimal = Field(Decimal(0), alias="TaxTotal")
    total: Decimal = Field(alias="Total")
    lines: Annotated[list[ProfitekLine], BeforeValidator(list_or_empty)] = Field(default_factory=list, alias="Lines")
    tenders: Annotated[list[ProfitekTender], BeforeValidator(list_or_empty)] = Field(
        default_factory=list, alias="Tenders"
    )
    modified_date: datetime = Field(alias="ModifiedDate")


class ProfitekItem(_Payload):
    item_id: Id = Field(alias="ItemID")
    store_id: OptionalId = Field(None, alias="StoreID")
    sku: Text = Field(None, alias="SKU")
    description: Text = Field(None, alias="Description")
    brand: Text = Field(None, alias="Brand")
    category: Text = Field(None, alias="Category")
    price: Decimal | None = Field(None, alias="Price")
    qty_on_hand: Decimal | None = Field(None, alias="QtyOnHand")
    active: bool = Field(True, alias="Active")
    modified_date: datetime = Field(alias="ModifiedDate")


class ProfitekLoyaltyBalance(_Payload):
    customer_id: Id = Field(alias="CustomerID")
    store_id: OptionalId = Field(None, alias="StoreID")
    points_balance: BoundedDecimal = Field(alias="PointsBalance")
    modified_date: datetime = Field(alias="ModifiedDate")


def store_timezone(raw: str | None) -> str:
    """The store's zone as an IANA name: Windows zone ids are translated, IANA names pass through."""
    iana = zones.to_iana(raw, STORE_ZONE_NAMES)
    if iana is None:
        raise MappingError(None, f"unknown store time zone {(raw or '').strip()[:64]!r}")
    return iana


def item_id(stream: Stream, item: dict[str, Any]) -> str | None:
    value = _id(item.get(ID_FIELDS[stream])) if isinstance(item, dict) else None
    return value if isinstance(value, str) else None


def _location(store_id: str | None, ctx: MappingContext) -> str | None:
    fallback = ctx.extra.get("store_id")
    return store_id or (None if fallback is None else str(fallback))


def _record(model: type[CanonicalRecord], pos_id: str, fields: dict[str, Any]) -> CanonicalRecord:
    try:
        return record_of(model, fields)
    except ValidationError as exc:
        raise MappingError(pos_id, validation_reason(exc)) from None


def map_customer(item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    return customer_record(parse_payload(ProfitekCustomer, item, lambda i: item_id(Stream.CUSTOMERS, i)), ctx)


def customer_record(raw: ProfitekCustomer, ctx: MappingContext) -> CanonicalRecord:
    zone = store_zone(ctx.timezone)
    return _record(
        Shopper,
        raw.customer_id,
        {
            "tenant": ctx.tenant,
            "vendor": ctx.vendor,
            "credential_id": ctx.credential_id,
            "pos_id": raw.customer_id,
            "location_id": _location(raw.store_id, ctx),
            "source_updated_at": to_utc(raw.modified_date, zone),
            "first_name": raw.first_name,
            "last_name": raw.last_name,
            "phone": normalize_phone(raw.phone, ctx.default_region),
            "phone_raw": raw.phone,
            "email": raw.email,
            "birth_date": raw.birth_date,
            "state": raw.state,
            "postal_code": raw.zip,
            "loyalty_member": raw.loyalty_member,
            "marketing_opt_in": raw.marketing_opt_in,
            "sms_opt_in": raw.sms_opt_in,
            "sms_opt_out": raw.sms_opt_out,
            "customer_type": raw.customer_type,
            "pos_created_at": None if raw.created_date is None else to_utc(raw.created_date, zone),
        },
    )


def sale_line(line: ProfitekLine) -> SaleLineFields:
    """A line gives goods or money back (a refund) when its quantity or extended price is negative."""
    return {
        "product_id": line.item_id,
        "sku": line.sku,
        "name": line.description,
        "category": line.category,
        "brand": line.brand,
        "quantity": float(line.qty),
        "total_cents": cents(line.ext_price),
        "discount_cents": cents(line.discount),
        "is_refund": line.qty < 0 or line.ext_price < 0,
    }


def sale_status(pos_id: str, raw_status: str, lines: list[SaleLineFields]) -> SaleStatus:
    """Profitek's status, refined by the lines: refund lines make a completed sale refunded (all) or partly so.

    Refund lines are already netted in the transaction's total, so they never add to `refunded_cents`; an
    unknown status is quarantined rather than guessed.
    """
    status = _status_of(raw_status)
    if status is None:
        raise MappingError(pos_id, f"unknown transaction status {raw_status.strip()[:40]!r}")
    if status == "completed":
        refunds = len([line for line in lines if line["is_refund"]])
        if refunds:
            return "refunded" if refunds == len(lines) else "partially_refunded"
    return status


@lru_cache(maxsize=256)  # a store uses a handful of spellings
def _status_of(raw_status: str) -> SaleStatus | None:
    return SALE_STATUSES.get(raw_status.strip().lower().replace(" ", "").replace("_", ""))


def map_sale(item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    return sale_record(parse_payload(ProfitekTransaction, item, lambda i: item_id(Stream.SALES, i)), ctx)


def sale_record(raw: ProfitekTransaction, ctx: MappingContext) -> CanonicalRecord:
    zone = store_zone(ctx.timezone)
    ordered_at = to_utc(raw.transaction_date, zone)
    try:
        lines = [sale_line(line) for line in raw.lines]
        return sale_with_lines(
            tenant=ctx.tenant,
            vendor=ctx.vendor,
            credential_id=ctx.credential_id,
            pos_id=raw.transaction_id,
            location_id=_location(raw.store_id, ctx),
            source_updated_at=to_utc(raw.modified_date, zone),
            customer_pos_id=raw.customer_id,
            ordered_at=ordered_at,
            local_date=local_date(ordered_at, zone),
            timezone=ctx.timezone,
            status=sale_status(raw.transaction_id, raw.status, lines),
            subtotal_cents=cents(raw.sub_total),
            discount_cents=cents(raw.discount_total),
            tax_cents=cents(raw.tax_total),
            total_cents=cents(raw.total),
            refunded_cents=0,
            lines=tuple(lines),
            tenders=tuple(
                [{"type": tender.tender_type, "amount_cents": cents(tender.amount)} for tender in raw.tenders]
            ),
            discounts=line_discounts(raw.lines),
        )
    except ValidationError as exc:
        raise MappingError(raw.transaction_id, validation_reason(exc)) from None


def _page_line(line: dict[str, Any]) -> SaleLineFields:
    """`sale_line` of a line of a transaction's page form."""
    qty = line["qty"]
    ext_price = line["ext_price"]
    return {
        "product_id": line["item_id"],
        "sku": line["sku"],
        "name": line["description"],
        "category": line["category"],
        "brand": line["brand"],
        "quantity": float(qty),
        "total_cents": cents(ext_price),
        "discount_cents": cents(line["discount"]),
        "is_refund": qty < 0 or ext_price < 0,
    }


def sale_page_record(raw: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    """`sale_record` of a transaction in its page form (values.page_form: dicts, amounts as `amounts_as_floats`
    reads them): the same Sale."""
    zone = store_zone(ctx.timezone)
    transaction_id = raw["transaction_id"]
    ordered_at = stamp_utc(raw["transaction_date"], zone)
    try:
        sale_lines = raw["lines"]
        lines = [_page_line(line) for line in sale_lines]
        return sale_with_lines(
            tenant=ctx.tenant,
            vendor=ctx.vendor,
            credential_id=ctx.credential_id,
            pos_id=transaction_id,
            location_id=_location(raw["store_id"], ctx),
            source_updated_at=stamp_utc(raw["modified_date"], zone),
            customer_pos_id=raw["customer_id"],
            ordered_at=ordered_at,
            local_date=local_date(ordered_at, zone),
            timezone=ctx.timezone,
            status=sale_status(transaction_id, raw["status"], lines),
            subtotal_cents=cents(raw["sub_total"]),
            discount_cents=cents(raw["discount_total"]),
            tax_cents=cents(raw["tax_total"]),
            total_cents=cents(raw["total"]),
            refunded_cents=0,
            lines=tuple(lines),
            tenders=tuple([{"type": t["tender_type"], "amount_cents": cents(t["amount"])} for t in raw["tenders"]]),
            discounts=page_line_discounts(sale_lines),
        )
    except ValidationError as exc:
        raise MappingError(transaction_id, validation_reason(exc)) from None


# The timestamps of a transaction whose ISO 8601 texts its page form keeps as texts (values.page_form, stamp_utc).
SALE_STAMPS = frozenset({"transaction_date", "modified_date"})


def sale_page_form(schema: Any) -> Any:
    """A transaction's compiled schema as its pages are validated with: its models as dicts (values.page_form), its
    timestamps as texts, its amounts read as before. Its line and tender instances were about 40% of its page
    validation (measured)."""
    return page_form(schema, frozenset(), SALE_STAMPS)


def map_item(item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    return item_record(parse_payload(ProfitekItem, item, lambda i: item_id(Stream.INVENTORY, i)), ctx)


def item_record(raw: ProfitekItem, ctx: MappingContext) -> CanonicalRecord:
    name = raw.description or raw.sku
    if name is None:
        raise MappingError(raw.item_id, "item has neither Description nor SKU")
    return _record(
        Product,
        raw.item_id,
        {
            "tenant": ctx.tenant,
            "vendor": ctx.vendor,
            "credential_id": ctx.credential_id,
            "pos_id": raw.item_id,
            "location_id": _location(raw.store_id, ctx),
            "source_updated_at": to_utc(raw.modified_date, store_zone(ctx.timezone)),
            "product_id": raw.item_id,
            "name": name,
            "sku": raw.sku,
            "brand": raw.brand,
            "category": raw.category,
            "price_cents": None if raw.price is None else cents(raw.price),
            "quantity_on_hand": None if raw.qty_on_hand is None else float(raw.qty_on_hand),
            "active": raw.active,
        },
    )


def map_loyalty(item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    return loyalty_record(parse_payload(ProfitekLoyaltyBalance, item, lambda i: item_id(Stream.LOYALTY, i)), ctx)


def loyalty_record(raw: ProfitekLoyaltyBalance, ctx: MappingContext) -> CanonicalRecord:
    as_of = to_utc(raw.modified_date, store_zone(ctx.timezone))
    return _record(
        LoyaltyBalance,
        raw.customer_id,
        {
            "tenant": ctx.tenant,
            "vendor": ctx.vendor,
            "credential_id": ctx.credential_id,
            "pos_id": raw.customer_id,
            "location_id": _location(raw.store_id, ctx),
            "source_updated_at": as_of,
            "customer_pos_id": raw.customer_id,
            "points": whole_points(raw.points_balance),
            "as_of": as_of,
        },
    )


def map_discount(item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    return discount_record(parse_payload(ProfitekDiscount, item, lambda i: item_id(Stream.DISCOUNTS, i)), ctx)


def discount_record(raw: ProfitekDiscount, ctx: MappingContext) -> CanonicalRecord:
    return _record(
        Discount,
        raw.discount_id,
        {
            "tenant": ctx.tenant,
            "vendor": ctx.vendor,
            "credential_id": ctx.credential_id,
            "pos_id": raw.discount_id,
            "location_id": _location(raw.store_id, ctx),
            "source_updated_at": to_utc(raw.modified_date, store_zone(ctx.timezone)),
            "name": raw.name,
            "discount_type": discount_type_of(raw.discount_type),
            "value": None if raw.amount is None else str(raw.amount),
            "active": raw.active,
            "timezone": ctx.timezone,
        },
    )


MAPPERS: dict[Stream, Callable[[dict[str, Any], MappingContext], CanonicalRecord]] = {
    Stream.CUSTOMERS: map_customer,
    Stream.SALES: map_sale,
    Stream.INVENTORY: map_item,
    Stream.LOYALTY: map_loyalty,
    Stream.DISCOUNTS: map_discount,
}

# The before-validators a page's schema compiles out of the common case (functions.core.payload_fastpath): the
# shared ones, and Profitek's ids (a number or a text; 0 is .NET's "none", left to `_id`).
PAGE_IDENTITY_ON: Mapping[Callable[[Any], Any], IdentityOn] = MappingProxyType({**IDENTITY_ON, _id: "nonzero_id_text"})

# Each stream's payload model (its list pages are validated from their bytes: functions.core.page_fastpath) and the
# mapping of a validated payload. Sales and inventory read their amounts as floats there (`amounts_as_floats`: their
# mappings read amounts only through `cents`, `float` and signs); discounts keep decimals (a value's text is stored).
PAGE_MODELS: dict[Stream, type[BaseModel]] = {
    Stream.CUSTOMERS: ProfitekCustomer,
    Stream.SALES: amounts_as_floats(ProfitekTransaction),
    Stream.INVENTORY: amounts_as_floats(ProfitekItem),
    Stream.LOYALTY: ProfitekLoyaltyBalance,
    Stream.DISCOUNTS: ProfitekDiscount,
}
# The streams whose pages are validated in a form of their own (functions.core.page_fastpath's `rewrite`), mapped by
# their PAYLOAD_MAPPERS in that form: sales.
PAGE_FORMS: dict[Stream, Callable[[Any], Any]] = {Stream.SALES: sale_page_form}
PAYLOAD_MAPPERS: dict[Stream, Callable[[Any, MappingContext], CanonicalRecord]] = {
    Stream.CUSTOMERS: customer_record,
    Stream.SALES: sale_page_record,  # in its page form (PAGE_FORMS)
    Stream.INVENTORY: item_record,
    Stream.LOYALTY: loyalty_record,
    Stream.DISCOUNTS: discount_record,
}


def map_record(stream: Stream, item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    """One Profitek item to its canonical record, or MappingError (the item is quarantined, the pull goes on)."""
    if not isinstance(item, dict):
        raise MappingError(None, f"{stream.value} item is not a JSON object")
    return MAPPERS[stream](item, ctx)


def map_payload(stream: Stream, payload: Any, ctx: MappingContext) -> CanonicalRecord:
    """The record `map_record` gives for the item `payload` was validated from (its stream's PAGE_MODELS instance);
    whatever it raises, the engine maps that item with `map_record` instead (functions.core.engine.map_page)."""
    return PAYLOAD_MAPPERS[stream](payload, ctx)
