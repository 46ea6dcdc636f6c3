"""A list page decoded and validated from its bytes in one pydantic-core call, for the happy path.

A pull used to `json.loads` each page into dicts and then validate every item with its payload model
(functions.core.payload_fastpath), two passes over the data and a Python dict per item. `PageValidator` compiles the
page envelope with the payload model's fast schema as its items (`validate_json`): the bytes go straight to payload
instances. It answers only when every item of the page passes; anything else (an item invalid or needing a Python
before-validator, an unexpected shape, a number or text JSON decoding would read differently) is refused whole, and
the caller takes the per-item path for that page, so quarantine decisions, reasons and item indexes stay exactly
those of that path. The items as dicts stay available (`LazyItems`), decoded from the same bytes only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaValidator

from functions.core.payload_fastpath import IdentityOn, fast_schema


@dataclass(frozen=True)
class ValidatedPage:
    """A page's payloads (each item's model instance, unwrapped, in page order) and its envelope's other fields (as
    `json.loads` gives them)."""

    payloads: list[Any]
    envelope: dict[str, Any]


class PageValidator:
    """One list page's envelope: `records_key` holds the items, each bare or wrapped as `{wrapper_key: item}` (alone
    in its object, and only when the item has no `id`: a wrapped item carries nothing else), `envelope_keys` are
    read as any JSON value; `blanks_as_none` as `payload_fastpath.fast_schema` has it; `numeric_ids`: the vendor sends
    its ids as JSON numbers, so a compiled id tries a number before a text (either order takes the same values: a
    text is never a number); `rewrite`: the vendor's own form of its model's compiled schema (before it is made to read
    JSON), for payloads its `map_payload` reads in that form. Calling it with a page's bytes gives the ValidatedPage,
    or None when it refuses."""

    def __init__(
        self,
        model: type[BaseModel],
        identity_on: Mapping[Callable[[Any], Any], IdentityOn],
        *,
        records_key: str,
        wrapper_keys: Sequence[str] = (),
        envelope_keys: Sequence[str] = (),
        blanks_as_none: bool = False,
        numeric_ids: bool = False,
        rewrite: Callable[[Any], Any] | None = None,
    ) -> None:
        item = fast_schema(model, identity_on, blanks_as_none=blanks_as_none)
        if rewrite is not None:
            item = rewrite(item)
        item = _python_values(_finite_floats(item))
        if numeric_ids:
            item = _numbers_first(item)
        unproven = sorted(_schema_types(item) & _UNPROVEN)
        if unproven:
            raise TypeError(f"{model.__name__} holds {', '.join(unproven)} values: not validated from a page's bytes")
        definitions = None
        if item.get("type") == "definitions":
            definitions, item = item["definitions"], item["schema"]
        if wrapper_keys:
            # A bare item is tried first (a bare one would fail a wrapped try once for every key it has), in a form
            # that a wrapped one fails cheaply (`_refusing_cheaply`).
            wrapped = [
                {
                    "type": "typed-dict",
                    "extra_behavior": "forbid",
                    "fields": {key: {"type": "typed-dict-field", "required": True, "schema": item}},
                }
                for key in wrapper_keys
            ]
            bare = _refusing_cheaply(item, definitions, wrapper_keys)
            item = {"type": "union", "mode": "left_to_right", "choices": [bare, *wrapped]}
        fields: dict[str, Any] = {
            records_key: {
                "type": "typed-dict-field",
                "required": True,
                "schema": {"type": "list", "items_schema": item},
            }
        }
        for key in envelope_keys:
            fields[key] = {"type": "typed-dict-field", "required": False, "schema": {"type": "any"}}
        schema: dict[str, Any] = {"type": "typed-dict", "extra_behavior": "ignore", "fields": fields}
        if definitions is not None:
            schema = {"type": "definitions", "schema": schema, "definitions": definitions}
        self._validate = SchemaValidator(schema).validate_json
        self._records_key = records_key
        self._wrapped = bool(wrapper_keys)  # else a dict is a payload itself (a `rewrite` may make one)

    def __call__(self, body: bytes) -> ValidatedPage | None:
        try:
            page = self._validate(body)
        except (ValidationError, ValueError, TypeError, ArithmeticError, _RefusedError):
            return None  # the per-item path says what is wrong, item by item
        payloads = page.pop(self._records_key)
        if self._wrapped:
            # A wrapped item validates to {wrapper_key: payload}: the payload alone, as `unwrap_item` hands it on.
            payloads = [item if item.__class__ is not dict else next(iter(item.values())) for item in payloads]
        return ValidatedPage(payloads, page)


def model_as_typed_dict(model: Mapping[str, Any], field_schema: Callable[[str, Any], Any]) -> dict[str, Any]:
    """A model's compiled schema as a typed dict of the same fields (`rewrite` forms: a dict per payload, no model
    instance to build): each field's aliases and metadata carried over, required unless it has a default, extra keys
    ignored as the model ignores them; `field_schema(name, schema)` gives each field's schema in the form (a vendor's
    own reading of its amounts or timestamps, or the schema as it is). It takes exactly what the model takes, the
    same values as the model's fields. Raises TypeError for a model that is more than its fields (its own init, a
    model validator, computed fields, a root model, extra fields kept or forbidden) or for a field a typed dict's field
    cannot carry."""
    fields = model["schema"]
    config = model.get("config") or {}
    if (
        fields.get("type") != "model-fields"
        or config.get("extra_fields_behavior") != "ignore"
        or model.get("custom_init")
        or model.get("post_init")
        or model.get("root_model")
        or fields.get("model_validator") is not None
        or fields.get("computed_fields")
    ):
        raise TypeError(f"{model['cls'].__name__} is no model of fields ignoring extra ones")
    if any(set(field) - _TYPED_DICT_FIELD_KEYS for field in fields["fields"].values()):
        raise TypeError(f"{model['cls'].__name__} has a field a typed dict's field cannot carry over")
    return {
        "type": "typed-dict",
        "extra_behavior": "ignore",
        "config": config,
        "fields": {
            name: {
                **{key: value for key, value in field.items() if key not in ("type", "schema")},
                "type": "typed-dict-field",
                "required": field["schema"].get("type") != "default",
                "schema": field_schema(name, field["schema"]),
            }
            for name, field in fields["fields"].items()
        },
    }


# What a model's field may hold that a typed dict's field carries over as it is (besides its type and schema).
_TYPED_DICT_FIELD_KEYS = frozenset({"type", "schema", "validation_alias", "serialization_alias", "metadata"})


class _RefusedError(Exception):
    """A bare item lacks a required field that `_refusing_cheaply` leaves to a default factory: no choice of the
    page's union takes it (it holds a key beside any wrapper), so the whole page is refused at once."""


