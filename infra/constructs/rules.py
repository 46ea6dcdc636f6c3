"""Rules: the records table stream's consumers, each a function with its filtered event source and failure queue."""

from __future__ import annotations

from aws_cdk import Acknowledgment as Ack
from aws_cdk import Duration, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk.aws_lambda_event_sources import DynamoEventSource, SqsDlq
from constructs import Construct

from functions.core.layout import (
    ENV_CONTROL_TABLE,
    ENV_PERSONAS_TABLE,
    ENV_RECORDS_TABLE,
    ENV_RESOURCE_PREFIX,
    RULE_FUNCTIONS,
    ResourceNames,
)
from functions.core.streams import CONSUMERS, StreamConsumer
from infra.constants import DLQ_RETENTION
from infra.constructs.function import PossyncFunction
from infra.constructs.permissions import acknowledge_wildcard_resource, grant_read_settings, grant_table
from infra.constructs.storage import Storage
from infra.outputs import pascal_case

# Consumers read the record a stream change points at, and nothing else of the records table: they never write
# it, so their own writes cannot come back to them through its stream.
RECORDS_TABLE_ACTIONS = ("dynamodb:GetItem",)
# Personas, identity claims, store visits, the points ledger and pending sales; TransactWriteItems needs the
# per-item actions, ConditionCheckItem included.
PERSONAS_TABLE_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)
# Unmapped-store notices (conditional puts) and the credential registry (a credential's market).
CONTROL_TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)
DESCRIPTIONS = {
    "personas": "Turns shopper records into personas: identity resolution, sources, contact sync",
    "enroll": "Turns sales into store visits, loyalty enrollment and points; imports POS point balances",
    "pos_sync": "Creates form-signup personas as POSaBIT and Flourish customers, exactly once",
}


def _starting_position(consumer: StreamConsumer) -> lambda_.StartingPosition:
    return lambda_.StartingPosition[consumer.starting_position]


class RuleFunction(Construct):
    """One stream consumer: its function, the filtered event source mapping feeding it and its failure queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        consumer: StreamConsumer,
        names: ResourceNames,
        code: lambda_.Code,
        storage: Storage,
        source_table: dynamodb.ITable | None = None,
    ) -> None:
        """`source_table`: the table whose stream feeds the function (the records table unless given)."""
        super().__init__(scope, construct_id)
        self.name = consumer.name
        self.consumer = consumer
        # Lambda's on-failure destination: a description (shard, sequence numbers) of each discarded batch.
        self.dead_letter_queue = sqs.Queue(
            self,
            "FailureQueue",
            queue_name=names.rules_dlq(consumer.name),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        Validations.of(self.dead_letter_queue.node.default_child).acknowledge(  # type: ignore[arg-type]
            Ack(
                id="AwsSolutions-SQS3",
                reason="This queue is itself a dead-letter queue: the on-failure destination of the stream event "
                "source mapping, which sends it batches that used up their retries.",
            )
        )
        rule = PossyncFunction(
            self,
            "Rule",
            name=consumer.name,
            names=names,
            code=code,
            description=DESCRIPTIONS.get(consumer.name, f"Consumes the records stream: {consumer.name}"),
            memory_size=consumer.memory_mb,
            timeout=Duration.seconds(consumer.timeout_seconds),
            environment={
                ENV_RECORDS_TABLE: storage.records_table.table_name,
                ENV_CONTROL_TABLE: storage.control_table.table_name,
                ENV_PERSONAS_TABLE: storage.personas_table.table_name,
                ENV_RESOURCE_PREFIX: names.prefix,
            },
        )
        self.function, self.role, self.log_group = rule.function, rule.role, rule.log_group
        self.event_source = DynamoEventSource(
            source_table or storage.records_table,
            starting_position=_starting_position(consumer),
            batch_size=consumer.batch_size,
            max_batching_window=Duration.seconds(consumer.max_batching_window_seconds),
            bisect_batch_on_error=consumer.bisect_batch_on_function_error,
            retry_attempts=consumer.max_retry_attempts,
            max_record_age=Duration.seconds(consumer.max_record_age_seconds),
            parallelization_factor=consumer.parallelization_factor,
            report_batch_item_failures="ReportBatchItemFailures" in consumer.function_response_types,
            on_failure=SqsDlq(self.dead_letter_queue),
            # The patterns exactly as functions.core.streams defines them (the local pump applies the same ones).
            filters=[{"pattern": f["Pattern"]} for f in consumer.filter_criteria["Filters"]],
        )
        self.function.add_event_source(self.event_source)
        self._grant(storage, names)

    def _grant(self, storage: Storage, names: ResourceNames) -> None:
        grant_table(self.function, storage.records_table, RECORDS_TABLE_ACTIONS)
        storage.personas_table.grant(self.function, *PERSONAS_TABLE_ACTIONS)
        storage.control_table.grant(self.function, *CONTROL_TABLE_ACTIONS)
        # Unmapped-store notices go to the account's default event bus.
        events.EventBus.from_event_bus_name(self, "DefaultBus", "default").grant_put_events_to(self.function)
        grant_read_settings(self.function, names)
        # The event source's stream read grant includes dynamodb:ListStreams, which has no resource to scope to.
        acknowledge_wildcard_resource(
            self.role,
            "*",
            "dynamodb:ListStreams supports no resource-level permissions (IAM requires Resource *); it is part of "
            "the stream read grant of the event source mapping and lists stream ARNs only, no data.",
        )


class Rules(Construct):
    """The stream consumers, one per entry of functions.core.layout.RULE_FUNCTIONS (personas, enroll, optin)."""

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
        if storage.records_table.table_stream_arn is None:
            raise ValueError("the rules consume the records table's stream, and it has none")
        self.functions: dict[str, RuleFunction] = {
            name: RuleFunction(
                self, pascal_case(name), consumer=CONSUMERS[name], names=names, code=code, storage=storage
            )
            for name in RULE_FUNCTIONS
        }
