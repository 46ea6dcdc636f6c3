"""Pull functions: shared runtime settings, their own queue, event source, schedule and log group."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from functions.core.layout import (
    DEFAULT_STAGE,
    ENV_ALLOW_PRIVATE_HOSTS,
    ENV_ARCHIVE_BUCKET,
    ENV_CONTROL_TABLE,
    ENV_JOB_DLQ_URL,
    ENV_JOB_QUEUE_URL,
    ENV_RECORDS_TABLE,
    ENV_RESOURCE_PREFIX,
    PULL_VENDORS,
    REEVALUATION_FUNCTION,
    RULE_FUNCTIONS,
    ResourceNames,
)
from functions.core.signups.endpoint import FUNCTION as SIGNUPS_FUNCTION
from functions.core.sms.names import DEFERRED_FUNCTION, REPLY_FUNCTION
from functions.core.streams import PERSONA_CONSUMERS
from infra.constants import PULL_MAX_CONCURRENCY
from infra.constructs.pulls import PullFunction
from tests.infra import cfn
from tests.infra.conftest import Synthesized

NAMES = ResourceNames.for_stage(DEFAULT_STAGE)
PULL_FUNCTIONS = sorted(PULL_VENDORS)


def _pull(synthesized: Synthesized, name: str) -> PullFunction:
    return synthesized.stack.pulls.functions[name]


def _props(synthesized: Synthesized, template: dict[str, Any], construct: Any) -> dict[str, Any]:
    return template["Resources"][synthesized.logical_id(construct)]["Properties"]


def test_there_is_one_pull_function_per_layout_entry(template: dict[str, Any]) -> None:
    functions = cfn.of_type(template, "AWS::Lambda::Function").values()
    assert sorted(f["Properties"]["FunctionName"] for f in functions) == sorted(
        NAMES.function_name(name)
        for name in (
            *PULL_FUNCTIONS,
            *RULE_FUNCTIONS,
            *PERSONA_CONSUMERS,
            REEVALUATION_FUNCTION,
            DEFERRED_FUNCTION,
            REPLY_FUNCTION,
            SIGNUPS_FUNCTION,
        )
    ), "the pull functions, the stream consumers, the re-evaluation job, the opt-in's deferral and reply, the signups"


@pytest.mark.parametrize("name", PULL_FUNCTIONS)
def test_function_settings(synthesized: Synthesized, template: dict[str, Any], name: str) -> None:
    props = _props(synthesized, template, _pull(synthesized, name).function)

    assert props["Handler"] == f"functions.{name}.handler.handler"
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == 512
    assert props["Timeout"] == 900
    assert props["LoggingConfig"]["LogFormat"] == "JSON"


@pytest.mark.parametrize("name", PULL_FUNCTIONS)
def test_function_environment(synthesized: Synthesized, template: dict[str, Any], name: str) -> None:
    pull = _pull(synthesized, name)
    storage = synthesized.stack.storage
    variables = _props(synthesized, template, pull.function)["Environment"]["Variables"]

    assert variables == {
        ENV_RECORDS_TABLE: {"Ref": synthesized.logical_id(storage.records_table)},
        ENV_CONTROL_TABLE: {"Ref": synthesized.logical_id(storage.control_table)},
        ENV_ARCHIVE_BUCKET: {"Ref": synthesized.logical_id(storage.archive_bucket)},
        ENV_JOB_QUEUE_URL: {"Ref": synthesized.logical_id(pull.queue)},
        ENV_JOB_DLQ_URL: {"Ref": synthesized.logical_id(pull.dead_letter_queue)},
        ENV_RESOURCE_PREFIX: NAMES.prefix,
        ENV_ALLOW_PRIVATE_HOSTS: "false",
        "POWERTOOLS_SERVICE_NAME": name,
        "POWERTOOLS_METRICS_NAMESPACE": NAMES.metrics_namespace,
    }


@pytest.mark.parametrize("name", PULL_FUNCTIONS)
def test_each_function_logs_to_its_own_retained_log_group(
    synthesized: Synthesized, template: dict[str, Any], name: str
) -> None:
    pull = _pull(synthesized, name)
    log_group_id = synthesized.logical_id(pull.log_group)
    log_group = template["Resources"][log_group_id]

    assert _props(synthesized, template, pull.function)["LoggingConfig"]["LogGroup"] == {"Ref": log_group_id}
    assert log_group["Properties"]["LogGroupName"] == f"/aws/lambda/{NAMES.function_name(name)}"
    assert log_group["Properties"]["RetentionInDays"] == 90
    assert log_group["DeletionPolicy"] == "Retain"


def test_functions_share_one_code_asset_and_have_their_own_roles(template: dict[str, Any]) -> None:
    functions = cfn.of_type(template, "AWS::Lambda::Function").values()

    assert len({json.dumps(f["Properties"]["Code"], sort_keys=True) for f in functions}) == 1
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions]
    assert len(set(roles)) == len(roles) == len(PULL_FUNCTIONS) + len(RULE_FUNCTIONS) + len(PERSONA_CONSUMERS) + 3 + 1


@pytest.mark.parametrize("name", PULL_FUNCTIONS)
def test_jobs_queue_redrives_to_its_dlq(synthesized: Synthesized, template: dict[str, Any], name: str) -> None:
    pull = _pull(synthesized, name)
    queue = _props(synthesized, template, pull.queue)
    dlq = _props(synthesized, template, pull.dead_letter_queue)
    timeout = _props(synthesized, template, pull.function)["Timeout"]

    assert queue["QueueName"] == NAMES.pull_queue(name)
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [synthesized.logical_id(pull.dead_letter_queue), "Arn"]},
        "maxReceiveCount": 3,
    }
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["MessageRetentionPeriod"] < dlq["MessageRetentionPeriod"], "a redriven message keeps its age"
    assert dlq["QueueName"] == NAMES.pull_dlq(name)
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_every_queue_is_encrypted_and_denies_plain_http(
    synthesized: Synthesized, assertions: Template, template: dict[str, Any]
) -> None:
    queues = cfn.of_type(template, "AWS::SQS::Queue")
    policies = cfn.of_type(template, "AWS::SQS::QueuePolicy").values()
    # The settings-change rule may also send to the re-evaluation jobs queue and, what it cannot deliver there, to
    # that queue's dead-letter queue (tests/infra/test_reevaluation.py).
    reevaluation = synthesized.stack.reevaluation
    ruled = {synthesized.logical_id(reevaluation.queue), synthesized.logical_id(reevaluation.dead_letter_queue)}

    # per rule: its stream failure queue; the opt-in: its deferral queue and DLQ, and the reply function's DLQ
    assert len(queues) == 3 * len(PULL_FUNCTIONS) + len(RULE_FUNCTIONS) + len(PERSONA_CONSUMERS) + 2 + 3
    for queue_id, queue in queues.items():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        [policy] = [p for p in policies if p["Properties"]["Queues"] == [{"Ref": queue_id}]]
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert len(statements) == (2 if queue_id in ruled else 1)
        assert statements[:1] == [
            {
                "Action": "sqs:*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
            }
        ]


@pytest.mark.parametrize(
    ("name", "concurrency"), [("pull_thsuite", 2), ("pull_posabit", 3), ("pull_flourish", 3), ("pull_onprem", 5)]
)
def test_event_source_takes_one_job_at_a_time_with_capped_concurrency(
    assertions: Template, synthesized: Synthesized, name: str, concurrency: int
) -> None:
    pull = _pull(synthesized, name)
    assertions.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [synthesized.logical_id(pull.queue), "Arn"]},
            "FunctionName": {"Ref": synthesized.logical_id(pull.function)},
            "BatchSize": 1,
            "ScalingConfig": {"MaximumConcurrency": concurrency},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )


def test_only_the_jobs_queues_feed_the_functions(synthesized: Synthesized, template: dict[str, Any]) -> None:
    mappings = cfn.of_type(template, "AWS::Lambda::EventSourceMapping").values()
    queue_fed = [m for m in mappings if m["Properties"]["EventSourceArn"]["Fn::GetAtt"][1] == "Arn"]
    assert sorted(m["Properties"]["FunctionName"]["Ref"] for m in queue_fed) == sorted(
        [synthesized.logical_id(_pull(synthesized, name).function) for name in PULL_FUNCTIONS]
        + [synthesized.logical_id(synthesized.stack.reevaluation.function)]
        + [synthesized.logical_id(synthesized.stack.messaging.deferred_function)]
    )


@pytest.mark.parametrize("name", PULL_FUNCTIONS)
def test_schedule_dispatches_every_fifteen_minutes_by_default(
    synthesized: Synthesized, template: dict[str, Any], name: str
) -> None:
    pull = _pull(synthesized, name)
    schedule = _props(synthesized, template, pull.schedule)
    target = schedule["Target"]

    assert schedule["Name"] == NAMES.schedule_name(name)
    # The dispatch tick: the fastest any integration is pulled; its pull_interval_minutes decides each tick
    assert schedule["ScheduleExpression"] == "rate(15 minutes)"
    assert schedule["State"] == "ENABLED"
    assert target["Arn"] == {"Fn::GetAtt": [synthesized.logical_id(pull.function), "Arn"]}
    assert json.loads(target["Input"]) == {"action": "dispatch"}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert target["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": [synthesized.logical_id(pull.dispatch_dead_letter_queue), "Arn"]}
    }


@pytest.mark.parametrize("name", PULL_FUNCTIONS)
def test_failed_async_dispatch_lands_in_the_dispatch_dlq(
    assertions: Template, synthesized: Synthesized, name: str
) -> None:
    pull = _pull(synthesized, name)
    assertions.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": synthesized.logical_id(pull.function)},
            "DestinationConfig": {
                "OnFailure": {
                    "Destination": {"Fn::GetAtt": [synthesized.logical_id(pull.dispatch_dead_letter_queue), "Arn"]}
                }
            },
        },
    )


def test_continuations_on_the_own_queue_are_not_cut_by_loop_detection(
    synthesized: Synthesized, template: dict[str, Any]
) -> None:
    for name in PULL_FUNCTIONS:
        assert _props(synthesized, template, _pull(synthesized, name).function)["RecursiveLoop"] == "Allow"


def test_every_pull_function_has_a_concurrency_cap() -> None:
    assert PULL_MAX_CONCURRENCY.keys() == PULL_VENDORS.keys()
    assert all(2 <= cap <= 1000 for cap in PULL_MAX_CONCURRENCY.values()), "the SQS event source range"