def _refused(_data: Any) -> Any:
    raise _RefusedError


# The default `_refusing_cheaply` gives a required field: no schema but `any` (or one that calls Python on it) takes it.
_ABSENT = object()


def _refusing_cheaply(item: Any, definitions: Any, wrapper_keys: Sequence[str]) -> Any:
    """A bare item's model schema, as the first choice of a page's items, failing a wrapped item (`{key: {...}}`)
    cheaply and accepting exactly what `item` accepts, with the same values.

    pydantic-core builds each missing required field's error from the object it looked in, a deep copy of it: a
    wrapped item cost each of the model's required fields a copy of the whole item (a wrapped POSaBIT sale cost about
    twice a bare one). Here a required field reads a missing value as a default that its schema refuses (the
    error holds that default, not the item). A field whose schema would take that default (`any`) instead gets a
    default factory that pydantic-core does not call once an earlier field of the item has failed (its error holds
    no item either): it follows a field of the kind above, read by its own name and no wrapper key, so that when
    the factory is called, that field is present beside any wrapper and every choice refuses the item (the factory
    raises `_RefusedError`: the page is refused, as before). A field neither way can be is left required."""
    if not isinstance(item, dict) or item.get("type") != "model" or item["schema"].get("type") != "model-fields":
        return item
    fields: dict[str, Any] = {}
    guarded = False  # an earlier field fails whenever the item lacks it, and sits beside any wrapper when present
    for name, field in item["schema"]["fields"].items():
        schema = field["schema"]
        if schema.get("type") == "default":
            fields[name] = field
        elif _refuses_absent(schema, definitions):
            fields[name] = {**field, "schema": _absent_default(schema)}
            guarded = guarded or (field.get("validation_alias") is None and name not in wrapper_keys)
        elif guarded:
            fields[name] = {
                **field,
                "schema": {
                    "type": "default",
                    "default_factory": _refused,
                    "default_factory_takes_data": True,
                    "schema": schema,
                },
            }
        else:
            fields[name] = field
    # Without its `ref`: this copy differs from the model the wrapped choices and any reference hold.
    return {
        **{key: value for key, value in item.items() if key != "ref"},
        "schema": {**item["schema"], "fields": fields},
    }


