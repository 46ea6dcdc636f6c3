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
from pydantic._internal import _validators as _pydantic_validators
from pydantic_core import SchemaValidator

ModelT = TypeVar("ModelT", bound=BaseModel)

# What a before-validator returns unchanged: "strict" - every value the strict form of its schema accepts (an int
# that is no bool, a bool, a list); "stripped_text" - a string with no surrounding whitespace (as `str.strip`
# sees it), not empty. "id_text": as "stripped_text", and it turns an int (no bool) into its decimal text, as
# `str(value)` does: compiled for ints of 64 bits (longer ones, whose text Python may refuse, go to the model).
# "nonzero_id_text": as "id_text", for a before-validator that reads 0 (or the text "0") as no id: compiled for every
# other text and for the ints from 1 to 2**63 - 1 (negative ints go to the model), and an optional id's 0 or "0" as
# None.
# A model's own before-validator (`model_validator(mode="before")`): "no_blank_values" - it hands on unchanged a dict
# none of whose string values is blank (it only turns blanks into None): compiled as every string field refusing a
# blank, for a model whose fields take nothing else a blank could become (no `Any`, no Python validator of their own).
# "present_alternatives" - it hands on unchanged a dict in which every field its model class lists in `ALTERNATIVES` (a
# mapping of field name to the names tried when the field is absent) is present, not None and, as text, not blank:
# compiled as each such field required, not nullable, and its text refusing a blank (a field's other types refuse
# a blank themselves). With none listed it hands on every dict unchanged.
IdentityOn = Literal["strict", "stripped_text", "id_text", "nonzero_id_text", "no_blank_values", "present_alternatives"]

# Every character `str.strip()` removes (`str.isspace`), as a Rust regex class; a value matching STRIPPED_TEXT is
# one that `value.strip() or None` returns unchanged.
_SPACES = "".join(f"\\x{{{code:x}}}" for code in range(sys.maxunicode + 1) if chr(code).isspace())
STRIPPED_TEXT = rf"(?s)\A[^{_SPACES}](?:.*[^{_SPACES}])?\z"
NOT_BLANK = rf"[^{_SPACES}]"  # somewhere in the text: what `value.strip()` leaves something of
# STRIPPED_TEXT but for the text "0".
STRIPPED_TEXT_NOT_ZERO = rf"(?s)\A(?:[^{_SPACES}0]|[^{_SPACES}].*[^{_SPACES}])\z"

# pydantic's own length checks, applied in Python after a before-validator (`Annotated[str, BeforeValidator(f),
# Field(min_length=1)]`): the same check as the str schema's native constraint of that name.
_LENGTH_CHECKS = {
    getattr(_pydantic_validators, "min_length_validator", None): "min_length",
    getattr(_pydantic_validators, "max_length_validator", None): "max_length",
}
# Schemas a blank string cannot pass, or passes as the model would pass None (a nested model or list holds no
# top-level string value).
_BLANK_SAFE = frozenset({"int", "float", "decimal", "bool", "date", "datetime", "time", "list", "model", "none"})

_STRICT_TYPES = frozenset({"int", "bool", "list", "str"})

# The whole number 0 or the text "0" read as None (a default taken when `none` refuses it: no Python).
_ZERO_IS_NONE: dict[str, Any] = {
    "type": "chain",
    "steps": [
        {
            "type": "union",
            "mode": "left_to_right",
            "choices": [{"type": "int", "strict": True, "ge": 0, "le": 0}, {"type": "literal", "expected": ["0"]}],
        },
        {"type": "default", "schema": {"type": "none"}, "on_error": "default", "default": None},
    ],
}

# A text `value.strip()` leaves nothing of, read as None (a default taken when `none` refuses the text: no Python).
_BLANK_IS_NONE: dict[str, Any] = {
    "type": "chain",
    "steps": [
        {"type": "str", "strict": True, "pattern": rf"\A[{_SPACES}]*\z"},
        {"type": "default", "schema": {"type": "none"}, "on_error": "default", "default": None},
    ],
}


def fast_validator(
    model: type[ModelT], identity_on: Mapping[Callable[[Any], Any], IdentityOn]
) -> Callable[[Any], ModelT]:
    """`model.model_validate`, with the before-validators in `identity_on` compiled out of the common case.

    Raises TypeError when a listed before-validator feeds a schema it cannot be replaced in (a programming error,
    found at import)."""
    validator = SchemaValidator(fast_schema(model, identity_on))
    fast = validator.validate_python
    full = model.model_validate

    def validate(data: Any) -> ModelT:
        try:
            result: ModelT = fast(data)
        except ValidationError:
            return full(data)  # the model's own answer: its value, or its error
        return result

    return validate


