"""Monitoring: alarms on failed functions, non-empty dead-letter queues and lagging streams, and a dashboard."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.core.layout import ResourceNames
from infra.constructs.pulls import PullFunction
from infra.constructs.rules import RuleFunction
from infra.outputs import pascal_case

PERIOD = Duration.minutes(5)
# A stream consumer whose oldest unread record stays older than this for ITERATOR_AGE_PERIODS periods is
# falling behind (the freshness target is 60 s; a first pull's backlog may take minutes, not a quarter hour).
ITERATOR_AGE_THRESHOLD = Duration.minutes(5)
ITERATOR_AGE_PERIODS = 3
WIDGET_WIDTH = 6
DASHBOARD_WIDTH = 4 * WIDGET_WIDTH


class Monitoring(Construct):
    """Every function and dead-letter queue given here gets an alarm; subscribe to `alarm_topic` to hear of them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        pulls: Sequence[PullFunction],
        rules: Sequence[RuleFunction] = (),
        functions: Mapping[str, lambda_.IFunction] | None = None,
        dead_letter_queues: Mapping[str, sqs.IQueue] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        key = kms.Key(self, "AlarmTopicKey", description="Encrypts the possync alarm topic", enable_key_rotation=True)
        # CloudWatch alarms can publish to an encrypted topic only if they may use its key.
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.alarm_topic = sns.Topic(
            self, "AlarmTopic", display_name=f"{names.prefix} alarms", master_key=key, enforce_ssl=True
        )
        self._action = actions.SnsAction(self.alarm_topic)
        self.alarms: list[cloudwatch.Alarm] = []

        watched_functions = (
            {pull.name: pull.function for pull in pulls}
            | {rule.name: rule.function for rule in rules}
            | dict(functions or {})
        )
        watched_queues: dict[str, sqs.IQueue] = {}
        for pull in pulls:
            watched_queues[f"{pull.name} jobs"] = pull.dead_letter_queue
            watched_queues[f"{pull.name} dispatch"] = pull.dispatch_dead_letter_queue
        for rule in rules:
            watched_queues[f"{rule.name} stream"] = rule.dead_letter_queue
        watched_queues |= dict(dead_letter_queues or {})
        for label, function in watched_functions.items():
            self._alarm(
                f"{label} errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                f"{label} raised an error or timed out; see its log group",
            )
        for label, queue in watched_queues.items():
            self._alarm(
                f"{label} dead letters",
                _dead_letters(queue),
                f"Messages reached the {label} dead-letter queue; inspect them, fix the cause, then redrive",
            )
        for rule in rules:
            self._alarm(
                f"{rule.name} iterator age",
                _iterator_age(rule),
                f"{rule.name} is more than {ITERATOR_AGE_THRESHOLD.to_minutes()} minutes behind the records stream; "
                "check its errors, duration and throttles",
                threshold=ITERATOR_AGE_THRESHOLD.to_milliseconds(),
                evaluation_periods=ITERATOR_AGE_PERIODS,
            )

        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=names.prefix, default_interval=Duration.days(1)
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=DASHBOARD_WIDTH)
        )
        for pull in pulls:
            self.dashboard.add_widgets(*_pull_row(pull))
        for rule in rules:
            self.dashboard.add_widgets(*_rule_row(rule))

    def _alarm(
        self,
        label: str,
        metric: cloudwatch.IMetric,
        description: str,
        threshold: float = 0,
        evaluation_periods: int = 1,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            f"{pascal_case(label)}Alarm",
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)


def _pull_row(pull: PullFunction) -> list[cloudwatch.IWidget]:
    function = pull.function
    return [
        cloudwatch.GraphWidget(
            title=f"{pull.name} invocations",
            left=[function.metric_invocations(period=PERIOD), function.metric_errors(period=PERIOD)],
            right=[function.metric_throttles(period=PERIOD)],
            width=WIDGET_WIDTH,
        ),
        cloudwatch.GraphWidget(
            title=f"{pull.name} duration",
            left=[
                function.metric_duration(period=PERIOD, statistic="p50"),
                function.metric_duration(period=PERIOD, statistic="Maximum"),
            ],
            width=WIDGET_WIDTH,
        ),
        cloudwatch.GraphWidget(
            title=f"{pull.name} jobs queue",
            left=[pull.queue.metric_approximate_number_of_messages_visible(period=PERIOD)],
            right=[pull.queue.metric_approximate_age_of_oldest_message(period=PERIOD)],
            width=WIDGET_WIDTH,
        ),
        cloudwatch.SingleValueWidget(
            title=f"{pull.name} dead letters",
            metrics=[
                _dead_letters(pull.dead_letter_queue, "jobs"),
                _dead_letters(pull.dispatch_dead_letter_queue, "dispatch"),
            ],
            width=WIDGET_WIDTH,
        ),
    ]


def _rule_row(rule: RuleFunction) -> list[cloudwatch.IWidget]:
    function = rule.function
    return [
        cloudwatch.GraphWidget(
            title=f"{rule.name} invocations",
            left=[function.metric_invocations(period=PERIOD), function.metric_errors(period=PERIOD)],
            right=[function.metric_throttles(period=PERIOD)],
            width=WIDGET_WIDTH,
        ),
        cloudwatch.GraphWidget(
            title=f"{rule.name} duration",
            left=[
                function.metric_duration(period=PERIOD, statistic="p50"),
                function.metric_duration(period=PERIOD, statistic="Maximum"),
            ],
            width=WIDGET_WIDTH,
        ),
        cloudwatch.GraphWidget(title=f"{rule.name} iterator age", left=[_iterator_age(rule)], width=WIDGET_WIDTH),
        cloudwatch.SingleValueWidget(
            title=f"{rule.name} dead letters",
            metrics=[_dead_letters(rule.dead_letter_queue, "stream batches")],
            width=WIDGET_WIDTH,
        ),
    ]


def _iterator_age(rule: RuleFunction) -> cloudwatch.Metric:
    """How old the last record the event source mapping handed over was: how far the consumer lags behind."""
    return rule.function.metric("IteratorAge", period=PERIOD, statistic="Maximum")


def _dead_letters(queue: sqs.IQueue, label: str | None = None) -> cloudwatch.Metric:
    return queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum", label=label)
