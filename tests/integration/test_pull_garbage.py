"""A pull through the real handler and engine, against each vendor's simulator, leaves nothing of its pages to the
cyclic garbage collector: a page's response and bytes, items, records and request bodies are freed by reference
counting once the next page replaces them. That is what lets the pull process keep a young generation larger than a
page (functions.core.heap) without its memory growing with the pull."""

from __future__ import annotations

import functools
import gc
import json
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
import stamina

from functions.core import heap, layout, pull_runtime
from functions.core.connector import ConnectorConfig, RawPage
from functions.core.engine import map_page
from functions.core.layout import Stream, Vendor
from tests import mapping_corpus
from tests.garbage import by_type, cyclic_garbage
from tests.integration.pulls import ALL_VENDORS, PullWorld, simulator_class

PAGE_SIZE = 3
# Packages of the tests' AWS stand-in (moto in this process): its own reference cycles are no part of the pull.
STAND_IN = ("moto", "werkzeug", "responses")


@pytest.fixture(params=ALL_VENDORS, ids=[v.value for v in ALL_VENDORS])
def world(request: pytest.FixtureRequest, resources: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[PullWorld]:
    monkeypatch.setenv(layout.ENV_SETTLE_SECONDS, "0")
    # small pages, so that a small pull is many of them
    monkeypatch.setattr(pull_runtime, "ConnectorConfig", functools.partial(ConnectorConfig, page_size=PAGE_SIZE))
    simulator = simulator_class(request.param)(seed=11, store_count=2, customers_per_store=6, sales_per_store=12)
    simulator.start()
    w = PullWorld(request.param, simulator, resources)
    with stamina.set_testing(True, attempts=3):
        yield w
    simulator.stop()


def components(objects: list[object]) -> list[list[object]]:
    """The objects grouped by the references among them: each group is one structure left behind."""
    index = {id(o): n for n, o in enumerate(objects)}
    parent = list(range(len(objects)))

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for n, o in enumerate(objects):
        for referent in gc.get_referents(o):
            m = index.get(id(referent))
            if m is not None:
                parent[root(n)] = root(m)
    groups: dict[int, list[object]] = {}
    for n, o in enumerate(objects):
        groups.setdefault(root(n), []).append(o)
    return list(groups.values())


def of_a_page(o: object) -> bool:
    """Part of what a page is made of: the vendor's response, a body, a page, a record or payload model."""
    module = type(o).__module__
    if module.startswith(("httpx", "httpcore")) or isinstance(o, RawPage | pydantic.BaseModel):
        return True
    return isinstance(o, bytes | bytearray | str) and len(o) >= 512


def test_a_pull_of_many_pages_leaves_none_of_them_to_the_collector(world: PullWorld) -> None:
    first, second = world.simulator.stores[:2]
    world.register(first)
    assert all(job.ok for job in world.tick())  # the process's first pull builds its clients (once per process)
    world.register(second)

    with cyclic_garbage() as garbage:
        jobs = world.tick()

    assert jobs and all(job.ok for job in jobs)
    assert world.status(second)["last_pages"] >= 5
    pulled = [
        group for group in components(garbage) if not any(type(o).__module__.split(".")[0] in STAND_IN for o in group)
    ]
    left = [o for group in pulled for o in group if of_a_page(o)]
    assert left == [], by_type(left)


def test_the_largest_page_fits_in_the_young_generation() -> None:
    # Given POSaBIT's largest page of sales (1,000: its richest records) as the pull decodes it, and the collector set
    # as a warm pull process sets it
    pages = [
        (connector, items, ctx)
        for connector, stream, items, ctx in mapping_corpus.simulator_pages(Vendor.POSABIT, 1700)
        if stream is Stream.SALES
    ]
    connector, largest, ctx = max(pages, key=lambda page: len(page[1]))
    assert len(largest) == 1000
    body = json.dumps(largest).encode()
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    thresholds = gc.get_threshold()
    gc.collect()
    gc.set_threshold(heap.YOUNG_COLLECTION_THRESHOLD, *thresholds[1:])
    gc.callbacks.append(count)
    try:
        # When the whole page is alive at once: decoded, mapped, each record serialized
        items = json.loads(body)
        records, quarantined = map_page(connector, Stream.SALES, items, ctx, "page-1")
        stored = [record.stored_form() for record in records]
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*thresholds)
    # Then no collection walked it: it is freed by reference counting once the pull moves on
    assert len(stored) + len(quarantined) == 1000
    assert collections == []
