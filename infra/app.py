"""The possync CDK app (`cdk synth` runs `python -m infra.app`): one stack, checked by cdk-nag on every synth."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from functions.core.layout import ResourceNames
from infra.config import DeployConfig
from infra.stack import PossyncStack

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


class DeployConfigError(ValueError):
    """The CDK context is invalid; the message names the key and what to set."""


def cdk_json_context() -> dict[str, Any]:
    """The context in cdk.json (feature flags and deployment settings)."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    return context


def build(app: cdk.App, env: cdk.Environment | None = None) -> PossyncStack:
    """Add the stage's stack to the app, configured from the app's context, with the AwsSolutions rules.

    With the account and region known (`env`, as `cdk deploy` provides them), every retained resource's name is a
    literal, which is what lets `cdk deploy --import-existing-resources` adopt them again after a `cdk destroy`.
    """
    try:
        config = DeployConfig.from_context(app.node)
    except ValueError as exc:
        raise DeployConfigError(str(exc)) from None
    names = ResourceNames.for_stage(config.stage)
    stack = PossyncStack(
        app,
        names.stack_name,
        config=config,
        names=names,
        env=env,
        description=f"possync ({config.stage}): pulls POS data into S3 and DynamoDB and turns it into loyalty personas",
    )
    add_checks(app)
    return stack


def add_checks(app: cdk.App) -> None:
    """cdk-nag AwsSolutions: any unacknowledged finding, error or warning, fails the synth."""
    # Acknowledged findings are also written into the template metadata, so a reviewer sees each reason there.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))


def main() -> None:
    # The CLI passes cdk.json's context itself, and what it passes wins over this; reading the file here makes
    # `python -m infra.app` without the CLI synthesize the same template.
    app = cdk.App(context=cdk_json_context())
    # The CDK CLI sets these from the caller's credentials; without them (offline synth) the stack is
    # environment-agnostic and the same template deploys anywhere.
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    try:
        build(app, env)
    except DeployConfigError as exc:
        print(f"possync: invalid deployment settings (CDK context): {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    app.synth()


if __name__ == "__main__":
    main()
