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

# Allocations (less deallocations) between two young collections; CPython's default is 700. A pull's objects mostly
# die young by reference counting (a page's items, records and request bodies), so a larger young generation lets
# them go before a collection walks them: with 10,000 a POSaBIT pull of 13,003 records ran no full collection, and
# its collections took 18 us a record instead of 36.
YOUNG_COLLECTION_THRESHOLD = 10_000

_frozen = False


def freeze_resident() -> bool:
    """Freeze what the process holds now and enlarge the young generation, once per process (the first invocation,
    after its imports and clients are set up); True when this call did it."""
    global _frozen
    if _frozen:
        return False
    # No collection first: it would walk the whole heap once more, and the little garbage left from imports is freed
    # with the process.
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)
    _frozen = True
    return True
