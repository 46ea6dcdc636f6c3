"""Every vendor's pull Lambda under moto against its simulator: full, incremental, faults, bad credentials."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import stamina

from functions.core import layout
from functions.core.layout import Stream, Vendor
from functions.core.record_index import is_page_index
from functions.core.settings import IntegrationSettings
from possync.local.lambda_shim import LambdaContext
from tests.integration.pulls import ALL_VENDORS, PullWorld, simulator_class

SETTLE = 1.0

# name -> the switches to set on the simulator (counted faults hit the next requests)
FAULTS: dict[str, dict[str, Any]] = {
    "429 with Retry-After": {"rate_limit_with_retry_after": 2},
    "429 without Retry-After": {"rate_limit_without_retry_after": 2},
    "5xx": {"server_error": 3},
    "slow responses": {"slow": 3, "slow_seconds": 0.2},
    "timeout": {"timeout": 1, "timeout_seconds": 1.5},
    "malformed JSON": {"malformed_json": 2},
    "record failing validation": {"invalid_record": True},
    "unknown extra fields": {"extra_fields": True},
    "same record on two pages": {"duplicate_across_pages": True},
    "records updated while paging": {"update_while_paging": 3},
    "naive timestamps": {"naive_timestamps": True},
    "offset timestamps": {"offset_timestamps": True},
    "refunds": {"refunds": True},
}


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(layout.ENV_SETTLE_SECONDS, str(SETTLE))
    monkeypatch.setenv(layout.ENV_HTTP_READ_TIMEOUT, "0.5")
    with stamina.set_testing(True, attempts=5):
        yield


def make_world(vendor: Vendor, resources: Any, stores: int = 2) -> PullWorld:
    simulator = simulator_class(vendor)(seed=11, store_count=stores, customers_per_store=25, sales_per_store=40)
    simulator.start()
    return PullWorld(vendor, simulator, resources)


@pytest.fixture(params=ALL_VENDORS, ids=lambda v: v.value)
def world(request: pytest.FixtureRequest, resources: Any) -> Iterator[PullWorld]:
    w = make_world(request.param, resources)
    for store in w.simulator.stores:
        w.register(store)
    yield w
    w.simulator.stop()


def assert_everything_stored_once(w: PullWorld) -> None:
    stored = w.stored()
    quarantined = w.quarantined()
    for stream in Stream:
        held = w.held(stream)
        got = stored.get(stream, [])
        assert len(got) == len(set(got)), f"{stream.value}: a record was stored twice"
        bad = quarantined.get(stream, set())
        assert not (set(got) & bad), f"{stream.value}: a record is both stored and quarantined"
        assert set(got) | bad == held, (
            f"{stream.value}: {len(held - set(got) - bad)} records held by the POS are neither stored nor quarantined"
        )


def test_full_pull_stores_every_record_once(world: PullWorld) -> None:
    jobs = world.tick()
    assert len(jobs) == len(world.simulator.stores) and all(j.ok for j in jobs)
    assert all(world.status(s)["last_outcome"] == "ok" for s in world.simulator.stores)
    assert_everything_stored_once(world)
    assert any(world.stored().values())


def test_incremental_pull_writes_only_new_sales_and_an_unchanged_repull_writes_nothing(world: PullWorld) -> None:
    world.tick()
    store = world.simulator.stores[0]
    before = {s: len(v) for s, v in world.stored().items()}
    stream_before = _stream_count(world)

    world.tick()  # nothing changed in the POS
    assert _stream_count(world) == stream_before

    world.simulator.add_sales(store, 4)
    time.sleep(SETTLE + 1.0)
    world.tick()

    after = {s: len(v) for s, v in world.stored().items()}
    assert after[Stream.SALES] == before[Stream.SALES] + 4
    assert _stream_count(world) == stream_before + 4
    assert_everything_stored_once(world)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_is_retried_or_quarantined_and_nothing_is_lost(world: PullWorld, fault: str) -> None:
    for key, value in FAULTS[fault].items():
        setattr(world.simulator.faults, key, value)

    jobs = world.tick()

    assert all(j.ok for j in jobs)
    outcomes = {world.status(s).get("last_outcome") for s in world.simulator.stores}
    assert outcomes == {"ok"}, [world.status(s) for s in world.simulator.stores]
    if fault == "records updated while paging":
        # the records that changed are picked up (again) by the next pull; none of the others were skipped
        time.sleep(SETTLE + 1.0)
        world.tick()
    assert_everything_stored_once(world)
    if fault == "record failing validation":
        assert world.quarantined(), "the invalid record should be in quarantine"
    else:
        assert not world.quarantined()


def test_persistent_outage_loses_nothing_and_the_next_tick_catches_up(world: PullWorld) -> None:
    world.simulator.faults.server_error = 10_000
    jobs = world.tick()
    assert all(j.ok for j in jobs)  # an outage is recorded, not retried into the DLQ
    assert {world.status(s)["last_outcome"] for s in world.simulator.stores} == {"unavailable"}

    world.simulator.faults.server_error = 0
    world.tick()
    assert {world.status(s)["last_outcome"] for s in world.simulator.stores} == {"ok"}
    assert_everything_stored_once(world)


def test_a_pull_that_runs_out_of_time_continues_to_the_same_result(
    world: PullWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each invocation's clock drops one second per look, from just above the engine's 60 s safety budget:
    # it stores a page or two, saves its checkpoint and hands over to a continuation job.
    def remaining(context: LambdaContext) -> int:
        context.looks = getattr(context, "looks", 0) + 1  # type: ignore[attr-defined]
        return (62 - context.looks) * 1000  # type: ignore[attr-defined]

    monkeypatch.setattr(LambdaContext, "get_remaining_time_in_millis", remaining)
    jobs = world.tick()
    assert len(jobs) > len(world.simulator.stores)
    assert any(j.body.get("reason") == "continuation" for j in jobs)
    assert_everything_stored_once(world)


def test_wrong_credential_fails_only_its_store_and_names_no_secret(resources: Any, vendor: Vendor) -> None:
    w = make_world(vendor, resources)
    good, bad = w.simulator.stores[0], w.simulator.stores[1]
    w.register(good)
    forged = dict(w.simulator.credential_for(bad))
    secret_fields = [k for k in forged if k in {"venue_token", "key", "integration_token", "auth_key", "api_key"}]
    for k in secret_fields:
        forged[k] = "WRONG-SECRET-VALUE-123456"
    w.register(bad, forged)

    jobs = w.tick()

    assert all(j.ok for j in jobs)
    assert w.status(good)["last_outcome"] == "ok"
    failed = w.status(bad)
    assert failed["last_outcome"] == "failed"
    assert "WRONG-SECRET" not in failed["last_error"] and "credential" in failed["last_error"]
    assert "WRONG-SECRET" not in w.runner.log.getvalue()  # type: ignore[attr-defined]
    stored = w.stored()
    assert stored and all(cred == w.credentials[good] for s in stored.values() for cred, _ in s)
    w.simulator.stop()


def test_missing_secret_fails_that_store_with_what_to_do(resources: Any) -> None:
    w = make_world(Vendor.POSABIT, resources)
    w.register(w.simulator.stores[0])
    boto3.client("secretsmanager").delete_secret(
        SecretId=w.resources.names.credential_secret("t1", Vendor.POSABIT, w.credentials[w.simulator.stores[0]]),
        ForceDeleteWithoutRecovery=True,
    )
    w.tick()
    status = w.status(w.simulator.stores[0])
    assert status["last_outcome"] == "failed"
    assert "possync credentials add" in status["last_error"]
    w.simulator.stop()


def test_use_last_backup_stops_every_call_to_the_pos(world: PullWorld) -> None:
    boto3.client("ssm").put_parameter(
        Name=world.resources.names.integration_settings_parameter(world.tenant, world.vendor),
        Value=IntegrationSettings(vendor=world.vendor, use_last_backup=True).model_dump_json(),
        Type="String",
    )
    world.simulator.request_log.clear()

    jobs = world.tick()

    assert jobs == []  # dispatch enqueued nothing
    assert world.simulator.request_log == []
    assert not world.stored()


def test_invalid_settings_fail_safe_without_calling_the_pos(world: PullWorld) -> None:
    boto3.client("ssm").put_parameter(
        Name=world.resources.names.integration_settings_parameter(world.tenant, world.vendor),
        Value=json.dumps({"use_last_backup": "sometimes"}),
        Type="String",
    )
    world.simulator.request_log.clear()
    assert world.tick() == []
    assert world.simulator.request_log == []


def _stream_count(w: PullWorld) -> int:
    """Stream records of records written (page index items, functions.core.record_index, are not records)."""
    streams = boto3.client("dynamodbstreams")
    arn = w.resources.records_stream_arn
    total = 0
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for record in streams.get_records(ShardIterator=iterator, Limit=10_000)["Records"]:
            total += not is_page_index(record["dynamodb"]["Keys"]["pk"]["S"])
    return total


@pytest.fixture(params=ALL_VENDORS, ids=lambda v: v.value)
def vendor(request: pytest.FixtureRequest) -> Vendor:
    return request.param  # type: ignore[no-any-return]
