"""Monitoring and outputs: every failure path raises an alarm, and the CLI finds every resource by output."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk.assertions import Match, Template

from functions.core import metrics
from functions.core.layout import DEFAULT_STAGE, PULL_VENDORS, RULE_FUNCTIONS, ResourceNames
from functions.core.streams import PERSONA_CONSUMERS
from infra import outputs
from tests.infra import cfn
from tests.infra.conftest import Synthesized

NAMES = ResourceNames.for_stage(DEFAULT_STAGE)
# possync's own metrics that page someone (functions.core.metrics), as the alarms watch them.
CUSTOM_ALARMS = (
    metrics.SETTINGS_INVALID,
    metrics.SETTINGS_UNREADABLE,
    metrics.PULLS_FAILED,
    metrics.PULL_CONTRACT_MISMATCH,
    "quarantine rate",
    metrics.CREDENTIALS_STALE,
    metrics.LEASE_RELEASE_FAILED,
    metrics.PULL_JOBS_REJECTED,
    metrics.RECORDS_WAITING,
    metrics.AWS_CALLS_FAILED,
    metrics.REEVALUATIONS_FAILED,
    metrics.SMS_SENDS_FAILED,
    metrics.SMS_SENDS_UNCERTAIN,
    metrics.REDEMPTIONS_OVERDRAWN,
    metrics.SIGNUPS_FAILED,
    metrics.POS_SYNC_FAILED,
    metrics.POS_SYNC_UNCERTAIN,
)
# The opt-in's deferral and reply functions (infra.constructs.messaging) and their two dead-letter queues.
MESSAGING_FUNCTIONS = 2
MESSAGING_DEAD_LETTER_QUEUES = 2
# The form signup endpoint's function (infra.constructs.signups): errors and throttles.
SIGNUP_FUNCTIONS = 1


def _alarm_dimensions(template: dict[str, Any], metric_name: str) -> list[Any]:
    return [
        alarm["Properties"]["Dimensions"][0]["Value"]
        for alarm in cfn.of_type(template, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == metric_name
    ]


def test_every_dead_letter_queue_alarms_when_not_empty(synthesized: Synthesized, template: dict[str, Any]) -> None:
    dead_letter_queues = [
        queue
        for pull in synthesized.stack.pulls.functions.values()
        for queue in (pull.dead_letter_queue, pull.dispatch_dead_letter_queue)
    ] + [rule.dead_letter_queue for rule in synthesized.stack.rules.functions.values()]
    dead_letter_queues.append(synthesized.stack.reevaluation.dead_letter_queue)
    dead_letter_queues.append(synthesized.stack.pos_sync.rule.dead_letter_queue)
    dead_letter_queues += [synthesized.stack.messaging.deferral_dlq, synthesized.stack.messaging.reply_dlq]
    watched = _alarm_dimensions(template, "ApproximateNumberOfMessagesVisible")

    assert sorted(str(w) for w in watched) == sorted(
        str({"Fn::GetAtt": [synthesized.logical_id(q), "QueueName"]}) for q in dead_letter_queues
    )


def test_every_event_rule_and_schedule_target_retries_then_dead_letters_to_an_alarmed_queue(
    template: dict[str, Any],
) -> None:
    targets = [
        target
        for rule in cfn.of_type(template, "AWS::Events::Rule").values()
        for target in rule["Properties"]["Targets"]
    ]
    targets += [
        schedule["Properties"]["Target"] for schedule in cfn.of_type(template, "AWS::Scheduler::Schedule").values()
    ]
    alarmed = [str(w) for w in _alarm_dimensions(template, "ApproximateNumberOfMessagesVisible")]

    # Given the settings-change rule's target and the four pull schedules' targets
    assert len(targets) == 5
    for target in targets:
        # Then each gives up after a few retries within the hour (not EventBridge's default of a day)
        assert target["RetryPolicy"]["MaximumRetryAttempts"] <= 3, target
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 3600, target
        # and keeps what it could not deliver in a dead-letter queue an alarm watches
        [queue_id, _] = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"]
        assert str({"Fn::GetAtt": [queue_id, "QueueName"]}) in alarmed, target


def test_every_function_alarms_on_errors(synthesized: Synthesized, template: dict[str, Any]) -> None:
    watched = _alarm_dimensions(template, "Errors")
    functions = [pull.function for pull in synthesized.stack.pulls.functions.values()]
    functions += [rule.function for rule in synthesized.stack.rules.functions.values()]
    functions.append(synthesized.stack.reevaluation.function)
    functions.append(synthesized.stack.pos_sync.function)
    functions += list(synthesized.stack.messaging.functions().values())
    functions.append(synthesized.stack.signups.function)
    assert sorted(str(w) for w in watched) == sorted(str({"Ref": synthesized.logical_id(f)}) for f in functions)


def test_alarms_fire_on_the_first_occurrence_and_notify_the_topic(
    synthesized: Synthesized, template: dict[str, Any]
) -> None:
    topic = {"Ref": synthesized.logical_id(synthesized.stack.monitoring.alarm_topic)}
    alarms = cfn.of_type(template, "AWS::CloudWatch::Alarm").values()
    # Alarms that deliberately wait for more than one data point or count a share, each tested on its own.
    sustained = {"IteratorAge", metrics.SETTINGS_UNREADABLE, metrics.AWS_CALLS_FAILED, "quarantine rate"}

    # per function: errors and throttles; pulls: jobs DLQ, dispatch DLQ; rules: failure queue, iterator age;
    # the re-evaluation job: its jobs DLQ; per table: throttles; the opt-in's deferral and reply functions: errors,
    # throttles and their DLQs; and possync's own failure metrics
    messaging = 2 * MESSAGING_FUNCTIONS + MESSAGING_DEAD_LETTER_QUEUES + 2 * SIGNUP_FUNCTIONS
    consumers = len(RULE_FUNCTIONS) + len(PERSONA_CONSUMERS)
    assert len(alarms) == 4 * len(PULL_VENDORS) + 4 * consumers + 3 + 3 + messaging + len(CUSTOM_ALARMS)
    for alarm in alarms:
        props = alarm["Properties"]
        if props.get("MetricName", "quarantine rate") not in sustained:
            assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 0)
            assert props["EvaluationPeriods"] == 1
        assert props["TreatMissingData"] in {"notBreaching", "ignore"}
        assert props["AlarmActions"] == props["OKActions"] == [topic]
        assert props["AlarmName"].startswith(f"{NAMES.prefix}-")


def test_alarm_topic_is_encrypted_with_a_rotated_key_cloudwatch_may_use(assertions: Template) -> None:
    assertions.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    assertions.has_resource_properties(
        "AWS::KMS::Key",
        {
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [Match.object_like({"Principal": {"Service": "cloudwatch.amazonaws.com"}})]
                )
            },
        },
    )


def _service_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for key in cfn.of_type(template, "AWS::KMS::Key").values()
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if "Service" in statement["Principal"]
    ]


def test_a_service_may_use_a_key_only_on_behalf_of_this_account(template: dict[str, Any]) -> None:
    statements = _service_statements(template)

    # Given the keys of the alarm topic (CloudWatch) and of the inbound-SMS topic (End User Messaging)
    assert sorted(s["Principal"]["Service"] for s in statements) == [
        "cloudwatch.amazonaws.com",
        "sms-voice.amazonaws.com",
    ]
    # Then neither service may use them for another account's resources (the confused deputy)
    for statement in statements:
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}, statement


def test_cloudwatch_may_use_the_alarm_topic_key_for_this_stages_alarms_and_every_one_of_them(
    template: dict[str, Any],
) -> None:
    [statement] = [s for s in _service_statements(template) if s["Principal"]["Service"] == "cloudwatch.amazonaws.com"]
    pattern = cfn.render(statement["Condition"]["ArnLike"]["aws:SourceArn"])
    alarm_names = [a["Properties"]["AlarmName"] for a in cfn.of_type(template, "AWS::CloudWatch::Alarm").values()]

    def allowed(alarm_name: str) -> bool:
        arn = f"arn:${{AWS::Partition}}:cloudwatch:${{AWS::Region}}:${{AWS::AccountId}}:alarm:{alarm_name}"
        return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), arn) is not None

    assert set(statement["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    # every alarm of the stack can still publish its notification to the encrypted topic
    assert alarm_names and all(allowed(name) for name in alarm_names)
    # another stage's alarm cannot
    assert not allowed(ResourceNames.for_stage("dev").alarm_name("pulls failed"))


def test_dashboard_shows_every_pull_function(template: dict[str, Any]) -> None:
    [dashboard] = cfn.of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = cfn.render(dashboard["Properties"]["DashboardBody"])

    assert dashboard["Properties"]["DashboardName"] == NAMES.dashboard == "possync-prod"
    for name in PULL_VENDORS:
        assert f'"title":"{name} invocations"' in body
        assert f'"title":"{name} dead letters"' in body
    for name in (*RULE_FUNCTIONS, *PERSONA_CONSUMERS):
        assert f'"title":"{name} invocations"' in body
        assert f'"title":"{name} iterator age"' in body
        assert f'"title":"{name} dead letters"' in body


def test_outputs_name_every_resource_the_cli_reads(synthesized: Synthesized, template: dict[str, Any]) -> None:
    stack_outputs = {key: cfn.render(value["Value"]) for key, value in template["Outputs"].items()}
    storage = synthesized.stack.storage

    assert stack_outputs[outputs.RECORDS_TABLE_OUTPUT] == f"${{{synthesized.logical_id(storage.records_table)}}}"
    assert stack_outputs[outputs.CONTROL_TABLE_OUTPUT] == f"${{{synthesized.logical_id(storage.control_table)}}}"
    assert stack_outputs[outputs.ARCHIVE_BUCKET_OUTPUT] == f"${{{synthesized.logical_id(storage.archive_bucket)}}}"
    assert outputs.ALARM_TOPIC_OUTPUT in stack_outputs
    for name, pull in synthesized.stack.pulls.functions.items():
        assert stack_outputs[outputs.function_name_output(name)] == f"${{{synthesized.logical_id(pull.function)}}}"
        assert stack_outputs[outputs.queue_url_output(name)] == f"${{{synthesized.logical_id(pull.queue)}}}"
        assert stack_outputs[outputs.dead_letter_queue_url_output(name)] == (
            f"${{{synthesized.logical_id(pull.dead_letter_queue)}}}"
        )
    assert stack_outputs[outputs.PERSONAS_TABLE_OUTPUT] == f"${{{synthesized.logical_id(storage.personas_table)}}}"
    for name, rule in synthesized.stack.rules.functions.items():
        assert stack_outputs[outputs.function_name_output(name)] == f"${{{synthesized.logical_id(rule.function)}}}"
        assert stack_outputs[outputs.dead_letter_queue_url_output(name)] == (
            f"${{{synthesized.logical_id(rule.dead_letter_queue)}}}"
        )
    assert synthesized.stack.stack_name == NAMES.stack_name == "possync-prod"
    assert stack_outputs[outputs.RESOURCE_PREFIX_OUTPUT] == NAMES.prefix
