"""cdk-nag AwsSolutions and cfn-lint pass on the synthesized app; every acknowledgment gives its reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from cfnlint.api import ManualArgs, lint_file

from infra.app import add_checks
from tests.infra.conftest import Synthesized

# cfn-lint rules switched off, each with the reason.
IGNORED_LINT_RULES = {
    # aws-cdk-lib makes every Lambda function DependsOn its execution role construct so that the role's
    # policy exists before the function; the role half of that DependsOn repeats the Role GetAtt. Harmless.
    "W3005",
}
LINT_REGIONS = ["us-east-1", "us-east-2", "us-west-2"]


def _violations(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    ]


def test_cdk_nag_reports_no_unacknowledged_findings(synthesized: Synthesized) -> None:
    assert _violations(synthesized.validation_report) == []


def test_acknowledgments_are_recorded_with_reasons(template: dict[str, Any]) -> None:
    acknowledged = [
        rule
        for resource in template["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]

    # Written by the AwsSolutions plugin itself, so this also proves the checks ran on the app.
    assert acknowledged, "no cdk_nag metadata: the AwsSolutions checks did not run"
    for rule in acknowledged:
        assert rule["id"].startswith("AwsSolutions-"), rule
        assert len(rule["reason"]) >= 40, f"{rule['id']} needs a reason a reviewer would accept"
    assert {rule["id"].split("[")[0] for rule in acknowledged} == {
        "AwsSolutions-APIG4",  # the signup routes: a per-tenant API key checked by the function (no authorizer)
        "AwsSolutions-IAM5",
        "AwsSolutions-L1",
        "AwsSolutions-S1",
        "AwsSolutions-SQS3",
    }


def test_checks_fail_the_synth_on_a_finding(tmp_path: Path) -> None:
    # Given an app with a bucket that has neither access logs nor a TLS-only policy
    app = cdk.App(outdir=str(tmp_path))
    s3.Bucket(cdk.Stack(app, "Canary"), "Bucket")
    add_checks(app)

    # When it is synthesized, then the synth fails and the report names both findings
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text(encoding="utf-8"))
    assert {rule for rule, _ in _violations(report)} >= {"AwsSolutions-S1", "AwsSolutions-S10"}


def test_cfn_lint_is_clean(synthesized: Synthesized) -> None:
    matches = lint_file(synthesized.template_path, ManualArgs(regions=LINT_REGIONS, include_checks=["I"]))

    unexpected = [m for m in matches if m.rule.id not in IGNORED_LINT_RULES]
    assert [f"{m.rule.id} {m.message} at {'/'.join(map(str, m.path))}" for m in unexpected] == []
    # An ignored rule that no longer fires is dropped from the list.
    assert {m.rule.id for m in matches} == IGNORED_LINT_RULES
