"""A record's item fits one DynamoDB write unit where it can: no repeated attributes, large JSON stored compressed."""

from __future__ import annotations

import base64
import zlib
from datetime import UTC, date, datetime
from typing import Any

import boto3
import pytest

from functions.core import streams
from functions.core.layout import RecordKind, Vendor
from functions.core.models import Sale, SaleLine, Shopper
from functions.core.record_index import is_page_index
from functions.core.record_items import DATA, DATA_Z, WRITE_UNIT_BYTES, attribute_bytes, record_fields, record_json
from functions.core.store import RecordStore

AT = datetime(2026, 11, 20, 18, 30, tzinfo=UTC)
ARCHIVE = "raw/tenant=t1/vendor=posabit/credential=c1/stream=sales/date=2026-11-20/run=r1/page-000001.json.gz"


def sale(pos_id: str, lines: int, name: str = "Sour Diesel Pre-roll (batch 20)") -> Sale:
    return Sale(
        tenant="t1",
        vendor=Vendor.POSABIT,
        credential_id="c1",
        pos_id=pos_id,
        location_id="3221",
        source_updated_at=AT,
        customer_pos_id="100051",
        ordered_at=AT,
        local_date=date(2026, 11, 20),
        timezone="America/Los_Angeles",
        status="completed",
        subtotal_cents=19500,
        tax_cents=1950,
        total_cents=21450,
        lines=tuple(
            SaleLine(
                product_id=f"70{n:03d}",
                sku=f"SKU-3221-{n:05d}",
                name=name,
                category="Pre-Roll",
                brand="Northwest",
                quantity=2.0,
                total_cents=1320,
            )
            for n in range(lines)
        ),
        tenders=({"tender_id": "50010180", "method": "Cash", "amount_cents": 21450},),
    )


def shopper(pos_id: str) -> Shopper:
    return Shopper(
        tenant="t1",
        vendor=Vendor.POSABIT,
        credential_id="c1",
        pos_id=pos_id,
        source_updated_at=AT,
        first_name="Ada",
        phone="+12065550142",
    )


def stored_items(resources: Any) -> dict[str, dict[str, Any]]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    items = ddb.scan(TableName=resources.records_table)["Items"]
    return {i["pk"]["S"]: i for i in items if not is_page_index(i["pk"]["S"])}


def test_a_small_record_keeps_its_json_as_text_and_no_attribute_is_repeated(resources: Any) -> None:
    RecordStore(boto3.client("dynamodb", region_name="us-east-1"), resources.records_table).upsert_changed(
        [shopper("s1")], ARCHIVE
    )
    (item,) = stored_items(resources).values()
    assert DATA in item and DATA_Z not in item
    # tenant, credential and POS id are in the key and the JSON only
    assert not {"tenant", "credential_id", "pos_id", "location_id"} & set(item)
    assert record_fields(item)["pos_id"] == "s1"
    assert attribute_bytes(item) <= WRITE_UNIT_BYTES


def test_a_sale_over_one_write_unit_is_stored_compressed_in_one_and_reads_back_the_same(resources: Any) -> None:
    record = sale("5001018", lines=4)
    data, _ = record.stored_form()
    assert len(data) > 900  # as text its item would take two write units
    store = RecordStore(boto3.client("dynamodb", region_name="us-east-1"), resources.records_table)
    store.upsert_changed([record], ARCHIVE)
    (item,) = stored_items(resources).values()
    assert DATA_Z in item and DATA not in item
    assert attribute_bytes(item) <= WRITE_UNIT_BYTES
    assert record_json(item) == data
    assert store.get("t1", Vendor.POSABIT, "c1", RecordKind.SALE, "5001018") == record
    # the digest is over the JSON text, so the same sale again is unchanged and nothing is written
    again = store.upsert_changed([sale("5001018", lines=4)], ARCHIVE)
    assert (again.changed, again.unchanged) == (0, 1)


def test_a_stream_image_with_compressed_json_is_read_as_the_record() -> None:
    record = sale("s9", lines=5)
    data, _ = record.stored_form()
    image = {
        "pk": {"S": "t1#posabit#c1#sale#s9"},
        "kind": {"S": "sale"},
        "version": {"N": "3"},
        # a Lambda event carries binary attributes base64-encoded
        DATA_Z: {"B": base64.b64encode(zlib.compress(data.encode())).decode()},
    }
    change = streams.record_change({"eventName": "MODIFY", "dynamodb": {"NewImage": image}})
    assert change is not None and change.record == record and change.version == 3


@pytest.mark.parametrize("damaged", ["not base64!", base64.b64encode(b"not zlib").decode()])
def test_damaged_compressed_json_is_an_error_naming_the_attribute_not_its_content(damaged: str) -> None:
    with pytest.raises(ValueError, match=DATA_Z) as caught:
        record_json({DATA_Z: {"B": damaged}})
    assert damaged not in str(caught.value)
