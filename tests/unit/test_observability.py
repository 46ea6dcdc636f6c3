"""Observability: alarmed metrics carry no dimension at all, in the stage's namespace; nothing imports X-Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from aws_lambda_powertools.metrics import MetricUnit

from functions.core import layout, observability
from functions.core.metrics import PULLS_FAILED, RECORDS_WAITING, SETTINGS_INVALID
from functions.core.notify import AwsNotifier


def test_alarm_metrics_have_no_dimension_even_with_a_service_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "pull_onprem")  # every Lambda has one

    metrics = observability.alarm_metrics()
    metrics.add_metric(name=PULLS_FAILED, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()

    [directive] = json.loads(capsys.readouterr().out)["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == observability.NAMESPACE
    assert directive["Dimensions"] == [[]]
    assert [m["Name"] for m in directive["Metrics"]] == [PULLS_FAILED]


def test_the_rules_counts_and_gauges_have_no_dimension_either(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The settings invalid and records waiting alarms watch these without dimensions: with a `service` dimension
    # (Powertools' default from POWERTOOLS_SERVICE_NAME) they are other metrics and the alarms never fire.
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "enroll")
    notifier = AwsNotifier(events=None, namespace=observability.NAMESPACE)

    notifier.counts({SETTINGS_INVALID: 2})
    notifier.gauge(RECORDS_WAITING, 0)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] for line in lines] == [[[]], [[]]]
    assert [(line.get(SETTINGS_INVALID), line.get(RECORDS_WAITING)) for line in lines] == [([2.0], None), (None, [0.0])]


def _in_fresh_process(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "POSSYNC_"))}
    result = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True, timeout=120
    )
    return result.stdout.strip()


def test_the_namespace_is_the_stage_prefix_when_the_lambda_does_not_set_it() -> None:
    names = layout.ResourceNames.for_stage("dev")
    code = "from functions.core.observability import NAMESPACE; print(NAMESPACE)"

    assert _in_fresh_process(code, **{layout.ENV_RESOURCE_PREFIX: names.prefix}) == "possync-dev"
    assert _in_fresh_process(code, POWERTOOLS_METRICS_NAMESPACE="possync-qa") == "possync-qa"


def test_nothing_imports_the_xray_sdk() -> None:
    code = (
        "import sys; sys.modules['aws_xray_sdk'] = None\n"  # any import of it now raises ImportError
        "import functions.core.observability, functions.core.pull_runtime\n"
        "print('aws_xray_sdk.core' in sys.modules)"
    )
    assert _in_fresh_process(code) == "False"
