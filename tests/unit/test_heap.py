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


def test_the_resident_heap_is_frozen_once(fresh_process: None) -> None:
    resident = [object(), {"kept": ["for", "the", "process"]}]
    assert gc.get_freeze_count() == 0
    assert heap.freeze_resident() is True
    frozen = gc.get_freeze_count()
    assert frozen > 0 and gc.is_tracked(resident[1])
    assert gc.get_threshold()[0] == heap.YOUNG_COLLECTION_THRESHOLD
    assert heap.freeze_resident() is False  # later invocations leave the collector as it is
    assert gc.get_freeze_count() == frozen


class StopHereError(Exception):
    pass


class Service:
    def dispatch(self, *_: Any) -> Any:
        raise StopHereError


def test_a_pull_invocation_freezes_the_heap_after_building_its_service(fresh_process: None) -> None:
    with pytest.raises(StopHereError):
        handle_pull_event({"action": layout.DISPATCH_EVENT["action"]}, None, "pull_posabit", Service)  # type: ignore[arg-type]
    assert heap._frozen and gc.get_freeze_count() > 0
