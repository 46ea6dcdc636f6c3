"""The admin CLI against moto: a Target pointing at the resources the `resources` fixture provisions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner, Result

from functions.core import layout
from functions.core.layout import ResourceNames, Vendor
from functions.core.loyalty.codecs import ledger_item, persona_item
from functions.core.loyalty.values import FieldSource, LedgerEntry, Persona
from functions.core.store import ControlStore
from possync.admin import render
from possync.admin.context import AdminContext
from possync.admin.tenants import create_tenant
from possync.cli import app
from possync.target import Target

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def typed_at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CliRunner `input=` stands for what the admin types at a terminal (its stdin is no TTY); tests of the
    commands with no terminal set `render.interactive` back to False."""
    monkeypatch.setattr(render, "interactive", lambda: True)


@pytest.fixture
def target(resources: Any) -> Target:
    # endpoint_url None: inside mock_aws every boto3 client is mocked.
    return Target(
        names=resources.names,
        records_table=resources.records_table,
        control_table=resources.control_table,
        archive_bucket=resources.archive_bucket,
        queue_urls=resources.queue_urls,
        endpoint_url=None,
        region="us-east-1",
        reevaluation_queue_url=resources.reevaluation_queue_url,
    )


# The tenants the `cli` fixture's stack has, created as `possync tenants add` creates them.
TENANTS = ("t1", "t2")
TENANT_CREATOR = "arn:aws:iam::123456789012:user/setup"


@pytest.fixture
def bare_cli(target: Target, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """The CLI against a stack with no tenant yet."""
    monkeypatch.setenv("COLUMNS", "250")  # wide tables: assertions read whole cells
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        # No POS answers here: `credentials add` saves without asking it, unless a test says otherwise.
        env = {"POSSYNC_VERIFY": "false", **(env or {})}
        return runner.invoke(app, list(args), obj=AdminContext(target_override=target), input=input, env=env)

    return invoke


@pytest.fixture
def tenants(target: Target) -> tuple[str, ...]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    for tenant in TENANTS:
        create_tenant(ddb, target.control_table, tenant, who=TENANT_CREATOR)
    return TENANTS


@pytest.fixture
def cli(bare_cli: Invoke, tenants: tuple[str, ...]) -> Invoke:
    """The CLI against a stack with tenants t1 and t2."""
    return bare_cli


@pytest.fixture
def control(target: Target) -> ControlStore:
    return ControlStore(boto3.client("dynamodb", region_name="us-east-1"), target.control_table)


@pytest.fixture
def offline_cli(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """For errors caught before any AWS call: the target is a closed port, so a stray call could not succeed."""
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    nowhere = Target(
        names=ResourceNames(),
        records_table="none",
        control_table="none",
        archive_bucket="none",
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
    )

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        env = {"POSSYNC_VERIFY": "false", **(env or {})}
        return runner.invoke(app, list(args), obj=AdminContext(target_override=nowhere), input=input, env=env)

    return invoke


class PersonaSeeder:
    """Writes persona-table items exactly as the rules' PersonaStore does (layout keys, ISSUE4 attribute names)."""

    def __init__(self, table: str) -> None:
        self.ddb = boto3.client("dynamodb", region_name="us-east-1")
        self.table = table

    def persona(self, tenant: str, persona_id: str, **fields: Any) -> Persona:
        fields["field_sources"] = {k: FieldSource(**v) for k, v in fields.get("field_sources", {}).items()}
        for name in ("sources", "source_records"):
            fields[name] = frozenset(fields.get(name, ()))
        fields.setdefault("created_at", "2026-04-01T10:00:00.000000+00:00")
        fields.setdefault("updated_at", fields["created_at"])
        persona = Persona(tenant=tenant, persona_id=persona_id, version=1, **fields)
        self.ddb.put_item(TableName=self.table, Item=persona_item(persona))
        return persona

    def claim(self, tenant: str, kind: str, value: str, persona_id: str) -> None:
        self.ddb.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": layout.identity_pk(tenant, kind, value)},
                "sk": {"S": layout.IDENTITY_SK},
                "persona_id": {"S": persona_id},
                "tenant": {"S": tenant},
                "kind": {"S": kind},
                "claimed_at": {"S": "2026-04-01T10:00:00.000000+00:00"},
            },
        )

    def pos_claim(self, tenant: str, vendor: Vendor, credential_id: str, pos_id: str, persona_id: str) -> None:
        self.claim(tenant, "pos", layout.pos_identity_value(vendor, credential_id, pos_id), persona_id)

    def visit(self, tenant: str, persona_id: str, store: str, count: int, last_at: str) -> None:
        """Visits live on the profile (the sales rules keep them there with the favourite store)."""
        self.ddb.update_item(
            TableName=self.table,
            Key={"pk": {"S": layout.persona_pk(tenant, persona_id)}, "sk": {"S": layout.PERSONA_PROFILE_SK}},
            UpdateExpression="SET visits.#store = :visit",
            ExpressionAttributeNames={"#store": store},
            ExpressionAttributeValues={":visit": {"M": {"count": {"N": str(count)}, "last_at": {"S": last_at}}}},
        )

    def ledger(self, tenant: str, persona_id: str, entry: LedgerEntry) -> None:
        self.ddb.put_item(TableName=self.table, Item=ledger_item(tenant, persona_id, entry))


@pytest.fixture
def personas(target: Target) -> PersonaSeeder:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    if target.personas_table not in ddb.list_tables()["TableNames"]:  # provision() may predate the personas table
        ddb.create_table(
            TableName=target.personas_table,
            AttributeDefinitions=[
                {"AttributeName": layout.PERSONAS_TABLE_PARTITION_KEY, "AttributeType": "S"},
                {"AttributeName": layout.PERSONAS_TABLE_SORT_KEY, "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": layout.PERSONAS_TABLE_PARTITION_KEY, "KeyType": "HASH"},
                {"AttributeName": layout.PERSONAS_TABLE_SORT_KEY, "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    return PersonaSeeder(target.personas_table)
