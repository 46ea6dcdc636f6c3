"""What an SQS-fed Lambda checks of its event before Powertools reads it: a batch (maybe empty), or an error that
says what arrived instead."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.core.errors import PossyncError

_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


class UnexpectedEventError(PossyncError):
    """The function was invoked with an event of a shape it does not take (a misrouted rule, a manual invoke)."""


def sqs_records(event: Any, function: str, takes: str) -> list[Any]:
    """The event's SQS records (none for an empty batch), or UnexpectedEventError naming what the event is."""
    if isinstance(event, Mapping):
        records = event.get("Records")
        if isinstance(records, list):
            return records
    raise UnexpectedEventError(f"{function} takes {takes}; it was sent {describe(event)}")


def describe(event: Any) -> str:
    """An event's kind in a few words: its EventBridge source and detail type, else its top-level keys; never a
    value of its payload (which may be personal data)."""
    if not isinstance(event, Mapping):
        return "null" if event is None else f"a JSON {_JSON_TYPES.get(type(event), type(event).__name__)}"
    if isinstance(event.get("source"), str) and isinstance(event.get("detail-type"), str):
        return f"an EventBridge event (source {event['source'][:60]!r}, detail-type {event['detail-type'][:60]!r})"
    keys = sorted(str(key)[:40] for key in event)
    if not keys:
        return "an empty object"
    shown = ", ".join(keys[:10]) + (", ..." if len(keys) > 10 else "")
    return f"an object with keys {shown} and no Records list"