def fast_schema(
    model: type[BaseModel], identity_on: Mapping[Callable[[Any], Any], IdentityOn], *, blanks_as_none: bool = False
) -> Any:
    """The core schema `fast_validator` compiles: the model's, with the before-validators in `identity_on` compiled
    out (functions.core.page_fastpath embeds it as a page's items). `blanks_as_none`: a "no_blank_values" model's
    nullable field reads a blank text as None, as the before-validator has it read, instead of refusing it."""
    return _rewrite(model.__pydantic_core_schema__, identity_on, {}, blanks_as_none)


def _rewrite(
    schema: Any,
    identity_on: Mapping[Callable[[Any], Any], IdentityOn],
    classes: dict[type, type],
    blanks_as_none: bool = False,
) -> Any:
    if isinstance(schema, list):
        return [_rewrite(part, identity_on, classes, blanks_as_none) for part in schema]
    if not isinstance(schema, dict):
        return schema
    rewritten = {key: _rewrite(value, identity_on, classes, blanks_as_none) for key, value in schema.items()}
    if rewritten.get("type") == "model":
        rewritten["cls"] = _built_by_schema(rewritten["cls"], classes)
    if rewritten.get("type") == "function-before":
        function = rewritten["function"].get("function")
        function = getattr(function, "__func__", function)  # a model's validator: a classmethod bound to each model
        kind = identity_on.get(function) if callable(function) else None
        if kind == "no_blank_values":
            return _no_blank_values(rewritten["schema"], function, blanks_as_none)
        if kind == "present_alternatives":
            owner = getattr(rewritten["function"].get("function"), "__self__", None)
            return _present(rewritten["schema"], tuple(getattr(owner, "ALTERNATIVES", None) or ()), function)
        if kind is not None:
            return _strict(rewritten["schema"], kind, function)
    if rewritten.get("type") == "function-after":
        function = rewritten["function"].get("function")
        check = _LENGTH_CHECKS.get(getattr(function, "func", None))
        if check is not None and set(function.keywords) == {check}:
            constrained = _constrain_text(rewritten["schema"], check, function.keywords[check])
            if constrained is not None:
                return constrained
    return rewritten


def _constrain_text(schema: dict[str, Any], key: str, bound: int) -> dict[str, Any] | None:
    """`schema` with the length bound on every text it can give, or None when it may give anything else."""
    kind = schema.get("type")
    if kind == "str" and key not in schema:
        return {**schema, key: bound}
    if kind == "nullable":
        inner = _constrain_text(schema["schema"], key, bound)
        return None if inner is None else {**schema, "schema": inner}
    if kind == "union":
        choices = [_constrain_text(choice, key, bound) for choice in schema["choices"]]
        return None if any(c is None for c in choices) else {**schema, "choices": choices}
    if kind == "chain":
        last = _constrain_text(schema["steps"][-1], key, bound)
        return None if last is None else {**schema, "steps": [*schema["steps"][:-1], last]}
    return None


def _no_blank_values(
    schema: dict[str, Any], function: Callable[[Any], Any], blanks_as_none: bool = False
) -> dict[str, Any]:
    if schema.get("type") != "model-fields":
        raise TypeError(f"{function.__qualname__} is no model's before-validator: it cannot be compiled out")
    fields = {
        name: _blank_as_none(field, function) if blanks_as_none else _refusing_blanks(field, function)
        for name, field in schema["fields"].items()
    }
    return {**schema, "fields": fields}


def _blank_as_none(schema: dict[str, Any], function: Callable[[Any], Any]) -> dict[str, Any]:
    """A model field whose blank text the before-validator turns into None: a nullable one takes it as None (and its
    schema refuses blanks otherwise), any other refuses it (None is no value of it: the model's error)."""
    kind = schema.get("type")
    if kind in ("model-field", "default"):
        return {**schema, "schema": _blank_as_none(schema["schema"], function)}
    if kind == "nullable":
        inner = _refusing_blanks(schema["schema"], function)
        # The field's own schema first: it refuses a blank, so the order changes no answer, and a blank is rare.
        return {**schema, "schema": {"type": "union", "mode": "left_to_right", "choices": [inner, _BLANK_IS_NONE]}}
    return _refusing_blanks(schema, function)


