"""PossyncStack: one stack per environment, composed of one construct per concern."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.core.layout import ResourceNames
from infra import outputs
from infra.bundling import functions_code
from infra.config import DeployConfig
from infra.constructs.messaging import Messaging
from infra.constructs.monitoring import Monitoring
from infra.constructs.pos_sync import PosSync
from infra.constructs.pulls import Pulls
from infra.constructs.reevaluation import Reevaluation
from infra.constructs.rules import Rules
from infra.constructs.signups import Signups
from infra.constructs.storage import Storage


class PossyncStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        names: ResourceNames,
        **stack_options: Any,
    ) -> None:
        super().__init__(scope, construct_id, **stack_options)
        self.config = config
        self.names = names
        Tags.of(self).add("application", self.names.prefix)
        Tags.of(self).add("stage", config.stage)
        # One asset for every function in the stack, so the dependencies are bundled once.
        self.code: lambda_.Code = functions_code()

        self.storage = Storage(self, "Storage", names=self.names)
        self.pulls = Pulls(self, "Pulls", names=self.names, code=self.code, storage=self.storage, config=config)
        # The records table stream's consumers (functions.core.streams defines their filters and mappings).
        self.rules = Rules(self, "Rules", names=self.names, code=self.code, storage=self.storage)
        # The personas table stream's consumer: form signups created as POSaBIT / Flourish customers.
        self.pos_sync = PosSync(self, "PosSync", names=self.names, code=self.code, storage=self.storage)
        # The SMS opt-in's deferral queue, inbound-SMS topic and their functions (functions.core.sms).
        self.messaging = Messaging(
            self,
            "Messaging",
            names=self.names,
            code=self.code,
            storage=self.storage,
            config=config,
            optin=self.rules.functions["optin"],
        )
        # Settings and store-mapping changes applied to the records already stored.
        self.reevaluation = Reevaluation(self, "Reevaluation", names=self.names, code=self.code, storage=self.storage)
        # ... the opt-in requests of stored sales among them, sent and deferred as the opt-in consumer sends them.
        self.messaging.let_request(self.reevaluation.function)
        # The form signup endpoint (functions.core.signups): its opt-in requests go to the same deferral queue.
        self.signups = Signups(
            self,
            "Signups",
            names=self.names,
            code=self.code,
            storage=self.storage,
            deferral_queue=self.messaging.deferral_queue,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            names=self.names,
            config=config,
            storage=self.storage,
            pulls=list(self.pulls.functions.values()),
            rules=[*self.rules.functions.values(), self.pos_sync.rule],
            reevaluation=self.reevaluation,
            functions={**self.messaging.functions(), "signups": self.signups.function},
            dead_letter_queues=self.messaging.dead_letter_queues(),
        )
        self._add_outputs()

    def _add_outputs(self) -> None:
        def output(key: str, value: str, description: str) -> None:
            CfnOutput(self, key, value=value, description=description)

        output(outputs.RESOURCE_PREFIX_OUTPUT, self.names.prefix, "Prefix of every name, SSM parameter and secret")
        if self.config.private_host_cidrs:
            # `possync credentials add` checks a custom IP:PORT against exactly what the pull will accept.
            output(
                outputs.PRIVATE_HOST_CIDRS_OUTPUT,
                ",".join(str(cidr) for cidr in self.config.private_host_cidrs),
                "Private ranges on-premises pulls may call (onprem_vpc.private_cidrs)",
            )
        output(outputs.RECORDS_TABLE_OUTPUT, self.storage.records_table.table_name, "Normalized records")
        stream_arn = self.storage.records_table.table_stream_arn
        if stream_arn is None:
            raise ValueError("the records table must have a stream: the rules consume it")
        output(outputs.RECORDS_TABLE_STREAM_OUTPUT, stream_arn, "Stream of the records table, consumed by the rules")
        output(outputs.CONTROL_TABLE_OUTPUT, self.storage.control_table.table_name, "Leases, checkpoints, registry")
        output(
            outputs.PERSONAS_TABLE_OUTPUT,
            self.storage.personas_table.table_name,
            "Personas, identity claims, visits, points ledger, pending sales",
        )
        output(outputs.ARCHIVE_BUCKET_OUTPUT, self.storage.archive_bucket.bucket_name, "Raw page archive")
        output(outputs.ALARM_TOPIC_OUTPUT, self.monitoring.alarm_topic.topic_arn, "Subscribe to hear of alarms")
        output(outputs.DASHBOARD_OUTPUT, self.monitoring.dashboard.dashboard_name, "CloudWatch dashboard")
        for name, pull in self.pulls.functions.items():
            output(outputs.function_name_output(name), pull.function.function_name, f"{name} function")
            output(outputs.queue_url_output(name), pull.queue.queue_url, f"{name} jobs queue")
            output(outputs.dead_letter_queue_url_output(name), pull.dead_letter_queue.queue_url, f"{name} jobs DLQ")
            output(
                outputs.dispatch_dead_letter_queue_url_output(name),
                pull.dispatch_dead_letter_queue.queue_url,
                f"{name} failed schedule ticks",
            )
        job = self.reevaluation
        output(outputs.function_name_output(job.name), job.function.function_name, "re-evaluation job")
        output(outputs.queue_url_output(job.name), job.queue.queue_url, "re-evaluation jobs (the CLI sends them)")
        output(outputs.dead_letter_queue_url_output(job.name), job.dead_letter_queue.queue_url, "re-evaluation DLQ")
        output(outputs.SIGNUPS_URL_OUTPUT, self.signups.url, "Form signups: POST <url>/tenants/{tenant}/signups")
        output(outputs.SMS_INBOUND_TOPIC_OUTPUT, self.messaging.reply_topic.topic_arn, "Two-way SMS publishes here")
        for name, function in self.messaging.functions().items():
            output(outputs.function_name_output(name), function.function_name, f"{name} function")
        for name, rule in {**self.rules.functions, self.pos_sync.name: self.pos_sync.rule}.items():
            output(outputs.function_name_output(name), rule.function.function_name, f"{name} stream consumer")
            output(
                outputs.dead_letter_queue_url_output(name),
                rule.dead_letter_queue.queue_url,
                f"{name}: stream batches that used up their retries",
            )
