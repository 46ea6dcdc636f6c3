"""Canonical records every vendor mapping produces: shopper, sale (with lines), product, loyalty balance."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, TypedDict, TypeVar, get_args

import orjson
import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, ValidationError, field_validator

from functions.core import nanp, zones
from functions.core.layout import RecordKind, Vendor

# Values people type into a POS to get past a required field; kept on the record, never used to match or text.
PLACEHOLDER_PHONES = frozenset(
    {"1234567890", "0000000000", "1111111111", "9999999999", "5555555555", "1231231234", "0123456789"}
)
PLACEHOLDER_EMAILS = frozenset(
    {
        "test@test.com",
        "none@none.com",
        "no@email.com",
        "noemail@noemail.com",
        "na@na.com",
        "email@email.com",
        "customer@customer.com",
        "a@a.com",
    }
)


# Marks a content digest taken over the stored JSON itself (`CanonicalRecord.stored_form`); digests written before it
# have no prefix and are compared with `CanonicalRecord.legacy_content_hash`.
CONTENT_HASH_PREFIX = "j1:"


def _utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:  # what every mapping gives: astimezone(UTC) would return an equal copy
        return value
    if value.tzinfo is None:
        raise ValueError("timestamp has no timezone; mappings must attach the store's zone before building a record")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+00:01, whose UTC time is before year 1: the field's error
        raise ValueError("timestamp out of range once converted to UTC") from None


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


def normalize_phone(raw: str | None, default_region: str = "US") -> str | None:
    """E.164 for a parseable number, None for blanks; placeholders are kept as typed (never matched or texted)."""
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    national = nanp.nanp_national(text, default_region)  # the common +1 shapes, as phonenumbers answers them
    if national is not None:
        # Such text's digits are these ten, after at most a "1": the placeholder test below, without listing them.
        if national in PLACEHOLDER_PHONES:
            return None
        return "+1" + national if nanp.is_valid_nanp(national) else None
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits[-10:] in PLACEHOLDER_PHONES and len(digits) in (10, 11):
        return None
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip().lower()
    if not text or "@" not in text:
        return None
    return text


def is_placeholder_email(email: str | None) -> bool:
    return email is not None and email in PLACEHOLDER_EMAILS


def _enum_json(member: StrEnum) -> str:
    return member._value_  # the member's value without the enum's `.value` property (a Python call, slow)


# pydantic serializes an enum member held by a `Literal` of it through its general, slow path (about 3 µs a record,
# measured), and a plain enum field by reading `.value` (about 0.3 µs); in JSON the member's value is the same text,
# made directly. Python-mode dumps keep the member.
KindJson = PlainSerializer(_enum_json, return_type=str, when_used="json")
VendorJson = KindJson


# The largest magnitude of a whole amount on a record (cents, points): far beyond any store's, and well inside the 38
# digits a DynamoDB number holds. A POS that garbles one (1E+999999 points) gets that record quarantined at mapping,
# where it used to be stored and then fail every consumer batch that read it (and turning such a Decimal into an int
# took half a minute of CPU: payload models bound their Decimals with it too, so nothing that large is converted).
MAX_WHOLE_AMOUNT = 10**15
WholeAmount = Annotated[int, Field(ge=-MAX_WHOLE_AMOUNT, le=MAX_WHOLE_AMOUNT)]
BoundedDecimal = Annotated[Decimal, Field(ge=-MAX_WHOLE_AMOUNT, le=MAX_WHOLE_AMOUNT)]


class CanonicalRecord(BaseModel):
    """Fields every record carries: where it came from and the POS's own id and update time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: RecordKind
    tenant: str
    vendor: Annotated[Vendor, VendorJson]
    credential_id: str
    pos_id: str = Field(min_length=1)
    location_id: str | None = None
    source_updated_at: UtcDatetime

    def stored_form(self) -> tuple[str, str]:
        """The record as stored (its JSON, serialized once) and the digest of exactly that JSON, used to write only
        what changed. Digests carry CONTENT_HASH_PREFIX; a stored digest without it is `legacy_content_hash`."""
        blob = record_json(self)
        return blob.decode(), CONTENT_HASH_PREFIX + hashlib.blake2b(blob, digest_size=16).hexdigest()

    def content_hash(self) -> str:
        """Stable digest of the record's content (as stored_form gives it)."""
        return self.stored_form()[1]

    def legacy_content_hash(self) -> str:
        """The digest items written before CONTENT_HASH_PREFIX carry: of the sorted JSON of `model_dump`. Compared
        only against such items, so that the first pull after an upgrade does not rewrite unchanged records."""
        payload = self.model_dump(mode="json")
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.blake2b(blob, digest_size=16).hexdigest()


