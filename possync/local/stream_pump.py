"""The local stand-in for Lambda's DynamoDB stream event source mappings: read, filter, batch, retry, dead-letter."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from functions.core.streams import StreamConsumer
from possync.local.lambda_shim import HandlerRunner
from possync.local.provision import LOCAL_ACCOUNT, LOCAL_REGION

# What Lambda puts in a DynamoDB stream event record today.
EVENT_VERSION = "1.1"
GET_RECORDS_LIMIT = 1000
RETRIES_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_TOO_OLD = "RecordAgeExceeded"


@dataclass(frozen=True)
class ShardRecord:
    """One stream record in the shape a Lambda event carries it, and the shard it was read from."""

    shard_id: str
    record: dict[str, Any]

    @property
    def sequence_number(self) -> str:
        return str(self.record["dynamodb"]["SequenceNumber"])


def _attribute_json(value: Any) -> Any:
    """boto3 hands binary attributes over as bytes; the Lambda event (JSON) carries them base64-encoded."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {k: _attribute_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_attribute_json(v) for v in value]
    return value


def lambda_record(raw: Mapping[str, Any], stream_arn: str, region: str = LOCAL_REGION) -> dict[str, Any]:
    """A GetRecords record (as boto3 parses it) turned into the record Lambda delivers to a stream consumer."""
    source = raw["dynamodb"]
    dynamodb: dict[str, Any] = {}
    created = source.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    elif created is not None:
        dynamodb["ApproximateCreationDateTime"] = int(float(created))
    for key in ("Keys", "NewImage", "OldImage"):
        if key in source:
            dynamodb[key] = _attribute_json(source[key])
    dynamodb["SequenceNumber"] = str(source["SequenceNumber"])
    dynamodb["SizeBytes"] = int(source.get("SizeBytes", 0))
    dynamodb["StreamViewType"] = source.get("StreamViewType", "NEW_AND_OLD_IMAGES")
    record: dict[str, Any] = {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": EVENT_VERSION,
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion", region),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in raw:  # removals by TTL carry who removed the item
        record["userIdentity"] = dict(raw["userIdentity"])
    return record


class StreamReader:
    """Reads a DynamoDB stream shard by shard, keeping each shard's iterator, so every record is read once."""

    def __init__(self, streams: Any, stream_arn: str, region: str = LOCAL_REGION) -> None:
        self.streams = streams
        self.stream_arn = stream_arn
        self.region = region
        self._iterators: dict[str, str] = {}
        self.get_records_calls = 0

    def _shards(self) -> list[str]:
        description = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        return [shard["ShardId"] for shard in description["Shards"]]

    def _iterator(self, shard_id: str, position: str) -> str:
        response = self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=position
        )
        return str(response["ShardIterator"])

    def skip_to_latest(self) -> None:
        """Start after what the stream already holds (a shard first seen later is read from its beginning)."""
        for shard_id in self._shards():
            self._iterators[shard_id] = self._iterator(shard_id, "LATEST")

    def read(self) -> list[ShardRecord]:
        """Every record written since the last read, in stream order per shard."""
        out: list[ShardRecord] = []
        for shard_id in self._shards():
            iterator: str | None = self._iterators.get(shard_id) or self._iterator(shard_id, "TRIM_HORIZON")
            while iterator:
                self.get_records_calls += 1
                response = self.streams.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
                records = response["Records"]
                out.extend(ShardRecord(shard_id, lambda_record(r, self.stream_arn, self.region)) for r in records)
                next_iterator = response.get("NextShardIterator")
                if next_iterator:
                    self._iterators[shard_id] = next_iterator
                else:  # the shard is closed: nothing more will arrive on it
                    self._iterators.pop(shard_id, None)
                iterator = next_iterator if records else None
        return out


@dataclass(frozen=True)
class LocalConsumer:
    """One event source mapping: the function it invokes, its settings and filters, its env and failure queue."""

    function: str  # the handler is functions.<function>.handler.handler, as in Lambda
    spec: StreamConsumer
    env: Mapping[str, str]
    failure_queue_url: str


