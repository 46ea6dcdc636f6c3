"""Pure mapping of POSaBIT records (customers, sales histories, inventories) to the canonical models."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Annotated, Any, Literal, cast

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from functions.core import zones
from functions.core.connector import MappingContext, MappingError
from functions.core.layout import Stream
from functions.core.models import (
    AppliedDiscount,
    CanonicalRecord,
    Discount,
    LoyaltyBalance,
    Product,
    Sale,
    SaleLineFields,
    Shopper,
    applied_discount,
    discount_type_of,
    normalize_email,
    normalize_phone,
    record_of,
    sale_of,
)
from functions.core.page_fastpath import model_as_typed_dict
from functions.core.payload_fastpath import IdentityOn, fast_validator
from functions.pull_posabit.constants import (
    CANCELLED_STATUSES,
    COMPLETED_STATUSES,
    PARTIALLY_REFUNDED_STATUSES,
    PENDING_STATUSES,
    RAILS_TIME_ZONE_ALIASES,
    RAILS_TIME_ZONES,
    REFUNDED_STATUSES,
    STREAM_CONTRACTS,
)

SaleStatus = Literal["completed", "refunded", "partially_refunded", "cancelled", "pending"]

# --- list items -------------------------------------------------------------------------------------------------


def unwrap_item(stream: Stream, item: Any) -> dict[str, Any]:
    """POSaBIT sometimes wraps a list item as {"customer": {...}}; return the record itself either way."""
    if not isinstance(item, dict):
        # Kept (not dropped) so the engine quarantines it with a pointer to its page.
        return {"_unparseable_item": item}
    if "id" not in item:
        for key in STREAM_CONTRACTS[stream].wrapper_keys:
            inner = item.get(key)
            if isinstance(inner, dict):
                return inner
    return item


def item_id(stream: Stream, item: Mapping[str, Any]) -> str | None:
    value = unwrap_item(stream, item if isinstance(item, dict) else dict(item)).get("id")
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    return text or None


# --- time -------------------------------------------------------------------------------------------------------

_GMT_PREFIX = re.compile(r"^\(GMT[+-]\d{1,2}:\d{2}\)\s*")
_RAILS_NAMES = MappingProxyType({**RAILS_TIME_ZONES, **RAILS_TIME_ZONE_ALIASES})


def resolve_timezone(name: str | None) -> str | None:
    """IANA zone for a Rails zone name ("Pacific Time (US & Canada)"), its "(GMT-08:00) ..." display form, or an
    IANA name; None when the name is unknown."""
    if not name or not isinstance(name, str):
        return None
    return zones.to_iana(_GMT_PREFIX.sub("", name.strip()), _RAILS_NAMES)


def venue_timezone(info: Mapping[str, Any], market: str | None = None) -> tuple[str, bool]:
    """The venue's IANA zone and whether it came from the venue's own `timezone` (False: from its state).

    The venue's zone decides sale dates, so an unreadable one falls back to the zone of the venue's state (or the
    credential's market); when neither is known there is no safe answer and ValueError is raised.
    """
    zone = resolve_timezone(info.get("timezone"))
    if zone is not None:
        return zone, True
    for state in (info.get("state"), info.get("state_abbrev"), market):
        fallback = zones.state_zone(state)
        if fallback is not None:
            return fallback, False
    raise ValueError("the venue's timezone is missing or unknown and its state gives no zone")


_TRAILING_UTC = re.compile(r"\s+(UTC|GMT)$", re.IGNORECASE)


def parse_timestamp(value: Any) -> datetime:
    """A POSaBIT timestamp as written: aware when it carries an offset or `Z`, naive otherwise.

    Accepts ISO 8601 (`T` or space separator, fractions, `Z` or `z`, `+hh:mm`, `+hhmm`) and Ruby's `Time#to_s`
    (`2026-10-01 12:00:00 -0700`, `... UTC`). Raises ValueError for anything else.
    """
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValueError("not a timestamp")
    if text[-1] in "CTct":  # only then can it end in " UTC" / " GMT"
        text = _TRAILING_UTC.sub("+00:00", text)
    elif text[-1] == "z":  # RFC 3339 allows a lower-case Z; fromisoformat refuses it
        text = text[:-1] + "Z"
    return datetime.fromisoformat(text)


def to_utc(moment: datetime, zone: str) -> datetime:
    """Naive timestamps are the venue's wall clock; offset timestamps are converted. Always aware UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zones.zone(zone))
    return moment.astimezone(UTC)


def _timestamp(value: Any, zone: str, field: str, pos_id: str | None) -> datetime:
    if value.__class__ is str and value[-1:] == "Z" and not value[:1].isspace():
        # What POSaBIT sends, UTC "...Z" text: parse_timestamp would strip nothing and read it with fromisoformat, and
        # to_utc return that UTC moment itself (two calls saved, about 1.5% of a customer's or a loyalty balance's
        # mapping instructions, measured). Anything else, or text fromisoformat refuses, takes the path below.
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is UTC:
                return moment
    try:
        return to_utc(parse_timestamp(value), zone)
    except ValueError:
        raise MappingError(pos_id, f"{field} is not a timestamp") from None


def _optional_timestamp(value: Any, zone: str, field: str, pos_id: str | None) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _timestamp(value, zone, field, pos_id)


# --- vendor payload models (unknown fields ignored; input values never echoed in errors) ---------------------------


def _to_id(value: Any) -> Any:
    if value.__class__ is str:  # the common cases first (exact types: bool is an int subclass)
        text = value.strip()
        if text:
            return text
    elif value.__class__ is int:
        return str(value)
    if isinstance(value, bool):
        raise ValueError("an id cannot be a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError("missing or empty id")


def _to_optional_id(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _to_id(value)


def _to_optional_text(value: Any) -> Any:
    if value.__class__ is str:  # the common case first
        return value.strip() or None
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        return value.strip() or None
    return value  # anything else fails the str check, naming the field


def _to_whole(value: Any) -> Any:
    """Integer cents and points as POSaBIT sends them (ints, sometimes numeric strings); booleans and fractions
    are errors, never rounded."""
    if value.__class__ is int:  # the common case first (exact type: bool is an int subclass)
        return value
    if isinstance(value, bool):
        raise ValueError("expected a whole number, got a boolean")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("expected a whole number, got a fraction")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError("expected a whole number")
        return int(text)
    return value


def _to_optional_whole(value: Any) -> Any:
    return None if value is None else _to_whole(value)


def _to_optional_flag(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _to_lenient_date(value: Any) -> Any:
    """Birthdays are typed at the till: an unreadable one is dropped, not allowed to quarantine the shopper."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def _to_list(value: Any) -> Any:
    return [] if value is None else value


PosId = Annotated[str, BeforeValidator(_to_id)]
OptionalId = Annotated[str | None, BeforeValidator(_to_optional_id)]
Text = Annotated[str | None, BeforeValidator(_to_optional_text)]
Cents = Annotated[int, BeforeValidator(_to_whole)]
OptionalWhole = Annotated[int | None, BeforeValidator(_to_optional_whole)]
Flag = Annotated[bool | None, BeforeValidator(_to_optional_flag)]
LenientDate = Annotated[date | None, BeforeValidator(_to_lenient_date)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)


class PosabitCustomer(_Payload):
    id: PosId
    first_name: Text = None
    last_name: Text = None
    telephone: Text = None
    email: Text = None
    # Some venues return the flag as `loyalty` (seen in public integrations).
    loyalty_member: Flag = Field(default=None, validation_alias=AliasChoices("loyalty_member", "loyalty"))
    marketing_opt_in: Flag = None
    sms_opt_in: Flag = None
    sms_opt_out: Flag = None
    birthday: LenientDate = None
    state: Text = None
    zipcode: Text = Field(default=None, validation_alias=AliasChoices("zipcode", "zip_code"))
    customer_type: Text = None
    created_at: Any = None
    updated_at: Any


class PosabitPointsBalance(_Payload):
    """The loyalty view of a customer: its points are read here only, so bad points never block the shopper."""

    id: PosId
    points: OptionalWhole = None
    updated_at: Any


class PosabitCustomerPoints(PosabitCustomer):
    """A customer as a customers page gives it to both streams read from it: the shopper's fields and the loyalty
    view's `points` (validated as PosabitPointsBalance validates them), from one validation of the page's bytes. A
    page with any customer or any points this refuses is mapped item by item, each stream from its own model."""

    points: OptionalWhole = None


class PosabitSaleItem(_Payload):
    product_id: OptionalId = None
    sku: Text = None
    category: Text = None
    brand: Text = None
    product_name: Text = Field(default=None, validation_alias=AliasChoices("product_name", "name"))
    quantity: float
    total: Cents
    discount: Cents = 0
    discount_list: Annotated[list[Any], BeforeValidator(_to_list)] = Field(default_factory=list)


class PosabitTender(_Payload):
    sales_tender_id: OptionalId = Field(default=None, validation_alias=AliasChoices("sales_tender_id", "id"))
    payment_method_name: Text = Field(
        default=None, validation_alias=AliasChoices("payment_method_name", "payment_method", "name")
    )
    total: OptionalWhole = None


class PosabitSale(_Payload):
    id: PosId
    ordered_at: Any = None
    ordered_at_local: Any = None
    customer_id: OptionalId = None
    sub_total: OptionalWhole = Field(default=None, validation_alias=AliasChoices("sub_total", "subtotal"))
    discount: Cents = 0
    tax: Cents = 0
    total: Cents
    status: Text = None
    items: Annotated[list[PosabitSaleItem], BeforeValidator(_to_list)] = Field(default_factory=list)
    sales_tenders: Annotated[list[PosabitTender], BeforeValidator(_to_list)] = Field(
        default_factory=list, validation_alias=AliasChoices("sales_tenders", "tenders")
    )
    created_at: Any = None
    updated_at: Any


class PosabitInventory(_Payload):
    id: PosId
    product_id: OptionalId = None
    name: Annotated[str, BeforeValidator(_to_optional_text)]
    sku: Text = None
    brand: Text = None
    category: Text = None
    price: OptionalWhole = None
    quantity_on_hand: float | None = None
    active: Flag = None
    updated_at: Any


class PosabitCoupon(_Payload):
    """A venue coupon (ASSUMED shape, CONTRACT.md): `discount_type` "dollar" (amount in cents) or "percent"."""

    id: PosId
    name: Annotated[str, BeforeValidator(_to_optional_text)]
    discount_type: Text = None
    amount: float | None = None
    active: Flag = None
    starts_at: Any = None
    expires_at: Any = None
    updated_at: Any


def _validation_reason(exc: ValidationError) -> str:
    """Field names and problems only: the values may be personal data."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors(include_input=False))


# --- canonical records ------------------------------------------------------------------------------------------

# The mappings read a payload's fields off its `__dict__`, where pydantic keeps every field of a validated model, not
# as attributes: BaseModel defines `__getattr__`, so each attribute read goes through Python's slower slot hook (about
# 25 ns a read, measured; a sale of two lines reads some 40). Same values, 5 to 6% fewer instructions mapping a sale,
# about 3.5% a customer and 1.5% a loyalty balance (callgrind, simulator pages).


def _origin(ctx: MappingContext) -> Mapping[str, Any]:
    """The fields every record of one context shares, built once per context. Callers unpack it (a copy) and never
    change it: a plain dict, as unpacking a read-only proxy of it cost about 1 µs more a record (measured)."""
    venue_id = ctx.extra.get("venue_id")
    global _last_origin  # one snapshot, replaced whole
    last = _last_origin  # one read of one tuple: a thread replacing it meanwhile cannot mix two contexts' fields
    if last[0] is ctx and last[1] is venue_id:
        return last[2]
    origin = {
        "tenant": ctx.tenant,
        "vendor": ctx.vendor,
        "credential_id": ctx.credential_id,
        "location_id": str(venue_id) if venue_id is not None else None,
    }
    # The context (and its venue id) are held, so `is` cannot match a new one at a reused address.
    _last_origin = (ctx, venue_id, origin)
    return origin


_last_origin: tuple[object, object, Mapping[str, Any]] = (None, None, {})


def map_customer(raw: PosabitCustomer, ctx: MappingContext) -> Shopper:
    """A POSaBIT customer as a shopper: phone in E.164 (US default), email lower-cased, typed values kept raw."""
    customer = raw.__dict__  # read as the note above _origin says
    pos_id = customer["id"]
    zone = ctx.timezone
    telephone = customer["telephone"]
    state = customer["state"]
    return record_of(
        Shopper,
        {
            **_origin(ctx),
            "pos_id": pos_id,
            "source_updated_at": _timestamp(customer["updated_at"], zone, "updated_at", pos_id),
            "first_name": customer["first_name"],
            "last_name": customer["last_name"],
            "phone": normalize_phone(telephone, ctx.default_region),
            "phone_raw": telephone,
            "email": normalize_email(customer["email"]),
            "birth_date": customer["birthday"],
            "state": state.upper() if state and len(state) == 2 else state,
            "postal_code": customer["zipcode"],
            "loyalty_member": customer["loyalty_member"],
            "marketing_opt_in": customer["marketing_opt_in"],
            "sms_opt_in": customer["sms_opt_in"],
            "sms_opt_out": customer["sms_opt_out"],
            "customer_type": customer["customer_type"],
            "pos_created_at": _optional_timestamp(customer["created_at"], zone, "created_at", pos_id),
        },
    )


def map_loyalty_balance(raw: PosabitPointsBalance | PosabitCustomerPoints, ctx: MappingContext) -> LoyaltyBalance:
    """A customer's `points` as its balance at the customer's last update; no points on record means zero."""
    customer = raw.__dict__  # read as the note above _origin says
    pos_id = customer["id"]
    as_of = _timestamp(customer["updated_at"], ctx.timezone, "updated_at", pos_id)
    return record_of(
        LoyaltyBalance,
        {
            **_origin(ctx),
            "pos_id": pos_id,
            "source_updated_at": as_of,
            "customer_pos_id": pos_id,
            "points": customer["points"] or 0,
            "as_of": as_of,
        },
    )


def sale_ordered_at(raw: PosabitSale, zone: str) -> datetime:
    """When the sale happened, in UTC.

    `ordered_at` is UTC and used when it says so (an offset or `Z`); otherwise `ordered_at_local`, the venue's
    wall clock, is unambiguous; a bare naive `ordered_at` is read as venue time like every naive timestamp; a sale
    with neither falls back to when it was recorded (`created_at`). Only the wall-clock fields of
    `ordered_at_local` are used: a Rails app stores it in a zone-less column and may render it with a `Z` that
    is not true.
    """
    ordered_at = None if raw.ordered_at is None else _parsed(raw.ordered_at, "ordered_at", raw.id)
    if ordered_at is not None and ordered_at.tzinfo is not None:
        return ordered_at.astimezone(UTC)
    if raw.ordered_at_local is not None:
        wall_clock = _parsed(raw.ordered_at_local, "ordered_at_local", raw.id).replace(tzinfo=None)
        return to_utc(wall_clock, zone)
    if ordered_at is not None:
        return to_utc(ordered_at, zone)
    if raw.created_at is not None:
        return _timestamp(raw.created_at, zone, "created_at", raw.id)
    raise MappingError(raw.id, "ordered_at, ordered_at_local and created_at are all missing")


def _parsed(value: Any, field: str, pos_id: str) -> datetime:
    try:
        return parse_timestamp(value)
    except ValueError:
        raise MappingError(pos_id, f"{field} is not a timestamp") from None


def sale_line(raw: PosabitSaleItem) -> SaleLineFields:
    """A line is a refund when it gives goods back (negative quantity) or money back (negative total)."""
    return _page_line(raw.__dict__)  # read as the note above _origin says


def _page_line(item: dict[str, Any]) -> SaleLineFields:
    """`sale_line` of a line's fields: its model's `__dict__`, or the line itself in its page form (`page_form`)."""
    quantity = item["quantity"]
    total = item["total"]
    return {
        "product_id": item["product_id"],
        "sku": item["sku"],
        "name": item["product_name"],
        "category": item["category"],
        "brand": item["brand"],
        "quantity": quantity,
        "total_cents": total,
        "discount_cents": item["discount"],
        "is_refund": quantity < 0 or total < 0,
    }


def sale_status(
    pos_id: str, status: str | None, lines: Sequence[SaleLineFields], total_cents: int
) -> tuple[SaleStatus, int]:
    """Canonical status and `refunded_cents`, the part of the sale given back that `total` does not already net.

    Refund lines (negative quantities or totals) are already netted in the receipt's total, so they make a sale
    refunded (all lines) or partially refunded (some) without adding to refunded_cents; an original sale whose
    status became "refunded" keeps its positive total, which is then refunded in full. An unknown status is an
    error rather than a guess, because status decides loyalty points.
    """
    key = _status_key(status or "completed")
    refund_lines = [line for line in lines if line["is_refund"]]
    if key in CANCELLED_STATUSES:
        return "cancelled", 0
    if key in PENDING_STATUSES:
        return "pending", 0
    if key in REFUNDED_STATUSES:
        return "refunded", total_cents if total_cents > 0 and not refund_lines else 0
    if key in PARTIALLY_REFUNDED_STATUSES:
        return "partially_refunded", 0
    if key in COMPLETED_STATUSES:
        if refund_lines and len(refund_lines) == len(lines):
            return "refunded", 0
        if refund_lines:
            return "partially_refunded", 0
        return "completed", 0
    raise MappingError(pos_id, f"unknown sale status {key[:40]!r}")


@lru_cache(maxsize=256)  # a venue uses a handful of spellings
def _status_key(status: str) -> str:
    return status.strip().lower().replace(" ", "_").replace("-", "_")


def _tender(raw: PosabitTender) -> dict[str, Any]:
    return _page_tender(raw.__dict__)  # read as the note above _origin says


def _page_tender(tender: dict[str, Any]) -> dict[str, Any]:
    """`_tender` of a tender's fields: its model's `__dict__`, or the tender in its page form."""
    return {
        "tender_id": tender["sales_tender_id"],
        "method": tender["payment_method_name"],
        "amount_cents": tender["total"],
    }


def sale_discounts(items: Sequence[PosabitSaleItem]) -> tuple[AppliedDiscount, ...]:
    """The coupons of a sale's lines (`discount_list`: coupon objects with an id and name, or bare names), each once
    however many lines carry it."""
    return _discounts([item.__dict__["discount_list"] for item in items])  # read as the note above _origin says


def _discounts(discount_lists: Sequence[list[Any]]) -> tuple[AppliedDiscount, ...]:
    """`sale_discounts` of the lines of these `discount_list`s."""
    found: dict[tuple[str | None, str | None], AppliedDiscount] = {}
    for discount_list in discount_lists:
        for entry in discount_list:
            raw_id: Any = None
            raw_name: Any = None
            if isinstance(entry, dict):
                for key in _COUPON_ID_KEYS:
                    if entry.get(key) is not None:
                        raw_id = entry[key]
                        break
                for key in _COUPON_NAME_KEYS:
                    if entry.get(key):
                        raw_name = entry[key]
                        break
            else:
                raw_name = entry
            pos_id = str(raw_id).strip() or None if raw_id is not None else None
            name = str(raw_name).strip() or None if raw_name is not None else None
            if (pos_id or name) and (pos_id, name) not in found:  # built once: most lines repeat a sale's coupon
                found[pos_id, name] = applied_discount(pos_id, name)
    return tuple(found.values())


_COUPON_ID_KEYS = ("coupon_id", "discount_id", "id")
_COUPON_NAME_KEYS = ("coupon_name", "discount_name", "name", "title")


def map_sale(raw: PosabitSale, ctx: MappingContext) -> Sale:
    """A sales history as a sale: UTC order time, the venue's local date and zone, integer cents, refunds."""
    sale = raw.__dict__  # read as the note above _origin says
    items = sale["items"]
    return _sale(
        raw,
        ctx,
        tuple([sale_line(item) for item in items]),
        tuple([_tender(tender) for tender in sale["sales_tenders"]]),
        [item.__dict__["discount_list"] for item in items],
    )


def map_page_sale(raw: PosabitSale, ctx: MappingContext) -> Sale:
    """`map_sale` of a sale validated in its page form (`page_form`): its lines and tenders are dicts of the fields
    their models hold, read by key."""
    sale = raw.__dict__  # read as the note above _origin says
    items = cast(list[dict[str, Any]], sale["items"])
    return _sale(
        raw,
        ctx,
        tuple([_page_line(item) for item in items]),
        tuple([_page_tender(tender) for tender in cast(list[dict[str, Any]], sale["sales_tenders"])]),
        [item["discount_list"] for item in items],
    )


def _sale(
    raw: PosabitSale,
    ctx: MappingContext,
    lines: tuple[SaleLineFields, ...],
    tenders: tuple[dict[str, Any], ...],
    discount_lists: Sequence[list[Any]],
) -> Sale:
    sale = raw.__dict__  # read as the note above _origin says
    pos_id = sale["id"]
    zone = ctx.timezone
    total = sale["total"]
    ordered_at = sale_ordered_at(raw, zone)
    status, refunded_cents = sale_status(pos_id, sale["status"], lines, total)
    tax = sale["tax"]
    discount = sale["discount"]
    subtotal = sale["sub_total"]
    return sale_of(
        {
            **_origin(ctx),
            "pos_id": pos_id,
            "source_updated_at": _timestamp(sale["updated_at"], zone, "updated_at", pos_id),
            "customer_pos_id": sale["customer_id"],
            "ordered_at": ordered_at,
            "local_date": ordered_at.astimezone(zones.zone(zone)).date(),
            "timezone": zone,
            "status": status,
            "subtotal_cents": subtotal if subtotal is not None else total - tax + discount,
            "discount_cents": discount,
            "tax_cents": tax,
            "total_cents": total,
            "refunded_cents": refunded_cents,
            "lines": lines,
            "tenders": tenders,
            "discounts": _discounts(discount_lists),
        }
    )


def map_inventory(raw: PosabitInventory, ctx: MappingContext) -> Product:
    """An inventory row as a product; a row that does not say it is inactive is active."""
    return record_of(
        Product,
        {
            **_origin(ctx),
            "pos_id": raw.id,
            "source_updated_at": _timestamp(raw.updated_at, ctx.timezone, "updated_at", raw.id),
            "product_id": raw.product_id,
            "name": raw.name,
            "sku": raw.sku,
            "brand": raw.brand,
            "category": raw.category,
            "price_cents": raw.price,
            "quantity_on_hand": raw.quantity_on_hand,
            "active": raw.active is not False,
        },
    )


def map_coupon(raw: PosabitCoupon, ctx: MappingContext) -> Discount:
    """A coupon as a discount; a dollar amount is in cents like all POSaBIT money."""
    kind = (raw.discount_type or "").strip().lower()
    value: str | None = None
    if raw.amount is not None:
        value = f"{raw.amount / 100:.2f}" if kind == "dollar" else f"{raw.amount:g}"
    return record_of(
        Discount,
        {
            **_origin(ctx),
            "pos_id": raw.id,
            "source_updated_at": _timestamp(raw.updated_at, ctx.timezone, "updated_at", raw.id),
            "name": raw.name,
            "discount_type": discount_type_of(kind, flat_word="dollar"),
            "value": value,
            "active": raw.active is not False,
            "starts_at": _timestamp(raw.starts_at, ctx.timezone, "starts_at", raw.id) if raw.starts_at else None,
            "ends_at": _timestamp(raw.expires_at, ctx.timezone, "expires_at", raw.id) if raw.expires_at else None,
            "timezone": ctx.timezone,
        },
    )


def map_record(stream: Stream, item: Mapping[str, Any], ctx: MappingContext) -> CanonicalRecord:
    """One POSaBIT list item (wrapped or bare) to its canonical record, or MappingError naming what is wrong."""
    record = unwrap_item(stream, item if isinstance(item, dict) else dict(item))  # no copy of a plain item
    mapper = _MAPPERS.get(stream)
    if mapper is None:
        raise MappingError(item_id(stream, record), f"POSaBIT does not offer the {stream.value} stream")
    try:
        return mapper(record, ctx)
    except ValidationError as exc:
        raise MappingError(item_id(stream, record), _validation_reason(exc)) from None


# The before-validators above, and the values they hand on unchanged (or, ids, turn into text) that nearly every
# POSaBIT item sends: a payload is validated without calling them unless one of its values needs them.
IDENTITY_ON: Mapping[Callable[[Any], Any], IdentityOn] = MappingProxyType(
    {
        _to_id: "id_text",
        _to_optional_id: "id_text",
        _to_optional_text: "stripped_text",
        _to_whole: "strict",
        _to_optional_whole: "strict",
        _to_optional_flag: "strict",
        _to_list: "strict",
    }
)
validate_customer = fast_validator(PosabitCustomer, IDENTITY_ON)
validate_points_balance = fast_validator(PosabitPointsBalance, IDENTITY_ON)
validate_sale = fast_validator(PosabitSale, IDENTITY_ON)
validate_inventory = fast_validator(PosabitInventory, IDENTITY_ON)
validate_coupon = fast_validator(PosabitCoupon, IDENTITY_ON)

# One dict lookup per record (an enum member read off its class is a descriptor call in Python 3.11).
_MAPPERS: dict[Stream, Callable[[dict[str, Any], MappingContext], CanonicalRecord]] = {
    Stream.CUSTOMERS: lambda record, ctx: map_customer(validate_customer(record), ctx),
    Stream.LOYALTY: lambda record, ctx: map_loyalty_balance(validate_points_balance(record), ctx),
    Stream.SALES: lambda record, ctx: map_sale(validate_sale(record), ctx),
    Stream.INVENTORY: lambda record, ctx: map_inventory(validate_inventory(record), ctx),
    Stream.DISCOUNTS: lambda record, ctx: map_coupon(validate_coupon(record), ctx),
}


# --- pages validated from their bytes (functions.core.page_fastpath) -------------------------------------------------

# The model each stream's pages are validated with in one call; a customers page serves the loyalty stream too.
PAGE_MODELS: Mapping[Stream, type[_Payload]] = MappingProxyType(
    {
        Stream.CUSTOMERS: PosabitCustomerPoints,
        Stream.SALES: PosabitSale,
        Stream.INVENTORY: PosabitInventory,
        Stream.DISCOUNTS: PosabitCoupon,
    }
)


def page_form(schema: Any) -> Any:
    """A sales page's form of PosabitSale's compiled schema (functions.core.page_fastpath's `rewrite`): the sale a
    model as before, each of its lines and tenders a dict of its model's fields (the same fields, values and errors:
    the same field schemas, compiled as a typed dict). Building a PosabitSaleItem and a PosabitTender instance per
    line and tender was about a fifth of a sales page's validation (99,000 -> 80,000 instructions a sale of the
    simulator's, measured). Raises TypeError for a nested model that has no such form (a validator of its own)."""
    if not isinstance(schema, dict) or schema.get("type") != "model":
        raise TypeError("a sales page's form is made of a model's schema")
    return {**schema, "schema": _models_as_dicts(schema["schema"])}


def _models_as_dicts(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_models_as_dicts(part) for part in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind == "model":
        return _fields_dict(schema)
    if isinstance(kind, str) and kind.startswith("function-") and _nested_model(schema.get("schema")):
        raise TypeError("a validator written in Python would be given a dict for a model instance")
    return {
        key: value if key in ("function", "serialization", "metadata") else _models_as_dicts(value)
        for key, value in schema.items()
    }


def _fields_dict(model: dict[str, Any]) -> dict[str, Any]:
    """A nested model's schema as a typed dict of the same fields, its field schemas as they are (none holds a model
    of its own: a line's or tender's fields are plain values)."""
    if _nested_model(model["schema"]):
        raise TypeError(f"{model['cls'].__name__} holds a model of its own")
    return model_as_typed_dict(model, lambda _name, field: field)


def _nested_model(schema: Any) -> bool:
    if isinstance(schema, list):
        return any(_nested_model(part) for part in schema)
    return isinstance(schema, dict) and (
        schema.get("type") == "model" or any(_nested_model(value) for value in schema.values())
    )


# The streams whose pages are validated in a form of their own (`page_form`), and mapped from it.
PAGE_FORMS: Mapping[Stream, Callable[[Any], Any]] = MappingProxyType({Stream.SALES: page_form})

_PAYLOAD_MAPPERS: dict[Stream, Callable[[Any, MappingContext], CanonicalRecord]] = {
    Stream.CUSTOMERS: map_customer,
    Stream.LOYALTY: map_loyalty_balance,
    Stream.SALES: map_page_sale,
    Stream.INVENTORY: map_inventory,
    Stream.DISCOUNTS: map_coupon,
}


def map_payload(stream: Stream, payload: Any, ctx: MappingContext) -> CanonicalRecord:
    """`map_record` of the item `payload` was validated from (by PAGE_MODELS' page validator, in PAGE_FORMS' form);
    raises what the mapping raises (the engine then maps that item with `map_record`, which says what is wrong)."""
    return _PAYLOAD_MAPPERS[stream](payload, ctx)
