"""The pull Lambda's heap and the garbage collector: what a warm process keeps is frozen once, so that a collection
walks only what a pull allocates.

CPython's cyclic collector runs a full collection every so many allocations and walks every tracked object in the
process. A pull process holds a few hundred thousand of them for its whole life (modules, botocore's service models,
pydantic's schemas, clients), and a pull allocates millions (decoded pages, records, items), so the full collections
walked that resident heap again and again: measured in `python -m bench.pull`, about 15% of a POSaBIT pull's CPU
went to collections. `gc.freeze()` moves every object alive at that moment into the collector's permanent generation,
which no collection walks. Those objects live as long as the process anyway; garbage the pull makes is still
collected, by a young generation larger than CPython's default (YOUNG_COLLECTION_THRESHOLD).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Allocations less deallocations of tracked objects between two young collections; CPython's default is 700. A pull's
# objects mostly die young by reference counting (a page's items, records and request bodies), so a larger young
# generation lets them go before a collection walks them: with 10,000 a POSaBIT pull of 13,003 records ran no full
# collection, and its collections took 15-18 us a record instead of 36. Measured and not taken: 100,000 cut them to
# 0.1 us, but a few objects in reference cycles each pull page leaves behind then waited far longer for a collection,
# and peak RSS grew with the pull (39,003 records: 142 -> 154 MB; 130,003: about 223 MB).
YOUNG_COLLECTION_THRESHOLD = 10_000

_frozen = False


@contextmanager
def resident() -> Iterator[None]:
    """Around what a pull invocation sets up before it pulls (its service, clients and their models): the first time
    in a process, automatic collection is off while it is built (a collection then would walk the whole unfrozen heap:
    measured, one full collection inside the first invocation cost 0.15-0.23 s of CPU), and afterwards everything
    alive is frozen and the young generation enlarged. Later invocations leave the collector as it is."""
    global _frozen
    if _frozen:
        yield
        return
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # No collection first: it would walk the whole heap once more, and the little garbage left from imports is
        # freed with the process.
        gc.freeze()
        _, middle, old = gc.get_threshold()
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)
        _frozen = True
        if was_enabled:
            gc.enable()
