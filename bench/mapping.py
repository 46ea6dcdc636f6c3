"""The mapping alone: CPU per record of `map_page` over a vendor simulator's own pages, fetched once.

`python -m bench.mapping --vendor posabit --records 2000 --rounds 5` fetches every page of every stream (derived
streams included, as a pull maps them) with the vendor's client against its seeded simulator, then times `map_page`
over all of them with `process_time`, garbage collection on as in a pull, and prints the best round's µs per record,
per stream and overall. Run it from two checkouts back to back to compare mappings.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections import defaultdict
from typing import Any

from functions.core.engine import map_page
from functions.core.layout import Vendor


def measure(vendor: Vendor, records: int, rounds: int) -> dict[str, Any]:
    from tests.mapping_corpus import simulator_pages

    pages = list(simulator_pages(vendor, records))
    best: dict[str, float] = {}
    counts: dict[str, int] = defaultdict(int)
    for _connector, stream, items, _ctx in pages:
        counts[stream.value] += len(items)
    gc.enable()
    for _ in range(rounds):
        spent: dict[str, float] = defaultdict(float)
        for connector, stream, items, ctx in pages:
            cpu0 = time.process_time()
            map_page(connector, stream, items, ctx, "bench")
            spent[stream.value] += time.process_time() - cpu0
        for name, seconds in spent.items():
            best[name] = min(best.get(name, seconds), seconds)
    total_items = sum(counts.values())
    return {
        "vendor": vendor.value,
        "items": total_items,
        "us_per_item": 1e6 * sum(best.values()) / total_items,
        "streams": {name: {"items": counts[name], "us_per_item": 1e6 * best[name] / counts[name]} for name in best},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vendor", action="append", choices=[v.value for v in Vendor])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for name in args.vendor or [v.value for v in Vendor]:
        result = measure(Vendor(name), args.records, args.rounds)
        if args.json:
            print(json.dumps(result))
            continue
        streams = ", ".join(f"{s} {v['us_per_item']:.1f} ({v['items']})" for s, v in result["streams"].items())
        print(f"{result['vendor']:9} {result['us_per_item']:6.1f} µs/item over {result['items']} items: {streams}")


if __name__ == "__main__":
    main()
