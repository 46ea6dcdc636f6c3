"""`bench.mapping` times map_page over a simulator's own pages and reports every stream it mapped."""

from __future__ import annotations

from bench.mapping import measure
from functions.core.layout import Stream, Vendor


def test_the_mapping_bench_reports_each_stream_per_item() -> None:
    # Given a small POSaBIT store, mapped once
    result = measure(Vendor.POSABIT, records=40, rounds=1)
    # Then every stream a pull maps is reported (loyalty derived from the customer pages), with its items and cost
    assert set(result["streams"]) >= {Stream.CUSTOMERS.value, Stream.LOYALTY.value, Stream.SALES.value}
    assert result["items"] == sum(stream["items"] for stream in result["streams"].values()) > 0
    assert all(stream["us_per_item"] >= 0 for stream in result["streams"].values())
    assert result["us_per_item"] > 0
