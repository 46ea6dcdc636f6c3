"""Persona -> POS sync: the personas table stream's consumer, which may write to POSaBIT and Flourish only."""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.core.layout import ResourceNames
from functions.core.settings import SYNC_VENDORS
from functions.core.streams import PERSONA_CONSUMERS, POS_SYNC_FUNCTION
from infra.constructs.permissions import (
    acknowledge_wildcard_resource,
    grant_read_credentials,
    grant_read_settings,
    grant_table,
)
from infra.constructs.rules import RuleFunction
from infra.constructs.storage import Storage

# Sync records and POS identity claims: batched reads, conditional puts, one transaction (claim + outcome).
PERSONAS_TABLE_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:PutItem")
# The credential registry (which credentials a tenant has, and their market).
CONTROL_TABLE_ACTIONS = ("dynamodb:Query",)


class PosSync(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, names: ResourceNames, code: lambda_.Code, storage: Storage
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = _PosSyncFunction(
            self,
            "Function",
            consumer=PERSONA_CONSUMERS[POS_SYNC_FUNCTION],
            names=names,
            code=code,
            storage=storage,
            source_table=storage.personas_table,
        )
        self.name = self.rule.name
        self.function = self.rule.function


class _PosSyncFunction(RuleFunction):
    def _grant(self, storage: Storage, names: ResourceNames) -> None:
        grant_table(self.function, storage.personas_table, PERSONAS_TABLE_ACTIONS)
        grant_table(self.function, storage.control_table, CONTROL_TABLE_ACTIONS)
        grant_read_settings(self.function, names)
        grant_read_credentials(
            self.function,
            names,
            sorted(SYNC_VENDORS),
            "Only the credentials of the POSes persona sync writes to (POSaBIT, Flourish)",
        )
        acknowledge_wildcard_resource(
            self.role,
            "*",
            "dynamodb:ListStreams supports no resource-level permissions (IAM requires Resource *); it is part of "
            "the stream read grant of the event source mapping and lists stream ARNs only, no data.",
        )
