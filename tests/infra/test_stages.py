"""Stages: two stacks of one app share an account without sharing a physical name, a prefix or a metric namespace."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest

from functions.core.layout import ENV_RESOURCE_PREFIX, ResourceNames, Vendor, check_stage
from tests.infra import cfn
from tests.infra.conftest import Synthesized, synthesize

# Properties ending in "Name" that are not an account-wide physical name: a CloudWatch metric is named the same in
# every stage (its Namespace, checked below, is what differs); an IAM policy's name is scoped to its role (and the
# roles' names are generated per stack).
NOT_PHYSICAL = {"MetricName", "PolicyName"}


def _is_reference(value: Any, template: dict[str, Any]) -> bool:
    """A Ref or GetAtt of a resource in this template: a link, not a name of its own."""
    if isinstance(value, dict) and len(value) == 1:
        [(key, arg)] = value.items()
        target = arg if key == "Ref" else arg[0] if key == "Fn::GetAtt" else None
        return target in template["Resources"]
    return False


def physical_names(template: dict[str, Any]) -> dict[str, str]:
    """Every *Name property of every resource ("LogicalId.Property") -> its value, rendered ("${AWS::AccountId}"
    stays a placeholder)."""
    return {
        f"{logical_id}.{key}": str(cfn.render(value))
        for logical_id, resource in template["Resources"].items()
        for key, value in resource.get("Properties", {}).items()
        if key.endswith("Name") and key not in NOT_PHYSICAL and not _is_reference(value, template)
    }


def prefixed_grants(template: dict[str, Any]) -> set[str]:
    """The SSM parameter and Secrets Manager ARNs the roles are granted (the prefixes a stage reads)."""
    arns: set[str] = set()
    for policy in cfn.of_type(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for resource in cfn.as_list(statement["Resource"]):
                rendered = cfn.render(resource)
                if isinstance(rendered, str) and (":ssm:" in rendered or ":secretsmanager:" in rendered):
                    arns.add(rendered)
    return arns


def namespaces(template: dict[str, Any]) -> set[str]:
    found = {a["Properties"].get("Namespace") for a in cfn.of_type(template, "AWS::CloudWatch::Alarm").values()}
    for alarm in cfn.of_type(template, "AWS::CloudWatch::Alarm").values():
        for query in alarm["Properties"].get("Metrics", []):
            if "MetricStat" in query:
                found.add(query["MetricStat"]["Metric"]["Namespace"])
    return {n for n in found if n and not n.startswith("AWS/")}


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("stage-dev"), stage="dev")


def test_the_default_stage_is_prod_and_a_context_stage_names_the_stack(
    synthesized: Synthesized, dev: Synthesized
) -> None:
    assert synthesized.stack.stack_name == "possync-prod"
    assert dev.stack.stack_name == "possync-dev"
    assert synthesized.template_path.name == "possync-prod.template.json"
    assert dev.template_path.name == "possync-dev.template.json"


def test_two_stages_share_no_physical_name(synthesized: Synthesized, dev: Synthesized) -> None:
    prod_names = physical_names(synthesized.template)
    dev_names = physical_names(dev.template)

    # Given names of every kind: tables, bucket, queues, functions, log groups, schedules, alarms, topic, dashboard
    kinds = {where.split(".")[1] for where in prod_names}
    assert {"TableName", "BucketName", "QueueName", "FunctionName", "LogGroupName", "Name", "AlarmName"} <= kinds
    assert {"TopicName", "DashboardName"} <= kinds
    assert prod_names.keys() == dev_names.keys(), "the same resources are named in both stages"
    # Then not one is shared, and each carries its stage
    assert set(prod_names.values()) & set(dev_names.values()) == set()
    assert all("possync-prod" in name for name in prod_names.values()), prod_names
    assert all("possync-dev" in name for name in dev_names.values()), dev_names


def test_two_stages_read_disjoint_settings_and_credentials(synthesized: Synthesized, dev: Synthesized) -> None:
    prod_arns, dev_arns = prefixed_grants(synthesized.template), prefixed_grants(dev.template)
    prod_names = ResourceNames.for_stage("prod")

    assert prod_arns & dev_arns == set()
    assert prod_arns == {
        f"arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{prod_names.ssm_root}/*",
        # each function reads only the credentials of the POSes it pulls from or writes to
        *(
            f"arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:"
            f"{prod_names.secret_root}*/{vendor.value}/*"
            for vendor in Vendor
        ),
    }
    assert dev_arns == {arn.replace("possync-prod", "possync-dev") for arn in prod_arns}
    # "possync-prod/*" cannot match a longer stage's names ("possync-prod2/..."): the prefix ends at a separator
    assert prod_names.ssm_root + "/" == "/possync-prod/" and prod_names.secret_root == "possync-prod/"


def test_functions_find_their_stage_and_emit_into_its_namespace(synthesized: Synthesized, dev: Synthesized) -> None:
    def environments(template: dict[str, Any]) -> list[dict[str, Any]]:
        functions = cfn.of_type(template, "AWS::Lambda::Function").values()
        return [f["Properties"]["Environment"]["Variables"] for f in functions]

    for template, prefix in ((synthesized.template, "possync-prod"), (dev.template, "possync-dev")):
        for variables in environments(template):
            assert variables[ENV_RESOURCE_PREFIX] == prefix
            assert variables["POWERTOOLS_METRICS_NAMESPACE"] == prefix
        assert namespaces(template) == {prefix}, "the alarms watch only their own stage's metrics"


def test_the_stack_outputs_its_prefix_for_the_cli(synthesized: Synthesized, dev: Synthesized) -> None:
    assert synthesized.template["Outputs"]["ResourcePrefix"]["Value"] == "possync-prod"
    assert dev.template["Outputs"]["ResourcePrefix"]["Value"] == "possync-dev"


def test_an_invalid_stage_fails_the_synth_with_what_to_use(tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.raises(ValueError, match="stage 'Dev Stage' is not valid: use 1-12 lower-case"):
        synthesize(tmp_path_factory.mktemp("stage-bad"), stage="Dev Stage")


@pytest.mark.parametrize("stage", ["prod", "dev", "qa2", "staging-eu", "a", "abcdefghijkl"])
def test_valid_stages_fit_every_name_limit(stage: str) -> None:
    names = ResourceNames.for_stage(check_stage(stage))
    longest_region = "ap-southeast-5"

    assert len(names.archive_bucket("123456789012", longest_region)) <= 63
    assert len(names.access_logs_bucket("123456789012", longest_region)) <= 63
    assert len(names.function_name("pull_flourish")) <= 64
    assert len(names.schedule_name("pull_flourish")) <= 64
    assert len(names.pull_dlq("pull_flourish")) <= 80
    assert json.dumps(names.prefix).isascii()


def test_a_stage_deployed_again_after_destroy_can_adopt_what_it_retained(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Given the template `cdk deploy` synthesizes (the CLI knows the account and region)
    env = cdk.Environment(account="123456789012", region="us-west-2")
    template = synthesize(tmp_path_factory.mktemp("stage-env"), env=env, stage="dev").template
    retained = {k: r for k, r in template["Resources"].items() if r.get("DeletionPolicy") == "Retain"}
    name_of = {
        "AWS::DynamoDB::Table": "TableName",
        "AWS::S3::Bucket": "BucketName",
        "AWS::Logs::LogGroup": "LogGroupName",
    }

    # Then every resource a `cdk destroy` leaves behind has a literal, stage-qualified name: what CloudFormation needs
    # to import it again (`cdk deploy --import-existing-resources`) instead of failing on "already exists"
    assert {r["Type"] for r in retained.values()} == set(name_of)
    for logical_id, resource in retained.items():
        name = resource["Properties"].get(name_of[resource["Type"]])
        assert isinstance(name, str) and "possync-dev" in name, f"{logical_id}: {name!r}"
    assert "possync-dev-archive-123456789012-us-west-2" in {
        r["Properties"].get("BucketName") for r in retained.values()
    }
