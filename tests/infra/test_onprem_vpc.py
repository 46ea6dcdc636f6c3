"""allow_private_hosts: pull_onprem, and only it, runs in the operator's subnets with egress to what it calls."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file

from functions.core.layout import ENV_ALLOW_PRIVATE_HOSTS, ENV_PRIVATE_HOST_CIDRS, PULL_VENDORS
from infra.constants import ONPREM_PULL_FUNCTION
from infra.constructs.onprem_network import ENI_ACTIONS
from infra.outputs import PRIVATE_HOST_CIDRS_OUTPUT
from tests.infra import cfn
from tests.infra.conftest import Synthesized, synthesize
from tests.infra.test_checks import IGNORED_LINT_RULES, LINT_REGIONS

ONPREM_VPC = {
    "vpc_id": "vpc-0a1b2c3d",
    "subnet_ids": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"],
    "private_cidrs": ["10.20.0.0/16", "192.168.50.0/24"],
    "ports": [8080, 25565],
    "public_ports": [25565],
}


@pytest.fixture(scope="module")
def in_vpc(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """`cdk synth -c allow_private_hosts=true -c onprem_vpc='{...}'`."""
    return synthesize(
        tmp_path_factory.mktemp("onprem-vpc"), allow_private_hosts="true", onprem_vpc=json.dumps(ONPREM_VPC)
    )


def _function(synthesized: Synthesized, name: str) -> dict[str, Any]:
    function = synthesized.stack.pulls.functions[name].function
    return synthesized.template["Resources"][synthesized.logical_id(function)]["Properties"]


def test_only_pull_onprem_runs_in_the_vpc(in_vpc: Synthesized) -> None:
    network = in_vpc.stack.pulls.functions[ONPREM_PULL_FUNCTION].network
    assert network is not None

    assert _function(in_vpc, ONPREM_PULL_FUNCTION)["VpcConfig"] == {
        "SubnetIds": ONPREM_VPC["subnet_ids"],
        "SecurityGroupIds": [{"Fn::GetAtt": [in_vpc.logical_id(network.security_group), "GroupId"]}],
    }
    with_vpc = [
        f for f in cfn.of_type(in_vpc.template, "AWS::Lambda::Function").values() if "VpcConfig" in f["Properties"]
    ]
    assert len(with_vpc) == 1


def test_the_security_group_lets_out_only_https_and_the_store_networks(in_vpc: Synthesized) -> None:
    [group] = cfn.of_type(in_vpc.template, "AWS::EC2::SecurityGroup").values()
    props = group["Properties"]

    assert props["VpcId"] == ONPREM_VPC["vpc_id"]
    assert "SecurityGroupIngress" not in props, "nothing calls the function over the network"
    assert cfn.of_type(in_vpc.template, "AWS::EC2::SecurityGroupIngress") == {}
    assert cfn.of_type(in_vpc.template, "AWS::EC2::SecurityGroupEgress") == {}
    rules = {(r["IpProtocol"], r["CidrIp"], r["FromPort"], r["ToPort"]) for r in props["SecurityGroupEgress"]}
    assert rules == {
        # AWS APIs through the subnets' NAT gateway (or VPC endpoints), vendors' hosted APIs, store servers on 443
        ("tcp", "0.0.0.0/0", 443, 443),
        ("tcp", "10.20.0.0/16", 8080, 8080),
        ("tcp", "10.20.0.0/16", 25565, 25565),
        ("tcp", "192.168.50.0/24", 8080, 8080),
        ("tcp", "192.168.50.0/24", 25565, 25565),
        ("tcp", "0.0.0.0/0", 25565, 25565),  # public_ports: store servers on public addresses
    }
    [https] = [r for r in props["SecurityGroupEgress"] if r["FromPort"] == 443]
    assert "AWS APIs" in https["Description"] and "NAT gateway" in https["Description"]


def test_only_pull_onprem_may_call_the_configured_ranges(in_vpc: Synthesized) -> None:
    for name in PULL_VENDORS:
        variables = _function(in_vpc, name)["Environment"]["Variables"]
        if name == ONPREM_PULL_FUNCTION:
            assert variables[ENV_ALLOW_PRIVATE_HOSTS] == "true"
            assert variables[ENV_PRIVATE_HOST_CIDRS] == "10.20.0.0/16,192.168.50.0/24"
        else:
            assert variables[ENV_ALLOW_PRIVATE_HOSTS] == "false"
            assert ENV_PRIVATE_HOST_CIDRS not in variables


def test_pull_onprem_may_manage_its_network_interfaces(in_vpc: Synthesized) -> None:
    pull = in_vpc.stack.pulls.functions[ONPREM_PULL_FUNCTION]
    permissions = cfn.role_permissions(in_vpc.template, in_vpc.logical_id(pull.role))

    assert permissions["*"] == set(ENI_ACTIONS)
    for name, other in in_vpc.stack.pulls.functions.items():
        if name != ONPREM_PULL_FUNCTION:
            assert "*" not in cfn.role_permissions(in_vpc.template, in_vpc.logical_id(other.role))


def test_the_vpc_variant_passes_cdk_nag_with_reasons_and_cfn_lint(in_vpc: Synthesized) -> None:
    report = in_vpc.validation_report
    assert [v["ruleName"] for plugin in report["pluginReports"] for v in plugin["violations"]] == []
    pull = in_vpc.stack.pulls.functions[ONPREM_PULL_FUNCTION]
    policy = next(
        resource
        for resource in cfn.of_type(in_vpc.template, "AWS::IAM::Policy").values()
        if {"Ref": in_vpc.logical_id(pull.role)} in resource["Properties"]["Roles"]
    )
    reasons = {r["id"]: r["reason"] for r in policy["Metadata"]["cdk_nag"]["rules_to_suppress"]}
    assert "network interfaces" in reasons["AwsSolutions-IAM5[Resource::*]"]

    matches = lint_file(in_vpc.template_path, ManualArgs(regions=LINT_REGIONS, include_checks=["I"]))
    assert [f"{m.rule.id} {m.message}" for m in matches if m.rule.id not in IGNORED_LINT_RULES] == []


def test_the_stack_tells_the_cli_which_private_ranges_its_pulls_reach(
    in_vpc: Synthesized, template: dict[str, Any]
) -> None:
    # `possync credentials add` reads this output to refuse an address every pull would refuse.
    assert in_vpc.template["Outputs"][PRIVATE_HOST_CIDRS_OUTPUT]["Value"] == "10.20.0.0/16,192.168.50.0/24"
    assert PRIVATE_HOST_CIDRS_OUTPUT not in template["Outputs"]


def test_without_the_vpc_context_no_function_is_in_a_vpc(template: dict[str, Any]) -> None:
    assert all("VpcConfig" not in f["Properties"] for f in cfn.of_type(template, "AWS::Lambda::Function").values())
    assert cfn.of_type(template, "AWS::EC2::SecurityGroup") == {}


def test_allow_private_hosts_without_the_vpc_context_fails_the_synth(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with pytest.raises(ValueError, match="allow_private_hosts=true needs onprem_vpc") as refused:
        synthesize(tmp_path_factory.mktemp("private-no-vpc"), allow_private_hosts="true")
    assert "-c onprem_vpc=" in str(refused.value)


def test_a_vpc_without_private_hosts_is_for_a_fixed_egress_address(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Stores that allow-list possync's address: pull_onprem leaves through the VPC's NAT; private ranges stay shut
    public_only = {"vpc_id": "vpc-0a1b2c3d", "subnet_ids": ["subnet-0a1b2c3d"], "public_ports": [25565]}
    synthesized = synthesize(tmp_path_factory.mktemp("vpc-public"), onprem_vpc=json.dumps(public_only))

    variables = _function(synthesized, ONPREM_PULL_FUNCTION)["Environment"]["Variables"]
    assert variables[ENV_ALLOW_PRIVATE_HOSTS] == "false" and ENV_PRIVATE_HOST_CIDRS not in variables
    [group] = cfn.of_type(synthesized.template, "AWS::EC2::SecurityGroup").values()
    assert {(r["CidrIp"], r["FromPort"]) for r in group["Properties"]["SecurityGroupEgress"]} == {
        ("0.0.0.0/0", 443),
        ("0.0.0.0/0", 25565),
    }
