"""Persona -> POS sync: its event source on the personas table stream, failure queue and exact permissions."""

from __future__ import annotations

import json
from typing import Any

from functions.core.layout import DEFAULT_STAGE, FORM_SOURCE, PERSONA_PROFILE_SK, ResourceNames
from functions.core.streams import PERSONA_CONSUMERS, POS_SYNC_FUNCTION
from tests.infra import cfn
from tests.infra.conftest import Synthesized

NAMES = ResourceNames.for_stage(DEFAULT_STAGE)
SPEC = PERSONA_CONSUMERS[POS_SYNC_FUNCTION]


def _arn(logical_id: str, attribute: str = "Arn") -> str:
    return f"${{{logical_id}.{attribute}}}"


def test_the_personas_table_streams_new_images(synthesized: Synthesized, template: dict[str, Any]) -> None:
    table = template["Resources"][synthesized.logical_id(synthesized.stack.storage.personas_table)]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}


def test_pos_sync_reads_form_profiles_from_the_personas_stream(
    synthesized: Synthesized, template: dict[str, Any]
) -> None:
    rule = synthesized.stack.pos_sync.rule
    [mapping] = [
        m["Properties"]
        for m in cfn.of_type(template, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": synthesized.logical_id(rule.function)}
    ]
    personas = synthesized.logical_id(synthesized.stack.storage.personas_table)

    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [personas, "StreamArn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == SPEC.max_retry_attempts
    assert mapping["BatchSize"] == SPEC.batch_size
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": [synthesized.logical_id(rule.dead_letter_queue), "Arn"]
    }
    [pattern] = [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]
    assert pattern["dynamodb"]["Keys"] == {"sk": {"S": [PERSONA_PROFILE_SK]}}
    assert pattern["dynamodb"]["NewImage"] == {"sources": {"SS": [FORM_SOURCE]}}
    # its own writes are sync records and identity claims, never profiles: they cannot come back to it
    assert SPEC.wants({"eventName": "INSERT", "dynamodb": {"Keys": {"sk": {"S": "PROFILE"}}, "NewImage": {
        "sources": {"SS": ["form", "posabit"]}}}})  # fmt: skip
    assert not SPEC.wants({"eventName": "INSERT", "dynamodb": {"Keys": {"sk": {"S": "posabit#c1"}}, "NewImage": {
        "state": {"S": "created"}}}})  # fmt: skip
    assert not SPEC.wants({"eventName": "MODIFY", "dynamodb": {"Keys": {"sk": {"S": "PROFILE"}}, "NewImage": {
        "sources": {"SS": ["thsuite"]}}}})  # fmt: skip


def test_pos_sync_role_has_exactly_the_expected_permissions(synthesized: Synthesized, template: dict[str, Any]) -> None:
    rule = synthesized.stack.pos_sync.rule
    storage = synthesized.stack.storage
    logical = synthesized.logical_id

    permissions = cfn.role_permissions(template, logical(rule.role))

    secrets = f"arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:{NAMES.secret_root}"
    assert permissions == {
        _arn(logical(rule.log_group)): {"logs:CreateLogStream", "logs:PutLogEvents"},
        _arn(logical(storage.personas_table), "StreamArn"): {
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
        },
        "*": {"dynamodb:ListStreams"},
        _arn(logical(storage.personas_table)): {
            "dynamodb:BatchGetItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:PutItem",
        },
        _arn(logical(storage.control_table)): {"dynamodb:Query"},
        _arn(logical(rule.dead_letter_queue)): {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"},
        f"arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{NAMES.ssm_root}/*": {
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:GetParametersByPath",
        },
        # only the writable POSes' credentials: no THSuite, Profitek or Auphan secret, no records table
        f"{secrets}*/flourish/*": {"secretsmanager:GetSecretValue"},
        f"{secrets}*/posabit/*": {"secretsmanager:GetSecretValue"},
    }
