"""cdk.json and package.json: the app command, the pinned CLI, and the recommended feature flags."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import aws_cdk

from tests.infra.conftest import REPO_ROOT

CDK_CLI_VERSION = "2.1148.1"


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_cdk_json_runs_the_app_with_the_venv_python_and_bundles() -> None:
    cdk_json = _json(REPO_ROOT / "cdk.json")

    assert cdk_json["app"] == ".venv/bin/python -m infra.app"
    assert "aws:cdk:bundling-stacks" not in cdk_json["context"], "a real synth must bundle the Lambda code"
    assert cdk_json["context"]["dispatch_tick_minutes"] == 15
    assert "pull_interval_minutes" not in cdk_json["context"], "renamed: it is the tick, not an integration's interval"
    assert cdk_json["context"]["allow_private_hosts"] is False


def test_cdk_json_has_the_recommended_feature_flags_of_the_installed_aws_cdk_lib() -> None:
    [bundle] = Path(aws_cdk.__file__).parent.glob("_jsii/aws-cdk-lib@*.jsii.tgz")
    with tarfile.open(bundle) as archive:
        member = archive.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        recommended = json.load(member)
    context = _json(REPO_ROOT / "cdk.json")["context"]

    assert {flag: context.get(flag) for flag in recommended} == recommended


def test_package_json_pins_the_cdk_cli_exactly() -> None:
    package = _json(REPO_ROOT / "package.json")
    lock = _json(REPO_ROOT / "package-lock.json")

    assert package["private"] is True
    assert package["devDependencies"] == {"aws-cdk": CDK_CLI_VERSION}
    assert lock["packages"]["node_modules/aws-cdk"]["version"] == CDK_CLI_VERSION
