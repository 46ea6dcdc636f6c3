"""The canonical records alone: CPU per record of building (validating) and serializing each model.

`python -m bench.records --vendor posabit --records 2000 --rounds 30` maps a vendor's seeded simulator store once (as
`bench.mapping` does), then times, per record model, over the records the mapping gave and in rounds interleaved with
one another (so that a load change on the machine moves every figure alike; the best round counts):

- `validate`: the model's compiled validator over the record's fields (what `record_of` runs in a mapping),
- `pydantic_json`: pydantic's own serializer (`model_dump_json` without its wrapper), what records were written by,
- `record_json`: `functions.core.models.record_json`, what the pull writes them by now (orjson over the fields),
- `stored_form`: the JSON as text and its digest, what `RecordStore.upsert_changed` takes for each record.

Figures are µs a record in a warm loop: inside a pull the same work costs about twice as much (cold caches), so
compare them between checkouts or between the lines here, and prove a gain with `bench.pull`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from functions.core.engine import map_page
from functions.core.layout import Vendor
from functions.core.models import CanonicalRecord, record_json


def _records(vendor: Vendor, records: int) -> dict[str, list[CanonicalRecord]]:
    from tests.mapping_corpus import simulator_pages

    by_model: dict[str, list[CanonicalRecord]] = defaultdict(list)
    for connector, stream, items, ctx in simulator_pages(vendor, records):
        for record in map_page(connector, stream, items, ctx, "bench")[0]:
            by_model[type(record).__name__].append(record)
    return by_model


def _time(work: Callable[[Any], object], inputs: list[Any]) -> float:
    cpu0 = time.process_time()
    for value in inputs:
        work(value)
    return 1e6 * (time.process_time() - cpu0) / len(inputs)


def measure(vendor: Vendor, records: int, rounds: int) -> dict[str, Any]:
    by_model = _records(vendor, records)
    cases: list[tuple[str, str, Callable[[Any], object], list[Any]]] = []
    for name, found in by_model.items():
        model = type(found[0])
        fields = [model.__pydantic_serializer__.to_python(record) for record in found]
        cases += [
            (name, "validate", model.__pydantic_validator__.validate_python, fields),
            (name, "pydantic_json", model.__pydantic_serializer__.to_json, found),
            (name, "record_json", record_json, found),
            (name, "stored_form", model.stored_form, found),
        ]
    best: dict[tuple[str, str], float] = {}
    for _ in range(rounds):
        for name, what, work, inputs in cases:
            spent = _time(work, inputs)
            best[name, what] = min(best.get((name, what), spent), spent)
    models: dict[str, dict[str, Any]] = {}
    for (name, what), us in best.items():
        models.setdefault(name, {"records": len(by_model[name])})[what] = round(us, 2)
    return {"vendor": vendor.value, "models": models}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vendor", action="append", choices=[v.value for v in Vendor])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for name in args.vendor or [v.value for v in Vendor]:
        result = measure(Vendor(name), args.records, args.rounds)
        if args.json:
            print(json.dumps(result))
            continue
        print(f"{name}: µs a record (best of {args.rounds} rounds, warm loop)")
        for model, figures in result["models"].items():
            print(
                f"  {model:15s} {figures['records']:6d} records  validate {figures['validate']:6.2f}  "
                f"pydantic_json {figures['pydantic_json']:6.2f}  record_json {figures['record_json']:6.2f}  "
                f"stored_form {figures['stored_form']:6.2f}"
            )


if __name__ == "__main__":
    main()
