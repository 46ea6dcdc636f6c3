"""Deployment settings from CDK context: defaults, validation, and their effect on the synthesized stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from functions.core.layout import ENV_ALLOW_PRIVATE_HOSTS, Vendor, base_url_env
from infra.config import DeployConfig
from tests.infra import cfn
from tests.infra.conftest import Synthesized, synthesize


def _config(**context: Any) -> DeployConfig:
    return DeployConfig.from_context(cdk.App(context=context).node)


def test_defaults_without_context() -> None:
    config = _config()
    assert (config.pull_interval_minutes, config.allow_private_hosts, dict(config.vendor_base_urls)) == (180, False, {})


def test_command_line_strings_are_parsed() -> None:
    config = _config(
        pull_interval_minutes="30",
        allow_private_hosts="True",
        vendor_base_urls='{"flourish": "https://sandbox.flourish.example"}',
    )
    assert config.pull_interval_minutes == 30
    assert config.allow_private_hosts is True
    assert config.vendor_base_urls == {Vendor.FLOURISH: "https://sandbox.flourish.example"}


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"pull_interval_minutes": 14}, "at least 15"),
        ({"pull_interval_minutes": "hourly"}, "whole number"),
        ({"pull_interval_minutes": True}, "whole number"),
        ({"allow_private_hosts": "yes"}, "true or false"),
        ({"vendor_base_urls": {"square": "https://x.example"}}, "unknown vendor"),
        ({"vendor_base_urls": {"posabit": "http://x.example"}}, "https://"),
        ({"vendor_base_urls": "not json"}, "JSON object"),
    ],
)
def test_invalid_context_is_rejected(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _config(**context)


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The stack as `cdk synth -c pull_interval_minutes=15 -c allow_private_hosts=true -c vendor_base_urls=...`."""
    return synthesize(
        tmp_path_factory.mktemp("variant"),
        pull_interval_minutes="15",
        allow_private_hosts="true",
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
    assert expressions == {"rate(15 minutes)"}
    for name in variant.stack.pulls.functions:
        assert _variables(variant, template, name)[ENV_ALLOW_PRIVATE_HOSTS] == "true"
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
    assert (config.pull_interval_minutes, config.allow_private_hosts) == (180, False)
