"""Messaging: the SMS opt-in's deferral queue and its function, the inbound-SMS topic and the reply function, and
what the opt-in stream consumer needs to send (functions.core.sms)."""

from __future__ import annotations

from aws_cdk import Acknowledgment as Ack
from aws_cdk import Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.aws_lambda_event_sources import SnsEventSource, SqsEventSource
from constructs import Construct

from functions.core.layout import (
    ENV_CONTROL_TABLE,
    ENV_PERSONAS_TABLE,
    ENV_RECORDS_TABLE,
    ENV_RESOURCE_PREFIX,
    ResourceNames,
)
from functions.core.sms import names as sms_names
from functions.core.sms.deferral import ENV_DEFERRAL_QUEUE_URL
from functions.core.sms.gateway import ENV_CONFIGURATION_SET, ENV_ORIGINATION_IDENTITY
from infra.config import DeployConfig
from infra.constants import DLQ_RETENTION
from infra.constructs.function import PossyncFunction
from infra.constructs.permissions import grant_read_settings, grant_table
from infra.constructs.rules import PERSONAS_TABLE_ACTIONS, RECORDS_TABLE_ACTIONS, RuleFunction
from infra.constructs.storage import Storage

FUNCTION_TIMEOUT = Duration.seconds(60)
FUNCTION_MEMORY_MB = 256
# AWS recommends an SQS event source's visibility timeout be six times the function timeout.
DEFERRAL_VISIBILITY = Duration.seconds(FUNCTION_TIMEOUT.to_seconds() * 6)
# A deferral waits at most a few days (quiet hours, the 24 h cap) in 15-minute hops; each hop is a new message.
DEFERRAL_RETENTION = Duration.days(4)
DEFERRAL_MAX_RECEIVES = 5
# Deferred requests come due together (the end of a zone's quiet hours releases them all at once). Uncapped, the SQS
# poller would scale the function out to hundreds of instances that take the account concurrency the pulls and stream
# consumers need, and that mostly get ThrottlingException from the one origination identity all texts go through (its
# send rate is a few messages per second). Two batches at a time, as the re-evaluation job runs, drain a burst in
# minutes; a throttled send is certainly not sent and is retried (functions.core.sms.gateway.RETRYABLE).
DEFERRED_MAX_CONCURRENCY = 2
# SNS invokes the reply function asynchronously: Lambda retries an error twice, then the event goes to the queue.
REPLY_RETRY_ATTEMPTS = 2
REPLY_MAX_EVENT_AGE = Duration.hours(6)
KEY_PENDING_WINDOW = Duration.days(7)
SMS_SEND_ACTIONS = ("sms-voice:SendTextMessage",)


