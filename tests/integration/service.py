"""A PullService under moto whose AWS clients a test may swap for failing ones (tests/aws_faults.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from functions.core import layout
from functions.core.archive import S3Archive
from functions.core.layout import Vendor
from functions.core.pull_runtime import PullService, RuntimeConfig
from functions.core.sources import CredentialSource, SettingsSource
from functions.core.store import ControlStore, RecordStore, RegisteredCredential
from tests.fakes import FakeConnector

CREDENTIAL = {"vendor": "posabit", "store_name": "Main", "integrator_token": "integrator-1", "venue_token": "venue-123"}
FUNCTION = "pull_posabit"


def config(resources: Any) -> RuntimeConfig:
    return RuntimeConfig(
        names=resources.names,
        records_table=resources.records_table,
        control_table=resources.control_table,
        archive_bucket=resources.archive_bucket,
        queue_url=resources.queue_urls[FUNCTION],
        allow_private_hosts=False,
        lookback=timedelta(minutes=10),
        settle=timedelta(seconds=0),
        read_timeout=5,
        base_urls={Vendor.POSABIT: "https://pos.invalid"},
        dead_letter_queue_url=resources.dlq_urls[FUNCTION],
    )


def register(resources: Any, tenant: str = "t1", credential_id: str = "c1", secret: bool = True) -> None:
    if secret:
        boto3.client("secretsmanager").create_secret(
            Name=resources.names.credential_secret(tenant, Vendor.POSABIT, credential_id),
            SecretString=json.dumps(CREDENTIAL),
        )
    ControlStore(boto3.client("dynamodb"), resources.control_table).register_credential(
        RegisteredCredential(tenant, Vendor.POSABIT, credential_id, True, "x")
    )


def make_service(
    resources: Any,
    connector: FakeConnector | None = None,
    *,
    s3: Any = None,
    records_ddb: Any = None,
    control_ddb: Any = None,
    sqs: Any = None,
    now: Callable[[], datetime] | None = None,
    credentials: CredentialSource | None = None,
    control_clock: Callable[[], float] | None = None,
) -> PullService:
    ddb = boto3.client("dynamodb")
    control = ControlStore(control_ddb or ddb, resources.control_table)
    if control_clock is not None:
        control.clock = control_clock
    return PullService(
        config=config(resources),
        open_connector=lambda credential, config, *, tenant, credential_id: connector or FakeConnector([]),
        records=RecordStore(records_ddb or ddb, resources.records_table, sleep=lambda _: None),
        control=control,
        archive=S3Archive(s3 or boto3.client("s3"), resources.archive_bucket),
        settings=SettingsSource(resources.names),
        credentials=credentials or CredentialSource(resources.names),
        sqs=sqs or boto3.client("sqs"),
        now=now or (lambda: datetime.now(UTC)),
    )


def queued(resources: Any, queue: str = "queue") -> list[dict[str, Any]]:
    """Bodies of the messages on the jobs queue (or, with queue="dlq", its dead-letter queue), with attributes."""
    url = resources.queue_urls[FUNCTION] if queue == "queue" else resources.dlq_urls[FUNCTION]
    sqs = boto3.client("sqs")
    out: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return out
        for m in messages:
            out.append({"body": m["Body"], "attributes": m.get("MessageAttributes", {})})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def stored(resources: Any) -> int:
    """Records stored (page index items, functions.core.record_index, are not records)."""
    return boto3.client("dynamodb").scan(
        TableName=resources.records_table,
        Select="COUNT",
        FilterExpression="NOT begins_with(pk, :index)",
        ExpressionAttributeValues={":index": {"S": layout.RECORDS_PAGE_INDEX_PK_PREFIX}},
    )["Count"]
