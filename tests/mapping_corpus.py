"""Every vendor's simulator data (fixed seed and clock) mapped as a pull maps it: the stored form of each record and
the quarantine decision of each item, so a change to the mapping can be proved to change neither."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from pydantic import ValidationError

from functions.core.connector import ConnectorConfig, MappingContext, MappingError, RawPage, Window
from functions.core.credentials import parse_credential
from functions.core.engine import derived_streams, map_page
from functions.core.layout import Stream, Vendor
from possync.local.runtime import SIMULATORS

FIXED_NOW = datetime(2026, 6, 15, 18, 30, 0, tzinfo=UTC)
SEED = 11
CONNECTOR_MODULES = {
    Vendor.POSABIT: "functions.pull_posabit.connector",
    Vendor.FLOURISH: "functions.pull_flourish.connector",
    Vendor.THSUITE: "functions.pull_thsuite.connector",
    Vendor.PROFITEK: "functions.pull_onprem.connector",
    Vendor.AUPHAN: "functions.pull_onprem.connector",
}


@contextmanager
def fixed_clock() -> Iterator[None]:
    """Simulators stamp their data relative to `utc_now`; pin it (each module imported its own name)."""
    with ExitStack() as stack:
        for name in ("base", "posabit", "flourish", "thsuite", "profitek", "auphan"):
            module = importlib.import_module(f"simulators.{name}")
            if hasattr(module, "utc_now"):
                stack.enter_context(mock.patch.object(module, "utc_now", return_value=FIXED_NOW))
        yield


@contextmanager
def seeded_connector(vendor: Vendor, records: int = 400, **config: Any) -> Iterator[tuple[Any, MappingContext]]:
    """A connector (and its mapping context) to one seeded simulator store of `records` records (3/10 customers,
    6/10 sales, the rest products), its clock pinned; `config` overrides ConnectorConfig's fields."""
    module, cls = SIMULATORS[vendor]
    factory = getattr(importlib.import_module(module), cls)
    sizes = {
        "customers_per_store": records * 3 // 10,
        "sales_per_store": records * 6 // 10,
        "products_per_store": records - records * 3 // 10 - records * 6 // 10,
    }
    if "now" in inspect.signature(factory).parameters:
        sizes["now"] = lambda: FIXED_NOW
    with fixed_clock():
        simulator = factory(seed=SEED, store_count=1, **sizes)
    simulator.start()
    try:
        store = simulator.stores[0]
        credential = parse_credential(simulator.credential_for(store), vendor, "store-1")
        connector_config = ConnectorConfig(**{"base_url": simulator.url, "read_timeout": 10.0, **config})
        opener = importlib.import_module(CONNECTOR_MODULES[vendor]).open_connector
        extra: dict[str, Any] = {"allow_loopback_for_tests": True} if vendor in (Vendor.PROFITEK, Vendor.AUPHAN) else {}
        connector = opener(credential, connector_config, tenant="golden", credential_id="store-1", **extra)
        yield connector, dataclasses.replace(connector.prepare(), tenant="golden", credential_id="store-1")
    finally:
        simulator.stop()


def raw_pages(connector: Any) -> Iterator[tuple[Stream, RawPage]]:
    """Every page of every stream a connector reads itself (derived streams are mapped from their source's pages)."""
    derived = derived_streams(connector)
    for stream in connector.streams:
        if stream not in derived:
            for page in connector.pages(stream, Window(None, FIXED_NOW), None):
                yield stream, page


def simulator_pages(vendor: Vendor, records: int = 400) -> Iterator[tuple[Any, Stream, list[dict[str, Any]], Any]]:
    """(connector, stream, page items, ctx) for every page of every stream of one seeded simulator store."""
    with seeded_connector(vendor, records) as (connector, ctx):
        derived = derived_streams(connector)
        for stream, page in raw_pages(connector):
            yield connector, stream, list(page.items), ctx
            for also, source in derived.items():
                if source is stream:
                    yield connector, also, list(page.items), ctx


