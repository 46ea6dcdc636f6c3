"""Rules: each stream consumer's event source mapping, failure queue, function settings and exact permissions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from functions.core.layout import (
    DEFAULT_STAGE,
    ENV_CONTROL_TABLE,
    ENV_PERSONAS_TABLE,
    ENV_RECORDS_TABLE,
    ENV_RESOURCE_PREFIX,
    RULE_FUNCTIONS,
    ResourceNames,
)
from functions.core.sms.deferral import ENV_DEFERRAL_QUEUE_URL
from functions.core.streams import CONSUMERS, matches
from infra.constructs.rules import RuleFunction
from tests.infra import cfn
from tests.infra.conftest import REPO_ROOT, Synthesized

NAMES = ResourceNames.for_stage(DEFAULT_STAGE)
STREAM_EVENT = Path(REPO_ROOT) / "tests" / "fixtures" / "streams" / "records_stream_event.json"


def _rule(synthesized: Synthesized, name: str) -> RuleFunction:
    return synthesized.stack.rules.functions[name]


def _props(synthesized: Synthesized, template: dict[str, Any], construct: Any) -> dict[str, Any]:
    return template["Resources"][synthesized.logical_id(construct)]["Properties"]


def _mapping(synthesized: Synthesized, template: dict[str, Any], name: str) -> dict[str, Any]:
    function_id = synthesized.logical_id(_rule(synthesized, name).function)
    [mapping] = [
        m["Properties"]
        for m in cfn.of_type(template, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    return mapping


def _arn(logical_id: str, attribute: str = "Arn") -> str:
    return f"${{{logical_id}.{attribute}}}"


def test_there_is_one_rule_per_consumer() -> None:
    assert tuple(CONSUMERS) == RULE_FUNCTIONS == ("personas", "enroll", "optin")


@pytest.mark.parametrize("name", RULE_FUNCTIONS)
def test_mapping_reads_the_records_stream_with_the_shared_filter_criteria(
    synthesized: Synthesized, template: dict[str, Any], name: str
) -> None:
    mapping = _mapping(synthesized, template, name)

    assert mapping["EventSourceArn"] == {
        "Fn::GetAtt": [synthesized.logical_id(synthesized.stack.storage.records_table), "StreamArn"]
    }
    # The very strings functions.core.streams builds, which the local pump applies too.
    assert mapping["FilterCriteria"] == CONSUMERS[name].filter_criteria
    assert [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]] == list(CONSUMERS[name].patterns)


def test_filter_patterns_name_the_record_kinds_each_rule_acts_on(
    synthesized: Synthesized, template: dict[str, Any]
) -> None:
    def kinds(name: str) -> list[str]:
        [pattern] = [
            json.loads(f["Pattern"]) for f in _mapping(synthesized, template, name)["FilterCriteria"]["Filters"]
        ]
        assert pattern["eventName"] == ["INSERT", "MODIFY"]
        return list(pattern["dynamodb"]["NewImage"]["kind"]["S"])

    assert kinds("personas") == ["shopper"]
    assert kinds("enroll") == ["sale", "loyalty_balance"]
    assert kinds("optin") == ["sale", "shopper"]  # sales ask for the opt-in; shoppers carry POS consent


def test_deployed_patterns_route_real_stream_records(synthesized: Synthesized, template: dict[str, Any]) -> None:
    # Given the patterns as deployed and records table changes as Lambda delivers them
    records = json.loads(STREAM_EVENT.read_text())["Records"]

    def delivered(name: str) -> list[str]:
        patterns = [
            json.loads(f["Pattern"]) for f in _mapping(synthesized, template, name)["FilterCriteria"]["Filters"]
        ]
        return [
            f"{r['eventName']} {r['dynamodb']['NewImage']['kind']['S']}"
            for r in records
            if any(matches(p, r) for p in patterns)
        ]

    # Then each rule gets only the changes it acts on: no products, no removals
    assert delivered("personas") == ["INSERT shopper", "MODIFY shopper"]
    assert delivered("enroll") == ["INSERT sale", "INSERT loyalty_balance", "MODIFY sale"]


@pytest.mark.parametrize("name", RULE_FUNCTIONS)
def test_mapping_retries_boundedly_bisects_and_dead_letters(
    synthesized: Synthesized, template: dict[str, Any], name: str
) -> None:
    mapping = _mapping(synthesized, template, name)
    consumer = CONSUMERS[name]

    assert mapping["BatchSize"] == consumer.batch_size == 100
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == consumer.max_retry_attempts
    assert 0 <= mapping["MaximumRetryAttempts"] <= 10, "bounded: -1 would retry until the record expires"
    assert mapping["MaximumRecordAgeInSeconds"] == consumer.max_record_age_seconds
    assert 60 <= mapping["MaximumRecordAgeInSeconds"] < 24 * 3600, "bounded, and inside the stream's retention"
    assert mapping["MaximumBatchingWindowInSeconds"] <= 60, "rule effects within 60 s of a page landing"
    assert mapping["ParallelizationFactor"] == consumer.parallelization_factor
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["DestinationConfig"] == {
        "OnFailure": {
            "Destination": {"Fn::GetAtt": [synthesized.logical_id(_rule(synthesized, name).dead_letter_queue), "Arn"]}
        }
    }


@pytest.mark.parametrize("name", RULE_FUNCTIONS)
def test_failure_queue_is_named_encrypted_and_keeps_messages_two_weeks(
    synthesized: Synthesized, template: dict[str, Any], name: str
) -> None:
    queue = _props(synthesized, template, _rule(synthesized, name).dead_letter_queue)

    assert queue["QueueName"] == NAMES.rules_dlq(name)
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert "RedrivePolicy" not in queue


@pytest.mark.parametrize("name", RULE_FUNCTIONS)
def test_function_settings_and_environment(synthesized: Synthesized, template: dict[str, Any], name: str) -> None:
    rule = _rule(synthesized, name)
    storage = synthesized.stack.storage
    props = _props(synthesized, template, rule.function)

    assert props["FunctionName"] == NAMES.function_name(name)
    assert props["Handler"] == f"functions.{name}.handler.handler"
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == CONSUMERS[name].memory_mb
    assert props["Timeout"] == CONSUMERS[name].timeout_seconds
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": synthesized.logical_id(rule.log_group)}
    assert "RecursiveLoop" not in props, "rules never write what triggers them, so loop detection stays on"
    assert props["Environment"]["Variables"] == {
        ENV_RECORDS_TABLE: {"Ref": synthesized.logical_id(storage.records_table)},
        ENV_CONTROL_TABLE: {"Ref": synthesized.logical_id(storage.control_table)},
        ENV_PERSONAS_TABLE: {"Ref": synthesized.logical_id(storage.personas_table)},
        ENV_RESOURCE_PREFIX: NAMES.prefix,
        "POWERTOOLS_SERVICE_NAME": name,
        "POWERTOOLS_METRICS_NAMESPACE": NAMES.metrics_namespace,
        # the opt-in defers requests for quiet hours onto its queue (no SMS identity in the default context)
        **({ENV_DEFERRAL_QUEUE_URL: {"Ref": _deferral_queue(synthesized)}} if name == "optin" else {}),
    }


@pytest.mark.parametrize("name", RULE_FUNCTIONS)
def test_rule_role_has_exactly_the_expected_permissions(
    synthesized: Synthesized, template: dict[str, Any], name: str
) -> None:
    rule = _rule(synthesized, name)
    storage = synthesized.stack.storage
    logical = synthesized.logical_id

    permissions = cfn.role_permissions(template, logical(rule.role))

    assert permissions == {
        _arn(logical(rule.log_group)): {"logs:CreateLogStream", "logs:PutLogEvents"},
        # the event source mapping reads the stream with the function's role
        _arn(logical(storage.records_table), "StreamArn"): {
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
        },
        "*": {"dynamodb:ListStreams"},
        # read-only on records: a rule's writes can never retrigger it through the records stream
        _arn(logical(storage.records_table)): {"dynamodb:GetItem"},
        _arn(logical(storage.personas_table)): {
            "dynamodb:BatchGetItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
        },
        _arn(logical(storage.control_table)): {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
        },
        _arn(logical(rule.dead_letter_queue)): {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"},
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default": {"events:PutEvents"},
        f"arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{NAMES.ssm_root}/*": {
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:GetParametersByPath",
        },
        # the opt-in defers requests onto its queue; without an SMS identity it may send no text at all
        **({_arn(_deferral_queue(synthesized)): {"sqs:SendMessage"}} if name == "optin" else {}),
    }


def _deferral_queue(synthesized: Synthesized) -> str:
    return synthesized.logical_id(synthesized.stack.messaging.deferral_queue)


def test_only_the_rules_read_the_records_stream(synthesized: Synthesized, template: dict[str, Any]) -> None:
    stream_arn = {"Fn::GetAtt": [synthesized.logical_id(synthesized.stack.storage.records_table), "StreamArn"]}
    readers = [
        m["Properties"]["FunctionName"]["Ref"]
        for m in cfn.of_type(template, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == stream_arn
    ]

    assert sorted(readers) == sorted(synthesized.logical_id(_rule(synthesized, n).function) for n in RULE_FUNCTIONS)


@pytest.mark.parametrize("name", RULE_FUNCTIONS)
def test_rule_alarms_on_errors_dead_letters_and_lag(
    synthesized: Synthesized, template: dict[str, Any], name: str
) -> None:
    rule = _rule(synthesized, name)
    alarms = [a["Properties"] for a in cfn.of_type(template, "AWS::CloudWatch::Alarm").values()]

    def watching(metric: str, dimension: Any) -> list[dict[str, Any]]:
        return [a for a in alarms if a.get("MetricName") == metric and a["Dimensions"][0]["Value"] == dimension]

    function_ref = {"Ref": synthesized.logical_id(rule.function)}
    queue_name = {"Fn::GetAtt": [synthesized.logical_id(rule.dead_letter_queue), "QueueName"]}
    assert len(watching("Errors", function_ref)) == 1
    assert len(watching("ApproximateNumberOfMessagesVisible", queue_name)) == 1
    [lag] = watching("IteratorAge", function_ref)
    assert lag["Statistic"] == "Maximum"
    assert 60_000 <= lag["Threshold"] <= 15 * 60_000
    assert lag["EvaluationPeriods"] > 1, "a burst after a large pull is not an outage"