class Messaging(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        code: lambda_.Code,
        storage: Storage,
        config: DeployConfig,
        optin: RuleFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.names = names
        self.config = config
        self.deferral_dlq = self._dead_letter_queue(
            "DeferralDeadLetterQueue",
            sms_names.deferral_dlq(names),
            "the dead-letter queue of the opt-in deferral queue (deferred requests whose retries are used up)",
        )
        self.deferral_queue = sqs.Queue(
            self,
            "DeferralQueue",
            queue_name=sms_names.deferral_queue(names),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=DEFERRAL_VISIBILITY,
            retention_period=DEFERRAL_RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.deferral_dlq, max_receive_count=DEFERRAL_MAX_RECEIVES),
        )
        self.reply_dlq = self._dead_letter_queue(
            "ReplyDeadLetterQueue",
            sms_names.reply_dlq(names),
            "the on-failure destination of the reply function (inbound texts whose retries are used up)",
        )
        # Inbound texts: End User Messaging two-way SMS publishes here (the phone number's two-way channel names
        # this topic). A customer managed key, because a service can publish to an encrypted topic only with one.
        key = kms.Key(
            self,
            "InboundTopicKey",
            description=f"Encrypts the {sms_names.reply_topic(names)} topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,  # messages in flight only
            pending_window=KEY_PENDING_WINDOW,
        )
        sms_service = iam.ServicePrincipal("sms-voice.amazonaws.com")
        stack = Stack.of(self)
        # Only on behalf of this account's phone numbers (the confused-deputy condition, as on the topic policy).
        from_this_account = {"StringEquals": {"aws:SourceAccount": stack.account}}
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EndUserMessagingEncryptsInboundTexts",
                principals=[sms_service],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions=from_this_account,
            )
        )
        self.reply_topic = sns.Topic(
            self,
            "InboundTopic",
            topic_name=sms_names.reply_topic(names),
            display_name=f"{names.prefix} inbound SMS",
            master_key=key,
            enforce_ssl=True,
        )
        self.reply_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EndUserMessagingPublishesInboundTexts",
                principals=[sms_service],
                actions=["sns:Publish"],
                resources=[self.reply_topic.topic_arn],
                conditions=from_this_account,
            )
        )
        environment = {
            ENV_RECORDS_TABLE: storage.records_table.table_name,
            ENV_CONTROL_TABLE: storage.control_table.table_name,
            ENV_PERSONAS_TABLE: storage.personas_table.table_name,
            ENV_RESOURCE_PREFIX: names.prefix,
            ENV_DEFERRAL_QUEUE_URL: self.deferral_queue.queue_url,
            **self._sms_environment(),
        }
        deferred = PossyncFunction(
            self,
            "Deferred",
            name=sms_names.DEFERRED_FUNCTION,
            names=names,
            code=code,
            handler=_handler(sms_names.DEFERRED_FUNCTION),
            description="Sends opt-in requests deferred for quiet hours or the 24 h cap when they are due",
            memory_size=FUNCTION_MEMORY_MB,
            timeout=FUNCTION_TIMEOUT,
            environment=environment,
            # A wait longer than SQS's 15-minute delay is a chain of messages on this queue; Lambda's loop
            # detection would stop it after 16 hops (4 hours), and each hop re-checks the request instead.
            recursive_loop=lambda_.RecursiveLoop.ALLOW,
        )
        self.deferred_function = deferred.function
        self.deferred_function.add_event_source(
            SqsEventSource(
                self.deferral_queue,
                batch_size=10,
                max_concurrency=DEFERRED_MAX_CONCURRENCY,
                report_batch_item_failures=True,
            )
        )
        reply = PossyncFunction(
            self,
            "Reply",
            name=sms_names.REPLY_FUNCTION,
            names=names,
            code=code,
            handler=_handler(sms_names.REPLY_FUNCTION),
            description="Applies inbound texts (YES / STOP / HELP) to SMS consent and answers them",
            memory_size=FUNCTION_MEMORY_MB,
            timeout=FUNCTION_TIMEOUT,
            environment=environment,
            retry_attempts=REPLY_RETRY_ATTEMPTS,
            max_event_age=REPLY_MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(self.reply_dlq),
        )
        self.reply_function = reply.function
        self.reply_function.add_event_source(SnsEventSource(self.reply_topic))
        self.let_request(optin.function)
        for function in (self.deferred_function, self.reply_function):
            grant_table(function, storage.personas_table, PERSONAS_TABLE_ACTIONS)
            grant_table(function, storage.records_table, RECORDS_TABLE_ACTIONS)
            grant_read_settings(function, names)
            self._grant_sending(function)

    def let_request(self, function: lambda_.Function) -> None:
        """A function that runs the opt-in rules (functions.core.sms.service.OptinService: the stream consumer, the
        re-evaluation job): where to defer a request, which identity to text from, and the right to do both. (Its
        table and settings access is its own construct's.)"""
        for name, value in {ENV_DEFERRAL_QUEUE_URL: self.deferral_queue.queue_url, **self._sms_environment()}.items():
            function.add_environment(name, value)
        self._grant_sending(function)

    def functions(self) -> dict[str, lambda_.IFunction]:
        return {sms_names.DEFERRED_FUNCTION: self.deferred_function, sms_names.REPLY_FUNCTION: self.reply_function}

    def dead_letter_queues(self) -> dict[str, sqs.IQueue]:
        return {"optin deferrals": self.deferral_dlq, "optin replies": self.reply_dlq}

    def _dead_letter_queue(self, construct_id: str, name: str, what: str) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            construct_id,
            queue_name=name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        Validations.of(queue.node.default_child).acknowledge(  # type: ignore[arg-type]
            Ack(id="AwsSolutions-SQS3", reason=f"This queue is itself a dead-letter queue: {what}.")
        )
        return queue

    def _sms_environment(self) -> dict[str, str]:
        env: dict[str, str] = {}
        if self.config.sms_origination_identity:
            env[ENV_ORIGINATION_IDENTITY] = self.config.sms_origination_identity
        if self.config.sms_configuration_set:
            env[ENV_CONFIGURATION_SET] = self.config.sms_configuration_set
        return env

    def sms_resource_arns(self) -> list[str]:
        """What SendTextMessage may name: the configured origination identity and configuration set, nothing else."""
        if not self.config.sms_origination_identity:
            return []
        arns = [self.config.sms_origination_identity]
        if self.config.sms_configuration_set:
            stack = Stack.of(self)
            arns.append(
                stack.format_arn(
                    service="sms-voice", resource="configuration-set", resource_name=self.config.sms_configuration_set
                )
            )
        return arns

    def _grant_sending(self, function: lambda_.Function) -> None:
        """Deferrals onto the queue; texts through the configured origination identity only."""
        iam.Grant.add_to_principal(
            grantee=function, actions=["sqs:SendMessage"], resource_arns=[self.deferral_queue.queue_arn]
        )
        arns = self.sms_resource_arns()
        if arns:
            iam.Grant.add_to_principal(grantee=function, actions=list(SMS_SEND_ACTIONS), resource_arns=arns)


def _handler(function: str) -> str:
    return f"functions.optin.{sms_names.HANDLER_MODULES[function]}.handler"
