"""A payload model's compiled fast path (`payload_fastpath.fast_validator`) accepts what the model accepts, with the
same values, and refuses what it refuses, with the same errors: over every POSaBIT simulator item and over hostile
values in every field. (POSaBIT, THSuite, Profitek, Auphan and Flourish.)"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

import pytest
from pydantic import BaseModel, BeforeValidator, ValidationError
from pydantic_core import SchemaValidator

from functions.core.layout import Stream, Vendor
from functions.core.payload_fastpath import STRIPPED_TEXT, STRIPPED_TEXT_NOT_ZERO, fast_validator
from functions.pull_flourish import mapping as flourish
from functions.pull_onprem import values as onprem_values
from functions.pull_onprem.auphan import mapping as auphan
from functions.pull_onprem.profitek import mapping as profitek
from functions.pull_posabit import mapping as posabit
from functions.pull_thsuite import mapping as thsuite
from tests.mapping_corpus import simulator_pages

POSABIT_VALIDATORS: dict[Stream, tuple[type[BaseModel], Callable[[Any], BaseModel]]] = {
    Stream.CUSTOMERS: (posabit.PosabitCustomer, posabit.validate_customer),
    Stream.LOYALTY: (posabit.PosabitPointsBalance, posabit.validate_points_balance),
    Stream.SALES: (posabit.PosabitSale, posabit.validate_sale),
    Stream.INVENTORY: (posabit.PosabitInventory, posabit.validate_inventory),
    Stream.DISCOUNTS: (posabit.PosabitCoupon, posabit.validate_coupon),
}
ONPREM_MODELS: dict[Vendor, dict[Stream, type[BaseModel]]] = {
    Vendor.PROFITEK: {
        Stream.CUSTOMERS: profitek.ProfitekCustomer,
        Stream.SALES: profitek.ProfitekTransaction,
        Stream.INVENTORY: profitek.ProfitekItem,
        Stream.LOYALTY: profitek.ProfitekLoyaltyBalance,
        Stream.DISCOUNTS: profitek.ProfitekDiscount,
    },
    Vendor.AUPHAN: {
        Stream.CUSTOMERS: auphan.AuphanCustomer,
        Stream.SALES: auphan.AuphanSale,
        Stream.INVENTORY: auphan.AuphanProduct,
        Stream.DISCOUNTS: auphan.AuphanDiscount,
    },
}
THSUITE_VALIDATORS: dict[Stream, tuple[type[BaseModel], Callable[[Any], BaseModel]]] = {
    Stream.CUSTOMERS: (thsuite.ThsuitePatient, thsuite.validate_patient),
    Stream.SALES: (thsuite.ThsuiteReceipt, thsuite.validate_receipt),
    Stream.INVENTORY: (thsuite.ThsuiteInventoryItem, thsuite.validate_inventory_item),
    Stream.LOYALTY: (thsuite.ThsuiteLoyaltyBalance, thsuite.validate_loyalty_balance),
    Stream.DISCOUNTS: (thsuite.ThsuiteDiscount, thsuite.validate_discount),
}
FLOURISH_VALIDATORS: dict[Stream, tuple[type[BaseModel], Callable[[Any], BaseModel]]] = {
    Stream.SALES: (flourish.FlourishRetailOrder, flourish.validate_retail_order),
    Stream.INVENTORY: (flourish.FlourishItem, flourish.validate_item),
    Stream.DISCOUNTS: (flourish.FlourishDiscountDefinition, flourish.validate_discount_definition),
    # not used by the mapping (its simulator items lack SMS fields), compared all the same
    Stream.CUSTOMERS: (flourish.FlourishCustomer, fast_validator(flourish.FlourishCustomer, flourish.IDENTITY_ON)),
}
CASES: list[tuple[Vendor, Stream, type[BaseModel], Callable[[Any], BaseModel]]] = (
    [
        (vendor, stream, model, fast)
        for vendor, validators in (
            (Vendor.POSABIT, POSABIT_VALIDATORS),
            (Vendor.THSUITE, THSUITE_VALIDATORS),
            (Vendor.FLOURISH, FLOURISH_VALIDATORS),
        )
        for stream, (model, fast) in validators.items()
    ]
    + [
        (vendor, stream, model, fast_validator(model, onprem_values.IDENTITY_ON))
        for vendor, models in ONPREM_MODELS.items()
        for stream, model in models.items()
    ]
    + [
        # as Profitek's pages compile them: its ids too ("nonzero_id_text")
        (Vendor.PROFITEK, stream, model, fast_validator(model, profitek.PAGE_IDENTITY_ON))
        for stream, model in ONPREM_MODELS[Vendor.PROFITEK].items()
    ]
)
CASE_IDS = [f"{vendor.value}-{stream.value}" for vendor, stream, _, _ in CASES]
CASE_IDS[-len(ONPREM_MODELS[Vendor.PROFITEK]) :] = [
    f"profitek-page-{stream.value}" for stream in ONPREM_MODELS[Vendor.PROFITEK]
]


SPACES = [chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()]
HOSTILE_CORE: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    7,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    10**5000,
    1.0,
    -2.0,
    1.5,
    float("nan"),
    float("inf"),
    "",
    "x",
    "12",
    " 12 ",
    "+12",
    "-0",
    "0",
    "00",
    " 0",
    "0\u3000",
    "1e3",
    "1.0",
    "true",
    "no",
    "2026-01-02",
    "a\nb",
    "\u200bx",
    "x\u200b",
    "\u00e9\U0001f600",
    "\ud800",
    "x" * 10_000,
    [],
    [1],
    [None],
    [{"id": 1}],
    {},
    {"a": 1},
    " x",
    "x\u3000",
    "\x1c",
]
HOSTILE = [*HOSTILE_CORE, *SPACES, *[f"{space}x" for space in SPACES], *[f"x{space}" for space in SPACES]]


def outcome(validate: Callable[[Any], BaseModel], data: Any) -> tuple[str, Any]:
    """A model as every value it holds, with its type, and the fields set (nested models too); an error as all it
    says."""
    try:
        model = validate(data)
    except ValidationError as exc:
        return "error", (exc.title, exc.errors(include_url=False, include_context=False), str(exc))
    except ValueError as exc:  # a number too long for its text (THSuite's numbers as text): raised as it is
        return type(exc).__name__, str(exc)
    return "model", snapshot(model)


def snapshot(value: Any) -> Any:
    if isinstance(value, BaseModel):
        fields = tuple((name, snapshot(getattr(value, name))) for name in type(value).model_fields)
        return type(value).__name__, sorted(value.model_fields_set), fields
    if isinstance(value, list | tuple):
        return type(value).__name__, tuple(snapshot(part) for part in value)
    if isinstance(value, dict):
        return "dict", tuple((snapshot(key), snapshot(part)) for key, part in value.items())
    if isinstance(value, float):
        return "float", value.hex()
    return type(value).__name__, value


@pytest.fixture(scope="module")
def simulator_items() -> dict[tuple[Vendor, Stream], list[dict[str, Any]]]:
    items: dict[tuple[Vendor, Stream], list[dict[str, Any]]] = {}
    for vendor in (Vendor.POSABIT, Vendor.THSUITE, Vendor.PROFITEK, Vendor.AUPHAN, Vendor.FLOURISH):
        for _, stream, page, _ctx in simulator_pages(vendor, 100):
            unwrap = posabit.unwrap_item if vendor is Vendor.POSABIT else lambda _stream, item: item
            items.setdefault((vendor, stream), []).extend(unwrap(stream, item) for item in page)
    return items


@pytest.mark.parametrize(("vendor", "stream", "model", "fast"), CASES, ids=CASE_IDS)
def test_every_simulator_item_validates_to_the_same_payload(
    vendor: Vendor,
    stream: Stream,
    model: type[BaseModel],
    fast: Callable[[Any], BaseModel],
    simulator_items: dict[tuple[Vendor, Stream], list[dict[str, Any]]],
) -> None:
    assert simulator_items[vendor, stream]
    for item in simulator_items[vendor, stream]:
        assert outcome(fast, item) == outcome(model.model_validate, item)
        assert isinstance(fast(item), model)


@pytest.mark.parametrize(("vendor", "stream", "model", "fast"), CASES, ids=CASE_IDS)
def test_hostile_values_in_every_field_give_the_same_payload_or_error(
    vendor: Vendor,
    stream: Stream,
    model: type[BaseModel],
    fast: Callable[[Any], BaseModel],
    simulator_items: dict[tuple[Vendor, Stream], list[dict[str, Any]]],
) -> None:
    base = max(simulator_items[vendor, stream], key=lambda item: len(str(item)))
    fields = {"_missing_"} | set(base) | set(model.model_fields)
    for name in sorted(fields):
        for value in HOSTILE:
            item = {**base, name: value}
            assert outcome(fast, item) == outcome(model.model_validate, item), (name, repr(value)[:40])
        item = {key: value for key, value in base.items() if key != name}
        assert outcome(fast, item) == outcome(model.model_validate, item), name
    for list_name, value in base.items():  # hostile values inside each nested item (a sale's lines, tenders)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            for name in sorted(set(value[0]) | {"_missing_"}):
                for hostile in HOSTILE_CORE:
                    item = {**base, list_name: [{**value[0], name: hostile}, *value[1:]]}
                    assert outcome(fast, item) == outcome(model.model_validate, item), (list_name, name)


def test_hostile_values_inside_a_sale_line_and_tender() -> None:
    line = {"product_id": 70023, "sku": "S", "product_name": "N", "quantity": 2, "total": 3300, "discount_list": []}
    tender = {"sales_tender_id": 1, "payment_method_name": "cash", "total": 3300}
    for nested, key in ((line, "items"), (tender, "sales_tenders")):
        for name in [*nested, "name", "id", "discount"]:
            for value in HOSTILE:
                sale = {"id": 1, "total": 1, "updated_at": "2026-01-01", key: [{**nested, name: value}, nested]}
                assert outcome(posabit.validate_sale, sale) == outcome(posabit.PosabitSale.model_validate, sale), (
                    key,
                    name,
                    repr(value)[:40],
                )


def test_items_that_are_no_mapping_give_the_model_error() -> None:
    for value in [None, [], "x", 1, [{"id": 1}]]:
        assert outcome(posabit.validate_sale, value) == outcome(posabit.PosabitSale.model_validate, value)


def test_the_stripped_text_pattern_accepts_exactly_what_strip_leaves_unchanged() -> None:
    accepts = _pattern_accepts(STRIPPED_TEXT)
    texts = [value for value in HOSTILE if isinstance(value, str) and value != "\ud800"]
    texts += [f"a{space}b" for space in SPACES] + [
        f"{a}{b}" for a in ("x", " ", "\u0085") for b in ("y", "\t", "\u3000")
    ]
    for text in texts:
        assert accepts(text) is (text != "" and text.strip() == text), repr(text)


def test_the_nonzero_stripped_text_pattern_accepts_what_strip_leaves_unchanged_but_zero() -> None:
    accepts = _pattern_accepts(STRIPPED_TEXT_NOT_ZERO)
    texts = [value for value in HOSTILE if isinstance(value, str) and value != "\ud800"]
    texts += [f"{a}{b}" for a in ("0", " ", "\u0085", "1") for b in ("0", "\t", "\u3000", "")]
    for text in texts:
        assert accepts(text) is (text not in ("", "0") and text.strip() == text), repr(text)


def _pattern_accepts(pattern: str) -> Callable[[str], bool]:
    """Whether a strict str schema with `pattern` takes a text."""
    validator = SchemaValidator({"type": "str", "strict": True, "pattern": pattern})

    def accepts(text: str) -> bool:
        try:
            validator.validate_python(text)
        except ValidationError:
            return False
        return True

    return accepts


def test_a_before_validator_that_cannot_be_compiled_out_is_refused_at_build() -> None:
    def shout(value: Any) -> Any:
        return value

    class Odd(BaseModel):
        amount: Annotated[float, BeforeValidator(shout)]

    with pytest.raises(TypeError, match="shout"):
        fast_validator(Odd, {shout: "strict"})


def test_the_fast_path_calls_no_before_validator_for_values_it_compiles_out() -> None:
    calls: list[Any] = []

    def whole(value: Any) -> Any:
        calls.append(value)
        return int(value.strip()) if isinstance(value, str) else value

    class Counted(BaseModel):
        amount: Annotated[int, BeforeValidator(whole)]
        nested: list[Counted] = []

    fast = fast_validator(Counted, {whole: "strict"})
    fast_result = fast({"amount": 3, "nested": [{"amount": 4}]})
    assert calls == []
    assert snapshot(fast_result) == snapshot(Counted(amount=3, nested=[Counted(amount=4)]))
    assert isinstance(fast_result, Counted) and isinstance(fast_result.nested[0], Counted)
    calls.clear()
    assert fast({"amount": " 5 "}).amount == 5  # refused by the fast path: the model's own validator ran
    assert calls == [" 5 "]


def test_a_blank_value_goes_to_the_model_before_validator() -> None:
    receipt = {"id": 7, "store_id": " ", "status": "completed", "total": "1.00", "updated_at": "2026-01-01T00:00:00Z"}
    for blank in ("", " ", "\t", "\u3000", "\x1c"):
        item = {**receipt, "store_id": blank, "subtotal": 1}
        assert outcome(thsuite.validate_receipt, item) == outcome(thsuite.ThsuiteReceipt.model_validate, item)
        assert thsuite.validate_receipt(item).store_id is None


def test_a_model_validator_over_a_field_a_blank_could_become_is_refused_at_build() -> None:
    from pydantic import model_validator

    class Loose(BaseModel):
        note: Any = None

        @model_validator(mode="before")
        @classmethod
        def _blank(cls, data: Any) -> Any:
            return data

    with pytest.raises(TypeError, match="_blank"):
        fast_validator(Loose, {Loose._blank.__func__: "no_blank_values"})  # type: ignore[attr-defined]


def test_flourish_alternatives_are_taken_by_the_model_when_a_listed_field_is_absent_or_blank() -> None:
    # Given an order line whose total comes under an alternative name, or is blank, or None
    line = {
        "id": 1,
        "item_id": 2,
        "sku": "S",
        "item_name": "N",
        "brand": "B",
        "item_category": "C",
        "order_qty": 2,
        "unit_price": 1.5,
        "total_price": 3,
        "refunded_qty": 0,
        "applied_discounts": [],
    }
    order = {"id": 9, "order_status": "Completed", "order_lines": [line], "last_updated_timestamp": "2026-01-01T00:00Z"}
    for total in ({"total_price": None, "line_total": 4}, {"total_price": " ", "total": 5}, {"total_price": ""}):
        item = {**order, "order_lines": [{**line, **total}]}
        # Then the fast path gives what the model gives, the alternative taken
        assert outcome(flourish.validate_retail_order, item) == outcome(
            flourish.FlourishRetailOrder.model_validate, item
        )
    taken = flourish.validate_retail_order({**order, "order_lines": [{**line, "total_price": None, "line_total": 4}]})
    assert taken.order_lines[0].total_price == 4


def test_present_alternatives_refuse_a_listed_field_read_under_another_name() -> None:
    from pydantic import AliasChoices, Field, model_validator

    class Aliased(BaseModel):
        ALTERNATIVES: ClassVar[dict[str, tuple[str, ...]]] = {"name": ("title",)}
        name: str | None = Field(default=None, validation_alias=AliasChoices("name", "label"))

        @model_validator(mode="before")
        @classmethod
        def _take(cls, data: Any) -> Any:
            return data

    with pytest.raises(TypeError, match="_take"):
        fast_validator(Aliased, {Aliased._take.__func__: "present_alternatives"})  # type: ignore[attr-defined]
