"""A Sale built without validation (`trusted_records.trusted_sale`) is exactly the Sale the validator builds: the
same values of the same types, fields set, stored JSON and digest, for the fields every vendor's mapping passes over
its simulator's sales (and their mutants); and any value the validator would convert or refuse, in any field of the
sale or of a line, makes it decline, so `sale_with_lines` gives what it gave before (the validator's Sale, else the
line-by-line construction's error)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from functools import partial
from typing import Any, cast
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ValidationError, field_validator
from pydantic_core import PydanticSerializationError

from functions.core import models, trusted_records
from functions.core.engine import map_page
from functions.core.layout import RecordKind, Stream, Vendor
from functions.core.models import AppliedDiscount, Sale, SaleLine, SaleLineFields, sale_with_lines
from tests.mapping_corpus import mutations, simulator_pages
from tests.unit.test_payload_fastpath import HOSTILE_CORE, snapshot


class Text(str):
    pass


class Whole(int):
    pass


class Real(float):
    pass


class Kind(StrEnum):
    SALE = "sale"


class SubDiscount(AppliedDiscount):
    pass


MOMENT = datetime(2026, 3, 8, 9, 30, 1, 250, tzinfo=UTC)
HOSTILE: list[Any] = [
    *HOSTILE_CORE,
    MOMENT,
    MOMENT.replace(tzinfo=None),
    MOMENT.replace(tzinfo=timezone(timedelta(0))),
    MOMENT.astimezone(ZoneInfo("America/Los_Angeles")),
    MOMENT.replace(tzinfo=ZoneInfo("UTC")),
    date(2026, 3, 8),
    "2026-03-08T09:30:01Z",
    Text("x"),
    Whole(3),
    Real(1.5),
    -0.0,
    10**30,
    Decimal("1.5"),
    "completed",
    "Completed",
    "sale",
    Kind.SALE,
    RecordKind.SALE,
    RecordKind.SHOPPER,
    Vendor.POSABIT,
    "posabit",
    (),
    ({"a": 1},),
    ({1: "a"},),
    [{"a": 1}],
    (AppliedDiscount(pos_discount_id="1", name="x"),),
    (SubDiscount(pos_discount_id="1", name="x"),),
    ({"pos_discount_id": "1", "name": "x"},),
]


def outcome(build: Any, lines: tuple[Any, ...], fields: dict[str, Any]) -> tuple[str, Any]:
    try:
        sale = build(lines, dict(fields))
    except ValidationError as exc:
        return "error", (exc.title, exc.errors(include_url=False, include_context=False), str(exc))
    except (TypeError, ValueError) as exc:
        return type(exc).__name__, str(exc)
    return "sale", (snapshot(sale), stored(sale), list(sale.__dict__), [list(li.__dict__) for li in sale.lines])


def stored(sale: Sale) -> Any:
    try:
        return sale.stored_form()
    except PydanticSerializationError as exc:  # text JSON cannot carry (a lone surrogate): the same for both
        return str(exc)


def line_by_line(lines: tuple[Any, ...], fields: dict[str, Any]) -> Sale:
    """The construction every mapping used before `sale_with_lines`."""
    return Sale(**fields, lines=tuple(SaleLine(**line) for line in lines))


def previous(lines: tuple[Any, ...], fields: dict[str, Any]) -> Sale:
    """`sale_with_lines` before the trusted construction: the validator, else the line-by-line construction's error."""
    try:
        return validated(lines, fields)
    except ValidationError:
        return line_by_line(lines, fields)


def given(sale: Sale, _lines: tuple[Any, ...], _fields: dict[str, Any]) -> Sale:
    return sale


def with_lines(lines: tuple[Any, ...], fields: dict[str, Any]) -> Sale:
    return sale_with_lines(lines=cast(tuple[SaleLineFields, ...], lines), **fields)


def validated(lines: tuple[Any, ...], fields: dict[str, Any]) -> Sale:
    return Sale.model_validate({**fields, "lines": lines})


