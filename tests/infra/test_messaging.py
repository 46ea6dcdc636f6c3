"""The SMS opt-in's infrastructure: the deferral queue and function, the inbound topic and reply function, and
roles that may send texts only through the configured origination identity and configuration set."""

from __future__ import annotations

from typing import Any

import pytest

from functions.core.sms import names as sms_names
from functions.core.sms.deferral import ENV_DEFERRAL_QUEUE_URL
from functions.core.sms.gateway import ENV_CONFIGURATION_SET, ENV_ORIGINATION_IDENTITY
from infra.config import DeployConfig
from infra.constructs import messaging
from tests.infra import cfn
from tests.infra.conftest import OPTIONAL_CONTEXT, Synthesized

IDENTITY = OPTIONAL_CONTEXT["sms_origination_identity"]
CONFIGURATION_SET = OPTIONAL_CONTEXT["sms_configuration_set"]


@pytest.fixture(scope="module")
def with_sms(synthesized_with_options: Synthesized) -> Synthesized:
    return synthesized_with_options


def _props(synthesized: Synthesized, construct: Any) -> dict[str, Any]:
    return dict(synthesized.template["Resources"][synthesized.logical_id(construct)]["Properties"])


def _send_permissions(synthesized: Synthesized, role: Any) -> dict[str, set[str]]:
    permissions = cfn.role_permissions(synthesized.template, synthesized.logical_id(role))
    return {arn: actions for arn, actions in permissions.items() if any(a.startswith("sms-voice:") for a in actions)}


def test_only_the_configured_identity_and_configuration_set_may_send(with_sms: Synthesized) -> None:
    stack = with_sms.stack
    configuration_set = (
        "arn:${AWS::Partition}:sms-voice:${AWS::Region}:${AWS::AccountId}:configuration-set/" + CONFIGURATION_SET
    )
    roles = [stack.rules.functions["optin"].role, stack.messaging.deferred_function.role]
    # the re-evaluation job asks the stored sales' personas through the same opt-in code
    roles += [stack.messaging.reply_function.role, stack.reevaluation.role]
    for role in roles:
        assert _send_permissions(with_sms, role) == {
            IDENTITY: {"sms-voice:SendTextMessage"},
            configuration_set: {"sms-voice:SendTextMessage"},
        }
    # and no other function may send a text at all
    others = [p.role for p in stack.pulls.functions.values()]
    others += [stack.rules.functions[n].role for n in ("personas", "enroll")]
    for role in others:
        assert _send_permissions(with_sms, role) == {}


def test_the_functions_know_the_identity_and_the_deferral_queue(with_sms: Synthesized) -> None:
    stack = with_sms.stack
    queue = {"Ref": with_sms.logical_id(stack.messaging.deferral_queue)}
    senders = (stack.rules.functions["optin"].function, stack.reevaluation.function)
    for function in (*senders, *stack.messaging.functions().values()):
        variables = _props(with_sms, function)["Environment"]["Variables"]
        assert variables[ENV_ORIGINATION_IDENTITY] == IDENTITY
        assert variables[ENV_CONFIGURATION_SET] == CONFIGURATION_SET
        assert variables[ENV_DEFERRAL_QUEUE_URL] == queue


