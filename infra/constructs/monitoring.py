"""Monitoring: an alarm for every way possync fails (functions, queues, streams, tables, its own metrics), a dashboard.

possync's own metrics (names in functions.core.metrics) are alarmed as the functions emit them for this purpose:
once per event, in the stage's namespace, WITHOUT dimensions (functions.core.observability.alarm_metrics), so one
alarm covers every tenant and store; the per-vendor/credential copies are for the dashboard and for finding the
store at fault (`possync status`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.core import metrics
from functions.core.layout import ResourceNames
from infra.config import DeployConfig
from infra.constructs.pulls import PullFunction
from infra.constructs.reevaluation import Reevaluation
from infra.constructs.rules import RuleFunction
from infra.constructs.storage import Storage
from infra.outputs import pascal_case

PERIOD = Duration.minutes(5)
# A stream consumer whose oldest unread record stays older than this for ITERATOR_AGE_PERIODS periods is
# falling behind (the freshness target is 60 s; a first pull's backlog may take minutes, not a quarter hour).
ITERATOR_AGE_THRESHOLD = Duration.minutes(5)
ITERATOR_AGE_PERIODS = 3
# SSM throttled or down: the rules retry the records, so only a read failure that lasts a quarter hour pages.
SETTINGS_UNREADABLE_PERIODS = 3
# AWS calls failing past their retries in 2 of 3 five-minute periods: more than one unlucky throttle.
AWS_CALLS_FAILED_PERIODS = 3
AWS_CALLS_FAILED_DATAPOINTS = 2
# Quarantined share of the records pulled in an hour, counted only from QUARANTINE_MIN_RECORDS records on, so one
# bad record in a tiny pull does not page (PullContractMismatch covers a pull where most records fail).
QUARANTINE_PERIOD = Duration.hours(1)
QUARANTINE_MIN_RECORDS = 100
QUARANTINE_RATE_PERCENT = 5
# Records parked for invalid settings: a gauge the consumers emit as they work.
RECORDS_WAITING_PERIOD = Duration.minutes(15)
KEY_PENDING_WINDOW = Duration.days(7)
WIDGET_WIDTH = 6
DASHBOARD_WIDTH = 4 * WIDGET_WIDTH


class Monitoring(Construct):
    """Every function, queue and table given here gets its alarms; `alarm_topic` hears of all of them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        config: DeployConfig,
        storage: Storage,
        pulls: Sequence[PullFunction],
        rules: Sequence[RuleFunction] = (),
        reevaluation: Reevaluation | None = None,
        functions: Mapping[str, lambda_.IFunction] | None = None,
        dead_letter_queues: Mapping[str, sqs.IQueue] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.names = names
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"Encrypts the {names.alarm_topic} topic",
            enable_key_rotation=True,
            # It encrypts notifications in flight only: nothing is lost when a destroyed stack's key goes.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=KEY_PENDING_WINDOW,
        )
        # CloudWatch alarms can publish to an encrypted topic only if they may use its key; and only this stage's
        # alarms, in this account and region, may (the confused-deputy conditions AWS documents for a service
        # principal publishing to an encrypted topic: CloudWatch names the alarm in aws:SourceArn).
        stack = Stack.of(self)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToTheAlarmTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            # every alarm's name starts with the stage's prefix (ResourceNames.alarm_name)
                            resource_name=f"{names.prefix}-*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        self.alarm_topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=names.alarm_topic,
            display_name=f"{names.prefix} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if config.alarm_email is not None:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self._action = actions.SnsAction(self.alarm_topic)
        self.alarms: list[cloudwatch.Alarm] = []

        watched_functions = (
            {pull.name: pull.function for pull in pulls}
            | {rule.name: rule.function for rule in rules}
            | ({reevaluation.name: reevaluation.function} if reevaluation is not None else {})
            | dict(functions or {})
        )
        watched_queues: dict[str, sqs.IQueue] = {}
        for pull in pulls:
            watched_queues[f"{pull.name} jobs"] = pull.dead_letter_queue
            watched_queues[f"{pull.name} dispatch"] = pull.dispatch_dead_letter_queue
        for rule in rules:
            watched_queues[f"{rule.name} stream"] = rule.dead_letter_queue
        if reevaluation is not None:
            watched_queues[f"{reevaluation.name} jobs"] = reevaluation.dead_letter_queue
        watched_queues |= dict(dead_letter_queues or {})
        for label, function in watched_functions.items():
            self._alarm(
                f"{label} errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                f"{label} raised an error or timed out; see its log group",
            )
            self._alarm(
                f"{label} throttles",
                function.metric_throttles(period=PERIOD, statistic="Sum"),
                f"Lambda throttled {label}: the account's concurrency is used up. Check ConcurrentExecutions in the "
                "account, reserved concurrency of other functions, and ask for a higher Lambda concurrency quota.",
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
        for label, table in storage.tables.items():
            self._alarm(
                f"{label} table throttles",
                _table_throttles(table),
                f"DynamoDB throttled reads or writes of the {label} table (on-demand still throttles a hot partition "
                "or a sudden jump past twice the previous peak). Functions retry and then fail their unit of work "
                "whole (AwsCallsFailed); look for one hot key in CloudWatch Contributor Insights, or pre-warm the "
                "table's warm throughput before a large first pull.",
            )
        self._custom_metric_alarms(config)

        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=names.dashboard, default_interval=Duration.days(1)
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=DASHBOARD_WIDTH)
        )
        self.dashboard.add_widgets(*self._outcome_row())
        for pull in pulls:
            self.dashboard.add_widgets(*_pull_row(pull))
        for rule in rules:
            self.dashboard.add_widgets(*_rule_row(rule))
        if reevaluation is not None:
            self.dashboard.add_widgets(*self._reevaluation_row(reevaluation))

    def custom_metric(
        self, name: str, statistic: str = "Sum", period: Duration = PERIOD, label: str | None = None
    ) -> cloudwatch.Metric:
        """One of possync's own metrics as the alarms watch it: this stage's namespace, no dimensions."""
        return cloudwatch.Metric(
            namespace=self.names.metrics_namespace, metric_name=name, statistic=statistic, period=period, label=label
        )

    def _custom_metric_alarms(self, config: DeployConfig) -> None:
        tick = Duration.minutes(config.dispatch_tick_minutes)
        self._alarm(
            "settings invalid",
            self.custom_metric(metrics.SETTINGS_INVALID),
            "A tenant's or integration's settings in SSM are invalid: the rules enroll and text no one from it and "
            "park its records. The function's log names the parameter; fix it with `possync settings set` (see "
            "`possync settings show`). Parked records are applied when valid settings return.",
        )
        self._alarm(
            "settings unreadable",
            self.custom_metric(metrics.SETTINGS_UNREADABLE),
            f"SSM Parameter Store could not be read for {SETTINGS_UNREADABLE_PERIODS * PERIOD.to_minutes()} minutes "
            "(throttled or down): the rules retry their records and apply nothing meanwhile. Check SSM throttling "
            "(GetParameter rate, the higher-throughput setting) and the AWS Health Dashboard.",
            evaluation_periods=SETTINGS_UNREADABLE_PERIODS,
        )
        self._alarm(
            "pulls failed",
            self.custom_metric(metrics.PULLS_FAILED),
            "A pull failed. `possync status` names the store and the reason (credential, settings, contract, AWS) "
            "and exits non-zero; fix the cause, the next tick pulls again from the last checkpoint.",
        )
        self._alarm(
            "pull contract mismatch",
            self.custom_metric(metrics.PULL_CONTRACT_MISMATCH),
            "Most records of a pull were quarantined for one reason: the POS's payload no longer matches possync's "
            "contract. `possync status` names the stream and field, `possync quarantine list` shows the records; "
            "fix the vendor mapping (its CONTRACT.md), deploy, then `possync replay` the window.",
        )
        self._alarm(
            "quarantine rate",
            cloudwatch.MathExpression(
                expression=(f"IF(pulled >= {QUARANTINE_MIN_RECORDS}, 100 * FILL(quarantined, 0) / pulled, 0)"),
                using_metrics={
                    "pulled": self.custom_metric(metrics.RECORDS_PULLED, period=QUARANTINE_PERIOD),
                    "quarantined": self.custom_metric(metrics.RECORDS_QUARANTINED, period=QUARANTINE_PERIOD),
                },
                period=QUARANTINE_PERIOD,
                label="quarantined % of records pulled",
            ),
            f"More than {QUARANTINE_RATE_PERCENT}% of the records pulled in an hour (counted from "
            f"{QUARANTINE_MIN_RECORDS} records on) were quarantined. `possync quarantine list` shows them with the "
            "reason and raw page; fix the mapping or the POS data, then `possync replay`.",
            threshold=QUARANTINE_RATE_PERCENT,
        )
        self._alarm(
            "credentials stale",
            self.custom_metric(metrics.CREDENTIALS_STALE, statistic="Maximum", period=tick),
            "Some stores have had no successful pull for twice their interval. `possync status` lists them with "
            "their last outcome and error (it exits non-zero); fix the credential, settings or store server.",
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,  # a gauge: one value per dispatch tick
        )
        self._alarm(
            "lease release failed",
            self.custom_metric(metrics.LEASE_RELEASE_FAILED),
            "A pull could not release its lease (DynamoDB error): that store is skipped until the lease expires. "
            "`possync status` shows the held lease; check the control table's throttle alarm and DynamoDB health.",
        )
        self._alarm(
            "pull jobs rejected",
            self.custom_metric(metrics.PULL_JOBS_REJECTED),
            "A pull job that can never succeed (not JSON, unknown vendor, invalid ids) went straight to the jobs "
            "dead-letter queue. The function's log says why; inspect the message and fix whatever enqueued it.",
        )
        self._alarm(
            "records waiting",
            self.custom_metric(metrics.RECORDS_WAITING, statistic="Maximum", period=RECORDS_WAITING_PERIOD),
            "Records are parked because their tenant's settings are invalid (see the settings invalid alarm). Fix "
            "the settings with `possync settings set`; the parked records are applied when valid settings return.",
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,  # a gauge the consumers emit as they work
        )
        self._alarm(
            "redemptions overdrawn",
            self.custom_metric(metrics.REDEMPTIONS_OVERDRAWN),
            "A sale redeemed a reward that took a persona's points below zero: the POS gave the discount, so the "
            "redemption is kept and flagged. `possync rewards check --tenant T` lists them; check who may redeem it.",
        )
        self._alarm(
            "reevaluations failed",
            self.custom_metric(metrics.REEVALUATIONS_FAILED),
            "A re-evaluation (a settings or store-mapping change applied to the records already stored) failed: its "
            "retries were used up, or the settings were invalid. `possync status` names the tenant, POS and reason "
            "(and exits non-zero); fix the cause, then `possync reevaluate --tenant T --vendor V` runs it again.",
        )
        self._alarm(
            "sms sends failed",
            self.custom_metric(metrics.SMS_SENDS_FAILED),
            "End User Messaging SMS refused a text (invalid number, carrier opt-out, origination identity not "
            "allowed, spending limit). The opt-in function's log names the error code; the consent evidence "
            "(`possync personas show`) marks the request failed. Check the origination identity's registration, "
            "the account's SMS spending limit and the configuration set's delivery events.",
        )
        self._alarm(
            "sms sends uncertain",
            self.custom_metric(metrics.SMS_SENDS_UNCERTAIN),
            "A text may or may not have been sent (the provider call timed out or the function stopped during it). "
            "possync never repeats it; check the configuration set's delivery events for the number and time in "
            "the consent evidence (`possync personas show`) to learn whether it went out.",
        )
        self._alarm(
            "signups failed",
            self.custom_metric(metrics.SIGNUPS_FAILED),
            "Form signups were answered 503 because DynamoDB, SSM or SQS failed: nothing was stored for them and "
            "the forms retry (the same signup is applied once). The signups function's log names the service and "
            "operation; check the table throttle alarms and the AWS Health Dashboard.",
        )
        self._alarm(
            "pos sync failed",
            self.custom_metric(metrics.POS_SYNC_FAILED),
            "POSaBIT or Flourish refused to create a form signup's customer (a validation error, a duplicate it "
            "could not find, or a refused credential). `possync personas show --tenant T PERSONA` says which POS "
            "and why; fix the data or the credential in the POS (a refused credential is retried until it works).",
        )
        self._alarm(
            "pos sync uncertain",
            self.custom_metric(metrics.POS_SYNC_UNCERTAIN),
            "A customer create in POSaBIT or Flourish got no answer (timeout, 5xx) and a search did not find the "
            "customer. possync never sends it again; `possync personas show` gives the POS and time; check the POS "
            "for the shopper and create it there if it is missing (the next pull links it).",
        )
        self._alarm(
            "aws calls failed",
            self.custom_metric(metrics.AWS_CALLS_FAILED),
            f"AWS calls (DynamoDB, S3, SQS, SSM, Secrets Manager) failed past their retries in "
            f"{AWS_CALLS_FAILED_DATAPOINTS} of the last {AWS_CALLS_FAILED_PERIODS} five-minute periods. The work "
            "is retried whole and nothing is acknowledged; the logs name service and operation. Check the table "
            "and function throttle alarms, service quotas and the AWS Health Dashboard.",
            evaluation_periods=AWS_CALLS_FAILED_PERIODS,
            datapoints_to_alarm=AWS_CALLS_FAILED_DATAPOINTS,
        )

    def _alarm(
        self,
        label: str,
        metric: cloudwatch.IMetric,
        description: str,
        threshold: float = 0,
        evaluation_periods: int = 1,
        datapoints_to_alarm: int | None = None,
        treat_missing_data: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            f"{pascal_case(label)}Alarm",
            alarm_name=self.names.alarm_name(label),
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            treat_missing_data=treat_missing_data,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)

    def _reevaluation_row(self, job: Reevaluation) -> list[cloudwatch.IWidget]:
        function = job.function
        return [
            cloudwatch.GraphWidget(
                title=f"{job.name} invocations",
                left=[function.metric_invocations(period=PERIOD), function.metric_errors(period=PERIOD)],
                right=[function.metric_throttles(period=PERIOD)],
                width=WIDGET_WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="re-evaluations",
                left=[
                    self.custom_metric(metrics.REEVALUATIONS_DONE, label=metrics.REEVALUATIONS_DONE),
                    self.custom_metric(metrics.REEVALUATIONS_FAILED, label=metrics.REEVALUATIONS_FAILED),
                ],
                right=[self.custom_metric(metrics.RECORDS_REEVALUATED, label=metrics.RECORDS_REEVALUATED)],
                width=WIDGET_WIDTH,
            ),
            cloudwatch.GraphWidget(
                title=f"{job.name} jobs queue",
                left=[job.queue.metric_approximate_number_of_messages_visible(period=PERIOD)],
                right=[job.queue.metric_approximate_age_of_oldest_message(period=PERIOD)],
                width=WIDGET_WIDTH,
            ),
            cloudwatch.SingleValueWidget(
                title=f"{job.name} dead letters",
                metrics=[_dead_letters(job.dead_letter_queue, "jobs")],
                width=WIDGET_WIDTH,
            ),
        ]

    def _outcome_row(self) -> list[cloudwatch.IWidget]:
        def graph(title: str, *names: str) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(
                title=title, left=[self.custom_metric(name, label=name) for name in names], width=WIDGET_WIDTH
            )

        return [
            graph("records pulled", metrics.RECORDS_PULLED, metrics.RECORDS_CHANGED, metrics.RECORDS_QUARANTINED),
            graph("pull failures", metrics.PULLS_FAILED, metrics.PULL_CONTRACT_MISMATCH, metrics.PULL_JOBS_REJECTED),
            graph("settings", metrics.SETTINGS_INVALID, metrics.SETTINGS_UNREADABLE, metrics.RECORDS_WAITING),
            graph(
                "AWS side",
                metrics.AWS_CALLS_FAILED,
                metrics.LEASE_RELEASE_FAILED,
                metrics.CREDENTIALS_STALE,
                metrics.LEAN_REQUESTS_RESENT,
            ),
            graph(
                "SMS opt-in",
                metrics.SMS_REQUESTS_SENT,
                metrics.SMS_REQUESTS_DEFERRED,
                metrics.SMS_CONFIRMED,
                metrics.SMS_OPTED_OUT,
                metrics.SMS_SENDS_FAILED,
                metrics.SMS_SENDS_UNCERTAIN,
            ),
        ]


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


def _table_throttles(table: dynamodb.ITable) -> cloudwatch.MathExpression:
    """Throttled read and write events of one table (all operations, the table and its indexes)."""
    return cloudwatch.MathExpression(
        expression="FILL(reads, 0) + FILL(writes, 0)",
        using_metrics={
            "reads": table.metric("ReadThrottleEvents", statistic="Sum", period=PERIOD),
            "writes": table.metric("WriteThrottleEvents", statistic="Sum", period=PERIOD),
        },
        period=PERIOD,
        label="throttled read and write events",
    )
