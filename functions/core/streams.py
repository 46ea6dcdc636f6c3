"""The records table stream's consumers: each one's FilterCriteria and event source mapping settings, defined once;
and what a consumer makes of a batch: the record changes it carries and the batch item failures it reports."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from functions.core import record_items
from functions.core.layout import FORM_SOURCE, PERSONA_PROFILE_SK, RULE_FUNCTIONS, RecordKind
from functions.core.models import CanonicalRecord, read_record

# --- event source mapping settings (the CDK rules construct and the local stream pump both read these) ----------
# Records handed to one invocation. A rule does a few DynamoDB requests per record, so 100 records finish in
# seconds, well inside the function timeout.
BATCH_SIZE = 100
# Lambda waits at most this long to fill a batch: the design promises rule effects within 60 s of a page landing.
MAX_BATCHING_WINDOW_SECONDS = 5
# A failing batch is split in two until the bad record stands alone; splitting does not use up retries.
BISECT_BATCH_ON_FUNCTION_ERROR = True
# Then the record is retried this many times before its batch description goes to the failure queue.
MAX_RETRY_ATTEMPTS = 5
# A consumer this far behind is broken, not busy: what is older goes to the failure queue, which still leaves
# 18 of the stream's 24 hours of retention to fix the cause and re-drive.
MAX_RECORD_AGE_SECONDS = 6 * 3600
# Concurrent batches per shard. Lambda keeps the records of one item (one POS record) in order at any factor;
# different records of one person may be handled at once, which the rules' conditional writes are built for.
PARALLELIZATION_FACTOR = 2
# A new mapping reads the last 24 hours too, so records written before it was created are not skipped.
STARTING_POSITION = "TRIM_HORIZON"
# The consumer functions: a batch of 100 takes seconds; the margin covers DynamoDB throttling and retries.
FUNCTION_TIMEOUT_SECONDS = 120
FUNCTION_MEMORY_MB = 512
# Functions report the records that failed (Powertools BatchProcessor) instead of failing the whole batch.
FUNCTION_RESPONSE_TYPES = ("ReportBatchItemFailures",)

# Lambda rejects a filter pattern longer than this.
MAX_PATTERN_LENGTH = 4096
CHANGED = ["INSERT", "MODIFY"]


def changed_records_of_kind(*kinds: RecordKind) -> dict[str, Any]:
    """Inserted or modified records table items of these kinds (a removal carries no NewImage to act on)."""
    return {"eventName": list(CHANGED), "dynamodb": {"NewImage": {"kind": {"S": [kind.value for kind in kinds]}}}}


@dataclass(frozen=True)
class StreamConsumer:
    """One Lambda fed by the records table stream: what it is sent and how its event source mapping reads."""

    name: str
    patterns: tuple[dict[str, Any], ...]
    batch_size: int = BATCH_SIZE
    max_batching_window_seconds: int = MAX_BATCHING_WINDOW_SECONDS
    bisect_batch_on_function_error: bool = BISECT_BATCH_ON_FUNCTION_ERROR
    max_retry_attempts: int = MAX_RETRY_ATTEMPTS
    max_record_age_seconds: int = MAX_RECORD_AGE_SECONDS
    parallelization_factor: int = PARALLELIZATION_FACTOR
    starting_position: str = STARTING_POSITION
    function_response_types: tuple[str, ...] = field(default=FUNCTION_RESPONSE_TYPES)
    timeout_seconds: int = FUNCTION_TIMEOUT_SECONDS
    memory_mb: int = FUNCTION_MEMORY_MB

    def __post_init__(self) -> None:
        if not self.patterns:
            raise ValueError(f"{self.name}: a consumer needs at least one filter pattern")
        for pattern in self.patterns:
            validate_pattern(pattern)
            if len(json.dumps(pattern)) > MAX_PATTERN_LENGTH:
                raise ValueError(f"{self.name}: a filter pattern is longer than Lambda's {MAX_PATTERN_LENGTH}")
        if not 1 <= self.batch_size <= 1000:
            raise ValueError(f"{self.name}: batch size must be 1-1,000 for DynamoDB streams")
        if not 0 <= self.max_batching_window_seconds <= 60:
            raise ValueError(f"{self.name}: the batching window must be 0-60 s to keep rule effects fresh")
        if not 0 <= self.max_retry_attempts <= 10_000:
            raise ValueError(f"{self.name}: retries must be bounded (0-10,000)")
        if not 60 <= self.max_record_age_seconds <= 86_400:
            raise ValueError(f"{self.name}: the maximum record age must be 60 s to the stream's 24 h retention")
        if not 1 <= self.parallelization_factor <= 10:
            raise ValueError(f"{self.name}: the parallelization factor must be 1-10")

    @property
    def filter_criteria(self) -> dict[str, list[dict[str, str]]]:
        """The event source mapping's FilterCriteria property: patterns as JSON strings; any one matching is enough."""
        return {"Filters": [{"Pattern": json.dumps(pattern)} for pattern in self.patterns]}

    def wants(self, record: Mapping[str, Any]) -> bool:
        """Whether Lambda would hand this stream record (in its event shape) to the consumer."""
        return any(matches(pattern, record) for pattern in self.patterns)