def _present(schema: dict[str, Any], names: tuple[str, ...], function: Callable[[Any], Any]) -> dict[str, Any]:
    if schema.get("type") != "model-fields":
        raise TypeError(f"{function.__qualname__} is no model's before-validator: it cannot be compiled out")
    fields = dict(schema["fields"])
    for name in names:
        field = fields.get(name)
        if field is None:
            raise TypeError(f"{function.__qualname__}: {name} is no field read by its own name")
        fields[name] = {**field, "schema": present_value(field, f"{function.__qualname__}: {name}")}
    return {**schema, "fields": fields}


def present_value(field: dict[str, Any], where: str) -> dict[str, Any]:
    """What a model field's value must be for its `ALTERNATIVES` before-validator to hand the item on unchanged
    ("present_alternatives"): given, not None and, as text, not blank. The field's value schema without its default
    and None; TypeError (naming `where`) for a field read under an alias or of a type a blank could pass as."""
    if field.get("validation_alias") is not None:
        raise TypeError(f"{where} is no field read by its own name")
    inner: dict[str, Any] = field["schema"]
    if inner.get("type") == "default":
        inner = inner["schema"]
    if inner.get("type") == "nullable":
        inner = inner["schema"]
    if inner.get("type") == "str" and "pattern" not in inner:
        return {**inner, "pattern": NOT_BLANK}
    if inner.get("type") not in _BLANK_SAFE - {"none", "list", "model"}:
        raise TypeError(f"{where} is of a type that could take a blank")
    return inner


def _refusing_blanks(schema: dict[str, Any], function: Callable[[Any], Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if kind in _BLANK_SAFE:
        return schema
    if kind == "str":
        if "pattern" in schema and schema["pattern"] not in (STRIPPED_TEXT, STRIPPED_TEXT_NOT_ZERO):
            raise TypeError(f"{function.__qualname__}: a field's text has a pattern of its own")
        return schema if "pattern" in schema else {**schema, "pattern": NOT_BLANK}
    if kind in ("model-field", "default", "nullable"):
        return {**schema, "schema": _refusing_blanks(schema["schema"], function)}
    if kind == "union":
        return {**schema, "choices": [_refusing_blanks(choice, function) for choice in schema["choices"]]}
    if kind == "chain":  # a compiled id: an int's text is never blank
        return {**schema, "steps": [*schema["steps"][:-1], _refusing_blanks(schema["steps"][-1], function)]}
    raise TypeError(f"{function.__qualname__}: a field of type {kind} could take a blank as something else")


def _built_by_schema(cls: type, classes: dict[type, type]) -> type:
    """A subclass of `cls` that pydantic-core builds from the schema given it: for a complete model class itself it
    would reuse the class's own validator (its before-validators included)."""
    if cls not in classes:
        config = {**getattr(cls, "model_config", {}), "defer_build": True}
        classes[cls] = type(cls)(cls.__name__, (cls,), {"__module__": cls.__module__, "model_config": config})
    return classes[cls]


def _strict(schema: dict[str, Any], kind: IdentityOn, function: Callable[[Any], Any]) -> dict[str, Any]:
    if schema.get("type") == "nullable":
        inner = _strict(schema["schema"], kind, function)
        if kind == "nonzero_id_text":  # an optional id: 0 or "0" is no id, as the before-validator reads them
            inner = {**inner, "choices": [*inner["choices"], _ZERO_IS_NONE]}
        return {**schema, "schema": inner}
    kind_of_type = schema.get("type")
    if kind_of_type not in _STRICT_TYPES or (kind == "strict") == (kind_of_type == "str"):
        raise TypeError(f"{function.__qualname__} feeds a {kind_of_type} schema: it cannot be compiled out as {kind}")
    strict = {**schema, "strict": True}
    if kind == "strict":
        return strict
    if "pattern" in schema:
        raise TypeError(f"{function.__qualname__} feeds a str schema with a pattern of its own")
    strict["pattern"] = STRIPPED_TEXT_NOT_ZERO if kind == "nonzero_id_text" else STRIPPED_TEXT
    if kind == "stripped_text":
        return strict
    whole_to_text = {  # the str schema's own constraints (a minimum length) still apply to the text
        "type": "chain",
        "steps": [
            {"type": "int", "strict": True, "ge": 1 if kind == "nonzero_id_text" else -(2**63), "le": 2**63 - 1},
            {**schema, "coerce_numbers_to_str": True},
        ],
    }
    return {"type": "union", "choices": [strict, whole_to_text], "mode": "left_to_right"}
