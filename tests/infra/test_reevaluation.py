"""The re-evaluation job: the settings-change rule and its target, the queue and its policy, the event source
mapping, the function's settings and its exact permissions."""

from __future__ import annotations

from typing import Any

from functions.core import reevaluation
from functions.core.layout import (
    DEFAULT_STAGE,
    ENV_CONTROL_TABLE,
    ENV_PERSONAS_TABLE,
    ENV_RECORDS_TABLE,
    ENV_REEVALUATION_DLQ_URL,
    ENV_REEVALUATION_QUEUE_URL,
    ENV_RESOURCE_PREFIX,
    REEVALUATION_FUNCTION,
    ResourceNames,
)
from functions.core.sms.deferral import ENV_DEFERRAL_QUEUE_URL
from infra import outputs
from infra.constructs.reevaluation import Reevaluation
from tests.infra import cfn
from tests.infra.conftest import Synthesized
from tests.infra.test_rules import _arn

NAMES = ResourceNames.for_stage(DEFAULT_STAGE)
PERSONAS = {
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
}
CONTROL = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"}
SQS_CONSUME = {
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
}


def _job(synthesized: Synthesized) -> Reevaluation:
    return synthesized.stack.reevaluation


def _props(synthesized: Synthesized, template: dict[str, Any], construct: Any) -> dict[str, Any]:
    return template["Resources"][synthesized.logical_id(construct)]["Properties"]


def test_the_rule_sends_edits_of_this_stages_settings_parameters_to_the_jobs_queue(
    synthesized: Synthesized, template: dict[str, Any]
) -> None:
    job = _job(synthesized)
    rule = _props(synthesized, template, job.rule)

    assert rule["Name"] == NAMES.settings_change_rule == "possync-prod-settings-changes"
    assert rule["State"] == "ENABLED"
    assert rule["EventPattern"] == {
        "source": ["aws.ssm"],
        "detail-type": ["Parameter Store Change"],
        "detail": {"name": [{"prefix": "/possync-prod/tenants/"}, {"prefix": "possync-prod/tenants/"}]},
    }
    assert rule["EventPattern"] == reevaluation.settings_change_pattern(NAMES)
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [synthesized.logical_id(job.queue), "Arn"]}
    assert "Input" not in target and "InputPath" not in target  # the whole event is the message body
    # an event the queue does not take is retried within the hour, then kept in the jobs DLQ (alarmed) as the job
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [synthesized.logical_id(job.dead_letter_queue), "Arn"]}}


