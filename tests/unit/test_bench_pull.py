"""bench.pull's arithmetic: DynamoDB item sizes and units, percentiles, and the per-size object it prints."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from typing import Any

import pytest

from bench.pull import (
    JOB_STAGE,
    STAGE_ORDER,
    STAGES,
    GcTimer,
    HttpRecorder,
    StageClock,
    combine,
    item_size,
    percentile,
    read_units,
    write_units,
)

REQUIRED = (
    "cpu_us_per_record",
    "floor_cpu_us_per_record",
    "cpu_vs_floor",
    "repull_s3_puts",
    "repull_ddb_writes",
    "item_bytes_p50",
    "item_bytes_p99",
    "modelled_cost_per_million",
)


def test_item_size_follows_dynamodb_rules() -> None:
    # names and strings in UTF-8 bytes; a number about a byte per two significant digits plus one; a map 3 + 1 each
    assert item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert item_size({"n": {"N": "12345"}}) == 1 + 4
    assert item_size({"é": {"S": "ü"}}) == 2 + 2
    assert item_size({"m": {"M": {"a": {"BOOL": True}}}}) == 1 + 3 + (1 + 1 + 1)


def test_units_round_up_per_kilobyte_written_and_four_read() -> None:
    assert [write_units(s) for s in (0, 1024, 1025, 2048)] == [1, 1, 2, 2]
    assert [read_units(s) for s in (0, 4096, 4097)] == [1.0, 1.0, 2.0]
    assert read_units(100, consistent=False) == 0.5


def test_percentiles_are_taken_over_the_sizes_written() -> None:
    sizes = list(range(1, 101))
    assert (percentile(sizes, 0.5), percentile(sizes, 0.99), percentile([], 0.5)) == (50, 99, 0)


def run(vendor: str, pulled: int, cpu: float, floor: float, sizes: dict[int, int]) -> dict[str, Any]:
    return {
        "vendor": vendor,
        "pulled": pulled,
        "cpu_seconds": cpu,
        "floor_cpu_seconds": floor,
        "cpu_vs_floor": cpu / floor,
        "boto3_write_cpu_seconds": floor,
        "boto3_write_cpu_us_per_record": 1e6 * floor / pulled,
        "item_size_counts": {str(size): n for size, n in sizes.items()},
        "first_cost": pulled * 1e-6,
        "first_cost_parts": {
            "dynamodb_writes": pulled * 1e-6,
            "dynamodb_reads": 0.0,
            "s3": 0.0,
            "lambda": 0.0,
            "sqs": 0.0,
        },
        "first_write_units": 2.0 * pulled,
        "first_index_write_units": 0.0,
        "page_index_write_units": 0,
        "first_read_units": 1.0 * pulled,
        "repull_records": pulled,
        "repull_s3_puts": 0,
        "repull_ddb_writes": 0,
        "repull_cost_per_million": 0.1,
        # all of a run's CPU in one stage but for 1 µs a record of mapping
        "cpu_us_per_record_by_stage": {
            stage: (1.0 if stage == "map" else 1e6 * cpu / pulled - 1.0 if stage == JOB_STAGE else 0.0)
            for stage in STAGE_ORDER
        },
    }


def test_one_object_per_size_weighs_every_vendor_by_its_records() -> None:
    result = combine(
        10_000, [run("posabit", 1000, 0.5, 0.05, {900: 999, 2000: 1}), run("flourish", 3000, 0.9, 0.03, {500: 3000})]
    )
    assert all(name in result for name in REQUIRED)
    assert result["cpu_us_per_record"] == 1e6 * 1.4 / 4000
    assert result["floor_cpu_us_per_record"] == 1e6 * 0.08 / 4000
    assert result["cpu_vs_floor"] == 1.4 / 0.08
    assert (result["item_bytes_p50"], result["item_bytes_p99"]) == (500, 900)
    assert result["modelled_cost_per_million"] == 1.0
    assert result["write_units_per_record"] == 2.0
    assert set(result["vendors"]) == {"posabit", "flourish"}
    stages = result["cpu_us_per_record_by_stage"]
    assert list(stages) == list(STAGE_ORDER)
    assert stages["map"] == pytest.approx(1.0)
    assert stages[JOB_STAGE] == pytest.approx(1e6 * 1.4 / 4000 - 1.0)  # weighed by records: 499 and 299 µs
    assert sum(stages.values()) == pytest.approx(result["cpu_us_per_record"])
    assert "item_size_counts" not in result["vendors"]["posabit"]  # the raw histogram is not printed


def test_the_cost_floor_is_shown_with_its_arithmetic() -> None:
    # Given 4,000 records whose items take one write unit each (one item of 2,000 bytes takes two), page index items
    # of 40 write units, and index entries of 1,000 units (the old layout: one per record, for a quarter of them)
    posabit = {
        **run("posabit", 1000, 0.5, 0.05, {900: 999, 2000: 1}),
        "first_index_write_units": 1000.0,
        "page_index_write_units": 40,
    }
    result = combine(10_000, [posabit, run("flourish", 3000, 0.9, 0.03, {500: 3000})])

    # Then the floor is one write per item (two for the big one), the page index items' and the index entries' units,
    # each per record, and no read (a first pull reads no versions)
    units = (4001 / 4000) + 0.01 + 0.25
    assert abs(result["cost_floor_per_million"] - units * 0.625) < 1e-9
    assert result["index_write_units_per_record"] == 0.25
    assert result["page_index_write_units_per_record"] == 0.01
    text = " ".join(result["cost_arithmetic"])
    assert "$1.00 per 1M records pulled" in text and "0.250 for the index by tenant and POS" in text
    assert "0.010 for page index items" in text and "the 0% over 1 KB" in text
    assert "= $0.79 per 1M, no read" in text and "out of reach" not in text  # under $1


def test_the_cost_floor_says_why_1_dollar_is_out_of_reach() -> None:
    # Given records whose items are all over 1 KB (two write units each)
    result = combine(10_000, [run("posabit", 1000, 0.5, 0.05, {1100: 1000})])

    # Then the floor is 2 units written per record, and the text says what keeps it over $1
    assert abs(result["cost_floor_per_million"] - 2 * 0.625) < 1e-9
    assert "$1 is out of reach while 100% of the record items are over 1 KB" in " ".join(result["cost_arithmetic"])


def test_index_writes_are_counted_from_what_is_written_once_per_new_item() -> None:
    from bench.pull import PAGE_INDEX_KIND, AwsCalls
    from functions.core.layout import RecordKind, Vendor
    from functions.core.models import Shopper
    from functions.core.record_index import PageIndex
    from functions.core.store import RecordStore

    def shopper(pos_id: str) -> Shopper:
        moment = datetime(2026, 11, 1, tzinfo=UTC)
        return Shopper(tenant="t1", vendor=Vendor.POSABIT, credential_id="c1", pos_id=pos_id, source_updated_at=moment)

    calls = AwsCalls("records")
    index = PageIndex("t1", Vendor.POSABIT, RecordKind.SHOPPER, "c1", ("s1", "s2")).item()
    new = RecordStore._item("t1#posabit#c1#shopper#s1", shopper("s1"), "h", "u", 1, "raw/a", "p", indexed_by="d")
    old = RecordStore._item("t1#posabit#c1#shopper#s0", shopper("s0"), "h", "u", 1, "raw/a", "p", scoped=True)
    batch = {"RequestItems": {"records": [{"PutRequest": {"Item": item}} for item in (index, new, old)]}}

    calls._dynamodb("BatchWriteItem", batch)
    calls._dynamodb("BatchWriteItem", batch)  # the same items again: the index keys did not change

    # One index entry for the page index item and one for the record stored the old way, none for the new record
    assert calls.index_write_units == 2.0
    assert calls.write_units == 6.0  # every item written twice, 1 unit each
    assert sorted(calls.item_sizes) == [PAGE_INDEX_KIND, "shopper"]
    assert len(calls.item_sizes[PAGE_INDEX_KIND]) == 2 and len(calls.item_sizes["shopper"]) == 4


def test_garbage_collections_are_timed_per_generation_only_while_on() -> None:
    timer = GcTimer()
    try:
        gc.collect(0)
        assert not timer.collections
        timer.on = True
        gc.collect(0)
        gc.collect(2)
        assert timer.collections == {0: 1, 2: 1}
        assert set(timer.seconds) == {0, 2} and all(t >= 0 for t in timer.seconds.values())
        timer.reset()
        assert not timer.collections and not timer.seconds
    finally:
        gc.callbacks.remove(timer._callback)


def test_the_floor_is_the_median_of_passes_over_every_recorded_request(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given two recorded requests and a clock under which the three passes take 5, 1 and 3 seconds of CPU
    sent: list[str] = []

    class Answer:
        content = b'{"data": [1, 2]}'

    class Client:
        def request(self, method: str, url: str) -> Answer:
            sent.append(f"{method} {url}")
            return Answer()

    ticks = iter([0.0, 5.0, 10.0, 11.0, 20.0, 23.0])
    monkeypatch.setattr("bench.pull.time.process_time", lambda: next(ticks))
    recorder = HttpRecorder.__new__(HttpRecorder)  # without __init__, which patches httpx for the whole process
    client = Client()
    recorder.requests = [(client, "GET", "http://pos/a"), (client, "GET", "http://pos/b")]
    # When the floor is measured
    floor, passes = recorder.floor_cpu(passes=3)
    # Then every request is sent once a pass, and the floor is the middle pass, not the first or the fastest
    assert sent == ["GET http://pos/a", "GET http://pos/b"] * 3
    assert (floor, passes) == (3.0, [5.0, 1.0, 3.0])


class Tick:
    """A CPU clock that moves only when told to: what each timed function 'spends'."""

    def __init__(self) -> None:
        self.now = 0.0
        self.overhead = 0.0

    def spend(self, seconds: float, overhead: float = 0.0) -> None:
        self.now += seconds + overhead
        self.overhead += overhead


def test_each_stage_gets_its_own_cpu_less_its_timed_callees_and_the_benchs_work() -> None:
    tick = Tick()
    clock = StageClock(lambda: tick.overhead, clock=lambda: tick.now)

    def write() -> None:
        tick.spend(3.0, overhead=5.0)  # the bench sizing the request inside the write: not the pull's

    def store() -> None:
        tick.spend(2.0)
        timed_write()
        tick.spend(1.0)

    def stream() -> None:
        tick.spend(4.0)
        timed_store()
        timed_store()

    timed_write = clock.timed("writes", write)
    timed_store = clock.timed("record items", store)
    timed_stream = clock.timed("fetch + validate", stream)
    timed_stream()  # off: nothing counted
    assert clock.seconds == {}
    clock.on = True
    timed_stream()
    assert dict(clock.seconds) == {"writes": 6.0, "record items": 6.0, "fetch + validate": 4.0}
    by_stage = clock.by_stage(20.0)
    assert list(by_stage) == list(STAGE_ORDER)
    assert (by_stage["map"], by_stage[JOB_STAGE]) == (0.0, 20.0 - 16.0)
    clock.reset()
    assert clock.seconds == {}


def test_every_stage_names_a_function_the_pull_calls() -> None:
    import importlib

    for stage, module_name, class_name, name in STAGES:
        owner = importlib.import_module(module_name)
        if class_name:
            owner = getattr(owner, class_name)
        assert callable(getattr(owner, name)), (stage, module_name, class_name, name)
    assert STAGE_ORDER[-1] == JOB_STAGE
    assert len(set(STAGE_ORDER)) == len(STAGE_ORDER)
