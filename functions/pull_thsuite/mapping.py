"""Pure mapping of THSuite payloads to canonical records (payload shapes ASSUMED, see CONTRACT.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_DOWN, Decimal
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from functions.core import zones
from functions.core.connector import MappingContext, MappingError
from functions.core.layout import Stream, Vendor
from functions.core.models import (
    BoundedDecimal,
    CanonicalRecord,
    Discount,
    LoyaltyBalance,
    Product,
    Sale,
    SaleLineFields,
    Shopper,
    applied_discount,
    discount_type_of,
    dollars_to_cents,
    normalize_phone,
    record_of,
    sale_with_lines,
)
from functions.core.page_fastpath import model_as_typed_dict
from functions.core.payload_fastpath import IdentityOn, fast_validator
from functions.pull_thsuite.constants import STORE_ZONE_NAMES

# --- payload models --------------------------------------------------------------------------------------------


def _pos_id(value: Any) -> Any:
    """THSuite ids may be numbers or strings (ASSUMED); we keep them as trimmed strings."""
    if isinstance(value, bool):
        raise ValueError("an id cannot be a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return value


PosId = Annotated[str, BeforeValidator(_pos_id), Field(min_length=1, max_length=128)]


class _Payload(BaseModel):
    """A THSuite object: unknown fields are ignored, blank strings mean absent, errors never echo values."""

    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True, coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for value in data.values():
                # copied only when there is a blank to drop; isspace() is strip()'s own whitespace rule, no new string
                if isinstance(value, str) and (not value or value.isspace()):
                    return {k: None if isinstance(v, str) and not v.strip() else v for k, v in data.items()}
        return data


class ThsuiteStore(_Payload):
    id: PosId
    name: str | None = None
    timezone: str | None = None
    state: str | None = None
    country: str | None = None


class ThsuitePatient(_Payload):
    id: PosId
    store_id: PosId | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    email: str | None = None
    date_of_birth: date | None = None
    state: str | None = None
    zip_code: str | None = None
    patient_type: str | None = None  # "medical" or "recreational"
    loyalty_member: bool | None = None
    sms_opt_in: bool | None = None
    email_opt_in: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime


class ThsuiteLineDiscount(_Payload):
    """A discount applied to a receipt line (ASSUMED: its id and name, as THSuite's discount list names it)."""

    discount_id: PosId | None = None
    name: str | None = None


class ThsuiteReceiptLine(_Payload):
    id: PosId | None = None
    product_id: PosId | None = None
    sku: str | None = None
    product_name: str | None = None
    category: str | None = None
    brand: str | None = None
    quantity: Decimal
    unit_price: Decimal | None = None
    discount: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    total: Decimal  # signed, tax included: negative on a return line
    is_return: bool = False
    discounts: list[ThsuiteLineDiscount] = Field(default_factory=list)  # ASSUMED (CONTRACT.md)

    @property
    def returned(self) -> bool:
        """A return is flagged with is_return and a negative quantity; either one is taken as a return."""
        return self.is_return or self.quantity < 0


class ThsuitePayment(_Payload):
    method: str | None = None
    amount: Decimal


class ThsuiteReceipt(_Payload):
    id: PosId
    receipt_number: str | None = None
    store_id: PosId | None = None
    patient_id: PosId | None = None
    status: str
    completed_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime
    subtotal: Decimal
    discount_total: Decimal = Decimal(0)
    tax_total: Decimal = Decimal(0)
    total: Decimal  # net of any return lines, tax included
    lines: list[ThsuiteReceiptLine] = Field(default_factory=list)
    payments: list[ThsuitePayment] = Field(default_factory=list)


class ThsuiteInventoryItem(_Payload):
    id: PosId
    product_id: PosId | None = None
    store_id: PosId | None = None
    sku: str | None = None
    name: str = Field(min_length=1)
    brand: str | None = None
    category: str | None = None
    unit_price: Decimal | None = None
    quantity_on_hand: Decimal | None = None
    active: bool = True
    updated_at: datetime


class ThsuiteDiscount(_Payload):
    """ASSUMED (CONTRACT.md): a discount the store can apply, mirrored from a possync reward by its name."""

    id: PosId
    store_id: PosId | None = None
    name: str = Field(min_length=1)
    discount_type: str | None = None  # "amount" (dollars) or "percent"
    amount: Decimal | None = None
    active: bool = True
    updated_at: datetime


class ThsuiteLoyaltyBalance(_Payload):
    patient_id: PosId
    store_id: PosId | None = None
    points: BoundedDecimal
    updated_at: datetime


# --- timezones and timestamps ----------------------------------------------------------------------------------


def resolve_timezone(name: str | None) -> str | None:
    """The IANA zone for a store timezone given as an IANA or Windows name; None when it names no known zone."""
    return zones.to_iana(name, STORE_ZONE_NAMES)


def to_utc(value: datetime, zone: tzinfo) -> datetime:
    """A naive THSuite timestamp is store-local wall time (the earlier instant when DST repeats it); offsets win."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def mapping_context(
    store: ThsuiteStore, *, tenant: str, credential_id: str, fallback_timezone: str = "UTC"
) -> MappingContext:
    """What every mapping of one store's records needs: its zone (IANA), its phone region and its id."""
    zone = resolve_timezone(store.timezone)
    country = (store.country or "US").strip().upper()
    return MappingContext(
        tenant=tenant,
        vendor=Vendor.THSUITE,
        credential_id=credential_id,
        timezone=zone or fallback_timezone,
        default_region=country if len(country) == 2 and country.isalpha() else "US",
        extra={"store_id": store.id, "timezone_known": zone is not None},
    )


# --- record mapping --------------------------------------------------------------------------------------------

SaleStatus = Literal["completed", "refunded", "partially_refunded", "cancelled", "pending"]

# ASSUMED receipt statuses. Return lines then refine "completed" into refunded / partially refunded.
_RECEIPT_STATUS: Final[dict[str, SaleStatus]] = {
    "completed": "completed",
    "closed": "completed",
    "paid": "completed",
    "voided": "cancelled",
    "void": "cancelled",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "open": "pending",
    "pending": "pending",
    "suspended": "pending",
    "refunded": "refunded",
    "returned": "refunded",
}


def _zone(ctx: MappingContext) -> ZoneInfo:
    return zones.zone(ctx.timezone)


def _common(ctx: MappingContext, pos_id: str, store_id: str | None, updated_at: datetime) -> dict[str, Any]:
    fallback_store = ctx.extra.get("store_id")
    return {
        "tenant": ctx.tenant,
        "vendor": ctx.vendor,
        "credential_id": ctx.credential_id,
        "pos_id": pos_id,
        "location_id": store_id or (str(fallback_store) if fallback_store is not None else None),
        "source_updated_at": to_utc(updated_at, _zone(ctx)),
    }


def map_patient(item: dict[str, Any], ctx: MappingContext) -> Shopper:
    return patient_record(validate_patient(item), ctx)


def patient_record(patient: ThsuitePatient, ctx: MappingContext) -> Shopper:
    """A THSuite patient is a shopper; its phone is read in the store's country, placeholders are kept raw only."""
    zone = _zone(ctx)
    fallback_store = ctx.extra.get("store_id")
    return record_of(
        Shopper,
        {  # _common's fields, in one dict
            "tenant": ctx.tenant,
            "vendor": ctx.vendor,
            "credential_id": ctx.credential_id,
            "pos_id": patient.id,
            "location_id": patient.store_id or (str(fallback_store) if fallback_store is not None else None),
            "source_updated_at": to_utc(patient.updated_at, zone),
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "phone": normalize_phone(patient.phone, ctx.default_region),
            "phone_raw": patient.phone,
            "email": patient.email,
            "birth_date": patient.date_of_birth,
            "state": patient.state.upper() if patient.state else None,
            "postal_code": patient.zip_code,
            "loyalty_member": patient.loyalty_member,
            "marketing_opt_in": patient.email_opt_in,
            "sms_opt_in": patient.sms_opt_in,
            "customer_type": patient.patient_type.lower() if patient.patient_type else None,
            "pos_created_at": to_utc(patient.created_at, zone) if patient.created_at else None,
        },
    )


def _sale_line(line: ThsuiteReceiptLine, returned: bool, total_cents: int | None = None) -> SaleLineFields:
    """`total_cents`: the line's total in cents when it is known already (a return line's, counted first)."""
    return {
        "product_id": line.product_id,
        "sku": line.sku,
        "name": line.product_name,
        "category": line.category,
        "brand": line.brand,
        "quantity": float(line.quantity),
        "total_cents": _cents(line.total) if total_cents is None else total_cents,
        "discount_cents": _cents(line.discount),
        "is_refund": returned,
    }


_HUNDRED: Final = Decimal(100)
# Below this many digits (an `adjusted()` exponent) a number of cents is converted to an int quickly (it stays far
# inside the default context's precision, as in `dollars_to_cents`).
_EXACT_CENTS_DIGITS: Final = 27


def _cents(amount: Decimal) -> int:
    """`dollars_to_cents(amount)`, its result or its exception, in half the CPU for a whole number of cents (every
    amount THSuite sends has two places): `dollars_to_cents` rounds half up with a keyword argument (measured: 0.53 µs
    an amount, ten amounts a receipt); a whole number needs no rounding, and anything else is left to it."""
    if amount.__class__ is not Decimal:
        return dollars_to_cents(amount)
    cents = amount * _HUNDRED  # dollars_to_cents' own first step: the same Overflow, if any
    if cents.is_finite() and cents.adjusted() < _EXACT_CENTS_DIGITS:
        whole = int(cents)  # toward zero: equal to cents exactly when no rounding was needed
        if whole == cents:
            return whole
    return dollars_to_cents(amount)


def _receipt_status(pos_id: str, status: str) -> SaleStatus:
    found = _RECEIPT_STATUS.get(status.strip().lower())
    if found is None:
        raise MappingError(pos_id, f"receipt status {status[:32]!r} is not one THSuite is known to use")
    return found


def _refunds(
    status: SaleStatus, returns: int, line_count: int, net_cents: int, returned_cents: int
) -> tuple[SaleStatus, int, int]:
    """A receipt's status, total and refunded cents from its own status, its return lines (how many, and what they
    gave back) among all its lines, and its net total."""
    if returns:
        if status == "completed":
            status = "refunded" if returns == line_count else "partially_refunded"
        return status, net_cents + returned_cents, returned_cents
    if status == "refunded":
        return status, net_cents, net_cents
    return status, net_cents, 0


def map_receipt(item: dict[str, Any], ctx: MappingContext) -> Sale:
    return receipt_record(validate_receipt(item), ctx)


def receipt_record(receipt: ThsuiteReceipt, ctx: MappingContext) -> Sale:
    """A receipt is a sale; return lines make it refunded (all lines) or partially refunded (some lines).

    THSuite's `total` is net of returns, so the canonical total is that net plus what was returned: then
    `Sale.net_cents` is exactly what THSuite says the customer paid (negative for a pure return receipt).
    """
    # Amounts are converted in the order they always were (returned lines' totals first, then the receipt's, its
    # update time, its local date, subtotal, discount and tax, the lines' totals and discounts, the payments): a
    # receipt with more than one unusable value is quarantined for the same one as before.
    status = _receipt_status(receipt.id, receipt.status)
    zone = _zone(ctx)
    ordered_at = to_utc(receipt.completed_at or receipt.created_at or receipt.updated_at, zone)
    lines = receipt.lines
    returned = [line.returned for line in lines]  # a property: read once a line
    returned_totals: list[int | None] = [
        _cents(line.total) if ret else None for line, ret in zip(lines, returned, strict=True)
    ]
    returned_cents = sum(abs(cents) for cents in returned_totals if cents is not None)
    status, total_cents, refunded_cents = _refunds(
        status, returned.count(True), len(lines), _cents(receipt.total), returned_cents
    )
    fallback_store = ctx.extra.get("store_id")
    source_updated_at = to_utc(receipt.updated_at, zone)
    local_date = ordered_at.astimezone(zone).date()
    subtotal_cents = _cents(receipt.subtotal)
    discount_cents = _cents(receipt.discount_total)
    tax_cents = _cents(receipt.tax_total)
    sale_lines = tuple(
        [_sale_line(line, ret, cents) for line, ret, cents in zip(lines, returned, returned_totals, strict=True)]
    )
    tenders = tuple([{"method": p.method, "amount_cents": _cents(p.amount)} for p in receipt.payments])
    discounted = [line.discounts for line in lines if line.discounts]
    return sale_with_lines(
        tenant=ctx.tenant,
        vendor=ctx.vendor,
        credential_id=ctx.credential_id,
        pos_id=receipt.id,
        location_id=receipt.store_id or (str(fallback_store) if fallback_store is not None else None),
        source_updated_at=source_updated_at,
        customer_pos_id=receipt.patient_id,
        ordered_at=ordered_at,
        local_date=local_date,
        timezone=ctx.timezone,
        status=status,
        subtotal_cents=subtotal_cents,
        discount_cents=discount_cents,
        tax_cents=tax_cents,
        total_cents=total_cents,
        refunded_cents=refunded_cents,
        lines=sale_lines,
        tenders=tenders,
        discounts=tuple(
            dict.fromkeys(
                applied_discount(d.discount_id, (d.name or "").strip() or None)
                for discounts in discounted
                for d in discounts
            )
        )
        if discounted
        else (),
    )


# --- receipts as a page gives them ---------------------------------------------------------------------------------

# An amount as THSuite writes it (ASSUMED, CONTRACT.md: a decimal text with two places), or a whole number: values
# the payload models' Decimal takes as they are, whose cents need no Decimal (`_amount_cents`).
AMOUNT_TEXT: Final = r"\A-?[0-9]{1,15}\.[0-9]{2}\z"
_AMOUNT: Final[dict[str, Any]] = {
    "type": "union",
    "mode": "left_to_right",
    "choices": [
        {"type": "str", "strict": True, "pattern": AMOUNT_TEXT},
        {"type": "int", "strict": True, "ge": -(10**15), "le": 10**15},
    ],
}


def page_form(schema: Any) -> Any:
    """A payload model's compiled schema as a receipts page is validated with (functions.pull_thsuite.client): each
    model an object of the same fields (a dict, no instance to build) and each Decimal an amount (`_AMOUNT`, kept as
    given; any other value refuses the page, which is then mapped item by item). Whatever it takes, the model takes
    too, with the same values but for amounts. A receipt holds about 17 amounts: their Decimals and model instances
    were a third of its page validation, their cents a fifth of its mapping (measured). Raises TypeError for a schema
    it has no such form of."""
    if isinstance(schema, list):
        return [page_form(part) for part in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if isinstance(kind, str) and kind.startswith("function-"):
        raise TypeError("a validator written in Python would read the page form's dicts and texts")
    if kind == "decimal":
        if set(schema) - {"type", "metadata", "serialization"}:
            raise TypeError("a Decimal with constraints of its own has no amount form")
        return _AMOUNT
    if kind == "default" and schema["schema"].get("type") == "decimal":
        default = schema["default"]
        if not isinstance(default, Decimal) or default != int(default):
            raise TypeError("an amount's default must be a whole number")
        return {**schema, "default": int(default), "schema": page_form(schema["schema"])}
    if kind == "model":
        return model_as_typed_dict(schema, lambda _name, field: page_form(field))
    return {
        key: value if key in ("function", "serialization", "metadata") else page_form(value)
        for key, value in schema.items()
    }


def _amount_cents(amount: str | int) -> int:
    """The cents of an amount of a receipt's page form (`_AMOUNT`): what `dollars_to_cents` gives for its Decimal."""
    if isinstance(amount, int):
        return amount * 100
    return int(amount.replace(".", ""))


def _page_line(line: dict[str, Any], returned: bool, total_cents: int) -> SaleLineFields:
    return {
        "product_id": line["product_id"],
        "sku": line["sku"],
        "name": line["product_name"],
        "category": line["category"],
        "brand": line["brand"],
        "quantity": float(line["quantity"]),
        "total_cents": total_cents,
        "discount_cents": _amount_cents(line["discount"]),
        "is_refund": returned,
    }


def receipt_page_record(receipt: dict[str, Any], ctx: MappingContext) -> Sale:
    """`receipt_record` of a receipt in its page form (`page_form`): the same sale."""
    status = _receipt_status(receipt["id"], receipt["status"])
    zone = _zone(ctx)
    ordered_at = to_utc(receipt["completed_at"] or receipt["created_at"] or receipt["updated_at"], zone)
    lines = receipt["lines"]
    totals = [_amount_cents(line["total"]) for line in lines]
    # ThsuiteReceiptLine.returned: the quantity's sign is its cents' (an amount has two places, or none)
    returned = [line["is_return"] or _amount_cents(line["quantity"]) < 0 for line in lines]
    returns = returned.count(True)
    returned_cents = sum([abs(cents) for cents, ret in zip(totals, returned, strict=True) if ret]) if returns else 0
    status, total_cents, refunded_cents = _refunds(
        status, returns, len(lines), _amount_cents(receipt["total"]), returned_cents
    )
    fallback_store = ctx.extra.get("store_id")
    discounted = [line["discounts"] for line in lines if line["discounts"]]
    return sale_with_lines(
        tenant=ctx.tenant,
        vendor=ctx.vendor,
        credential_id=ctx.credential_id,
        pos_id=receipt["id"],
        location_id=receipt["store_id"] or (str(fallback_store) if fallback_store is not None else None),
        source_updated_at=to_utc(receipt["updated_at"], zone),
        customer_pos_id=receipt["patient_id"],
        ordered_at=ordered_at,
        local_date=ordered_at.astimezone(zone).date(),
        timezone=ctx.timezone,
        status=status,
        subtotal_cents=_amount_cents(receipt["subtotal"]),
        discount_cents=_amount_cents(receipt["discount_total"]),
        tax_cents=_amount_cents(receipt["tax_total"]),
        total_cents=total_cents,
        refunded_cents=refunded_cents,
        lines=tuple([_page_line(line, ret, cents) for line, ret, cents in zip(lines, returned, totals, strict=True)]),
        tenders=tuple(
            [{"method": p["method"], "amount_cents": _amount_cents(p["amount"])} for p in receipt["payments"]]
        ),
        discounts=tuple(
            dict.fromkeys(
                applied_discount(d["discount_id"], (d["name"] or "").strip() or None)
                for discounts in discounted
                for d in discounts
            )
        )
        if discounted
        else (),
    )


def map_inventory_item(item: dict[str, Any], ctx: MappingContext) -> Product:
    return inventory_record(validate_inventory_item(item), ctx)


def inventory_record(inventory: ThsuiteInventoryItem, ctx: MappingContext) -> Product:
    return record_of(
        Product,
        {
            **_common(ctx, inventory.id, inventory.store_id, inventory.updated_at),
            "product_id": inventory.product_id,
            "name": inventory.name,
            "sku": inventory.sku,
            "brand": inventory.brand,
            "category": inventory.category,
            "price_cents": dollars_to_cents(inventory.unit_price) if inventory.unit_price is not None else None,
            "quantity_on_hand": float(inventory.quantity_on_hand) if inventory.quantity_on_hand is not None else None,
            "active": inventory.active,
        },
    )


def map_loyalty_balance(item: dict[str, Any], ctx: MappingContext) -> LoyaltyBalance:
    return loyalty_record(validate_loyalty_balance(item), ctx)


def loyalty_record(balance: ThsuiteLoyaltyBalance, ctx: MappingContext) -> LoyaltyBalance:
    """One balance per patient and store, keyed by the patient id; fractional points are truncated (ASSUMED)."""
    common = _common(ctx, balance.patient_id, balance.store_id, balance.updated_at)
    return record_of(
        LoyaltyBalance,
        {
            **common,
            "customer_pos_id": balance.patient_id,
            "points": int(balance.points.to_integral_value(rounding=ROUND_DOWN)),
            "as_of": common["source_updated_at"],
        },
    )


def map_discount(item: dict[str, Any], ctx: MappingContext) -> Discount:
    return discount_record(validate_discount(item), ctx)


def discount_record(discount: ThsuiteDiscount, ctx: MappingContext) -> Discount:
    return record_of(
        Discount,
        {
            **_common(ctx, discount.id, discount.store_id, discount.updated_at),
            "name": discount.name.strip(),
            "discount_type": discount_type_of(discount.discount_type),
            "value": str(discount.amount) if discount.amount is not None else None,
            "active": discount.active,
            "timezone": ctx.timezone,
        },
    )


# The before-validators of the payloads above and what they hand on unchanged (payload_fastpath): an item none of
# whose values is blank, with ids as trimmed text or numbers, is validated without calling them.
IDENTITY_ON: Final[Mapping[Callable[[Any], Any], IdentityOn]] = MappingProxyType(
    {_pos_id: "id_text", _Payload._blank_is_absent.__func__: "no_blank_values"}  # type: ignore[attr-defined]
)
validate_patient = fast_validator(ThsuitePatient, IDENTITY_ON)
validate_receipt = fast_validator(ThsuiteReceipt, IDENTITY_ON)
validate_inventory_item = fast_validator(ThsuiteInventoryItem, IDENTITY_ON)
validate_loyalty_balance = fast_validator(ThsuiteLoyaltyBalance, IDENTITY_ON)
validate_discount = fast_validator(ThsuiteDiscount, IDENTITY_ON)

_MAPPERS: Final[dict[Stream, Callable[[dict[str, Any], MappingContext], CanonicalRecord]]] = {
    Stream.CUSTOMERS: map_patient,
    Stream.SALES: map_receipt,
    Stream.INVENTORY: map_inventory_item,
    Stream.LOYALTY: map_loyalty_balance,
    Stream.DISCOUNTS: map_discount,
}


# Each stream's payload model (its list pages are validated from their bytes: functions.core.page_fastpath) and the
# mapping of a validated payload.
PAGE_MODELS: Final[dict[Stream, type[_Payload]]] = {
    Stream.CUSTOMERS: ThsuitePatient,
    Stream.SALES: ThsuiteReceipt,
    Stream.INVENTORY: ThsuiteInventoryItem,
    Stream.LOYALTY: ThsuiteLoyaltyBalance,
    Stream.DISCOUNTS: ThsuiteDiscount,
}
# The streams whose pages are validated in a form of their own (functions.core.page_fastpath's `rewrite`), mapped by
# their _PAYLOAD_MAPPERS in that form: receipts, most of whose values are amounts.
PAGE_FORMS: Final[dict[Stream, Callable[[Any], Any]]] = {Stream.SALES: page_form}
_PAYLOAD_MAPPERS: Final[dict[Stream, Callable[[Any, MappingContext], CanonicalRecord]]] = {
    Stream.CUSTOMERS: patient_record,
    Stream.SALES: receipt_page_record,  # in its page form (PAGE_FORMS)
    Stream.INVENTORY: inventory_record,
    Stream.LOYALTY: loyalty_record,
    Stream.DISCOUNTS: discount_record,
}


def item_id(stream: Stream, item: dict[str, Any]) -> str | None:
    """The POS id of a raw item (loyalty balances are keyed by their patient), best effort."""
    raw = item.get("patient_id" if stream is Stream.LOYALTY else "id")
    if raw is None or isinstance(raw, bool | dict | list):
        return None
    text = str(raw).strip()
    return text or None


def validation_reason(exc: ValidationError) -> str:
    """Field paths and problems, never the offending values (they may be personal data)."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors(include_input=False))


def map_record(stream: Stream, item: dict[str, Any], ctx: MappingContext) -> CanonicalRecord:
    """One THSuite item to its canonical record, or MappingError naming the fields that failed."""
    mapper = _MAPPERS.get(stream)
    if mapper is None:
        raise MappingError(item_id(stream, item), f"THSuite has no {stream} stream")
    try:
        return mapper(item, ctx)
    except ValidationError as exc:
        raise MappingError(item_id(stream, item), validation_reason(exc)) from None


def map_payload(stream: Stream, payload: Any, ctx: MappingContext) -> CanonicalRecord:
    """The record `map_record` gives for the item `payload` was validated from (its stream's PAGE_MODELS instance, or
    its page form for a stream of PAGE_FORMS); whatever it raises, the engine maps that item with `map_record` instead
    (functions.core.engine.map_page)."""
    return _PAYLOAD_MAPPERS[stream](payload, ctx)
