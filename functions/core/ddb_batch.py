"""BatchGetItem and BatchWriteItem whose unprocessed leftovers are re-sent after jittered backoff, boundedly.

DynamoDB answers a throttled batch with the part it did not do (`UnprocessedKeys` / `UnprocessedItems`); re-sending
that at once only throttles again. Every batch loop in possync goes through these functions.

`batch_get_together` and `batch_write_together` send several batches of one unit of work together: on the trusted
client's lean path they are in flight at once (functions.core.ddb_lean `call_many`), so their round trips overlap
instead of adding up. Each batch's leftovers are resent, all of one round's together after one backoff, boundedly as
above. Resending is safe: a BatchGetItem only reads, and a BatchWriteItem carries unconditional PutRequest (the whole
item) and DeleteRequest entries, which leave the same item (or none) however often they are applied; a batch whose
answer was lost on the connection is resent whole through botocore for the same reason. Batches sent together must
hold distinct items (nothing orders one batch's writes before another's).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.core import ddb_lean
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


def batch_get_together(
    ddb: Any,
    requests: Sequence[Mapping[str, Mapping[str, Any]]],
    *,
    sleep: Callable[[float], None] = time.sleep,
    max_resends: int = MAX_RESENDS,
    on_request: Callable[[], None] | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (table, item) for every key of several BatchGetItem requests (each of at most 100 keys) sent together
    (`together`), resending what is left over of each: the leftovers of one round together, after one backoff."""
    pending = list(requests)
    attempt = 0
    while pending:
        answers = _send_together(ddb, "batch_get_item", "BatchGetItem", pending, on_request)
        for response in answers:
            for table, items in response.get("Responses", {}).items():
                for item in items:
                    yield table, item
        pending = [left for response in answers if (left := response.get("UnprocessedKeys"))]
        if pending:
            attempt = _wait(attempt, max_resends, sleep, "batch read", _tables(pending))


def batch_write_together(
    ddb: Any,
    table: str,
    requests: Iterable[Mapping[str, Any]],
    *,
    sleep: Callable[[float], None] = time.sleep,
    max_resends: int = MAX_RESENDS,
    on_request: Callable[[], None] | None = None,
) -> int:
    """`batch_write` with the batches of 25 sent together (`together`) rather than one after the other, for entries
    of distinct items only (the order between batches is not kept); what is left over of each is resent, the
    leftovers of one round together after one backoff. Returns how many requests were made."""
    sent: list[Sequence[Mapping[str, Any]]] = [list(chunk) for chunk in chunks(list(requests), BATCH_WRITE_MAX)]
    pending: list[Mapping[str, Any]] = [{table: chunk} for chunk in sent]
    made = 0
    attempt = 0
    while pending:
        made += len(pending)
        answers = _send_together(ddb, "batch_write_item", "BatchWriteItem", pending, on_request)
        left: list[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]] = [
            (rest, chunk)
            for answer, chunk in zip(answers, sent, strict=True)
            if (rest := answer.get("UnprocessedItems"))
        ]
        pending = [_as_sent(rest, chunk) for rest, chunk in left]
        sent = [chunk for _, chunk in left]
        if pending:
            attempt = _wait(attempt, max_resends, sleep, "batch write", _tables(pending))
    return made


def _send_together(
    ddb: Any, op: str, operation: str, requests: Sequence[Mapping[str, Any]], on_request: Callable[[], None] | None
) -> list[Any]:
    """The answers to `requests` (RequestItems each) sent together on the client's lean path (functions.core.ddb_lean:
    several in flight at once), or one after the other on a client without it; errors as `_call` raises them."""
    if on_request is not None:
        for _ in requests:
            on_request()
    many = ddb_lean.call_many(ddb)
    if many is None or len(requests) < 2:
        return [_call(ddb, op, request) for request in requests]
    try:
        return many(operation, [{"RequestItems": request} for request in requests])
    except (ClientError, BotoCoreError) as exc:
        raise _failed(op, _tables(requests), exc) from exc


def _tables(requests: Sequence[Mapping[str, Any]]) -> dict[str, None]:
    return {table: None for request in requests for table in request}


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
    except (ClientError, BotoCoreError) as exc:
        raise _failed(op, request, exc) from exc


def _failed(op: str, tables: Iterable[str], exc: ClientError | BotoCoreError) -> AwsServiceError:
    """The transient error a failed batch request raises: the operation, its tables and DynamoDB's error code (or
    botocore's error class), never an item."""
    why = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
    return AwsServiceError(f"DynamoDB {op} on {', '.join(tables)} failed: {why}")


def _wait(attempt: int, max_resends: int, sleep: Callable[[float], None], what: str, left: Mapping[str, Any]) -> int:
    if attempt >= max_resends:
        raise BatchThrottledError(
            f"DynamoDB kept throttling a {what} on {', '.join(left)} after {max_resends} backed-off resends"
        )
    sleep(backoff_delay(attempt))
    return attempt + 1
