"""A POS whose records all miss a field our mapping requires: the pull says so, loudly, and loses nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import boto3
import pytest
from pydantic import BaseModel, ValidationError

from functions.core.connector import MappingContext, MappingError
from functions.core.layout import Stream, Vendor
from functions.core.metrics import PULL_CONTRACT_MISMATCH, PULLS_FAILED
from functions.core.models import Product
from functions.core.pull_runtime import PullJob, handle_pull_event
from possync.local.lambda_shim import LambdaContext, sqs_event
from tests.aws_faults import metrics, named
from tests.fakes import FakeConnector, item
from tests.integration.service import FUNCTION, make_service, register, stored

JOB = PullJob(tenant="t1", vendor=Vendor.POSABIT, credential_id="c1")


class Priced(BaseModel):
    """Our contract for the fake POS's items: `price` is required (as the order total is for Flourish)."""

    id: int
    name: str
    updated_at: datetime
    price: float


class PricedConnector(FakeConnector):
    def map_record(self, stream: Stream, raw: dict[str, Any], ctx: MappingContext) -> Product:
        try:
            parsed = Priced.model_validate(raw)
        except ValidationError as exc:
            reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
            raise MappingError(str(raw.get("id")), reason) from None
        return Product(
            tenant=ctx.tenant,
            vendor=ctx.vendor,
            credential_id=ctx.credential_id,
            pos_id=str(parsed.id),
            source_updated_at=parsed.updated_at,
            name=parsed.name,
            price_cents=round(parsed.price * 100),
        )


def priced(n: int) -> dict[str, Any]:
    return {**item(n), "price": 9.5}


def status(resources: Any) -> dict[str, Any]:
    svc = make_service(resources)
    return svc.control.get_status("t1", Vendor.POSABIT, "c1")


def test_every_record_missing_a_field_is_a_contract_mismatch_that_names_stream_and_field(
    resources: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    register(resources)
    # Given a POS that renamed the field: none of its 45 items has `price`
    connector = PricedConnector([item(n) for n in range(1, 46)], page_size=10)
    svc = make_service(resources, connector)
    sqs = boto3.client("sqs")
    url = resources.queue_urls[FUNCTION]
    sqs.send_message(QueueUrl=url, MessageBody=JOB.model_dump_json())
    [message] = sqs.receive_message(QueueUrl=url)["Messages"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    # When it is pulled through the handler
    response = handle_pull_event(sqs_event([message], arn), LambdaContext(FUNCTION), FUNCTION, lambda: svc)

    # Then the message is done (a retry reads the same data) but the status and the alarm metric say why
    assert response == {"batchItemFailures": []}
    now = status(resources)
    assert now["last_outcome"] == "contract_mismatch"
    assert "45 of 45 inventory records" in now["last_error"] and "'price'" in now["last_error"]
    assert now["contract_mismatch"] == {
        "inventory": {"field": "price", "problem": "Field required", "quarantined": 45, "read": 45}
    }
    assert "last_success_at" not in now, "nothing of the stream was stored: not a success"
    emitted = metrics(capsys.readouterr().out)
    assert {m.dimensions for m in named(emitted, PULL_CONTRACT_MISMATCH)} == {
        (),
        (("credential", "t1/c1"), ("vendor", "posabit")),
    }
    assert not named(emitted, PULLS_FAILED)
    # ... and nothing is lost: every record is quarantined with the field and a pointer to its raw page
    quarantine = svc.control.list_quarantine("t1", Vendor.POSABIT, "c1")
    assert len(quarantine) == 45 and stored(resources) == 0
    assert {q["field"] for q in quarantine} == {"price"}
    keys = {q["archive_key"] for q in quarantine}
    assert len(keys) == 5
    for key in keys:
        assert boto3.client("s3").head_object(Bucket=resources.archive_bucket, Key=key)


def test_the_mismatch_stands_until_a_pull_reads_the_stream_cleanly(resources: Any) -> None:
    register(resources)
    data = [item(n) for n in range(1, 21)]
    connector = PricedConnector(data)
    svc = make_service(resources, connector)
    assert svc.run_job(JOB, lambda: 900).status == "contract_mismatch"

    # A pull that reads too few records to tell leaves it standing
    connector.items = [item(n) for n in range(1, 4)]
    assert svc.run_job(JOB, lambda: 900).status == "contract_mismatch"
    assert status(resources)["last_outcome"] == "contract_mismatch"

    # Once the POS sends the field again (or the mapping is fixed), the pull is healthy again
    connector.items = [priced(n) for n in range(1, 21)]
    outcome = svc.run_job(JOB, lambda: 900)
    assert outcome.status == "ok"
    now = status(resources)
    assert now["contract_mismatch"] is None and now["last_error"] is None and now["last_success_at"]
    assert stored(resources) == 20


def test_a_few_quarantined_records_are_not_a_mismatch(resources: Any) -> None:
    register(resources)
    data = [priced(n) for n in range(1, 41)] + [item(n) for n in range(41, 44)]
    svc = make_service(resources, PricedConnector(data))

    outcome = svc.run_job(JOB, lambda: 900)

    assert outcome.status == "ok"
    assert status(resources)["last_quarantined"] == 3 and status(resources)["contract_mismatch"] is None