def _absent_default(schema: Any) -> dict[str, Any]:
    return {"type": "default", "default": _ABSENT, "validate_default": True, "schema": schema}


def _refuses_absent(schema: Any, definitions: Any) -> bool:
    """Whether a field of `schema` missing from a page's item is refused as a validation error when it defaults to
    `_ABSENT` (tried: a Python validator may raise otherwise, or take it)."""
    probe: dict[str, Any] = {
        "type": "typed-dict",
        "fields": {"f": {"type": "typed-dict-field", "required": False, "schema": _absent_default(schema)}},
    }
    if definitions is not None:
        probe = {"type": "definitions", "schema": probe, "definitions": definitions}
    try:
        SchemaValidator(probe).validate_json(b"{}")
    except ValidationError:
        return True
    except Exception:  # noqa: BLE001 - anything but a validation error: not refused the way the union needs
        return False
    return False


# Schemas whose JSON-mode reading is not proven to equal what they make of `json.loads`'s values. A model holding one
# is refused at import.
_UNPROVEN = frozenset({"bytes", "complex", "json", "uuid"})

# Schemas whose JSON mode reads a number from its own formatting of it (a decimal reads `1.0` or `1e2` as
# Decimal('1') and Decimal('100') where json.loads' float gives Decimal('1.0') and Decimal('100.0'); text coerced from
# a number reads `1e16` as '10000000000000000' where str() of the float gives '1e+16'). `_python_values` hands them
# the value JSON decoding gives (a chain after `any`: a float, an int, a str as json.loads has them), which they then
# validate as they validate Python values, that is exactly as the per-item path does.
_READ_AS_PYTHON = frozenset({"decimal", "datetime", "date", "time", "timedelta"})
# Of those, the ones whose JSON mode reads a JSON string as their Python mode reads that str: pydantic-core's
# `bytes_as_datetime`, `bytes_as_date` and `bytes_as_time` over the same text, then the same checks. (A decimal's JSON
# mode builds the str and calls Decimal on it, as the chain does: nothing to save.)
_PARSED_FROM_TEXT = frozenset({"datetime", "date", "time"})


def _schema_types(schema: Any) -> set[str]:
    """Every core schema type named in `schema` (a function's own {"type": ...} is no schema, its schema is)."""
    found: set[str] = set()
    if isinstance(schema, list):
        for part in schema:
            found |= _schema_types(part)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if isinstance(kind, str):
            found.add(kind)
        for key, value in schema.items():
            if key not in ("function", "serialization", "metadata"):
                found |= _schema_types(value)
    return found


def _finite_floats(schema: Any) -> Any:
    """`schema` with every float refusing infinities and NaN: JSON decoding reads a whole number past a float's range
    (400 digits) as infinity where `json.loads` gives an int a float refuses; a float that is not finite is left to
    the per-item path (which takes `1e400` as json.loads reads it, or refuses it, as ever)."""
    if isinstance(schema, list):
        return [_finite_floats(part) for part in schema]
    if not isinstance(schema, dict):
        return schema
    rewritten = {key: _finite_floats(value) for key, value in schema.items()}
    if rewritten.get("type") == "float":
        rewritten["allow_inf_nan"] = False
    return rewritten


