"""The pull Lambda's heap and the garbage collector: what a warm process keeps is frozen once, so that a collection
walks only what a pull allocates.

CPython's cyclic collector runs a full collection every so many allocations and walks every tracked object in the
process. A pull process holds a few hundred thousand of them for its whole life (modules, botocore's service models,
pydantic's schemas, clients), and a pull allocates millions (decoded pages, records, items), so the full collections
walked that resident heap again and again: measured in `python -m bench.pull`, about an eighth of a POSaBIT pull's
CPU went to them. `gc.freeze()` moves every object alive at that moment into the collector's permanent generation,
which no collection walks. Those objects live as long as the process anyway; garbage the pull makes is still
collected as before.
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_resident() -> bool:
    """Freeze what the process holds now, once per process (the first invocation, after its imports and clients are
    set up); True when this call froze it."""
    global _frozen
    if _frozen:
        return False
    # No collection first: it would walk the whole heap once more, and the little garbage left from imports is freed
    # with the process.
    gc.freeze()
    _frozen = True
    return True
