"""The pull process freezes its resident heap once, at its first invocation, so collections walk only the pull's."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from functions.core import heap, layout
from functions.core.pull_runtime import handle_pull_event


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(heap, "_frozen", False)
    gc.unfreeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(700, *thresholds[1:])
    try:
        yield
    finally:
        gc.unfreeze()  # the rest of the test session collects as before
        gc.set_threshold(*thresholds)
        gc.enable()


def test_the_resident_heap_is_frozen_once(fresh_process: None) -> None:
    resident = [object(), {"kept": ["for", "the", "process"]}]
    assert gc.get_freeze_count() == 0
    with heap.resident():
        built = {"a client": ["and", "its", "models"]}
        assert not gc.isenabled()  # no collection walks the unfrozen heap while the service is built
    frozen = gc.get_freeze_count()
    assert frozen > 0 and gc.is_tracked(resident[1]) and gc.is_tracked(built)
    assert gc.isenabled()
    assert gc.get_threshold()[0] == heap.YOUNG_COLLECTION_THRESHOLD
    with heap.resident():  # later invocations leave the collector as it is
        assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_a_failed_setup_still_freezes_and_turns_collection_back_on(fresh_process: None) -> None:
    with pytest.raises(RuntimeError), heap.resident():
        raise RuntimeError("settings unreadable")
    assert gc.isenabled() and gc.get_freeze_count() > 0 and heap._frozen


class Cycle:
    """A tracked object that refers to itself: reference counting never frees it, only the cyclic collector."""

    __slots__ = ("me",)
    finalized = 0

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        Cycle.finalized += 1


def test_cyclic_garbage_is_still_collected_and_never_more_than_the_young_generation_waits(fresh_process: None) -> None:
    # Given a frozen process with the enlarged young generation
    with heap.resident():
        pass
    Cycle.finalized = 0
    made, most_waiting = 0, 0
    # When a pull leaves cyclic garbage behind, far more than one young generation's worth
    for _ in range(5 * heap.YOUNG_COLLECTION_THRESHOLD // 2):
        Cycle()
        made += 1
        most_waiting = max(most_waiting, made - Cycle.finalized)
    # Then automatic collections free it, and at no point did more than the threshold wait (memory stays bounded)
    assert Cycle.finalized >= 2 * heap.YOUNG_COLLECTION_THRESHOLD
    assert most_waiting <= heap.YOUNG_COLLECTION_THRESHOLD + 1
    gc.collect()
    assert Cycle.finalized == made


class StopHereError(Exception):
    pass


class Service:
    built_with_collection: bool | None = None

    def __init__(self) -> None:
        Service.built_with_collection = gc.isenabled()

    def dispatch(self, *_: Any) -> Any:
        raise StopHereError


def test_a_pull_invocation_builds_its_service_without_collections_then_freezes_it(fresh_process: None) -> None:
    with pytest.raises(StopHereError):
        handle_pull_event({"action": layout.DISPATCH_EVENT["action"]}, None, "pull_posabit", Service)  # type: ignore[arg-type]
    assert Service.built_with_collection is False
    assert heap._frozen and gc.get_freeze_count() > 0 and gc.isenabled()
