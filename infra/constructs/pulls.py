"""Pulls: per pull function a jobs queue with its DLQ, the function draining it, and the schedule that dispatches."""

from __future__ import annotations

from aws_cdk import Acknowledgment as Ack
from aws_cdk import Duration, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sqs as sqs
from aws_cdk.aws_lambda_event_sources import SqsEventSource
from constructs import Construct

from functions.core.layout import (
    ENV_ALLOW_PRIVATE_HOSTS,
    ENV_JOB_DLQ_URL,
    ENV_JOB_QUEUE_URL,
    ENV_PRIVATE_HOST_CIDRS,
    ENV_RESOURCE_PREFIX,
    PULL_VENDORS,
    ResourceNames,
    base_url_env,
)
from infra.config import DeployConfig
from infra.constants import (
    DISPATCH_EVENT,
    DLQ_RETENTION,
    ONPREM_PULL_FUNCTION,
    PULL_MAX_CONCURRENCY,
    PULL_MAX_RECEIVES,
    PULL_MEMORY_MB,
    PULL_QUEUE_RETENTION,
    PULL_QUEUE_VISIBILITY_TIMEOUT,
    PULL_TIMEOUT,
    SCHEDULE_MAX_EVENT_AGE,
    SCHEDULE_RETRY_ATTEMPTS,
)
from infra.constructs.function import PossyncFunction
from infra.constructs.onprem_network import OnPremNetwork
from infra.constructs.permissions import (
    acknowledge_wildcard_resource,
    grant_read_credentials,
    grant_read_settings,
    grant_table,
)
from infra.constructs.storage import Storage
from infra.outputs import pascal_case

RECORDS_TABLE_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
)
# Leases, checkpoints, status, the credential registry and quarantined records.
CONTROL_TABLE_ACTIONS = (
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
)
ARCHIVE_ACTIONS = ("s3:GetObject", "s3:PutObject")
# After a pull of its discounts, the store's reward mirrors are checked (functions.core.reward_mirrors): its discount
# keys from the records index by tenant and POS (the items through the table's BatchGetItem above).
RECORDS_INDEX_ACTIONS = ("dynamodb:Query",)
# A dispatch tick that fails is retried once more by Lambda's async invoke before it lands in the dispatch DLQ.
DISPATCH_ASYNC_RETRIES = 1


def _queue(scope: Construct, construct_id: str, **props: object) -> sqs.Queue:
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        **props,  # type: ignore[arg-type]
    )


