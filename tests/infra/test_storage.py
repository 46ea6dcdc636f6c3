"""Storage: the tables and buckets keep data safe (streams, PITR, encryption, TLS, lifecycle, retention)."""

from __future__ import annotations

from datetime import date
from typing import Any

from aws_cdk.assertions import Match, Template

from functions.core.layout import (
    DEFAULT_STAGE,
    PERSONAS_TABLE_PARTITION_KEY,
    PERSONAS_TABLE_SORT_KEY,
    ResourceNames,
    Stream,
    Vendor,
    archive_key,
)
from infra.constructs.storage import ARCHIVE_RAW_PREFIX
from tests.infra import cfn
from tests.infra.conftest import Synthesized

NAMES = ResourceNames.for_stage(DEFAULT_STAGE)


def _resource(synthesized: Synthesized, template: dict[str, Any], construct: Any) -> dict[str, Any]:
    return template["Resources"][synthesized.logical_id(construct)]


def test_records_table_streams_both_images_and_is_protected(synthesized: Synthesized, template: dict[str, Any]) -> None:
    table = _resource(synthesized, template, synthesized.stack.storage.records_table)
    props = table["Properties"]

    assert props["TableName"] == NAMES.records_table
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "tenant_vendor", "AttributeType": "S"},
        {"AttributeName": "kind_key", "AttributeType": "S"},
    ]
    # The re-evaluation reads a tenant+POS's records by kind through this index: keys only (the items are read in
    # batches), so a record costs the index one small write when first stored and nothing when it changes.
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "by-tenant-vendor",
            "KeySchema": [
                {"AttributeName": "tenant_vendor", "KeyType": "HASH"},
                {"AttributeName": "kind_key", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_control_table_has_sort_key_ttl_and_protection(synthesized: Synthesized, template: dict[str, Any]) -> None:
    table = _resource(synthesized, template, synthesized.stack.storage.control_table)
    props = table["Properties"]

    assert props["TableName"] == NAMES.control_table
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["DeletionProtectionEnabled"] is True
    assert "StreamSpecification" not in props
    assert table["DeletionPolicy"] == "Retain"


def test_personas_table_has_layout_keys_and_is_protected(synthesized: Synthesized, template: dict[str, Any]) -> None:
    table = _resource(synthesized, template, synthesized.stack.storage.personas_table)
    props = table["Properties"]

    assert props["TableName"] == NAMES.personas_table
    assert props["KeySchema"] == [
        {"AttributeName": PERSONAS_TABLE_PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": PERSONAS_TABLE_SORT_KEY, "KeyType": "RANGE"},
    ]
    assert props["AttributeDefinitions"] == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["DeletionProtectionEnabled"] is True
    # persona -> POS sync reads new profile images (functions.core.streams.PERSONA_CONSUMERS); nothing needs old ones
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_there_are_three_tables(template: dict[str, Any]) -> None:
    assert len(cfn.of_type(template, "AWS::DynamoDB::Table")) == 3


def test_archive_bucket_is_private_encrypted_versioned_logged_and_retained(
    synthesized: Synthesized, template: dict[str, Any]
) -> None:
    storage = synthesized.stack.storage
    bucket = _resource(synthesized, template, storage.archive_bucket)
    props = bucket["Properties"]

    assert cfn.render(props["BucketName"]) == NAMES.archive_bucket("${AWS::AccountId}", "${AWS::Region}")
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": synthesized.logical_id(storage.access_logs_bucket)
    }
    assert bucket["DeletionPolicy"] == "Retain"


def test_archive_lifecycle_tiers_raw_pages_and_cleans_up(synthesized: Synthesized, template: dict[str, Any]) -> None:
    rules = _resource(synthesized, template, synthesized.stack.storage.archive_bucket)["Properties"][
        "LifecycleConfiguration"
    ]["Rules"]
    by_id = {rule["Id"]: rule for rule in rules}

    raw = by_id["tier-raw-pages"]
    assert raw["Status"] == "Enabled"
    assert raw["Prefix"] == "raw/"
    assert raw["Transitions"] == [
        {"StorageClass": "INTELLIGENT_TIERING", "TransitionInDays": 30},
        {"StorageClass": "GLACIER_IR", "TransitionInDays": 180},
    ]
    assert raw["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0
    cleanup = by_id["clean-up-uploads-and-markers"]
    assert "Prefix" not in cleanup, "incomplete uploads are aborted everywhere in the bucket"
    assert cleanup["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}


def test_lifecycle_prefix_matches_the_archive_key_layout() -> None:
    key = archive_key("t1", Vendor.POSABIT, "c1", Stream.SALES, date(2026, 1, 2), "run1", 1)
    assert key.startswith(ARCHIVE_RAW_PREFIX)


def test_every_bucket_denies_plain_http(template: dict[str, Any]) -> None:
    buckets = cfn.of_type(template, "AWS::S3::Bucket")
    policies = cfn.of_type(template, "AWS::S3::BucketPolicy").values()

    assert len(buckets) == 2
    for bucket_id in buckets:
        [policy] = [p for p in policies if p["Properties"]["Bucket"] == {"Ref": bucket_id}]
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert {
            "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
        }.items() <= next(s for s in statements if s["Effect"] == "Deny").items()


def test_access_log_bucket_is_private_and_expires_logs(assertions: Template) -> None:
    assertions.has_resource(
        "AWS::S3::Bucket",
        {
            "Properties": Match.object_like(
                {
                    "PublicAccessBlockConfiguration": Match.object_like({"BlockPublicPolicy": True}),
                    "LifecycleConfiguration": {
                        "Rules": [Match.object_like({"ExpirationInDays": 365, "Status": "Enabled"})]
                    },
                    "LoggingConfiguration": Match.absent(),
                }
            ),
            "DeletionPolicy": "Retain",
        },
    )