def corpus(vendor: Vendor, records: int = 400) -> dict[str, list[list[str]]]:
    """Each record as [stream, pos_id, digest of its stored JSON] and each quarantined item as [stream, index,
    field, reason], in pull order."""
    stored: list[list[str]] = []
    quarantined: list[list[str]] = []
    for position, (connector, stream, items, ctx) in enumerate(simulator_pages(vendor, records)):
        mapped, rejected = map_page(connector, stream, items, ctx, f"page-{position}")
        for record in mapped:
            digest = record.stored_form()[1]
            stored.append([stream.value, record.pos_id, digest])
        for entry in rejected:
            quarantined.append([entry["stream"], entry["item_index"], entry["field"], entry["reason"]])
        for index, item in enumerate(items[:MUTATED_PER_PAGE]):
            for key, bad in mutations(item):
                mutant = mapped_one(connector, stream, {**item, key: bad}, ctx)
                (quarantined if mutant[0] == "quarantined" else stored).append([stream.value, str(index), key, *mutant])
    return {"stored": stored, "quarantined": quarantined}


# Values a POS sends where it should not: each replaces one field of an item in turn.
BAD_VALUES: tuple[Any, ...] = (None, True, "", " ", "zz", "12", -1.5, 7, {"x": 1}, [1], "2026-13-45T99:00:00")
MUTATED_PER_PAGE = 2


def mutations(item: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key in sorted(item):
        for bad in BAD_VALUES:
            yield key, bad


def mapped_one(connector: Any, stream: Stream, item: dict[str, Any], ctx: MappingContext) -> list[str]:
    """("stored", digest) or ("quarantined", field, reason) of one item."""
    mapped, rejected = map_page(connector, stream, [item], ctx, "mutant")
    if mapped:
        return ["stored", mapped[0].stored_form()[1]]
    return ["quarantined", rejected[0]["field"], rejected[0]["reason"]]


def fingerprint(vendor: Vendor) -> dict[str, Any]:
    """Counts and one digest over the whole corpus of a vendor (what tests/fixtures/mapping_golden.json keeps)."""
    import json

    found = corpus(vendor)
    blob = json.dumps(found, sort_keys=True, separators=(",", ":")).encode()
    return {
        "stored": len(found["stored"]),
        "quarantined": len(found["quarantined"]),
        "sha256": hashlib.sha256(blob).hexdigest(),
    }


if __name__ == "__main__":  # python -m tests.mapping_corpus [--dump DIR]: print the fingerprints (or dump corpora)
    import json
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--dump":
        for vendor in Vendor:
            with open(f"{sys.argv[2]}/{vendor.value}.json", "w") as out:
                json.dump(corpus(vendor), out, indent=0)
    else:
        print(json.dumps({vendor.value: fingerprint(vendor) for vendor in Vendor}, indent=2, sort_keys=True))


# What a payload's mapping may raise where its item's mapping raises too: engine.map_page then maps the item, which
# says what is wrong.
PAYLOAD_ERRORS = (MappingError, ValidationError, ValueError, TypeError, KeyError, ArithmeticError)


def page_form_maps_as_item(
    validate: Callable[[bytes], Any], body: bytes, item: dict[str, Any], ctx: Any, mapping: Any, mapped: Any
) -> bool:
    """Whether a one-sale page's payload in its page form (`validate(body)`, `body` holding `item` alone) maps to what
    the item maps to, compared as `mapped(function, *args)` gives each outcome; True when the page form took it. The
    payload is mapped directly, without the engine's fallback to the item, so a mapping that differed would show."""
    validated = validate(body)
    expected = mapped(mapping.map_record, Stream.SALES, item, ctx)
    if validated is None:
        return False
    (payload,) = validated.payloads
    assert type(payload) is dict and all(type(line) is dict for line in payload["lines"])
    got = mapped(mapping.map_payload, Stream.SALES, payload, ctx)
    assert got == expected or (got[0] in PAYLOAD_ERRORS and expected[0] in PAYLOAD_ERRORS), (got, expected)
    return True
