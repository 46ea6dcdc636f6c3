"""Every record a vendor's mapping stores reads back, from its stored JSON, into the same canonical record: the JSON
(serialized once, `CanonicalRecord.stored_form`) loses nothing and holds nothing the canonical models refuse."""

from __future__ import annotations

import json

import pytest

from functions.core.engine import map_page
from functions.core.layout import Vendor
from functions.core.models import RECORD_MODELS, read_record
from tests.mapping_corpus import simulator_pages


@pytest.mark.parametrize("vendor", list(Vendor), ids=lambda v: v.value)
def test_every_stored_record_parses_back_into_the_canonical_model(vendor: Vendor) -> None:
    kinds = set()
    for position, (connector, stream, items, ctx) in enumerate(simulator_pages(vendor, records=120)):
        # Given the records a pull maps from the vendor's seeded simulator pages
        records, _ = map_page(connector, stream, items, ctx, f"page-{position}")
        for record in records:
            # When one is stored (its JSON and digest, as the store writes them)
            data, digest = record.stored_form()
            # Then the JSON parses back, strictly, into an equal record of its kind with the same digest
            model = RECORD_MODELS[record.kind]
            again = model.model_validate_json(data)
            assert again == record and type(again) is type(record)
            assert again.stored_form() == (data, digest)
            assert read_record(record.kind, data) == record
            assert json.loads(data)["kind"] == record.kind.value
            kinds.add(record.kind)
    assert len(kinds) >= 3, kinds  # shoppers, sales and products (or balances) at least
