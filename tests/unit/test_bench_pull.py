"""bench.pull's arithmetic: DynamoDB item sizes and units, percentiles, and the per-size object it prints."""

from __future__ import annotations

from typing import Any

from bench.pull import combine, item_size, percentile, read_units, write_units

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
        "first_cost_parts": {"dynamodb_writes": pulled * 1e-6, "dynamodb_reads": 0.0, "s3": 0.0, "lambda": 0.0},
        "first_write_units": 2.0 * pulled,
        "first_index_write_units": 0.0,
        "first_read_units": 1.0 * pulled,
        "repull_records": pulled,
        "repull_s3_puts": 0,
        "repull_ddb_writes": 0,
        "repull_cost_per_million": 0.1,
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
    assert "item_size_counts" not in result["vendors"]["posabit"]  # the raw histogram is not printed


def test_the_cost_floor_is_shown_with_its_arithmetic() -> None:
    # Given 4,000 records whose items take one write unit each (one item of 2,000 bytes takes two), and an index
    # entry written for half of them
    posabit = {**run("posabit", 1000, 0.5, 0.05, {900: 999, 2000: 1}), "first_index_write_units": 1000.0}
    result = combine(10_000, [posabit, run("flourish", 3000, 0.9, 0.03, {500: 3000})])

    # Then the floor is one write per item (two for the big one), one per index entry and one read, each per record
    units = (4001 / 4000) + 0.25
    assert abs(result["cost_floor_per_million"] - (units * 0.625 + 0.125)) < 1e-9
    assert result["index_write_units_per_record"] == 0.25
    text = " ".join(result["cost_arithmetic"])
    assert "$1.00 per 1M records pulled" in text and "0.25 for the index" in text and "$0.91 per 1M." in text
