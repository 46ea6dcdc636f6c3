"""Synthesizes the CDK app once per session with the cdk.json context, bundling skipped."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.app import build, cdk_json_context
from infra.stack import PossyncStack

REPO_ROOT = Path(__file__).resolve().parents[2]


# What the CDK CLI adds to the context by default, so the tests lint the template `cdk synth` writes.
CLI_DEFAULT_CONTEXT = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
}


def cdk_context(**overrides: Any) -> dict[str, Any]:
    """The context `cdk synth` would use, with bundling skipped (the unit tests need no wheels)."""
    return {**CLI_DEFAULT_CONTEXT, **cdk_json_context(), "aws:cdk:bundling-stacks": [], **overrides}


@dataclass
class Synthesized:
    outdir: Path
    stack: PossyncStack

    @property
    def template_path(self) -> Path:
        return self.outdir / self.stack.template_file

    @property
    def template(self) -> dict[str, Any]:
        return json.loads(self.template_path.read_text(encoding="utf-8"))

    @property
    def validation_report(self) -> dict[str, Any]:
        return json.loads((self.outdir / "validation-report.json").read_text(encoding="utf-8"))

    def logical_id(self, construct: Any) -> str:
        resource = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
        return self.stack.get_logical_id(resource)


def synthesize(outdir: Path, env: cdk.Environment | None = None, **context: Any) -> Synthesized:
    app = cdk.App(context=cdk_context(**context), outdir=str(outdir))
    stack = build(app, env)
    app.synth()
    return Synthesized(outdir=outdir, stack=stack)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


# Deployment settings that differ from cdk.json's, all set in one second synth (each synth takes seconds): an hourly
# dispatch tick, an alarm e-mail, and the SMS origination identity and configuration set.
OPTIONAL_CONTEXT = {
    "dispatch_tick_minutes": "60",
    "alarm_email": "ops@example.com",
    "sms_origination_identity": (
        "arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-0123456789abcdef0123456789abcdef"
    ),
    "sms_configuration_set": "possync-prod-sms",
}


@pytest.fixture(scope="session")
def synthesized_with_options(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk.out-options"), **OPTIONAL_CONTEXT)


@pytest.fixture(scope="session")
def template(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.template


@pytest.fixture(scope="session")
def assertions(template: dict[str, Any]) -> Template:
    return Template.from_json(template)