def test_only_that_rule_may_send_to_the_jobs_queue(synthesized: Synthesized, template: dict[str, Any]) -> None:
    job = _job(synthesized)
    queue_id = synthesized.logical_id(job.queue)
    [policy] = [
        p
        for p in cfn.of_type(template, "AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    [tls, events] = policy["Properties"]["PolicyDocument"]["Statement"]

    assert (tls["Effect"], tls["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    assert events["Effect"] == "Allow"
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert set(cfn.as_list(events["Action"])) == {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
    assert events["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert events["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [synthesized.logical_id(job.rule), "Arn"]}}
    }


def test_only_that_rule_may_send_undelivered_events_to_the_dead_letter_queue(
    synthesized: Synthesized, template: dict[str, Any]
) -> None:
    job = _job(synthesized)
    dlq_id = synthesized.logical_id(job.dead_letter_queue)
    [policy] = [
        p
        for p in cfn.of_type(template, "AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": dlq_id}]
    ]
    [tls, events] = policy["Properties"]["PolicyDocument"]["Statement"]

    assert (tls["Effect"], tls["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    assert (events["Effect"], events["Principal"]) == ("Allow", {"Service": "events.amazonaws.com"})
    assert events["Action"] == "sqs:SendMessage"
    assert events["Resource"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    assert events["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [synthesized.logical_id(job.rule), "Arn"]}}
    }


def test_the_jobs_queue_retries_a_few_times_then_dead_letters(
    synthesized: Synthesized, template: dict[str, Any]
) -> None:
    job = _job(synthesized)
    queue = _props(synthesized, template, job.queue)
    dlq = _props(synthesized, template, job.dead_letter_queue)
    timeout = _props(synthesized, template, job.function)["Timeout"]

    assert (queue["QueueName"], dlq["QueueName"]) == (
        "possync-prod-reevaluate-jobs",
        "possync-prod-reevaluate-jobs-dlq",
    )
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [synthesized.logical_id(job.dead_letter_queue), "Arn"]},
        "maxReceiveCount": reevaluation.MAX_RECEIVES,
    }
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["MessageRetentionPeriod"] < dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_the_event_source_hands_one_job_at_a_time_with_capped_concurrency_and_partial_failures(
    synthesized: Synthesized, template: dict[str, Any]
) -> None:
    job = _job(synthesized)
    [mapping] = [
        m["Properties"]
        for m in cfn.of_type(template, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": synthesized.logical_id(job.function)}
    ]

    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [synthesized.logical_id(job.queue), "Arn"]}
    assert mapping["BatchSize"] == 1
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": reevaluation.MAX_CONCURRENCY}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_function_settings_and_environment(synthesized: Synthesized, template: dict[str, Any]) -> None:
    job = _job(synthesized)
    storage = synthesized.stack.storage
    props = _props(synthesized, template, job.function)

    assert props["FunctionName"] == NAMES.function_name(REEVALUATION_FUNCTION) == "possync-prod-reevaluate"
    assert props["Handler"] == "functions.reevaluate.handler.handler"
    assert (props["Runtime"], props["Architectures"]) == ("python3.12", ["arm64"])
    assert props["Timeout"] == reevaluation.FUNCTION_TIMEOUT_SECONDS
    assert props["Timeout"] > reevaluation.TIME_BUDGET_SECONDS * 2, "a page always fits in what is left"
    assert props["RecursiveLoop"] == "Allow"  # continuations go back on its own queue
    assert props["Environment"]["Variables"] == {
        ENV_RECORDS_TABLE: {"Ref": synthesized.logical_id(storage.records_table)},
        ENV_CONTROL_TABLE: {"Ref": synthesized.logical_id(storage.control_table)},
        ENV_PERSONAS_TABLE: {"Ref": synthesized.logical_id(storage.personas_table)},
        ENV_RESOURCE_PREFIX: NAMES.prefix,
        ENV_REEVALUATION_QUEUE_URL: {"Ref": synthesized.logical_id(job.queue)},
        ENV_REEVALUATION_DLQ_URL: {"Ref": synthesized.logical_id(job.dead_letter_queue)},
        # the opt-in requests of stored sales are deferred for quiet hours on the opt-in's own queue
        ENV_DEFERRAL_QUEUE_URL: {"Ref": synthesized.logical_id(synthesized.stack.messaging.deferral_queue)},
        "POWERTOOLS_SERVICE_NAME": REEVALUATION_FUNCTION,
        "POWERTOOLS_METRICS_NAMESPACE": NAMES.metrics_namespace,
    }


def test_role_has_exactly_what_the_job_does(synthesized: Synthesized, template: dict[str, Any]) -> None:
    job = _job(synthesized)
    storage = synthesized.stack.storage
    logical = synthesized.logical_id
    records = _arn(logical(storage.records_table))

    assert cfn.role_permissions(template, logical(job.role)) == {
        _arn(logical(job.log_group)): {"logs:CreateLogStream", "logs:PutLogEvents"},
        # keys from the index by tenant and POS, the items in batches: never a scan, never a write
        f"{records}/index/by-tenant-vendor": {"dynamodb:Query"},
        # ... and, as the opt-in consumer does, a persona's shopper records one by one (their POS consent)
        records: {"dynamodb:BatchGetItem", "dynamodb:GetItem"},
        _arn(logical(storage.personas_table)): PERSONAS,
        _arn(logical(storage.control_table)): CONTROL,
        _arn(logical(job.queue)): SQS_CONSUME | {"sqs:SendMessage"},
        _arn(logical(job.dead_letter_queue)): {"sqs:SendMessage"},
        _arn(logical(synthesized.stack.messaging.deferral_queue)): {"sqs:SendMessage"},
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default": {"events:PutEvents"},
        f"arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{NAMES.ssm_root}/*": {
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:GetParametersByPath",
        },
    }


def test_the_cli_finds_the_jobs_queue_by_its_output(synthesized: Synthesized, template: dict[str, Any]) -> None:
    job = _job(synthesized)
    stack_outputs = template["Outputs"]

    assert stack_outputs[outputs.queue_url_output(REEVALUATION_FUNCTION)]["Value"] == {
        "Ref": synthesized.logical_id(job.queue)
    }
    assert outputs.queue_url_output(REEVALUATION_FUNCTION) == "ReevaluateQueueUrl"
    assert outputs.dead_letter_queue_url_output(REEVALUATION_FUNCTION) in stack_outputs
    assert outputs.function_name_output(REEVALUATION_FUNCTION) in stack_outputs
