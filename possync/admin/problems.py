"""Validation errors as an admin reads them: the rule and an example, never pydantic's wording or the value."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

DATE_HINT = "not a date: use YYYY-MM-DD, e.g. 2026-05-01"
_DATE_TYPES = frozenset({"date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact", "date_type"})
_VALUE_ERROR_PREFIXES = ("Value error, ", "Assertion failed, ")


def explain(error: Any) -> str:
    """One pydantic error (`exc.errors()` item) as the rule it breaks; the input value is never repeated."""
    kind = str(error.get("type", ""))
    context: dict[str, Any] = dict(error.get("ctx") or {})
    message = str(error.get("msg", "not valid"))
    if kind in _DATE_TYPES:
        return DATE_HINT
    if kind in ("bool_parsing", "bool_type"):
        return "use true or false"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "use a whole number"
    if kind in ("float_parsing", "float_type", "decimal_parsing"):
        return "use a number"
    if kind == "greater_than_equal":
        return f"must be at least {context.get('ge')}"
    if kind == "less_than_equal":
        return f"must be at most {context.get('le')}"
    if kind in ("string_too_short", "too_short"):
        least = context.get("min_length")
        return "must not be empty" if least == 1 else f"must be at least {least} characters long"
    if kind in ("string_too_long", "too_long"):
        return f"must be at most {context.get('max_length')} characters long"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a field of this form"
    for prefix in _VALUE_ERROR_PREFIXES:
        if message.startswith(prefix):
            return message.removeprefix(prefix)
    return message[:1].lower() + message[1:]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for a near miss, else ''."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {found[0]}?)" if found else ""


def describe(errors: Sequence[Any], locate: Any = None) -> str:
    """Every error as `field: rule`, `;`-joined (`locate` turns a loc tuple into a field name)."""
    parts = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        where = locate(loc) if locate is not None else ".".join(map(str, loc))
        parts.append(f"{where or 'settings'}: {explain(error)}")
    return "; ".join(parts)