class PullFunction(Construct):
    """One pull function: schedule -> dispatch -> one SQS job per credential -> the same function pulls it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        names: ResourceNames,
        code: lambda_.Code,
        storage: Storage,
        config: DeployConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = name
        self.dead_letter_queue = _queue(
            self, "JobsDeadLetterQueue", queue_name=names.pull_dlq(name), retention_period=DLQ_RETENTION
        )
        self.queue = _queue(
            self,
            "JobsQueue",
            queue_name=names.pull_queue(name),
            visibility_timeout=PULL_QUEUE_VISIBILITY_TIMEOUT,
            retention_period=PULL_QUEUE_RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=PULL_MAX_RECEIVES),
        )
        # Schedule ticks that could not be delivered, or whose dispatch failed after Lambda's retries.
        self.dispatch_dead_letter_queue = _queue(self, "DispatchDeadLetterQueue", retention_period=DLQ_RETENTION)
        Validations.of(self.dispatch_dead_letter_queue.node.default_child).acknowledge(  # type: ignore[arg-type]
            Ack(
                id="AwsSolutions-SQS3",
                reason="This queue is itself a dead-letter queue: of the EventBridge Scheduler target and of the "
                "function's asynchronous invocations (on-failure destination).",
            )
        )

        # Only the on-premises pull calls addresses from credentials, and only it may run in the operator's VPC.
        onprem = name == ONPREM_PULL_FUNCTION
        self.network = (
            OnPremNetwork(self, "Network", network=config.onprem_vpc, function_label=names.function_name(name))
            if onprem and config.onprem_vpc is not None
            else None
        )
        private_cidrs = config.private_host_cidrs if onprem else ()
        environment = {
            **storage.environment,
            ENV_JOB_QUEUE_URL: self.queue.queue_url,
            # Jobs that can never succeed (not JSON, invalid ids) are moved here at once instead of being retried.
            ENV_JOB_DLQ_URL: self.dead_letter_queue.queue_url,
            ENV_RESOURCE_PREFIX: names.prefix,
            ENV_ALLOW_PRIVATE_HOSTS: "true" if private_cidrs else "false",
        }
        if private_cidrs:
            environment[ENV_PRIVATE_HOST_CIDRS] = ",".join(str(cidr) for cidr in private_cidrs)
        network_options: dict[str, object] = {}
        if self.network is not None:
            network_options = {
                "vpc": self.network.vpc,
                "vpc_subnets": self.network.subnet_selection,
                "security_groups": [self.network.security_group],
            }
        for vendor in PULL_VENDORS[name]:
            if vendor in config.vendor_base_urls:
                environment[base_url_env(vendor)] = config.vendor_base_urls[vendor]
        vendors = ", ".join(vendor.value for vendor in PULL_VENDORS[name])
        pull = PossyncFunction(
            self,
            "Pull",
            name=name,
            names=names,
            code=code,
            description=f"Pulls {vendors} data: dispatches one job per credential, then runs those jobs",
            memory_size=PULL_MEMORY_MB,
            timeout=PULL_TIMEOUT,
            environment=environment,
            # A job that runs out of time enqueues its own continuation on this function's queue; Lambda's
            # loop detection would drop that chain after 16 hops, and the engine bounds it instead.
            recursive_loop=lambda_.RecursiveLoop.ALLOW,
            retry_attempts=DISPATCH_ASYNC_RETRIES,
            max_event_age=SCHEDULE_MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(self.dispatch_dead_letter_queue),
            **network_options,
        )
        self.function, self.role, self.log_group = pull.function, pull.role, pull.log_group
        if self.network is not None:
            self.network.grant_network_interfaces(self.role)
        self._grant(storage, names)
        self.function.add_event_source(
            SqsEventSource(
                self.queue,
                batch_size=1,
                max_concurrency=PULL_MAX_CONCURRENCY[name],
                report_batch_item_failures=True,
            )
        )
        self.schedule = self._schedule(names, config)

    def _grant(self, storage: Storage, names: ResourceNames) -> None:
        grant_table(self.function, storage.records_table, RECORDS_TABLE_ACTIONS)
        iam.Grant.add_to_principal(
            grantee=self.function,
            actions=list(RECORDS_INDEX_ACTIONS),
            resource_arns=[storage.records_by_scope_index_arn()],
        )
        # The catalogue and the unmirrored-reward notices are control-table items (the actions below); the
        # notices are announced on the default bus, as the rules announce an unmapped store.
        storage.control_table.grant(self.function, *CONTROL_TABLE_ACTIONS)
        events.EventBus.from_event_bus_name(self, "DefaultBus", "default").grant_put_events_to(self.function)
        iam.Grant.add_to_principal(
            grantee=self.function, actions=list(ARCHIVE_ACTIONS), resource_arns=[storage.raw_objects_arn()]
        )
        self.queue.grant_send_messages(self.function)
        iam.Grant.add_to_principal(
            grantee=self.function, actions=["sqs:SendMessage"], resource_arns=[self.dead_letter_queue.queue_arn]
        )
        grant_read_settings(self.function, names)
        # A job's credential is the secret of its own vendor (functions.core.sources.CredentialSource), and the
        # function refuses jobs of other vendors; the POSaBIT integrator token is copied into each credential when
        # it is added, so no pull reads the deployment's own integrator-token secret.
        vendors = PULL_VENDORS[self.name]
        grant_read_credentials(
            self.function,
            names,
            vendors,
            f"Only the credentials of the POS this function pulls ({', '.join(v.value for v in vendors)})",
        )
        acknowledge_wildcard_resource(
            self.role,
            storage.raw_objects_arn(),
            "Pull functions write and re-read raw pages under the archive's raw/ prefix only; object keys are per "
            "tenant, vendor, credential and run, so they cannot be listed in advance.",
        )

    def _schedule(self, names: ResourceNames, config: DeployConfig) -> scheduler.Schedule:
        role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
            description=f"Lets EventBridge Scheduler invoke {names.function_name(self.name)}",
        )
        schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule_name=names.schedule_name(self.name),
            description=f"Dispatch tick of {self.name}, every {config.dispatch_tick_minutes} minutes: enqueues each "
            "credential whose pull_interval_minutes setting has elapsed",
            schedule=scheduler.ScheduleExpression.rate(Duration.minutes(config.dispatch_tick_minutes)),
            target=targets.LambdaInvoke(
                self.function,
                input=scheduler.ScheduleTargetInput.from_object(DISPATCH_EVENT),
                role=role,
                dead_letter_queue=self.dispatch_dead_letter_queue,
                retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                max_event_age=SCHEDULE_MAX_EVENT_AGE,
            ),
        )
        # The scheduler target grants lambda:InvokeFunction on the function ARN and on ARN:* (its versions).
        acknowledge_wildcard_resource(
            role,
            f"{self.function.function_arn}:*",
            "The EventBridge Scheduler target grant also covers the function's versions and aliases (ARN:*); "
            "the role may invoke this one function and nothing else.",
        )
        return schedule


class Pulls(Construct):
    """The four pull functions, one per entry of functions.core.layout.PULL_VENDORS."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        code: lambda_.Code,
        storage: Storage,
        config: DeployConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, PullFunction] = {
            name: PullFunction(
                self, pascal_case(name), name=name, names=names, code=code, storage=storage, config=config
            )
            for name in PULL_VENDORS
        }
