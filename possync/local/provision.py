"""Creates, on any AWS endpoint (moto in the local runtime and tests), the resources the CDK app declares."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from functions.core import layout, reevaluation
from functions.core.layout import ResourceNames
from functions.core.signups.endpoint import FUNCTION as SIGNUPS_FUNCTION
from functions.core.sms import names as sms_names
from functions.core.sms.deferral import ENV_DEFERRAL_QUEUE_URL
from functions.core.sms.gateway import ENV_GATEWAY, ENV_OUTBOX
from functions.core.streams import POS_SYNC_FUNCTION

LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"


@dataclass
class Resources:
    names: ResourceNames
    records_table: str
    control_table: str
    archive_bucket: str
    queue_urls: dict[str, str] = field(default_factory=dict)  # pull function -> jobs queue URL
    dlq_urls: dict[str, str] = field(default_factory=dict)
    records_stream_arn: str = ""
    personas_table: str = ""
    rules_dlq_urls: dict[str, str] = field(default_factory=dict)  # stream consumer -> on-failure queue URL
    personas_stream_arn: str = ""  # feeds persona -> POS sync
    reevaluation_queue_url: str = ""
    reevaluation_dlq_url: str = ""
    sms_deferral_queue_url: str = ""
    # The local SMS provider: one JSON line per text sent (the runtime sets an absolute path in its workdir).
    sms_outbox: str = ".local/outbox.jsonl"
    # The private ranges the on-premises pull may call (the CDK app's onprem_vpc.private_cidrs); empty: none.
    private_host_cidrs: tuple[str, ...] = ()

    def lambda_env(self, function: str) -> dict[str, str]:
        """The environment the CDK app gives a function (a puller, a stream consumer or the re-evaluation job), for
        it to run locally."""
        if function == layout.REEVALUATION_FUNCTION:
            return {
                layout.ENV_RECORDS_TABLE: self.records_table,
                layout.ENV_CONTROL_TABLE: self.control_table,
                layout.ENV_PERSONAS_TABLE: self.personas_table,
                layout.ENV_RESOURCE_PREFIX: self.names.prefix,
                layout.ENV_REEVALUATION_QUEUE_URL: self.reevaluation_queue_url,
                layout.ENV_REEVALUATION_DLQ_URL: self.reevaluation_dlq_url,
                # it runs the opt-in rules over stored sales: texts to the outbox, as the opt-in consumer's
                **self._sms_env(),
            }
        if function == SIGNUPS_FUNCTION:
            return {
                layout.ENV_CONTROL_TABLE: self.control_table,
                layout.ENV_PERSONAS_TABLE: self.personas_table,
                layout.ENV_RESOURCE_PREFIX: self.names.prefix,
                ENV_DEFERRAL_QUEUE_URL: self.sms_deferral_queue_url,  # form consent: requests the deferral sends
            }
        if function in (*layout.RULE_FUNCTIONS, POS_SYNC_FUNCTION) or function in sms_names.HANDLER_MODULES:
            env = {
                layout.ENV_RECORDS_TABLE: self.records_table,
                layout.ENV_CONTROL_TABLE: self.control_table,
                layout.ENV_PERSONAS_TABLE: self.personas_table,
                layout.ENV_RESOURCE_PREFIX: self.names.prefix,
            }
            if function in sms_names.HANDLER_MODULES:
                env |= self._sms_env()
            return env
        env = {
            layout.ENV_RECORDS_TABLE: self.records_table,
            layout.ENV_CONTROL_TABLE: self.control_table,
            layout.ENV_ARCHIVE_BUCKET: self.archive_bucket,
            layout.ENV_JOB_QUEUE_URL: self.queue_urls[function],
            layout.ENV_JOB_DLQ_URL: self.dlq_urls[function],
            layout.ENV_RESOURCE_PREFIX: self.names.prefix,
        }
        # As the CDK app sets them: only the on-premises pull calls addresses from credentials.
        private_cidrs = self.private_host_cidrs if function == layout.PULL_FUNCTION[layout.Vendor.PROFITEK] else ()
        env[layout.ENV_ALLOW_PRIVATE_HOSTS] = "true" if private_cidrs else "false"
        if private_cidrs:
            env[layout.ENV_PRIVATE_HOST_CIDRS] = ",".join(private_cidrs)
        return env

    def _sms_env(self) -> dict[str, str]:
        """Texts go to the outbox file instead of End User Messaging SMS; deferrals to the local deferral queue."""
        return {
            ENV_GATEWAY: "outbox",
            ENV_OUTBOX: self.sms_outbox,
            ENV_DEFERRAL_QUEUE_URL: self.sms_deferral_queue_url,
        }


def provision(clients: Any, names: ResourceNames | None = None, region: str = LOCAL_REGION) -> Resources:
    """`clients(service)` returns a boto3 client; idempotent: existing resources are reused."""
    names = names or ResourceNames()
    ddb = clients("dynamodb")
    existing = set(ddb.list_tables().get("TableNames", []))
    if names.records_table not in existing:
        ddb.create_table(
            TableName=names.records_table,
            AttributeDefinitions=[
                {"AttributeName": layout.RECORDS_TABLE_PARTITION_KEY, "AttributeType": "S"},
                {"AttributeName": layout.RECORDS_SCOPE_ATTRIBUTE, "AttributeType": "S"},
                {"AttributeName": layout.RECORDS_SCOPE_KEY_ATTRIBUTE, "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": layout.RECORDS_TABLE_PARTITION_KEY, "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": layout.RECORDS_BY_SCOPE_INDEX,
                    "KeySchema": [
                        {"AttributeName": layout.RECORDS_SCOPE_ATTRIBUTE, "KeyType": "HASH"},
                        {"AttributeName": layout.RECORDS_SCOPE_KEY_ATTRIBUTE, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": layout.RECORDS_STREAM_VIEW_TYPE},
        )
    if names.control_table not in existing:
        ddb.create_table(
            TableName=names.control_table,
            AttributeDefinitions=[
                {"AttributeName": layout.CONTROL_TABLE_PARTITION_KEY, "AttributeType": "S"},
                {"AttributeName": layout.CONTROL_TABLE_SORT_KEY, "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": layout.CONTROL_TABLE_PARTITION_KEY, "KeyType": "HASH"},
                {"AttributeName": layout.CONTROL_TABLE_SORT_KEY, "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.update_time_to_live(
            TableName=names.control_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": layout.CONTROL_TABLE_TTL_ATTRIBUTE},
        )
    if names.personas_table not in existing:
        ddb.create_table(
            TableName=names.personas_table,
            AttributeDefinitions=[
                {"AttributeName": layout.PERSONAS_TABLE_PARTITION_KEY, "AttributeType": "S"},
                {"AttributeName": layout.PERSONAS_TABLE_SORT_KEY, "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": layout.PERSONAS_TABLE_PARTITION_KEY, "KeyType": "HASH"},
                {"AttributeName": layout.PERSONAS_TABLE_SORT_KEY, "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": layout.PERSONAS_STREAM_VIEW_TYPE},
        )
    stream_arn = ddb.describe_table(TableName=names.records_table)["Table"].get("LatestStreamArn", "")

    s3 = clients("s3")
    bucket = names.archive_bucket(LOCAL_ACCOUNT, region)
    buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in buckets:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})

    sqs = clients("sqs")
    resources = Resources(
        names,
        names.records_table,
        names.control_table,
        bucket,
        records_stream_arn=stream_arn,
        personas_table=names.personas_table,
    )
    for function in layout.PULL_VENDORS:
        dlq_url = sqs.create_queue(QueueName=names.pull_dlq(function))["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(
            QueueName=names.pull_queue(function),
            Attributes={
                "VisibilityTimeout": "960",
                "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"3"}}',
            },
        )["QueueUrl"]
        resources.queue_urls[function] = url
        resources.dlq_urls[function] = dlq_url
    resources.personas_stream_arn = ddb.describe_table(TableName=names.personas_table)["Table"].get(
        "LatestStreamArn", ""
    )
    for function in (*layout.RULE_FUNCTIONS, POS_SYNC_FUNCTION):
        # The stream consumers' on-failure destinations: descriptions of record batches that used up their retries.
        resources.rules_dlq_urls[function] = sqs.create_queue(QueueName=names.rules_dlq(function))["QueueUrl"]
    # The re-evaluation job's queue, as the CDK app declares it (reevaluation.py holds its settings).
    resources.reevaluation_dlq_url = sqs.create_queue(QueueName=names.reevaluation_dlq)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=resources.reevaluation_dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    resources.reevaluation_queue_url = sqs.create_queue(
        QueueName=names.reevaluation_queue,
        Attributes={
            "VisibilityTimeout": str(reevaluation.QUEUE_VISIBILITY_SECONDS),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(reevaluation.MAX_RECEIVES)}
            ),
        },
    )["QueueUrl"]
    # The opt-in's deferral queue (requests held for quiet hours), as the CDK app declares it.
    resources.sms_deferral_queue_url = sqs.create_queue(QueueName=sms_names.deferral_queue(names))["QueueUrl"]
    return resources
