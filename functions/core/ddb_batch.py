"""BatchGetItem and BatchWriteItem whose unprocessed leftovers are re-sent after jittered backoff, boundedly.

DynamoDB answers a throttled batch with the part it did not do (`UnprocessedKeys` / `UnprocessedItems`); re-sending
that at once only throttles again. Every batch loop in possync goes through these two functions.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.core.errors import AwsServiceError
from functions.core.wire_items import WireItem

BATCH_GET_MAX = 100
BATCH_WRITE_MAX = 25
# Resends of the unprocessed part of one batch before giving up (the whole unit of work is then retried).
MAX_RESENDS = 8
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 2.0


class BatchThrottledError(AwsServiceError):
    """DynamoDB kept returning unprocessed keys or items after every bounded, backed-off resend."""


def backoff_delay(attempt: int, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS) -> float:
    """Full jitter: a random delay up to base * 2^attempt, capped (AWS's recommended backoff for throttles)."""
    return random.uniform(0, min(cap, base * 2**attempt))


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def batch_get(
    ddb: Any,
    request_items: Mapping[str, Mapping[str, Any]],
    *,
    sleep: Callable[[float], None] = time.sleep,
    max_resends: int = MAX_RESENDS,
    on_request: Callable[[], None] | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (table, item) for every key of one BatchGetItem request (at most 100 keys), resending what is left over."""
    request: Mapping[str, Any] = request_items
    attempt = 0
    while request:
        if on_request is not None:
            on_request()
        response = _call(ddb, "batch_get_item", request)
        for table, items in response.get("Responses", {}).items():
            for item in items:
                yield table, item
        request = response.get("UnprocessedKeys") or {}
        if request:
            attempt = _wait(attempt, max_resends, sleep, "batch read", request)


def batch_write(
    ddb: Any,
    table: str,
    requests: Iterable[Mapping[str, Any]],
    *,
    sleep: Callable[[float], None] = time.sleep,
    max_resends: int = MAX_RESENDS,
    on_request: Callable[[], None] | None = None,
) -> int:
    """Send PutRequest / DeleteRequest entries to one table in batches of 25; returns how many requests were made."""
    made = 0
    for chunk in chunks(list(requests), BATCH_WRITE_MAX):
        request: Mapping[str, Any] = {table: list(chunk)}
        attempt = 0
        while request:
            made += 1
            if on_request is not None:
                on_request()
            request = _call(ddb, "batch_write_item", request).get("UnprocessedItems") or {}
            if request:
                request = _as_sent(request, chunk)
                attempt = _wait(attempt, max_resends, sleep, "batch write", request)
    return made


def _as_sent(left: Mapping[str, Any], sent: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The unprocessed part of a batch write as it was sent: a PutRequest of a WireItem (functions.core.wire_items)
    is resent as that same WireItem, in its wire form, rather than as the dict DynamoDB returned (the same item)."""
    wire: dict[tuple[str, str], Mapping[str, Any]] = {}
    for entry in sent:
        put = entry.get("PutRequest")
        item = put.get("Item") if isinstance(put, Mapping) else None
        if isinstance(item, WireItem):
            wire[item.key_name, item.key] = entry
    if not wire:
        return left
    return {table: [_sent_entry(entry, wire) for entry in entries] for table, entries in left.items()}


def _sent_entry(entry: Mapping[str, Any], wire: Mapping[tuple[str, str], Mapping[str, Any]]) -> Mapping[str, Any]:
    put = entry.get("PutRequest")
    item = put.get("Item") if isinstance(put, Mapping) else None
    if isinstance(item, Mapping):
        for key_name in {name for name, _ in wire}:
            value = item.get(key_name)
            key = value.get("S") if isinstance(value, Mapping) else None
            if isinstance(key, str) and (key_name, key) in wire:
                return wire[key_name, key]
    return entry


def _call(ddb: Any, op: str, request: Mapping[str, Any]) -> Any:
    try:
        return getattr(ddb, op)(RequestItems=request)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        raise AwsServiceError(f"DynamoDB {op} on {', '.join(request)} failed: {code}") from exc
    except BotoCoreError as exc:
        raise AwsServiceError(f"DynamoDB {op} on {', '.join(request)} failed: {type(exc).__name__}") from exc


def _wait(attempt: int, max_resends: int, sleep: Callable[[float], None], what: str, left: Mapping[str, Any]) -> int:
    if attempt >= max_resends:
        raise BatchThrottledError(
            f"DynamoDB kept throttling a {what} on {', '.join(left)} after {max_resends} backed-off resends"
        )
    sleep(backoff_delay(attempt))
    return attempt + 1
