"""Runs one POS simulator in its own process (so its data does not count in the puller's memory)."""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from datetime import UTC, datetime, timedelta

from functions.core.layout import Vendor
from possync.local.runtime import SIMULATORS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vendor", default="posabit", choices=[v.value for v in Vendor])
    parser.add_argument("--records", type=int, required=True, help="customers + sales + products, one store")
    args = parser.parse_args()
    import importlib

    module, name = SIMULATORS[Vendor(args.vendor)]
    n = args.records
    factory = getattr(importlib.import_module(module), name)
    options = {}
    if "now" in inspect.signature(factory).parameters:
        # The simulator's clock stands still, a quarter of an hour back: a simulator seeds sales whose last update
        # lies minutes after its own now and serves each once its clock reaches it, so with a running clock a re-pull
        # minutes later found records the first pull could not (at 100,000 records, Profitek 1 and Auphan 3, and
        # every page after them re-archived), and "an unchanged re-pull" would not be one.
        frozen = datetime.now(UTC) - timedelta(minutes=15)
        options["now"] = lambda: frozen
    simulator = factory(
        seed=3,
        store_count=1,
        customers_per_store=n * 3 // 10,
        sales_per_store=n * 6 // 10,
        products_per_store=n - n * 3 // 10 - n * 6 // 10,
        **options,
    )
    simulator.start()
    store = simulator.stores[0]
    print(json.dumps({"url": simulator.url, "store": store, "credential": simulator.credential_for(store)}), flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin
    simulator.stop()


if __name__ == "__main__":
    main()
