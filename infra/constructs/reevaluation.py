"""Reevaluation: settings and store-mapping changes applied to the records already stored.

A jobs queue (+ dead-letter queue), the function draining it, and the EventBridge rule that turns an edit of the
stage's settings parameters in Parameter Store (console, CLI, any SDK) into a message on that queue. The CLI sends
its jobs to the same queue. The queue, retry and concurrency settings live in functions.core.reevaluation.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment as Ack
from aws_cdk import Duration, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk.aws_lambda_event_sources import SqsEventSource
from constructs import Construct

from functions.core import reevaluation
from functions.core.layout import (
    ENV_CONTROL_TABLE,
    ENV_PERSONAS_TABLE,
    ENV_RECORDS_TABLE,
    ENV_REEVALUATION_DLQ_URL,
    ENV_REEVALUATION_QUEUE_URL,
    ENV_RESOURCE_PREFIX,
    REEVALUATION_FUNCTION,
    ResourceNames,
)
from infra.constants import DLQ_RETENTION, SCHEDULE_MAX_EVENT_AGE, SCHEDULE_RETRY_ATTEMPTS
from infra.constructs.function import PossyncFunction
from infra.constructs.permissions import grant_read_settings, grant_table
from infra.constructs.rules import CONTROL_TABLE_ACTIONS, PERSONAS_TABLE_ACTIONS
from infra.constructs.rules import RECORDS_TABLE_ACTIONS as OPTIN_RECORDS_TABLE_ACTIONS
from infra.constructs.storage import Storage

# The job reads a tenant+POS's record keys from the index by tenant and POS, then the items in batches (and the opt-in
# rules a persona's shopper records, as the stream consumers do); it never writes the records table (so it never feeds
# the stream consumers) and never scans it.
RECORDS_INDEX_ACTIONS = ("dynamodb:Query",)
RECORDS_TABLE_ACTIONS = ("dynamodb:BatchGetItem",)


class Reevaluation(Construct):
    """The re-evaluation job: its queue and dead-letter queue, its function, and the settings-change rule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        code: lambda_.Code,
        storage: Storage,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = REEVALUATION_FUNCTION
        self.dead_letter_queue = sqs.Queue(
            self,
            "JobsDeadLetterQueue",
            queue_name=names.reevaluation_dlq,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        Validations.of(self.dead_letter_queue.node.default_child).acknowledge(  # type: ignore[arg-type]
            Ack(
                id="AwsSolutions-SQS3",
                reason="This queue is itself a dead-letter queue: of the re-evaluation jobs queue (jobs whose retries "
                "are used up), of messages that can never be a job, which the function moves here at once, and of "
                "the settings-change rule's target (events it could not deliver to the jobs queue).",
            )
        )
        self.queue = sqs.Queue(
            self,
            "JobsQueue",
            queue_name=names.reevaluation_queue,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(reevaluation.QUEUE_VISIBILITY_SECONDS),
            retention_period=Duration.days(reevaluation.QUEUE_RETENTION_DAYS),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=reevaluation.MAX_RECEIVES
            ),
        )
        job = PossyncFunction(
            self,
            "Job",
            name=REEVALUATION_FUNCTION,
            names=names,
            code=code,
            description="Applies a settings or store-mapping change to the records already stored, per tenant and POS",
            memory_size=reevaluation.FUNCTION_MEMORY_MB,
            timeout=Duration.seconds(reevaluation.FUNCTION_TIMEOUT_SECONDS),
            environment={
                ENV_RECORDS_TABLE: storage.records_table.table_name,
                ENV_CONTROL_TABLE: storage.control_table.table_name,
                ENV_PERSONAS_TABLE: storage.personas_table.table_name,
                ENV_RESOURCE_PREFIX: names.prefix,
                ENV_REEVALUATION_QUEUE_URL: self.queue.queue_url,
                ENV_REEVALUATION_DLQ_URL: self.dead_letter_queue.queue_url,
            },
            # A run that runs out of time continues in a message on its own queue; Lambda's loop detection would
            # stop that chain after 16 hops, and the job bounds it instead (reevaluation.MAX_CONTINUATIONS).
            recursive_loop=lambda_.RecursiveLoop.ALLOW,
        )
        self.function, self.role, self.log_group = job.function, job.role, job.log_group
        self.event_source = SqsEventSource(
            self.queue,
            batch_size=1,
            max_concurrency=reevaluation.MAX_CONCURRENCY,
            report_batch_item_failures=True,
        )
        self.function.add_event_source(self.event_source)
        self._grant(storage, names)
        self.rule = events.Rule(
            self,
            "SettingsChangeRule",
            rule_name=names.settings_change_rule,
            description=f"Edits of the settings parameters under {names.settings_parameter_root} -> re-evaluation "
            "jobs (the CLI sends its own; this catches the console and any SDK)",
            event_pattern=_pattern(names),
            # The target adds the queue policies: events.amazonaws.com may send to the jobs queue and to its
            # dead-letter queue, for this rule only (aws:SourceArn). An event that cannot be delivered is retried a
            # few times within the hour, as the schedules' ticks are, then kept in the jobs dead-letter queue
            # (alarmed) instead of EventBridge's default of a day of silent retries and then nothing. It is kept
            # there as the job it would have been, so moving it to the jobs queue runs that job.
            targets=[
                targets.SqsQueue(
                    self.queue,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                    max_event_age=SCHEDULE_MAX_EVENT_AGE,
                )
            ],
        )

    def _grant(self, storage: Storage, names: ResourceNames) -> None:
        iam.Grant.add_to_principal(
            grantee=self.function,
            actions=list(RECORDS_INDEX_ACTIONS),
            resource_arns=[storage.records_by_scope_index_arn()],
        )
        grant_table(self.function, storage.records_table, RECORDS_TABLE_ACTIONS)
        # The opt-in rules read a persona's shopper records one by one (the consent their POS recorded), as the
        # opt-in consumer does. (Sending and deferring texts: Messaging.let_request.)
        grant_table(self.function, storage.records_table, OPTIN_RECORDS_TABLE_ACTIONS)
        grant_table(self.function, storage.personas_table, PERSONAS_TABLE_ACTIONS)
        grant_table(self.function, storage.control_table, CONTROL_TABLE_ACTIONS)
        # Continuations and requests that wait for a running job go back on the queue; messages that can never be
        # a job go to the dead-letter queue at once. (Receiving, deleting and the retry backoff's
        # ChangeMessageVisibility come with the event source.)
        iam.Grant.add_to_principal(
            grantee=self.function,
            actions=["sqs:SendMessage"],
            resource_arns=[self.queue.queue_arn, self.dead_letter_queue.queue_arn],
        )
        # The sales engine raises unmapped-store notices on the default bus, as the enroll consumer does.
        events.EventBus.from_event_bus_name(self, "DefaultBus", "default").grant_put_events_to(self.function)
        grant_read_settings(self.function, names)


def _pattern(names: ResourceNames) -> events.EventPattern:
    """functions.core.reevaluation.settings_change_pattern, the one definition (a test compares the template)."""
    pattern = reevaluation.settings_change_pattern(names)
    return events.EventPattern(source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"])
