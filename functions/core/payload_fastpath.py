"""A vendor payload model's compiled fast path: the same model, its Python before-validators left out where they
would hand the value on unchanged.

A payload model normalizes awkward values with Python `BeforeValidator`s (ids sent as numbers, blank text as none,
numeric strings as numbers); pydantic calls each of them for every field of every item, though nearly every value a
POS sends is already in the form the validator would return. `fast_validator` builds a second validator from the
model's own core schema in which such a before-validator is replaced by the strict form of the schema it feeds,
restricted to the values the before-validator returns unchanged (`IdentityOn`). It builds instances of subclasses
of the model's classes that add nothing (same fields, values and config; pydantic-core would otherwise reuse a
complete class's own validator), so they read as the model's instances everywhere except `==` against one. An item
it refuses (a blank, a numeric string, a missing list, anything invalid) is validated by the model itself, so what is
accepted, the values, and every error stay exactly the model's. Input is what JSON decodes to.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaValidator

ModelT = TypeVar("ModelT", bound=BaseModel)

# What a before-validator returns unchanged: "strict" - every value the strict form of its schema accepts (an int
# that is no bool, a bool, a list); "stripped_text" - a string with no surrounding whitespace (as `str.strip`
# sees it), not empty. "id_text": as "stripped_text", and it turns an int (no bool) into its decimal text, as
# `str(value)` does: compiled for ints of 64 bits (longer ones, whose text Python may refuse, go to the model).
IdentityOn = Literal["strict", "stripped_text", "id_text"]

# Every character `str.strip()` removes (`str.isspace`), as a Rust regex class; a value matching STRIPPED_TEXT is
# one that `value.strip() or None` returns unchanged.
_SPACES = "".join(f"\\x{{{code:x}}}" for code in range(sys.maxunicode + 1) if chr(code).isspace())
STRIPPED_TEXT = rf"(?s)\A[^{_SPACES}](?:.*[^{_SPACES}])?\z"

_STRICT_TYPES = frozenset({"int", "bool", "list", "str"})


def fast_validator(
    model: type[ModelT], identity_on: Mapping[Callable[[Any], Any], IdentityOn]
) -> Callable[[Any], ModelT]:
    """`model.model_validate`, with the before-validators in `identity_on` compiled out of the common case.

    Raises TypeError when a listed before-validator feeds a schema it cannot be replaced in (a programming error,
    found at import)."""
    validator = SchemaValidator(_rewrite(model.__pydantic_core_schema__, identity_on, {}))
    fast = validator.validate_python
    full = model.model_validate

    def validate(data: Any) -> ModelT:
        try:
            result: ModelT = fast(data)
        except ValidationError:
            return full(data)  # the model's own answer: its value, or its error
        return result

    return validate


def _rewrite(schema: Any, identity_on: Mapping[Callable[[Any], Any], IdentityOn], classes: dict[type, type]) -> Any:
    if isinstance(schema, list):
        return [_rewrite(part, identity_on, classes) for part in schema]
    if not isinstance(schema, dict):
        return schema
    rewritten = {key: _rewrite(value, identity_on, classes) for key, value in schema.items()}
    if rewritten.get("type") == "model":
        rewritten["cls"] = _built_by_schema(rewritten["cls"], classes)
    if rewritten.get("type") == "function-before":
        function = rewritten["function"].get("function")
        kind = identity_on.get(function) if callable(function) else None
        if kind is not None:
            return _strict(rewritten["schema"], kind, function)
    return rewritten


def _built_by_schema(cls: type, classes: dict[type, type]) -> type:
    """A subclass of `cls` that pydantic-core builds from the schema given it: for a complete model class itself it
    would reuse the class's own validator (its before-validators included)."""
    if cls not in classes:
        config = {**getattr(cls, "model_config", {}), "defer_build": True}
        classes[cls] = type(cls)(cls.__name__, (cls,), {"__module__": cls.__module__, "model_config": config})
    return classes[cls]


def _strict(schema: dict[str, Any], kind: IdentityOn, function: Callable[[Any], Any]) -> dict[str, Any]:
    if schema.get("type") == "nullable":
        return {**schema, "schema": _strict(schema["schema"], kind, function)}
    kind_of_type = schema.get("type")
    if kind_of_type not in _STRICT_TYPES or (kind == "strict") == (kind_of_type == "str"):
        raise TypeError(f"{function.__qualname__} feeds a {kind_of_type} schema: it cannot be compiled out as {kind}")
    strict = {**schema, "strict": True}
    if kind == "strict":
        return strict
    if "pattern" in schema:
        raise TypeError(f"{function.__qualname__} feeds a str schema with a pattern of its own")
    strict["pattern"] = STRIPPED_TEXT
    if kind == "stripped_text":
        return strict
    whole_to_text = {  # the str schema's own constraints (a minimum length) still apply to the text
        "type": "chain",
        "steps": [
            {"type": "int", "strict": True, "ge": -(2**63), "le": 2**63 - 1},
            {**schema, "coerce_numbers_to_str": True},
        ],
    }
    return {"type": "union", "choices": [strict, whole_to_text], "mode": "left_to_right"}
