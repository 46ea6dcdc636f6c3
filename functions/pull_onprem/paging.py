"""Paging helpers both on-premises clients share: instants in query strings, resume tokens, envelopes, counts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from functions.core.errors import MalformedPageError
from functions.core.layout import Stream


def format_instant(value: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z, cut down (never rounded up) so an inclusive bound loses nothing."""
    if value.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000).isoformat(timespec="milliseconds")[:-6] + "Z"


def count_field(payload: Mapping[str, Any], key: str) -> int | None:
    """A non-negative count from an envelope, or None when it is absent or not a count."""
    value = payload.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def page_number(token: Mapping[str, Any] | None, first: int) -> int:
    """The page a resume token names; a token we cannot read restarts the window (re-reads write nothing)."""
    if not token:
        return first
    value = token.get("page")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= first else first


def cursor_of(token: Mapping[str, Any] | None) -> str | None:
    """The server cursor a resume token holds, if any."""
    if not token:
        return None
    value = token.get("cursor")
    return value if isinstance(value, str) and value else None


def envelope_items(vendor: str, stream: Stream, payload: Any, key: str) -> list[dict[str, Any]]:
    """The items of a decoded list page (its envelope's `key` list), or MalformedPageError when it is no list page."""
    if not isinstance(payload, dict) or not isinstance(payload.get(key), list):
        article = "an" if key[:1].lower() in "aeiou" else "a"
        raise MalformedPageError(f"{vendor} returned a page of {stream.value} without {article} '{key}' list")
    items: list[dict[str, Any]] = payload[key]
    return items