# --- the filter-pattern matcher (the subset of Lambda's event filtering syntax the local pump needs) -------------
_OPERATORS = frozenset({"prefix", "suffix", "exists", "anything-but", "numeric"})
_NUMERIC_OPERATORS = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def validate_pattern(pattern: Any, path: str = "") -> None:
    """Reject what Lambda rejects: a pattern is an object whose leaves are arrays of values or operator objects."""
    if not isinstance(pattern, dict) or not pattern:
        raise ValueError(f"filter pattern {path or '(root)'} must be a non-empty object")
    for key, rule in pattern.items():
        where = f"{path}.{key}" if path else key
        if isinstance(rule, dict):
            validate_pattern(rule, where)
        elif isinstance(rule, list):
            if not rule:
                raise ValueError(f"filter pattern {where} has an empty list, which matches nothing")
            for condition in rule:
                _validate_condition(condition, where)
        else:
            raise ValueError(f"filter pattern {where} must be a list of values or a nested object, not {rule!r}")


def _validate_condition(condition: Any, where: str) -> None:
    if condition is None or isinstance(condition, str | int | float | bool):
        return
    if not isinstance(condition, dict) or len(condition) != 1:
        raise ValueError(f"filter pattern {where}: {condition!r} is neither a value nor one operator")
    [(operator, operand)] = condition.items()
    if operator not in _OPERATORS:
        raise ValueError(f"filter pattern {where}: operator {operator!r} is not supported here")
    if operator in {"prefix", "suffix"} and not isinstance(operand, str):
        raise ValueError(f"filter pattern {where}: {operator} takes a string")
    if operator == "exists" and not isinstance(operand, bool):
        raise ValueError(f"filter pattern {where}: exists takes true or false")
    if operator == "anything-but" and not (
        isinstance(operand, str | int | float)
        or (isinstance(operand, list) and operand and all(isinstance(v, str | int | float) for v in operand))
    ):
        raise ValueError(f"filter pattern {where}: anything-but takes a value or a non-empty list of values")
    if operator == "numeric":
        if not isinstance(operand, list) or len(operand) not in (2, 4):
            raise ValueError(f"filter pattern {where}: numeric takes [op, n] or [op, n, op, n]")
        for op, number in zip(operand[::2], operand[1::2], strict=True):
            if op not in _NUMERIC_OPERATORS or isinstance(number, bool) or not isinstance(number, int | float):
                raise ValueError(f"filter pattern {where}: numeric comparison {op!r} {number!r} is not valid")


_MISSING = object()


