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
# objects die by reference counting (a page's items, records and request bodies, its response: the vendor response's
# own reference cycle is broken once its body is read, functions.core.http.detached, and its requests share one retry
# context), so a young generation larger than a page's live objects lets them go before any collection walks them:
# a 13,003-record POSaBIT pull then runs no collection at all (at 10,000 it ran 23 young and 2 middle ones, 11-18 us a
# record). What still ends up in reference cycles is a few hundred objects a process (clients built once) and a few a
# botocore response, so waiting longer for it costs next to no memory: 130,003 POSaBIT records, peak RSS 151 MB with
# 100,000 against 162 MB with 10,000 (whose collections took 12 us a record). Before the responses' cycles were broken,
# each page's response waited in them, and 100,000 grew that peak from 160 to 223 MB.
YOUNG_COLLECTION_THRESHOLD = 100_000

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
