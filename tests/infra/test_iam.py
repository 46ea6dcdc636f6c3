"""Least privilege: each role may do exactly what its function needs, on exactly its resources."""

from __future__ import annotations

import re
from typing import Any

import pytest

from functions.core.layout import DEFAULT_STAGE, PULL_VENDORS, RECORDS_BY_SCOPE_INDEX, ResourceNames, Vendor
from possync.admin.credentials import integrator_secret_name
from tests.infra import cfn
from tests.infra.conftest import Synthesized

NAMES = ResourceNames.for_stage(DEFAULT_STAGE)
PULL_FUNCTIONS = sorted(PULL_VENDORS)

SQS_CONSUME = {
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
}
SQS_SEND = {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
RECORDS = {
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
}
CONTROL = {
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
}


SECRETS_ARN = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
# What Secrets Manager appends to a secret's name in its ARN.
SECRET_SUFFIX = "-AbC123"


def _arn(logical_id: str) -> str:
    return f"${{{logical_id}.Arn}}"


def _iam_matches(pattern: str, arn: str) -> bool:
    """IAM's resource wildcards: `*` is any run of characters ('/' included), `?` any one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None


def _secrets_readable(template: dict[str, Any], role_id: str) -> set[str]:
    return {
        resource
        for resource, actions in cfn.role_permissions(template, role_id).items()
        if "secretsmanager:GetSecretValue" in actions
    }


@pytest.mark.parametrize("name", PULL_FUNCTIONS)
def test_pull_role_has_exactly_the_expected_permissions(
    synthesized: Synthesized, template: dict[str, Any], name: str
) -> None:
    pull = synthesized.stack.pulls.functions[name]
    storage = synthesized.stack.storage
    logical = synthesized.logical_id

    permissions = cfn.role_permissions(template, logical(pull.role))

    assert permissions == {
        _arn(logical(pull.log_group)): {"logs:CreateLogStream", "logs:PutLogEvents"},
        _arn(logical(storage.records_table)): RECORDS,
        # after a pull of the discounts: the store's discounts through the index by tenant and POS (the reward
        # mirror check), and its unmirrored-reward notices on the default bus
        _arn(logical(storage.records_table)) + f"/index/{RECORDS_BY_SCOPE_INDEX}": {"dynamodb:Query"},
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default": {"events:PutEvents"},
        _arn(logical(storage.control_table)): CONTROL,
        _arn(logical(storage.archive_bucket)) + "/raw/*": {"s3:GetObject", "s3:PutObject"},
        _arn(logical(pull.queue)): SQS_CONSUME | SQS_SEND,
        # jobs that can never succeed are moved to the DLQ at once: send only, nothing else on it
        _arn(logical(pull.dead_letter_queue)): {"sqs:SendMessage"},
        _arn(logical(pull.dispatch_dead_letter_queue)): SQS_SEND,
        f"arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{NAMES.ssm_root}/*": {
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:GetParametersByPath",
        },
        # the credentials of its own POS(es) only
        **{
            f"{SECRETS_ARN}{NAMES.secret_root}*/{vendor.value}/*": {"secretsmanager:GetSecretValue"}
            for vendor in PULL_VENDORS[name]
        },
    }


@pytest.mark.parametrize("name", PULL_FUNCTIONS)
def test_a_pull_reads_its_own_vendors_credentials_and_no_other_secret(
    synthesized: Synthesized, template: dict[str, Any], name: str
) -> None:
    # Given the secrets of a deployment: one credential per vendor (as `possync credentials add` names them), the
    # integrator token, and a credential of another stage
    credentials = {
        vendor: f"{SECRETS_ARN}{NAMES.credential_secret('acme', vendor, 'store-1')}{SECRET_SUFFIX}" for vendor in Vendor
    }
    integrator_token = f"{SECRETS_ARN}{integrator_secret_name(NAMES, Vendor.POSABIT)}{SECRET_SUFFIX}"
    other_stage = ResourceNames.for_stage("dev").credential_secret("acme", PULL_VENDORS[name][0], "store-1")
    patterns = _secrets_readable(template, synthesized.logical_id(synthesized.stack.pulls.functions[name].role))

    def readable(arn: str) -> bool:
        return any(_iam_matches(pattern, arn) for pattern in patterns)

    # Then the pull reads exactly the credentials of the vendors it pulls (those its jobs can name)
    assert {vendor for vendor, arn in credentials.items() if readable(arn)} == set(PULL_VENDORS[name])
    # and neither the deployment's integrator token (only the CLI reads it) nor another stage's credentials
    assert not readable(integrator_token)
    assert not readable(f"{SECRETS_ARN}{other_stage}{SECRET_SUFFIX}")


def test_no_policy_grants_wildcard_actions_or_scans(template: dict[str, Any]) -> None:
    for policy in cfn.of_type(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in cfn.as_list(statement["Action"]):
                assert "*" not in action, action
                assert action not in {"dynamodb:Scan", "dynamodb:DeleteTable"}, action


def test_roles_have_no_managed_or_inline_policies(template: dict[str, Any]) -> None:
    for role in cfn.of_type(template, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
        assert "Policies" not in role["Properties"]


@pytest.mark.parametrize("name", PULL_FUNCTIONS)
def test_scheduler_role_may_only_invoke_its_function(
    synthesized: Synthesized, template: dict[str, Any], name: str
) -> None:
    pull = synthesized.stack.pulls.functions[name]
    logical = synthesized.logical_id
    schedule = template["Resources"][logical(pull.schedule)]["Properties"]
    role_id = schedule["Target"]["RoleArn"]["Fn::GetAtt"][0]
    function_arn = _arn(logical(pull.function))

    assert cfn.role_permissions(template, role_id) == {
        function_arn: {"lambda:InvokeFunction"},
        function_arn + ":*": {"lambda:InvokeFunction"},
        _arn(logical(pull.dispatch_dead_letter_queue)): {"sqs:SendMessage"},
    }
    [trust] = template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_every_role_is_used_by_exactly_one_function_or_schedule(template: dict[str, Any]) -> None:
    users = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in cfn.of_type(template, "AWS::Lambda::Function").values()]
    users += [
        s["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
        for s in cfn.of_type(template, "AWS::Scheduler::Schedule").values()
    ]
    assert sorted(users) == sorted(cfn.of_type(template, "AWS::IAM::Role"))