def _numbers_first(schema: Any) -> Any:
    """`schema` with each compiled id (payload_fastpath's "id_text": a strict text, else a whole number as its text)
    trying the number first: a text fails it as cheaply as a number fails the text, and an id is mostly a number."""
    if isinstance(schema, list):
        return [_numbers_first(part) for part in schema]
    if not isinstance(schema, dict):
        return schema
    rewritten = {
        key: value if key in ("function", "serialization", "metadata") else _numbers_first(value)
        for key, value in schema.items()
    }
    choices = rewritten.get("choices")
    if (
        rewritten.get("type") == "union"
        and isinstance(choices, list)
        and len(choices) == 2
        and choices[0].get("type") == "str"
        and choices[0].get("strict")
        and choices[1].get("type") == "chain"
        and choices[1]["steps"][0].get("type") == "int"
        and choices[1]["steps"][0].get("strict")
    ):
        rewritten["choices"] = [choices[1], choices[0]]
    return rewritten


def _python_values(schema: Any, coerce_numbers: bool = False, decoded: bool = False) -> Any:
    """`schema` with every node of `_READ_AS_PYTHON`, and every lax text a number may be coerced to (the model's
    `coerce_numbers_to_str`), validating the decoded value: `{"type": "chain", "steps": [{"type": "any"}, node]}`,
    after the node's strict form for a text or a timestamp (a JSON string, read without building a str first).
    A node fed by a chain's earlier step or a before-validator (`decoded`) already reads a Python value."""
    if isinstance(schema, list):
        return [_python_values(part, coerce_numbers, decoded) for part in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    config = schema.get("config")
    if isinstance(config, dict) and kind in ("model", "typed-dict", "dataclass"):
        coerce_numbers = bool(config.get("coerce_numbers_to_str", False))
    rewritten: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("function", "serialization", "metadata"):
            rewritten[key] = value
        elif kind == "chain" and key == "steps":
            rewritten[key] = [_python_values(step, coerce_numbers, decoded or i > 0) for i, step in enumerate(value)]
        else:
            fed = kind in ("function-before", "function-wrap") and key == "schema"
            rewritten[key] = _python_values(value, coerce_numbers, decoded or fed)
    if decoded:
        return rewritten
    numbers_as_text = kind == "str" and not schema.get("strict") and schema.get("coerce_numbers_to_str", coerce_numbers)
    if kind in _READ_AS_PYTHON or numbers_as_text:
        decoded_value = {"type": "chain", "steps": [{"type": "any"}, rewritten]}
        if numbers_as_text or kind in _PARSED_FROM_TEXT:
            # A JSON string first: the strict form takes only a string in JSON mode and reads it as the lax form
            # reads the str json.loads gives (the same text through the same checks, or the same speedate parse),
            # without building that str first; anything else, or a text only the lax form reads, takes the chain.
            return {"type": "union", "mode": "left_to_right", "choices": [{**rewritten, "strict": True}, decoded_value]}
        return decoded_value
    return rewritten


class LazyItems(Sequence[dict[str, Any]]):
    """A page's items as dicts, decoded from its bytes by `decode` the first time they are read: a page mapped from
    its payloads needs them only for an item whose mapping fails (to quarantine it exactly as the per-item path)."""

    __slots__ = ("_count", "_decode", "_items")

    def __init__(self, count: int, decode: Callable[[], list[dict[str, Any]]]) -> None:
        self._count = count
        self._decode: Callable[[], list[dict[str, Any]]] | None = decode
        self._items: list[dict[str, Any]] | None = None

    def _loaded(self) -> list[dict[str, Any]]:
        if self._items is None:
            assert self._decode is not None
            self._items, self._decode = self._decode(), None
        return self._items

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | Sequence[dict[str, Any]]:
        return self._loaded()[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._loaded())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyItems):
            return self._loaded() == other._loaded()
        return self._loaded() == other

    __hash__ = None  # type: ignore[assignment]  # a sequence of dicts, compared by value

    def __repr__(self) -> str:
        return f"LazyItems({self._count} items)"
