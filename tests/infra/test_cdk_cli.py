"""The pinned CDK CLI synthesizes the app from cdk.json, bundling the Lambda code for real (no Docker)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from functions.core.layout import DEFAULT_STAGE, PULL_VENDORS, RULE_FUNCTIONS, ResourceNames
from functions.core.streams import PERSONA_CONSUMERS
from tests.infra import cfn
from tests.infra.conftest import REPO_ROOT

pytestmark = pytest.mark.infra

SYNTH_TIMEOUT_SECONDS = 600


@pytest.fixture(scope="module")
def cli_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("npx") is None or not (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.fail("the pinned CDK CLI is not installed: run `npm ci` in the repository root")
    outdir = tmp_path_factory.mktemp("cli-cdk.out")
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_DISABLE_CLI_TELEMETRY": "true"}
    # --no-install: never let npx fetch some other `cdk` package from the registry.
    result = subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "--no-notices", "--quiet", "--output", str(outdir)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SYNTH_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    return outdir


def test_cli_synth_bundles_one_lambda_asset_for_arm64_python_3_12(cli_outdir: Path) -> None:
    template = json.loads(
        (cli_outdir / f"{ResourceNames.for_stage(DEFAULT_STAGE).stack_name}.template.json").read_text(encoding="utf-8")
    )
    functions = cfn.of_type(template, "AWS::Lambda::Function").values()
    [s3_key] = {f["Properties"]["Code"]["S3Key"] for f in functions}
    asset = cli_outdir / f"asset.{s3_key.removesuffix('.zip')}"

    # + the re-evaluation job, the opt-in's deferral and reply functions, and the form signups
    assert len(functions) == len(PULL_VENDORS) + len(RULE_FUNCTIONS) + len(PERSONA_CONSUMERS) + 1 + 2 + 1
    assert (asset / "functions" / "core" / "layout.py").is_file()
    assert not list((asset / "functions").rglob("__pycache__"))
    for package in ("boto3", "aws_lambda_powertools", "pydantic", "httpx", "stamina", "phonenumbers", "tzdata"):
        assert (asset / package).is_dir(), f"{package} is missing from the bundle"
    [native] = (asset / "pydantic_core").glob("_pydantic_core.*.so")
    assert native.name.endswith("cpython-312-aarch64-linux-gnu.so")


def test_cli_synth_passes_cdk_nag(cli_outdir: Path) -> None:
    report = json.loads((cli_outdir / "validation-report.json").read_text(encoding="utf-8"))
    assert [v for plugin in report["pluginReports"] for v in plugin["violations"]] == []
