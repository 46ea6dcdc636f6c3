"""What a block of code leaves to the cyclic garbage collector: objects only a collection can free (reference cycles
no reference counting reaches), kept aside by `gc.DEBUG_SAVEALL` instead of being freed, so a test can say what they
are."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_garbage() -> Iterator[list[object]]:
    """Every object the block leaves in unreachable reference cycles, in the list it yields (filled when the block
    ends). Automatic collection is off inside, so nothing is freed behind the test's back; the collector's state is
    restored however the block ends."""
    gc.collect()
    was_enabled = gc.isenabled()
    debug = gc.get_debug()
    found: list[object] = []
    gc.disable()
    gc.set_debug(debug | gc.DEBUG_SAVEALL)
    try:
        yield found
    finally:
        gc.collect()
        found.extend(gc.garbage)
        gc.garbage.clear()
        gc.set_debug(debug)
        if was_enabled:
            gc.enable()


def by_type(objects: list[object]) -> Counter[str]:
    return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)
