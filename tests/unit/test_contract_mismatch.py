"""Quarantine reasons group by field; most of a stream quarantined for one field is a contract mismatch."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import BaseModel, ValidationError

from functions.core.engine import (
    CONTRACT_MISMATCH_MIN_RECORDS,
    ContractMismatch,
    StreamResult,
    quarantine_group,
)
from functions.core.layout import Stream


class Order(BaseModel):
    id: int
    total_price: float
    lines: list[dict[str, float]] = []


def pydantic_reason(data: dict[str, object]) -> str:
    """The reason the vendor mappings write for a pydantic error: field paths and problems, never values."""
    try:
        Order.model_validate(data)
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
    raise AssertionError("valid")


@pytest.mark.parametrize(
    ("reason", "field", "problem"),
    [
        ("total_price: Field required", "total_price", "Field required"),
        (
            "lines.3.total: Input should be a valid number; id: Field required",
            "lines.*.total",
            "Input should be a valid number",
        ),
        ("unknown sale status 'VOIDED-7'", "record", "unknown sale status '…'"),
        ("TypeError: unsupported operand", "record", "TypeError: unsupported operand"),
    ],
)
def test_a_reason_gives_a_stable_field_and_problem(reason: str, field: str, problem: str) -> None:
    assert quarantine_group(reason) == (field, problem)


def test_records_failing_the_same_way_group_together_whatever_their_values() -> None:
    a = pydantic_reason({"id": 1, "total_price": 2.0, "lines": [{"total": 1.0}, {"total": "x"}]})
    b = pydantic_reason({"id": 2, "total_price": 5.0, "lines": [{"total": "y"}]})
    assert quarantine_group(a) == quarantine_group(b) != quarantine_group(pydantic_reason({"id": 3}))
    assert quarantine_group(pydantic_reason({"id": 3})) == ("total_price", "Field required")


def test_a_field_named_by_the_mapping_wins() -> None:
    reason = "ordered_at, ordered_at_local and created_at are all missing"
    assert quarantine_group(reason, "ordered_at") == ("ordered_at", reason)
    assert quarantine_group("total: Field required", "total") == ("total", "Field required")


def result(records: int, groups: dict[tuple[str, str], int]) -> StreamResult:
    out = StreamResult(records=records, quarantined=sum(groups.values()))
    out.quarantine_groups = Counter(groups)
    return out


def test_most_records_quarantined_for_one_field_is_a_mismatch_naming_stream_and_field() -> None:
    verdict = result(0, {("total_price", "Field required"): 7501}).contract_verdict(Stream.SALES)
    assert verdict == ContractMismatch(Stream.SALES, "total_price", "Field required", 7501, 7501)
    text = verdict.describe()
    assert "7501 of 7501 sales records" in text and "'total_price'" in text


def test_a_few_bad_records_are_ordinary_quarantine() -> None:
    assert result(97, {("phone", "not a phone"): 3}).contract_verdict(Stream.CUSTOMERS) == "clean"
    many_reasons = {(f"field_{n}", "Field required"): 6 for n in range(10)}
    assert result(40, many_reasons).contract_verdict(Stream.SALES) == "clean", "no single field dominates"


def test_too_few_records_to_tell_is_inconclusive() -> None:
    small = CONTRACT_MISMATCH_MIN_RECORDS - 1
    assert result(0, {("total_price", "Field required"): small}).contract_verdict(Stream.SALES) == "inconclusive"
    assert StreamResult().contract_verdict(Stream.SALES) == "inconclusive"
