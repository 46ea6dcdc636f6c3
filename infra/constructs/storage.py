"""Storage: the records table (streamed to the rules), the control and personas tables and the raw-page archive."""

from __future__ import annotations

from aws_cdk import Acknowledgment as Ack
from aws_cdk import Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions.core import layout
from functions.core.layout import (
    CONTROL_TABLE_PARTITION_KEY,
    CONTROL_TABLE_SORT_KEY,
    CONTROL_TABLE_TTL_ATTRIBUTE,
    ENV_ARCHIVE_BUCKET,
    ENV_CONTROL_TABLE,
    ENV_RECORDS_TABLE,
    PERSONAS_STREAM_VIEW_TYPE,
    PERSONAS_TABLE_PARTITION_KEY,
    PERSONAS_TABLE_SORT_KEY,
    RECORDS_STREAM_VIEW_TYPE,
    RECORDS_TABLE_PARTITION_KEY,
    ResourceNames,
)

# Every archive key starts here (functions.core.layout.archive_key); a test keeps the two in step.
ARCHIVE_RAW_PREFIX = layout.ARCHIVE_ROOT
RAW_TO_INFREQUENT_ACCESS = Duration.days(30)
RAW_TO_GLACIER_INSTANT = Duration.days(180)
# A retried page overwrites its deterministic key; the old version is only kept long enough to recover from a bug.
NONCURRENT_VERSION_EXPIRY = Duration.days(90)
ACCESS_LOG_EXPIRY = Duration.days(365)
INCOMPLETE_UPLOAD_EXPIRY = Duration.days(7)


class Storage(Construct):
    """Data that must survive a stack deletion: every resource here is retained and protected."""

    def __init__(self, scope: Construct, construct_id: str, *, names: ResourceNames) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.records_table = dynamodb.Table(
            self,
            "RecordsTable",
            table_name=names.records_table,
            partition_key=dynamodb.Attribute(name=RECORDS_TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            stream=dynamodb.StreamViewType[RECORDS_STREAM_VIEW_TYPE],
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # A tenant's records from one POS, by kind: what a re-evaluation reads (never a scan of the whole table).
        # Keys only: an item's index keys never change, so the index costs one small write when a record is first
        # stored and nothing when it changes; the job reads the items themselves in batches. Inventory is not in it.
        self.records_table.add_global_secondary_index(
            index_name=layout.RECORDS_BY_SCOPE_INDEX,
            partition_key=dynamodb.Attribute(name=layout.RECORDS_SCOPE_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=layout.RECORDS_SCOPE_KEY_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
        self.control_table = dynamodb.Table(
            self,
            "ControlTable",
            table_name=names.control_table,
            partition_key=dynamodb.Attribute(name=CONTROL_TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=CONTROL_TABLE_SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=CONTROL_TABLE_TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # What the rules make of the records: personas, identity claims, visits, the points ledger, pending sales.
        # Its stream feeds persona -> POS sync (functions.core.streams.PERSONA_CONSUMERS) with new profile images.
        self.personas_table = dynamodb.Table(
            self,
            "PersonasTable",
            table_name=names.personas_table,
            stream=dynamodb.StreamViewType[PERSONAS_STREAM_VIEW_TYPE],
            partition_key=dynamodb.Attribute(name=PERSONAS_TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=PERSONAS_TABLE_SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            bucket_name=names.access_logs_bucket(stack.account, stack.region),
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            # S3 server access logging delivers only to buckets encrypted with S3-managed keys.
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=ACCESS_LOG_EXPIRY,
                    abort_incomplete_multipart_upload_after=INCOMPLETE_UPLOAD_EXPIRY,
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        Validations.of(self.access_logs_bucket.node.default_child).acknowledge(  # type: ignore[arg-type]
            Ack(
                id="AwsSolutions-S1",
                reason="This is the server access log bucket of the archive; logging it into itself would loop.",
            )
        )
        self.archive_bucket = s3.Bucket(
            self,
            "ArchiveBucket",
            bucket_name=names.archive_bucket(stack.account, stack.region),
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="archive/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="tier-raw-pages",
                    prefix=ARCHIVE_RAW_PREFIX,
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                            transition_after=RAW_TO_INFREQUENT_ACCESS,
                        ),
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                            transition_after=RAW_TO_GLACIER_INSTANT,
                        ),
                    ],
                    noncurrent_version_expiration=NONCURRENT_VERSION_EXPIRY,
                ),
                s3.LifecycleRule(
                    id="clean-up-uploads-and-markers",
                    abort_incomplete_multipart_upload_after=INCOMPLETE_UPLOAD_EXPIRY,
                    expired_object_delete_marker=True,
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )

    @property
    def tables(self) -> dict[str, dynamodb.Table]:
        """Every table, by a short label (alarms and dashboards)."""
        return {"records": self.records_table, "control": self.control_table, "personas": self.personas_table}

    @property
    def environment(self) -> dict[str, str]:
        """The variables a function needs to find the storage."""
        return {
            ENV_RECORDS_TABLE: self.records_table.table_name,
            ENV_CONTROL_TABLE: self.control_table.table_name,
            ENV_ARCHIVE_BUCKET: self.archive_bucket.bucket_name,
        }

    def records_by_scope_index_arn(self) -> str:
        return f"{self.records_table.table_arn}/index/{layout.RECORDS_BY_SCOPE_INDEX}"

    def raw_objects_arn(self) -> str:
        return self.archive_bucket.arn_for_objects(f"{ARCHIVE_RAW_PREFIX}*")