@dataclass
class ConsumerStats:
    matched: int = 0  # records that passed the consumer's FilterCriteria
    filtered_out: int = 0
    delivered: int = 0  # records handed over, counting redeliveries
    invocations: int = 0
    failed_invocations: int = 0  # the handler raised (Lambda: a function error)
    partial_failures: int = 0  # the handler reported batchItemFailures
    dead_lettered: int = 0  # records whose batch description went to the failure queue
    seconds: float = 0.0  # time inside the handler

    def add(self, other: ConsumerStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Batch:
    records: list[ShardRecord]
    attempts: int = 0  # retries spent (splitting a batch spends none, as in Lambda)


@dataclass
class _Outcome:
    failed_at: int | None  # index of the first record to retry; None when the batch succeeded
    error: str | None = None  # set when the invocation itself failed


class StreamPump:
    """Hands stream records to each consumer as its event source mapping would.

    Per consumer: its FilterCriteria (functions.core.streams, the same definitions the CDK app deploys) drop
    what it does not act on; records of one shard go in order, in batches of the mapping's batch size. A batch
    with reported item failures is retried from the first failed record (records before it are done); a batch
    whose invocation fails is split in two (bisect on error) until the failing record stands alone, which is
    then retried up to the mapping's maximum retry attempts. Records that exhaust them, or that are older than
    the maximum record age, are discarded and a description of their batch (Lambda's on-failure record) is
    sent to the consumer's failure queue. Consumers run in the order given: all pending shopper records reach
    the personas consumer before the sales reach the enroll consumer.
    """

    def __init__(
        self,
        runner: HandlerRunner,
        consumers: Sequence[LocalConsumer],
        sqs: Any,
        stream_arn: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runner = runner
        self.consumers = list(consumers)
        self.sqs = sqs
        self.stream_arn = stream_arn
        self.clock = clock
        self._backlog: dict[str, list[ShardRecord]] = {c.function: [] for c in self.consumers}
        self.totals: dict[str, ConsumerStats] = {c.function: ConsumerStats() for c in self.consumers}
        self._pending_stats: dict[str, ConsumerStats] = {c.function: ConsumerStats() for c in self.consumers}

    def feed(self, records: Iterable[ShardRecord]) -> None:
        """Queue records for every consumer whose filters they pass (the pump delivers them on `drain`)."""
        records = list(records)
        for consumer in self.consumers:
            stats = self._pending_stats[consumer.function]
            for item in records:
                if consumer.spec.wants(item.record):
                    self._backlog[consumer.function].append(item)
                    stats.matched += 1
                else:
                    stats.filtered_out += 1

    def pending(self) -> dict[str, int]:
        return {function: len(backlog) for function, backlog in self._backlog.items()}

    def drain(self, on_batch: Callable[[str, int], None] | None = None) -> dict[str, ConsumerStats]:
        """Deliver everything fed so far; returns what each consumer saw since the last drain."""
        report: dict[str, ConsumerStats] = {}
        for consumer in self.consumers:
            stats, self._pending_stats[consumer.function] = self._pending_stats[consumer.function], ConsumerStats()
            backlog, self._backlog[consumer.function] = self._backlog[consumer.function], []
            by_shard: dict[str, list[ShardRecord]] = {}
            for item in backlog:
                by_shard.setdefault(item.shard_id, []).append(item)
            for records in by_shard.values():
                self._deliver(consumer, records, stats, on_batch)
            self.totals[consumer.function].add(stats)
            report[consumer.function] = stats
        return report

    # --- one shard's records for one consumer ----------------------------------------------------------------------
    def _deliver(
        self,
        consumer: LocalConsumer,
        records: list[ShardRecord],
        stats: ConsumerStats,
        on_batch: Callable[[str, int], None] | None,
    ) -> None:
        spec = consumer.spec
        work = deque(_Batch(records[i : i + spec.batch_size]) for i in range(0, len(records), spec.batch_size))
        while work:
            batch = work.popleft()
            fresh = self._drop_expired(consumer, batch, stats)
            if not fresh:
                continue
            outcome = self._invoke(consumer, fresh, stats)
            if outcome.failed_at is None:
                if on_batch is not None:
                    on_batch(consumer.function, len(fresh))
                continue
            if outcome.failed_at > 0:
                # Lambda checkpoints before the first failed record and retries from there; with bisect on, that
                # is the split point, so no retry is spent (the retried batch is strictly shorter).
                rest = _Batch(fresh[outcome.failed_at :], batch.attempts)
                if on_batch is not None:
                    on_batch(consumer.function, outcome.failed_at)
                if not spec.bisect_batch_on_function_error:
                    rest.attempts += 1
                    if rest.attempts > spec.max_retry_attempts:
                        self._dead_letter(consumer, rest.records, rest.attempts, outcome, stats, on_batch)
                        continue
                work.appendleft(rest)
                continue
            if spec.bisect_batch_on_function_error and len(fresh) > 1:
                half = len(fresh) // 2
                work.appendleft(_Batch(fresh[half:], batch.attempts))
                work.appendleft(_Batch(fresh[:half], batch.attempts))
                continue
            if batch.attempts >= spec.max_retry_attempts:
                self._dead_letter(consumer, fresh, batch.attempts + 1, outcome, stats, on_batch)
                continue
            work.appendleft(_Batch(fresh, batch.attempts + 1))

    def _drop_expired(self, consumer: LocalConsumer, batch: _Batch, stats: ConsumerStats) -> list[ShardRecord]:
        oldest_allowed = self.clock() - consumer.spec.max_record_age_seconds
        expired = [r for r in batch.records if _created(r) < oldest_allowed]
        if expired:
            self._dead_letter(consumer, expired, batch.attempts, _Outcome(0, RECORD_TOO_OLD), stats, None)
        return [r for r in batch.records if _created(r) >= oldest_allowed]

    def _invoke(self, consumer: LocalConsumer, batch: list[ShardRecord], stats: ConsumerStats) -> _Outcome:
        event = {"Records": [item.record for item in batch]}
        stats.invocations += 1
        stats.delivered += len(batch)
        started = time.perf_counter()
        try:
            response = self.runner.invoke(
                consumer.function, event, consumer.env, timeout_seconds=consumer.spec.timeout_seconds
            )
        except Exception as exc:  # noqa: BLE001 - as in Lambda: a function error fails the whole batch
            stats.failed_invocations += 1
            self.runner.log.write(f"invocation of {consumer.function} failed: {type(exc).__name__}: {exc}\n")
            return _Outcome(0, f"{type(exc).__name__}")
        finally:
            stats.seconds += time.perf_counter() - started
        failures = response.get("batchItemFailures") if isinstance(response, dict) else None
        if not failures:
            return _Outcome(None)
        stats.partial_failures += 1
        positions = {item.sequence_number: index for index, item in enumerate(batch)}
        indexes = []
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not identifier or str(identifier) not in positions:
                # Lambda treats an empty, null or unknown identifier as a failure of the whole batch.
                return _Outcome(0)
            indexes.append(positions[str(identifier)])
        return _Outcome(min(indexes))

    def _dead_letter(
        self,
        consumer: LocalConsumer,
        records: list[ShardRecord],
        attempts: int,
        outcome: _Outcome,
        stats: ConsumerStats,
        on_batch: Callable[[str, int], None] | None,
    ) -> None:
        """Send Lambda's on-failure record: it describes the discarded batch (shard, sequence range), not its data."""
        first, last = records[0], records[-1]
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:"
                f"possync-{consumer.function.replace('_', '-')}",
                "condition": outcome.error if outcome.error == RECORD_TOO_OLD else RETRIES_EXHAUSTED,
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                **({"functionError": "Unhandled"} if outcome.error and outcome.error != RECORD_TOO_OLD else {}),
            },
            "version": "1.0",
            "timestamp": _iso(self.clock()),
            "DDBStreamBatchInfo": {
                "shardId": first.shard_id,
                "startSequenceNumber": first.sequence_number,
                "endSequenceNumber": last.sequence_number,
                "approximateArrivalOfFirstRecord": _iso(_created(first)),
                "approximateArrivalOfLastRecord": _iso(_created(last)),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        self.sqs.send_message(QueueUrl=consumer.failure_queue_url, MessageBody=json.dumps(message))
        stats.dead_lettered += len(records)
        if on_batch is not None:
            on_batch(consumer.function, len(records))


def _created(item: ShardRecord) -> float:
    return float(item.record["dynamodb"].get("ApproximateCreationDateTime", 0))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class DeadLetters:
    """What a consumer's failure queue holds (read without removing, for summaries and tests)."""

    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(int(m["DDBStreamBatchInfo"]["batchSize"]) for m in self.messages)


def peek_dead_letters(sqs: Any, queue_url: str) -> DeadLetters:
    """Every message on a failure queue; they become visible again at once (visibility timeout 0)."""
    found: dict[str, dict[str, Any]] = {}
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30).get(
            "Messages", []
        )
        if not messages:
            break
        for message in messages:
            found[message["MessageId"]] = message
    for message in found.values():
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return DeadLetters([json.loads(m["Body"]) for m in found.values()])