@pytest.fixture(scope="module")
def mapped_fields() -> dict[Vendor, list[dict[str, Any]]]:
    """What each vendor's mapping passes to `sale_with_lines`, over its simulator's sales and their mutants."""
    found: dict[Vendor, list[dict[str, Any]]] = {}
    real = trusted_records.trusted_sale

    def capture(fields: dict[str, Any]) -> Sale | None:
        found.setdefault(vendor, []).append(dict(fields))
        return real(fields)

    with mock.patch.object(trusted_records, "trusted_sale", capture):
        for vendor in Vendor:
            for connector, stream, items, ctx in simulator_pages(vendor, 100):
                if stream is not Stream.SALES:
                    continue
                map_page(connector, stream, items, ctx, "page")
                for item in items[:2]:
                    for key, bad in mutations(item):
                        map_page(connector, stream, [{**item, key: bad}], ctx, "mutant")
    return found


@pytest.mark.parametrize("vendor", list(Vendor))
def test_every_mapped_sale_is_built_trusted_and_is_the_validated_sale(
    vendor: Vendor, mapped_fields: dict[Vendor, list[dict[str, Any]]]
) -> None:
    cases = mapped_fields[vendor]
    assert len(cases) > 100
    trusted = 0
    for case in cases:
        lines = case["lines"]
        fields = {name: value for name, value in case.items() if name != "lines"}
        old = outcome(line_by_line, lines, fields)
        assert outcome(with_lines, lines, fields) == old
        assert outcome(validated, lines, fields) == old
        sale = trusted_records.trusted_sale({**fields, "lines": lines})
        if sale is not None:
            trusted += 1
            assert old[0] == "sale" and sale == line_by_line(lines, fields)
    assert trusted >= len(cases) * 9 // 10  # the common case is the trusted one


def hostile_cases(base: dict[str, Any]) -> Iterator[tuple[Any, dict[str, Any]]]:
    lines = base["lines"]
    fields = {name: value for name, value in base.items() if name != "lines"}
    for name in [*(n for n in Sale.model_fields if n != "lines"), "extra_field"]:
        for value in HOSTILE:
            yield lines, {**fields, name: value}
        yield lines, {key: value for key, value in fields.items() if key != name}
    for name in [*SaleLine.model_fields, "extra_field"]:
        for value in HOSTILE:
            yield ({**lines[0], name: value}, *lines[1:]), fields
        yield ({key: value for key, value in lines[0].items() if key != name}, *lines[1:]), fields
    yield (dict(reversed(lines[0].items())), *lines[1:]), dict(reversed(fields.items()))  # any order of keys
    for value in HOSTILE:
        yield (value,), fields
        yield [*lines], fields
        yield (SaleLine(**lines[0]),), fields


def test_hostile_values_in_every_field_give_what_sale_with_lines_gave_before(
    mapped_fields: dict[Vendor, list[dict[str, Any]]],
) -> None:
    for vendor in Vendor:
        base = max(
            mapped_fields[vendor], key=lambda f: (bool(f["lines"]), bool(f.get("discounts")), bool(f.get("tenders")))
        )
        assert trusted_records.trusted_sale(dict(base)) is not None
        for lines, fields in hostile_cases(base):
            old = outcome(previous, lines, fields)
            assert outcome(with_lines, lines, fields) == old, (sorted(fields), repr(lines)[:80])
            sale = trusted_records.trusted_sale({**fields, "lines": lines})
            if sale is not None:  # taken only where the validator hands every value on as it is
                assert outcome(partial(given, sale), lines, fields) == outcome(validated, lines, fields)


def test_a_sale_with_a_validator_of_its_own_is_refused_when_the_checks_are_derived() -> None:
    class Checked(BaseModel):
        model_config = models.Sale.model_config
        name: str

        @field_validator("name")
        @classmethod
        def _shout(cls, value: str) -> str:
            return value.upper()

    with pytest.raises(TypeError, match="validators of its own"):
        trusted_records._checks(Checked)

    class Constrained(BaseModel):
        model_config = models.Sale.model_config
        total: int = 0
        ratio: float | int = 0

    with pytest.raises(TypeError, match="ratio"):
        trusted_records._checks(Constrained)