# orjson writes a record's fields (`__dict__`, in the order the model declares them: its validator fills it so)
# byte for byte as pydantic's own serializer writes the record, in a third of its CPU (measured: a POSaBIT shopper
# 1.2 µs instead of 4.2, a sale 4.2 instead of 8.2): the same UTF-8 and escapes, the same shortest float text (NaN
# and infinities as null), datetimes in ISO 8601 with "Z" for UTC and microseconds only when there are some, dates,
# enum members as their values, tuples as arrays. Whatever it would write differently, it refuses instead (integers
# beyond 64 bits, non-text dict keys, bytes, sets, timedeltas, dataclasses, subclasses of str/int/dict/list, text
# with lone surrogates): such a record is written by pydantic, as before. tests/unit/test_record_json_fast.py
# compares the two on every kind of value a record may hold.
_JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
_dumps = orjson.dumps
_JsonRefused = orjson.JSONEncodeError


def _nested_fields(value: Any) -> dict[str, Any]:
    """What orjson writes for an object it does not know: a record's nested model (a sale line, an applied
    discount) as its fields; anything else is refused, and the record is written by pydantic."""
    if type(value) in _NESTED_MODELS:
        fields: dict[str, Any] = value.__dict__
        return fields
    raise TypeError(type(value).__name__)


def record_json(record: CanonicalRecord) -> bytes:
    """The record's JSON exactly as `record.model_dump_json()` writes it (what is stored and digested)."""
    try:
        return _dumps(record.__dict__, default=_nested_fields, option=_JSON_OPTIONS)
    except _JsonRefused:
        return record.__pydantic_serializer__.to_json(record)  # model_dump_json() without its per-call wrapper


class Shopper(CanonicalRecord):
    kind: Annotated[Literal[RecordKind.SHOPPER], KindJson] = RecordKind.SHOPPER
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    phone_raw: str | None = None
    email: str | None = None
    birth_date: date | None = None
    state: str | None = None
    postal_code: str | None = None
    loyalty_member: bool | None = None
    marketing_opt_in: bool | None = None
    sms_opt_in: bool | None = None
    sms_opt_out: bool | None = None
    customer_type: str | None = None
    pos_created_at: UtcDatetime | None = None

    @field_validator("email")
    @classmethod
    def _lower_email(cls, value: str | None) -> str | None:
        return normalize_email(value)

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith("+") or not value[1:].isdigit():
            raise ValueError("phone must be E.164 (use normalize_phone in the mapping)")
        return value

    @property
    def matchable_phone(self) -> str | None:
        return self.phone

    @property
    def matchable_email(self) -> str | None:
        return None if is_placeholder_email(self.email) else self.email


