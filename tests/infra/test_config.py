"""Deployment settings from CDK context: defaults, validation, and their effect on the synthesized stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from functions.core.layout import ENV_ALLOW_PRIVATE_HOSTS, Vendor, base_url_env
from functions.core.settings import IntegrationSettings
from infra.config import (
    DEFAULT_DISPATCH_TICK_MINUTES,
    MAX_DISPATCH_TICK_MINUTES,
    MIN_DISPATCH_TICK_MINUTES,
    DeployConfig,
)
from tests.infra import cfn
from tests.infra.conftest import Synthesized, synthesize

VPC = {"vpc_id": "vpc-0a1b2c3d", "subnet_ids": ["subnet-0a1b2c3d"], "private_cidrs": ["10.20.0.0/16"], "ports": [8080]}


def _config(**context: Any) -> DeployConfig:
    return DeployConfig.from_context(cdk.App(context=context).node)


def test_defaults_without_context() -> None:
    config = _config()
    assert (config.stage, config.dispatch_tick_minutes, config.allow_private_hosts) == ("prod", 15, False)
    assert (config.onprem_vpc, config.alarm_email, dict(config.vendor_base_urls)) == (None, None, {})


def test_command_line_strings_are_parsed() -> None:
    config = _config(
        stage="dev",
        dispatch_tick_minutes="30",
        allow_private_hosts="True",
        onprem_vpc=json.dumps(VPC),
        alarm_email="ops@example.com",
        vendor_base_urls='{"flourish": "https://sandbox.flourish.example"}',
    )
    assert (config.stage, config.dispatch_tick_minutes, config.allow_private_hosts) == ("dev", 30, True)
    assert config.onprem_vpc is not None and config.onprem_vpc.subnet_ids == ("subnet-0a1b2c3d",)
    assert [str(c) for c in config.private_host_cidrs] == ["10.20.0.0/16"]
    assert config.alarm_email == "ops@example.com"
    assert config.vendor_base_urls == {Vendor.FLOURISH: "https://sandbox.flourish.example"}


def test_the_tick_range_is_the_integrations_interval_range() -> None:
    with pytest.raises(ValueError, match="pull_interval_minutes"):
        IntegrationSettings.model_validate(
            {"vendor": "posabit", "pull_interval_minutes": MIN_DISPATCH_TICK_MINUTES - 1}
        )
    with pytest.raises(ValueError, match="pull_interval_minutes"):
        IntegrationSettings.model_validate(
            {"vendor": "posabit", "pull_interval_minutes": MAX_DISPATCH_TICK_MINUTES + 1}
        )
    for minutes in (MIN_DISPATCH_TICK_MINUTES, MAX_DISPATCH_TICK_MINUTES):
        IntegrationSettings.model_validate({"vendor": "posabit", "pull_interval_minutes": minutes})
    assert (MIN_DISPATCH_TICK_MINUTES, MAX_DISPATCH_TICK_MINUTES) == (15, 1440)
    assert DEFAULT_DISPATCH_TICK_MINUTES == MIN_DISPATCH_TICK_MINUTES, "the default tick honours every interval"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"stage": "Prod"}, "stage 'Prod' is not valid"),
        ({"stage": "dev_1"}, "lower-case letters, digits and single dashes"),
        ({"stage": "a-very-long-stage"}, "1-12"),
        ({"stage": "dev-"}, "not ending with a dash"),
        ({"stage": 7}, "a name like dev or prod"),
        ({"dispatch_tick_minutes": 14}, "from 15 to 1440"),
        ({"dispatch_tick_minutes": 1441}, "from 15 to 1440"),
        ({"dispatch_tick_minutes": "hourly"}, "whole number"),
        ({"dispatch_tick_minutes": True}, "whole number"),
        ({"pull_interval_minutes": 180}, "now dispatch_tick_minutes"),
        ({"allow_private_hosts": "yes"}, "true or false"),
        ({"allow_private_hosts": True}, "needs onprem_vpc: a Lambda outside a VPC cannot reach"),
        ({"allow_private_hosts": True, "onprem_vpc": {**VPC, "private_cidrs": [], "ports": []}}, "private_cidrs"),
        ({"onprem_vpc": VPC}, "only with allow_private_hosts=true"),
        ({"onprem_vpc": "{not json"}, "JSON object like"),
        ({"onprem_vpc": {**VPC, "vpc_id": "vpc-1"}}, "vpc_id must be a VPC id"),
        ({"onprem_vpc": {**VPC, "subnet_ids": []}}, "subnet_ids must list"),
        ({"onprem_vpc": {**VPC, "subnet_ids": ["sn-1"]}}, "not a subnet id"),
        ({"onprem_vpc": {"vpc_id": "vpc-0a1b2c3d"}}, "needs vpc_id and subnet_ids"),
        ({"onprem_vpc": {**VPC, "subnets": []}}, "unknown keys"),
        ({"allow_private_hosts": True, "onprem_vpc": {**VPC, "private_cidrs": ["169.254.0.0/16"]}}, "private range"),
        ({"allow_private_hosts": True, "onprem_vpc": {**VPC, "private_cidrs": ["fd00::/8"]}}, "IPv4"),
        ({"allow_private_hosts": True, "onprem_vpc": {**VPC, "ports": []}}, "ports must list"),
        ({"allow_private_hosts": True, "onprem_vpc": {**VPC, "ports": [0]}}, "not a port number"),
        ({"allow_private_hosts": True, "onprem_vpc": {**VPC, "ports": list(range(1, 61))}}, "egress rules"),
        ({"alarm_email": "ops.example.com"}, "one e-mail address"),
        ({"alarm_email": ["ops@example.com"]}, "one e-mail address"),
        ({"vendor_base_urls": {"square": "https://x.example"}}, "unknown vendor"),
        ({"vendor_base_urls": {"posabit": "http://x.example"}}, "https://"),
        ({"vendor_base_urls": "not json"}, "JSON object"),
    ],
)
def test_invalid_context_is_rejected(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _config(**context)


def test_the_private_hosts_error_says_what_to_add() -> None:
    with pytest.raises(ValueError) as refused:
        _config(allow_private_hosts="true")

    message = str(refused.value)
    assert "-c onprem_vpc='{" in message and '"subnet_ids"' in message and '"private_cidrs"' in message


def test_an_invalid_email_is_not_echoed() -> None:
    with pytest.raises(ValueError) as refused:
        _config(alarm_email="jane.doe.example.com")
    assert "jane" not in str(refused.value)


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The stack as `cdk synth -c dispatch_tick_minutes=60 -c vendor_base_urls=...`."""
    return synthesize(
        tmp_path_factory.mktemp("variant"),
        dispatch_tick_minutes="60",
        vendor_base_urls=json.dumps({"posabit": "https://sandbox.posabit.example"}),
    )