def matches(pattern: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Lambda event filtering: every key of the pattern must match the record's value there.

    A nested object descends into the record; a list matches when any of its conditions does (exact values,
    or one of the operators prefix, suffix, exists, anything-but, numeric); a record array matches when any
    of its elements does. Fields the pattern does not name are ignored.
    """
    for key, rule in pattern.items():
        value = record.get(key, _MISSING) if isinstance(record, Mapping) else _MISSING
        if isinstance(rule, Mapping):
            if not isinstance(value, Mapping) or not matches(rule, value):
                return False
        elif not _matches_any(rule, value):
            return False
    return True


def _matches_any(conditions: Sequence[Any], value: Any) -> bool:
    if value is _MISSING:
        return any(isinstance(c, Mapping) and c.get("exists") is False for c in conditions)
    values = value if isinstance(value, list) else [value]
    return any(_condition(condition, v) for condition in conditions for v in values)


def _condition(condition: Any, value: Any) -> bool:
    if not isinstance(condition, Mapping):
        return _same(condition, value)
    [(operator, operand)] = condition.items()
    if operator == "exists":
        return bool(operand)  # the field is present (an absent one was handled by the caller)
    if operator == "prefix":
        return isinstance(value, str) and value.startswith(operand)
    if operator == "suffix":
        return isinstance(value, str) and value.endswith(operand)
    if operator == "anything-but":
        excluded = operand if isinstance(operand, list) else [operand]
        return value is not None and not isinstance(value, Mapping) and not any(_same(e, value) for e in excluded)
    if operator == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return all(_NUMERIC_OPERATORS[op](value, n) for op, n in zip(operand[::2], operand[1::2], strict=True))
    return False


def _same(expected: Any, value: Any) -> bool:
    # JSON has one number type (1 == 1.0) but true is not 1 and "1" is not 1.
    if isinstance(expected, bool) or isinstance(value, bool):
        return expected is value
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return float(expected) == float(value)
    return type(expected) is type(value) and expected == value


# Consumers write only to the personas and control tables, never to the records table, so nothing they do can
# come back to them through this stream.
CONSUMERS: dict[str, StreamConsumer] = {
    "personas": StreamConsumer("personas", (changed_records_of_kind(RecordKind.SHOPPER),)),
    "enroll": StreamConsumer("enroll", (changed_records_of_kind(RecordKind.SALE, RecordKind.LOYALTY_BALANCE),)),
    # Sales ask for the SMS opt-in; shoppers carry the consent their POS recorded (functions.core.sms).
    "optin": StreamConsumer("optin", (changed_records_of_kind(RecordKind.SALE, RecordKind.SHOPPER),)),
}
if tuple(CONSUMERS) != RULE_FUNCTIONS:
    raise RuntimeError("functions.core.streams.CONSUMERS must list exactly layout.RULE_FUNCTIONS, in order")

# The personas table's stream feeds persona -> POS sync: inserted or modified persona profiles a web form signed up
# (their `sources` string set holds "form"). Its own writes (sync records, POS identity claims) are other items
# than profiles, so nothing it writes comes back to it.
POS_SYNC_FUNCTION = "pos_sync"
PERSONA_CONSUMERS: dict[str, StreamConsumer] = {
    POS_SYNC_FUNCTION: StreamConsumer(
        POS_SYNC_FUNCTION,
        (
            {
                "eventName": list(CHANGED),
                "dynamodb": {
                    "Keys": {"sk": {"S": [PERSONA_PROFILE_SK]}},
                    "NewImage": {"sources": {"SS": [FORM_SOURCE]}},
                },
            },
        ),
        # A POS create is a few HTTP requests: small batches keep one slow POS from holding many personas back.
        batch_size=10,
    )
}


# --- records-table stream records (what the rule consumers receive) ---------------------------------------------


@dataclass(frozen=True)
class RecordChange:
    """A record item written by RecordStore, as its stream NewImage carries it."""

    kind: RecordKind
    version: int
    record: CanonicalRecord


def _image_text(image: Mapping[str, Any], name: str) -> str | None:
    value = image.get(name)
    return value["S"] if isinstance(value, Mapping) and isinstance(value.get("S"), str) else None


def record_change(stream_record: Mapping[str, Any]) -> RecordChange | None:
    """The canonical record and its version from an INSERT/MODIFY stream record of the records table (DynamoDB JSON);
    None for removals and items that are not records. The record is read leniently (functions.core.models
    .read_record: written by a newer or older version of the code, it still applies); data that is not a valid
    record, or a record item that holds no record JSON at all, raises ValueError (the record is then failed and
    retried, and in the end reaches the failure queue: never skipped as if it were no record)."""
    if stream_record.get("eventName") not in ("INSERT", "MODIFY"):
        return None
    image = (stream_record.get("dynamodb") or {}).get("NewImage") or {}
    kind = _image_text(image, "kind")
    if kind not in {k.value for k in RecordKind}:
        return None
    data = record_items.record_json(image)
    if data is None:
        # Every item RecordStore writes with a record kind carries the record as `data` (text) or `data_z`
        # (binary); one without either (or with `data` of another type) is damaged.
        raise ValueError(
            f"the stream record's {kind} item holds no record JSON "
            f"({record_items.DATA} as text or {record_items.DATA_Z} as binary)"
        )
    version = image.get("version")
    try:
        # An item without a version reads as version 0; one with a version of another type ({"S": "2"}) is damaged:
        # read as 0, the consumers would take the change for an older one than they hold and skip it.
        number = 0 if version is None else int(version["N"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"the stream record's {kind} version is not a whole number") from None
    record_kind = RecordKind(kind)
    try:
        record = read_record(record_kind, data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['type']}" for e in exc.errors())
        raise ValueError(f"the stream record's {kind} data is not a valid record ({problems})") from None
    return RecordChange(record_kind, number, record)


@dataclass(frozen=True)
class StreamChange:
    """One record change of a batch: its sequence number (what a batch item failure names) and its records-table
    key (changes of one key must be applied in stream order)."""

    item_id: str
    key: str
    change: RecordChange


class BatchFailures:
    """The records of a batch that failed, for ReportBatchItemFailures.

    On a DynamoDB stream Lambda restarts the batch from the lowest failed sequence number: everything after it
    comes again (and is applied again, idempotently). A record of the same item after a failed one must not be
    applied before it, so it is failed too (`blocked`); records of other items are applied and reported done.
    """

    def __init__(self) -> None:
        self._failed: dict[str, str] = {}  # item id -> why
        self._keys: set[str] = set()

    def fail(self, item_id: str, key: str, reason: str) -> None:
        self._failed.setdefault(item_id, reason)
        self._keys.add(key)

    def blocked(self, key: str) -> bool:
        return key in self._keys

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._failed

    def __len__(self) -> int:
        return len(self._failed)

    def reasons(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for reason in self._failed.values():
            counted[reason] = counted.get(reason, 0) + 1
        return counted

    def response(self) -> dict[str, list[dict[str, str]]]:
        return {"batchItemFailures": [{"itemIdentifier": item_id} for item_id in self._failed]}


@dataclass
class StreamBatch:
    changes: list[StreamChange]
    failures: BatchFailures
    ignored: int = 0  # removals, other kinds (the filter criteria should not have sent them)


def read_batch(event: Mapping[str, Any], kinds: Collection[RecordKind]) -> StreamBatch:
    """The record changes of a DynamoDB stream event that a consumer acts on, in stream order. A record that cannot
    be read is failed at once (and so is every later record of the same item)."""
    batch = StreamBatch([], BatchFailures())
    for raw in event.get("Records") or []:
        dynamodb = raw.get("dynamodb") or {}
        item_id = str(dynamodb.get("SequenceNumber", ""))
        key = _image_text(dynamodb.get("Keys") or {}, "pk") or item_id
        if batch.failures.blocked(key):
            batch.failures.fail(item_id, key, "an earlier record of the same item failed")
            continue
        try:
            change = record_change(raw)
        except ValueError as exc:
            batch.failures.fail(item_id, key, str(exc))
            continue
        if change is None or change.kind not in kinds:
            batch.ignored += 1
            continue
        batch.changes.append(StreamChange(item_id, key, change))
    return batch
