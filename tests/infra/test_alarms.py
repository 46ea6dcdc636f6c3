"""Alarms that match the failures: possync's own metrics, throttles of every function and table, the e-mail topic."""

from __future__ import annotations

import re
from typing import Any

import pytest

from functions.core import metrics
from functions.core.layout import DEFAULT_STAGE, PULL_VENDORS, RULE_FUNCTIONS, ResourceNames
from functions.core.streams import PERSONA_CONSUMERS
from infra.constructs import monitoring
from tests.infra import cfn
from tests.infra.conftest import REPO_ROOT, Synthesized

NAMES = ResourceNames.for_stage(DEFAULT_STAGE)
FIVE_MINUTES = 300
# CloudWatch's price of a standard-resolution alarm, per metric it watches (a metric math alarm: each metric in it).
CENTS_PER_ALARM_METRIC_MONTH = 10


def _alarms(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [a["Properties"] for a in cfn.of_type(template, "AWS::CloudWatch::Alarm").values()]


def _watched(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm reads: itself for an alarm on one metric, each MetricStat of a metric math alarm (billed
    per metric it reads, not for its expression)."""
    return [alarm] if "MetricName" in alarm else [m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m]


def _custom(template: dict[str, Any], metric_name: str) -> dict[str, Any]:
    """The one alarm on a possync metric as its emitters send it for alarms: this stage, no dimensions."""
    [alarm] = [a for a in _alarms(template) if a.get("MetricName") == metric_name]
    assert alarm["Namespace"] == NAMES.metrics_namespace == "possync-prod"
    assert "Dimensions" not in alarm, "alarmed metrics are emitted without dimensions; one alarm covers every store"
    return alarm


@pytest.mark.parametrize(
    ("metric_name", "statistic", "period", "evaluation_periods", "datapoints", "missing"),
    [
        (metrics.SETTINGS_INVALID, "Sum", FIVE_MINUTES, 1, None, "notBreaching"),
        (metrics.SETTINGS_UNREADABLE, "Sum", FIVE_MINUTES, 3, None, "notBreaching"),
        (metrics.PULLS_FAILED, "Sum", FIVE_MINUTES, 1, None, "notBreaching"),
        (metrics.PULL_CONTRACT_MISMATCH, "Sum", FIVE_MINUTES, 1, None, "notBreaching"),
        (metrics.LEASE_RELEASE_FAILED, "Sum", FIVE_MINUTES, 1, None, "notBreaching"),
        (metrics.PULL_JOBS_REJECTED, "Sum", FIVE_MINUTES, 1, None, "notBreaching"),
        (metrics.AWS_CALLS_FAILED, "Sum", FIVE_MINUTES, 3, 2, "notBreaching"),
        (metrics.REEVALUATIONS_FAILED, "Sum", FIVE_MINUTES, 1, None, "notBreaching"),
        (metrics.REDEMPTIONS_OVERDRAWN, "Sum", FIVE_MINUTES, 1, None, "notBreaching"),
        # gauges: the last value stands until the next one arrives
        (metrics.CREDENTIALS_STALE, "Maximum", 15 * 60, 1, None, "ignore"),
        (metrics.RECORDS_WAITING, "Maximum", 15 * 60, 1, None, "ignore"),
    ],
)
def test_each_failure_metric_has_its_alarm(
    template: dict[str, Any],
    metric_name: str,
    statistic: str,
    period: int,
    evaluation_periods: int,
    datapoints: int | None,
    missing: str,
) -> None:
    alarm = _custom(template, metric_name)

    assert (alarm["Statistic"], alarm["Period"]) == (statistic, period)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["EvaluationPeriods"] == evaluation_periods
    assert alarm.get("DatapointsToAlarm") == datapoints
    assert alarm["TreatMissingData"] == missing


def test_credentials_stale_is_read_once_per_dispatch_tick(synthesized_with_options: Synthesized) -> None:
    hourly = synthesized_with_options.template  # dispatch_tick_minutes="60" (tests/infra/conftest.py)

    assert _custom(hourly, metrics.CREDENTIALS_STALE)["Period"] == 3600


def test_quarantine_rate_is_a_share_of_the_records_pulled_above_a_minimum(template: dict[str, Any]) -> None:
    [alarm] = [a for a in _alarms(template) if a["AlarmName"] == NAMES.alarm_name("quarantine rate")]
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    [expression] = [q for q in alarm["Metrics"] if "Expression" in q]

    assert expression["Expression"] == (
        f"IF(pulled >= {monitoring.QUARANTINE_MIN_RECORDS}, 100 * FILL(quarantined, 0) / pulled, 0)"
    )
    assert expression["ReturnData"] is True
    for query_id, metric_name in (("pulled", metrics.RECORDS_PULLED), ("quarantined", metrics.RECORDS_QUARANTINED)):
        stat = queries[query_id]["MetricStat"]
        assert stat["Metric"] == {"MetricName": metric_name, "Namespace": NAMES.metrics_namespace}
        assert (stat["Stat"], stat["Period"]) == ("Sum", 3600)
        assert queries[query_id]["ReturnData"] is False
    assert monitoring.QUARANTINE_MIN_RECORDS >= 50, "one bad record in a tiny pull must not page"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 5)


def test_every_function_alarms_on_lambda_throttles(synthesized: Synthesized, template: dict[str, Any]) -> None:
    functions = [p.function for p in synthesized.stack.pulls.functions.values()]
    functions += [r.function for r in synthesized.stack.rules.functions.values()]
    functions.append(synthesized.stack.pos_sync.function)
    functions.append(synthesized.stack.reevaluation.function)
    functions += list(synthesized.stack.messaging.functions().values())
    functions.append(synthesized.stack.signups.function)
    throttles = [a for a in _alarms(template) if a.get("MetricName") == "Throttles"]

    # + the opt-in deferral and reply, + the form signups
    assert len(functions) == len(PULL_VENDORS) + len(RULE_FUNCTIONS) + len(PERSONA_CONSUMERS) + 1 + 2 + 1
    assert len(cfn.of_type(template, "AWS::Lambda::Function")) == len(functions)
    assert sorted(str(a["Dimensions"]) for a in throttles) == sorted(
        str([{"Name": "FunctionName", "Value": {"Ref": synthesized.logical_id(f)}}]) for f in functions
    )
    for alarm in throttles:
        assert (alarm["Namespace"], alarm["Statistic"], alarm["Threshold"]) == ("AWS/Lambda", "Sum", 0)


def test_every_table_alarms_on_throttled_reads_and_writes(synthesized: Synthesized, template: dict[str, Any]) -> None:
    storage = synthesized.stack.storage
    watched: dict[str, set[str]] = {}
    for alarm in _alarms(template):
        stats = [q["MetricStat"]["Metric"] for q in alarm.get("Metrics", []) if "MetricStat" in q]
        if not stats or stats[0]["Namespace"] != "AWS/DynamoDB":
            continue
        [expression] = [q["Expression"] for q in alarm["Metrics"] if "Expression" in q]
        assert expression == "FILL(reads, 0) + FILL(writes, 0)"
        assert alarm["Threshold"] == 0
        [table] = {str(s["Dimensions"]) for s in stats}
        watched[table] = {s["MetricName"] for s in stats}

    assert watched == {
        str([{"Name": "TableName", "Value": {"Ref": synthesized.logical_id(t)}}]): {
            "ReadThrottleEvents",
            "WriteThrottleEvents",
        }
        for t in (storage.records_table, storage.control_table, storage.personas_table)
    }


def test_every_alarm_says_what_to_do(template: dict[str, Any]) -> None:
    for alarm in _alarms(template):
        description = alarm["AlarmDescription"]
        assert len(description) >= 50, alarm["AlarmName"]
        verbs = ("check", "fix", "inspect", "see", "look", "ask", "redrive")
        assert any(verb in description.lower() for verb in verbs), alarm["AlarmName"]


def test_alarm_and_topic_names_carry_the_stage(template: dict[str, Any]) -> None:
    topics = {t["Properties"]["TopicName"] for t in cfn.of_type(template, "AWS::SNS::Topic").values()}
    names = [a["AlarmName"] for a in _alarms(template)]

    # the alarm topic, and the opt-in's inbound-SMS topic
    assert topics == {NAMES.alarm_topic, "possync-prod-sms-inbound"} and NAMES.alarm_topic == "possync-prod-alarms"
    assert len(set(names)) == len(names)
    assert NAMES.alarm_name("pull_onprem jobs dead letters") in names
    assert "possync-prod-pull-onprem-jobs-dead-letters" in names


def _email_subscriptions(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Subscriptions other than the reply function's to the inbound-SMS topic."""
    subscriptions = cfn.of_type(template, "AWS::SNS::Subscription").values()
    return [s for s in subscriptions if s["Properties"]["Protocol"] != "lambda"]


def test_no_email_subscription_by_default(template: dict[str, Any]) -> None:
    assert _email_subscriptions(template) == []
    [reply] = list(cfn.of_type(template, "AWS::SNS::Subscription").values())
    assert reply["Properties"]["Protocol"] == "lambda"


def test_alarm_email_from_context_subscribes_to_the_topic(synthesized_with_options: Synthesized) -> None:
    synthesized = synthesized_with_options  # alarm_email="ops@example.com" (tests/infra/conftest.py)

    [subscription] = _email_subscriptions(synthesized.template)
    assert subscription["Properties"] == {
        "Endpoint": "ops@example.com",
        "Protocol": "email",
        "TopicArn": {"Ref": synthesized.logical_id(synthesized.stack.monitoring.alarm_topic)},
    }


def test_the_readme_states_how_many_alarms_watch_how_many_metrics_and_what_they_cost(template: dict[str, Any]) -> None:
    alarms = _alarms(template)
    watched = [_watched(alarm) for alarm in alarms]
    metric_count = sum(len(metrics_of_one) for metrics_of_one in watched)
    # all standard resolution (a period of a minute or more; high resolution costs three times as much)
    assert all(metric["Period"] >= 60 for metrics_of_one in watched for metric in metrics_of_one)
    cents = metric_count * CENTS_PER_ALARM_METRIC_MONTH

    readme = " ".join((REPO_ROOT / "README.md").read_text(encoding="utf-8").split())
    stated = re.findall(r"(\d+) alarms watching (\d+) metrics \(\$(\d+\.\d\d) a month\)", readme)

    assert stated == [(str(len(alarms)), str(metric_count), f"{cents // 100}.{cents % 100:02d}")]


def test_the_readme_names_every_possync_metric_an_alarm_watches(template: dict[str, Any]) -> None:
    alarmed = {
        named["MetricName"]
        for alarm in _alarms(template)
        for metric in _watched(alarm)
        if (named := metric.get("Metric", metric)).get("Namespace") == NAMES.metrics_namespace
    }
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    alarms_paragraph = readme[readme.index("**Alarms.**") : readme.index("What it costs to leave running")]

    assert metrics.SMS_SENDS_FAILED in alarmed  # the template is read as it is: its metrics are found
    assert sorted(name for name in alarmed if f"`{name}`" not in alarms_paragraph) == []
