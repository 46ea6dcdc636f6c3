"""Batch reads and writes: unprocessed leftovers re-sent after jittered backoff, a bounded number of times."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.core import ddb_batch
from functions.core.ddb_batch import BatchThrottledError, backoff_delay, batch_get, batch_write
from functions.core.errors import AwsServiceError


class ThrottlingTable:
    """Answers each batch by leaving the last `leave` entries unprocessed, `throttled_calls` times."""

    def __init__(self, throttled_calls: int, leave: int = 1) -> None:
        self.throttled_calls = throttled_calls
        self.leave = leave
        self.calls: list[dict[str, Any]] = []
        self.written: list[dict[str, Any]] = []

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3 names it
        self.calls.append(RequestItems)
        ((table, entries),) = RequestItems.items()
        if len(self.calls) <= self.throttled_calls:
            done, left = entries[: -self.leave], entries[-self.leave :]
            self.written.extend(done)
            return {"UnprocessedItems": {table: left}}
        self.written.extend(entries)
        return {"UnprocessedItems": {}}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3 names it
        self.calls.append(RequestItems)
        ((table, spec),) = RequestItems.items()
        keys = spec["Keys"]
        if len(self.calls) <= self.throttled_calls:
            done, left = keys[: -self.leave], keys[-self.leave :]
            return {"Responses": {table: done}, "UnprocessedKeys": {table: {**spec, "Keys": left}}}
        return {"Responses": {table: keys}, "UnprocessedKeys": {}}


def puts(n: int) -> list[dict[str, Any]]:
    return [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}}}} for i in range(n)]


def test_write_resends_only_the_leftovers_after_a_backoff() -> None:
    # Given a table that leaves one item unprocessed twice
    table = ThrottlingTable(throttled_calls=2)
    sleeps: list[float] = []
    # When 30 puts are written
    made = batch_write(table, "t", puts(30), sleep=sleeps.append)
    # Then every item is written exactly once, in two chunks plus two resends of the leftover
    assert sorted(e["PutRequest"]["Item"]["pk"]["S"] for e in table.written) == sorted(f"k{i}" for i in range(30))
    assert made == 4
    assert [len(next(iter(c.values()))) for c in table.calls] == [25, 1, 1, 5]
    assert len(sleeps) == 2
    assert all(0 <= s <= ddb_batch.BACKOFF_CAP_SECONDS for s in sleeps)


def test_write_gives_up_after_the_bound_with_a_domain_error() -> None:
    table = ThrottlingTable(throttled_calls=100)
    sleeps: list[float] = []
    with pytest.raises(BatchThrottledError, match="kept throttling"):
        batch_write(table, "t", puts(3), sleep=sleeps.append, max_resends=4)
    assert len(table.calls) == 5  # the first send and four resends
    assert len(sleeps) == 4


def test_get_yields_every_item_once_across_resends() -> None:
    table = ThrottlingTable(throttled_calls=3)
    sleeps: list[float] = []
    keys = [{"pk": {"S": f"k{i}"}} for i in range(10)]
    got = [item["pk"]["S"] for _, item in batch_get(table, {"t": {"Keys": keys}}, sleep=sleeps.append)]
    assert sorted(got) == sorted(f"k{i}" for i in range(10))
    assert len(got) == 10
    assert len(sleeps) == 3


def test_get_gives_up_after_the_bound() -> None:
    table = ThrottlingTable(throttled_calls=100)
    with pytest.raises(BatchThrottledError):
        list(batch_get(table, {"t": {"Keys": [{"pk": {"S": "a"}}]}}, sleep=lambda _: None, max_resends=2))


def test_backoff_is_jittered_and_capped() -> None:
    delays = [backoff_delay(attempt) for attempt in range(12) for _ in range(50)]
    assert all(0 <= d <= ddb_batch.BACKOFF_CAP_SECONDS for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # random, not a fixed schedule
    assert max(backoff_delay(0) for _ in range(200)) <= ddb_batch.BACKOFF_BASE_SECONDS


def test_client_errors_become_aws_service_errors() -> None:
    class Broken:
        def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3 names it
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "BatchWriteItem")

    with pytest.raises(AwsServiceError, match="ProvisionedThroughputExceededException"):
        batch_write(Broken(), "t", puts(1), sleep=lambda _: None)


def test_batches_sent_together_on_a_client_without_the_lean_path_go_one_after_the_other() -> None:
    # Given a client without the lean path, leaving the last item of each of the first two batches unprocessed
    table = ThrottlingTable(throttled_calls=2)
    sleeps: list[float] = []
    # When 60 puts are written as a page's batches together
    made = ddb_batch.batch_write_together(table, "t", puts(60), sleep=sleeps.append)
    # Then each batch is sent in turn, and the two leftovers of that round are resent after one backoff
    assert [len(next(iter(c.values()))) for c in table.calls] == [25, 25, 10, 1, 1]
    assert made == 5 and len(sleeps) == 1
    assert sorted(e["PutRequest"]["Item"]["pk"]["S"] for e in table.written) == sorted(f"k{i}" for i in range(60))


def test_reads_sent_together_resend_their_unprocessed_keys_boundedly() -> None:
    table = ThrottlingTable(throttled_calls=100)
    requests = [{"t": {"Keys": [{"pk": {"S": f"{c}{i}"}} for i in range(3)]}} for c in "ab"]
    sleeps: list[float] = []
    with pytest.raises(BatchThrottledError, match="kept throttling a batch read on t after 2"):
        list(ddb_batch.batch_get_together(table, requests, sleep=sleeps.append, max_resends=2))
    assert len(sleeps) == 2 and len(table.calls) == 2 * 3


def test_a_batch_sent_together_that_fails_is_a_transient_error_naming_no_item() -> None:
    class Failing:
        def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3 names it
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "k1"}}, "BatchWriteItem")

    with pytest.raises(AwsServiceError, match="batch_write_item on t failed: InternalServerError") as raised:
        ddb_batch.batch_write_together(Failing(), "t", puts(30))
    assert "k1" not in str(raised.value)