def _variables(synthesized: Synthesized, template: dict[str, Any], name: str) -> dict[str, Any]:
    function = synthesized.stack.pulls.functions[name].function
    return template["Resources"][synthesized.logical_id(function)]["Properties"]["Environment"]["Variables"]


def test_context_sets_the_schedule_and_the_environment(variant: Synthesized) -> None:
    template = variant.template

    expressions = {
        s["Properties"]["ScheduleExpression"] for s in cfn.of_type(template, "AWS::Scheduler::Schedule").values()
    }
    assert expressions == {"rate(1 hour)"}
    for name in variant.stack.pulls.functions:
        assert _variables(variant, template, name)[ENV_ALLOW_PRIVATE_HOSTS] == "false"
    assert (
        _variables(variant, template, "pull_posabit")[base_url_env(Vendor.POSABIT)] == "https://sandbox.posabit.example"
    )
    assert base_url_env(Vendor.POSABIT) not in _variables(variant, template, "pull_flourish")


def test_default_stack_sets_no_base_url_override(synthesized: Synthesized, template: dict[str, Any]) -> None:
    for name in synthesized.stack.pulls.functions:
        assert not [key for key in _variables(synthesized, template, name) if key.endswith("_BASE_URL")]


def test_cdk_json_context_is_what_the_app_reads() -> None:
    context = json.loads(Path("cdk.json").read_text(encoding="utf-8"))["context"]
    config = _config(**context)
    assert (config.stage, config.dispatch_tick_minutes, config.allow_private_hosts) == ("prod", 15, False)


def test_the_app_reports_invalid_context_without_a_traceback(tmp_path: Path) -> None:
    # What `cdk synth -c stage=Dev` runs: the CLI hands the context over in CDK_CONTEXT_JSON
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"stage": "Dev"}), "CDK_OUTDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "infra.app"], env=env, capture_output=True, text=True, timeout=300, check=False
    )

    assert result.returncode == 1
    assert "invalid deployment settings (CDK context): stage 'Dev' is not valid" in result.stderr
    assert "Traceback" not in result.stderr