def test_without_an_identity_nothing_may_send(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    for role in (stack.rules.functions["optin"].role, stack.messaging.deferred_function.role, stack.reevaluation.role):
        assert _send_permissions(synthesized, role) == {}
    variables = _props(synthesized, stack.messaging.deferred_function)["Environment"]["Variables"]
    assert ENV_ORIGINATION_IDENTITY not in variables


def test_deferral_queue_feeds_the_deferred_function_and_redrives(synthesized: Synthesized) -> None:
    stack = synthesized.stack.messaging
    queue = _props(synthesized, stack.deferral_queue)
    function = _props(synthesized, stack.deferred_function)
    assert queue["QueueName"] == sms_names.deferral_queue(synthesized.stack.names)
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": [synthesized.logical_id(stack.deferral_dlq), "Arn"]
    }
    assert function["Handler"] == "functions.optin.deferred.handler"
    # a wait of hours is a chain of 15-minute messages: Lambda's loop detection must not cut it
    assert function["RecursiveLoop"] == "Allow"
    [mapping] = [
        m["Properties"]
        for m in cfn.of_type(synthesized.template, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": synthesized.logical_id(stack.deferred_function)}
    ]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # a burst of deferrals at the end of quiet hours runs two batches at a time, not hundreds
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": messaging.DEFERRED_MAX_CONCURRENCY}


def test_every_queue_consumer_has_a_concurrency_cap(template: dict[str, Any]) -> None:
    queues = cfn.of_type(template, "AWS::SQS::Queue")
    mappings = [
        m["Properties"]
        for m in cfn.of_type(template, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"].get("Fn::GetAtt", [None])[0] in queues
    ]
    # Given the SQS consumers: four pulls, the re-evaluation job and the deferred texts
    assert len(mappings) == 6
    # Then none can scale out to the account's whole concurrency (the SQS event source's range is 2-1000)
    for mapping in mappings:
        assert 2 <= mapping.get("ScalingConfig", {}).get("MaximumConcurrency", 0) <= 1000, mapping["FunctionName"]


def test_inbound_topic_is_encrypted_takes_end_user_messaging_and_feeds_the_reply_function(
    synthesized: Synthesized,
) -> None:
    stack = synthesized.stack.messaging
    topic = _props(synthesized, stack.reply_topic)
    assert topic["TopicName"] == sms_names.reply_topic(synthesized.stack.names)
    assert "KmsMasterKeyId" in topic
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in cfn.of_type(synthesized.template, "AWS::SNS::TopicPolicy").values()
        if {"Ref": synthesized.logical_id(stack.reply_topic)} in p["Properties"]["Topics"]
    ]
    statements = [s for group in policies for s in group]
    assert any(
        s.get("Principal") == {"Service": "sms-voice.amazonaws.com"} and s["Action"] == "sns:Publish"
        for s in statements
    )
    [subscription] = [
        s["Properties"]
        for s in cfn.of_type(synthesized.template, "AWS::SNS::Subscription").values()
        if s["Properties"]["TopicArn"] == {"Ref": synthesized.logical_id(stack.reply_topic)}
    ]
    assert subscription["Protocol"] == "lambda"
    assert subscription["Endpoint"] == {"Fn::GetAtt": [synthesized.logical_id(stack.reply_function), "Arn"]}
    reply = _props(synthesized, stack.reply_function)
    assert reply["Handler"] == "functions.optin.reply.handler"
    [invoke_config] = [
        c["Properties"]
        for c in cfn.of_type(synthesized.template, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": synthesized.logical_id(stack.reply_function)}
    ]
    assert invoke_config["MaximumRetryAttempts"] == messaging.REPLY_RETRY_ATTEMPTS
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": [synthesized.logical_id(stack.reply_dlq), "Arn"]
    }


def test_sms_alarms_watch_failed_and_uncertain_sends(synthesized: Synthesized) -> None:
    alarms = [a["Properties"] for a in cfn.of_type(synthesized.template, "AWS::CloudWatch::Alarm").values()]
    names = {a.get("MetricName") for a in alarms if "Dimensions" not in a}
    assert {"SmsSendsFailed", "SmsSendsUncertain"} <= names


@pytest.mark.parametrize(
    ("identity", "problem"),
    [
        ("+18885550100", "must be the ARN"),
        ("arn:aws:sms-voice:us-east-1:123456789012:configuration-set/x", "must be the ARN"),
    ],
)
def test_a_bad_identity_is_refused_with_an_example(identity: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as error:
        DeployConfig(sms_origination_identity=identity)
    assert "arn:aws:sms-voice:" in str(error.value)