def _bounded_tenders(tenders: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """A tender's `amount_cents` is a whole amount like the sale's own (kept as the mapping built it: its JSON is
    the stored form)."""
    for tender in tenders:
        amount = tender.get("amount_cents")
        if type(amount) is int and not -MAX_WHOLE_AMOUNT <= amount <= MAX_WHOLE_AMOUNT:
            raise ValueError(f"amount_cents must be within {MAX_WHOLE_AMOUNT:,} cents either way")
    return tenders


class SaleLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    product_id: str | None = None
    sku: str | None = None
    name: str | None = None
    category: str | None = None
    brand: str | None = None
    quantity: float
    total_cents: WholeAmount
    discount_cents: WholeAmount = 0
    is_refund: bool = False


class AppliedDiscount(BaseModel):
    """A POS discount applied to a sale (a mirrored one redeems a reward): its POS id and name as the POS gave them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pos_discount_id: str | None = None
    name: str | None = None


# The models a record holds inside it, written by `record_json` as their fields.
_NESTED_MODELS: frozenset[type[BaseModel]] = frozenset({SaleLine, AppliedDiscount})

# Past this many entries a cache of built values is emptied and fills again with what the next pages repeat.
_CACHE_LIMIT = 4096


def applied_discount(pos_discount_id: str | None, name: str | None) -> AppliedDiscount:
    """`AppliedDiscount(pos_discount_id=..., name=...)`. A sale's coupons repeat from sale to sale, and the model's
    Python constructor cost about 1 µs each (measured): text or None gives the model built for these same two values
    before (frozen, so one instance serves every sale), anything else the model's own answer or error."""
    if (pos_discount_id is None or type(pos_discount_id) is str) and (name is None or type(name) is str):
        key = (pos_discount_id, name)
        found = _discounts.get(key)
        if found is None:
            if len(_discounts) >= _CACHE_LIMIT:
                _discounts.clear()
            found = _discounts[key] = AppliedDiscount(pos_discount_id=pos_discount_id, name=name)
        return found
    return AppliedDiscount(pos_discount_id=pos_discount_id, name=name)


_discounts: dict[tuple[str | None, str | None], AppliedDiscount] = {}


class Sale(CanonicalRecord):
    kind: Annotated[Literal[RecordKind.SALE], KindJson] = RecordKind.SALE
    customer_pos_id: str | None = None
    ordered_at: UtcDatetime
    local_date: date
    timezone: str
    status: Literal["completed", "refunded", "partially_refunded", "cancelled", "pending"]
    subtotal_cents: WholeAmount
    discount_cents: WholeAmount = 0
    tax_cents: WholeAmount = 0
    total_cents: WholeAmount
    refunded_cents: WholeAmount = 0
    lines: tuple[SaleLine, ...] = ()
    tenders: Annotated[tuple[dict[str, Any], ...], AfterValidator(_bounded_tenders)] = ()
    discounts: tuple[AppliedDiscount, ...] = ()  # each POS discount applied to the sale, once

    @property
    def net_cents(self) -> int:
        return self.total_cents - self.refunded_cents


class SaleLineFields(TypedDict):
    """A sale line's fields as a mapping gives them to `sale_with_lines` (SaleLine's fields, every one given)."""

    product_id: str | None
    sku: str | None
    name: str | None
    category: str | None
    brand: str | None
    quantity: float
    total_cents: int
    discount_cents: int
    is_refund: bool


def sale_with_lines(*, lines: tuple[SaleLineFields, ...], **fields: Any) -> Sale:
    """The Sale of `fields` and these lines, validated exactly as `Sale(**fields, lines=(SaleLine(**line), ...))` is
    but in one compiled call: the Sale's own validator builds its SaleLines from the dicts (a Python-side SaleLine
    per line cost about 4 µs, measured). An invalid sale raises what the line-by-line construction raises: it is
    built that way once more to raise it, so a quarantined record names the same field and problem as before."""
    fields["lines"] = lines
    return sale_of(fields)


def sale_of(fields: dict[str, Any]) -> Sale:
    """`sale_with_lines` of a mapping that builds the sale's fields, its lines under "lines", as one dict: the same
    Sale or error, without unpacking the fields into keywords and packing them into a dict again (8% of a POSaBIT
    sale's mapping instructions, measured). The dict is the caller's to hand over: an invalid sale changes it."""
    try:
        sale: Sale = _validate_sale(fields)
    except ValidationError:
        fields["lines"] = tuple(SaleLine(**line) for line in fields["lines"])
        return Sale(**fields)
    return sale


_validate_sale = Sale.__pydantic_validator__.validate_python

RecordT = TypeVar("RecordT", bound=CanonicalRecord)


def record_of(model: type[RecordT], fields: dict[str, Any]) -> RecordT:
    """`model(**fields)` by the model's own validator, without BaseModel.__init__'s Python wrapper around it (about
    2 µs a record, measured): the same record, or the same ValidationError."""
    record: RecordT = model.__pydantic_validator__.validate_python(fields)
    return record


class Product(CanonicalRecord):
    kind: Annotated[Literal[RecordKind.PRODUCT], KindJson] = RecordKind.PRODUCT
    product_id: str | None = None
    name: str
    sku: str | None = None
    brand: str | None = None
    category: str | None = None
    price_cents: WholeAmount | None = None
    quantity_on_hand: float | None = None
    active: bool = True


class LoyaltyBalance(CanonicalRecord):
    kind: Annotated[Literal[RecordKind.LOYALTY_BALANCE], KindJson] = RecordKind.LOYALTY_BALANCE
    customer_pos_id: str
    points: WholeAmount
    as_of: UtcDatetime


DiscountType = Literal["flat", "percent", "other"]


def discount_type_of(word: str | None, *, flat_word: str = "amount") -> DiscountType:
    """The canonical discount type from a POS's word for it: `flat_word` (most say "amount", POSaBIT "dollar") is
    flat, "percent" is percent, anything else (or nothing) other. Case and surrounding spaces do not matter."""
    kind = (word or "").strip().lower()
    return "flat" if kind == flat_word else "percent" if kind == "percent" else "other"


class Discount(CanonicalRecord):
    """A discount (coupon) as a POS store lists it: what a reward is mirrored to. Flourish discounts may run daily
    between a start and end time on the facility's wall clock (`daily_start`, `daily_end` "HH:MM", in `timezone`)."""

    kind: Annotated[Literal[RecordKind.DISCOUNT], KindJson] = RecordKind.DISCOUNT
    name: str
    discount_type: DiscountType = "other"
    value: str | None = None  # dollars for flat, percent for percent, as the POS gave it
    active: bool = True
    starts_at: UtcDatetime | None = None
    ends_at: UtcDatetime | None = None
    daily_start: str | None = None
    daily_end: str | None = None
    timezone: str = "UTC"

    def available_at(self, at: datetime) -> bool:
        """Whether the POS would apply the discount at this instant: active, within its dates, and within its daily
        wall-clock window on the store's clock that day (DST-correct: the window follows the local clock)."""
        if not self.active or (self.starts_at and at < self.starts_at) or (self.ends_at and at >= self.ends_at):
            return False
        if self.daily_start is None or self.daily_end is None:
            return True
        start, end = time.fromisoformat(self.daily_start), time.fromisoformat(self.daily_end)
        return zones.in_daily_window(at, start, end, self.timezone)


AnyRecord = Shopper | Sale | Product | LoyaltyBalance | Discount

RECORD_MODELS: dict[RecordKind, type[CanonicalRecord]] = {
    RecordKind.SHOPPER: Shopper,
    RecordKind.SALE: Sale,
    RecordKind.PRODUCT: Product,
    RecordKind.LOYALTY_BALANCE: LoyaltyBalance,
    RecordKind.DISCOUNT: Discount,
}


def read_record(kind: RecordKind, data: str | bytes) -> CanonicalRecord:
    """A stored record as its consumers read it: written by this version of the code or by a newer or older one
    (a staggered deploy, a rollback). Fields this version does not know are dropped, missing optional ones take
    their defaults; the models themselves stay strict, so what the pulls write is still checked field by field.
    Raises pydantic's ValidationError (or ValueError for data that is not JSON) when a required field is missing
    or a value is invalid."""
    model = RECORD_MODELS[kind]
    try:
        return model.model_validate_json(data)  # the common case, fastest: written by this version
    except ValidationError as exc:
        if not any(error["type"] == "extra_forbidden" for error in exc.errors()):
            raise
    return model.model_validate(_known_fields(model, json.loads(data)))


def _known_fields(model: type[BaseModel], value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    known: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name in value:
            known[name] = _known_nested(info.annotation, value[name])
    return known


def _known_nested(annotation: Any, value: Any) -> Any:
    """Drop unknown fields inside nested models too (a sale's lines), whatever container holds them."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _known_fields(annotation, value)
    for inner in get_args(annotation):
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            if isinstance(value, list | tuple):
                return [_known_fields(inner, v) for v in value]
            return _known_fields(inner, value)
    return value


_ONE_CENT = Decimal(1)
_HUNDRED = Decimal(100)
# Below this many digits (an `adjusted()` exponent), quantizing cents to a whole number stays within the default
# context's 28-digit precision, so it cannot fail and `to_integral_value` gives the same whole number.
_EXACT_CENTS_DIGITS = 27


def dollars_to_cents(value: Any) -> int:
    """Exact conversion of a dollar amount (number or string) to integer cents, half away from zero."""
    if type(value) is int:  # whole dollars (not bool, whose str() is no number): exact without Decimal
        return value * 100
    amount = value if type(value) is Decimal else Decimal(str(value))  # a Decimal's str() round-trips exactly
    cents = amount * _HUNDRED
    if cents.is_finite() and cents.adjusted() < _EXACT_CENTS_DIGITS:  # every amount a POS sends: half the cost
        return int(cents.to_integral_value(rounding=ROUND_HALF_UP))
    return int(cents.quantize(_ONE_CENT, rounding=ROUND_HALF_UP))  # NaN, infinities, huge: raise as they did
