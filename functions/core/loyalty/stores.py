"""Store rules as pure functions: which retail store a record belongs to, visits, and the favourite store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from functions.core.loyalty.values import Visit


def mapped_store(mappings: Mapping[str, str], credential_id: str, location_id: str | None) -> str | None:
    """The retail store a record belongs to: its POS location's mapping, else its credential's; None is unmapped."""
    if location_id and mappings.get(location_id):
        return mappings[location_id]
    return mappings.get(credential_id) or None


def with_visit(visits: Mapping[str, Visit], store_id: str, at: str) -> dict[str, Visit]:
    """The visits after one more to `store_id` at `at` (its latest visit time never moves back)."""
    held = visits.get(store_id)
    counted = Visit(store_id, 1, at) if held is None else Visit(store_id, held.count + 1, max(held.last_at, at))
    return {**visits, store_id: counted}


def favourite_store(visits: Iterable[Visit]) -> str | None:
    """The mapped store where the persona shops most; ties go to the most recent visit (then the store id)."""
    best: Visit | None = None
    for visit in visits:
        if visit.count <= 0:
            continue
        if best is None or (visit.count, visit.last_at, visit.store_id) > (best.count, best.last_at, best.store_id):
            best = visit
    return best.store_id if best else None
