"""Tenants are explicit: `possync tenants add|list`, `credentials add --new-tenant`, and every `--tenant` checked."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from functions.core.layout import Vendor
from functions.core.store import ControlStore, RegisteredCredential
from functions.core.tenants import TenantExistsError, TenantRegistry
from possync.admin.audit import AuditLog
from possync.admin.tenants import create_tenant
from possync.target import Target
from tests.cli.conftest import Invoke

KEY = "venue-SECRET-7777"
ADMIN = "arn:aws:iam::123456789012:user/admin"


def ddb() -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


def ssm_names() -> list[str]:
    ssm = boto3.client("ssm", region_name="us-east-1")
    return [p["Name"] for page in ssm.get_paginator("describe_parameters").paginate() for p in page["Parameters"]]


def secret_names() -> list[str]:
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    return [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]]


def add_posabit(cli: Invoke, tenant: str, *extra: str, credential_id: str = "store-1") -> Any:
    return cli(
        "credentials",
        "add",
        "posabit",
        "--tenant",
        tenant,
        "--id",
        credential_id,
        "--store-name",
        "Main St",
        "--integrator-token-env",
        "PB_A",
        "--venue-token-env",
        "PB_B",
        *extra,
        env={"PB_A": KEY, "PB_B": KEY},
    )


def legacy_credential(control: ControlStore, tenant: str, credential_id: str = "old-1") -> None:
    """A credential registered before tenants were (no tenant item), as the old `credentials add` wrote it."""
    control.register_credential(
        RegisteredCredential(
            tenant=tenant,
            vendor=Vendor.FLOURISH,
            credential_id=credential_id,
            active=True,
            secret_name=f"possync/{tenant}/flourish/{credential_id}",
            label="Old Store",
            attributes={"username": "old"},
        )
    )


# --- tenants add / list -------------------------------------------------------------------------------------


def test_add_creates_the_tenant_audits_it_and_lists_it(bare_cli: Invoke, target: Target) -> None:
    created = bare_cli("tenants", "add", "greenleaf", "--name", "Green Leaf")

    assert created.exit_code == 0, created.output
    assert "Created tenant greenleaf" in created.output
    assert "credentials add VENDOR --tenant greenleaf" in created.output
    [entry] = AuditLog(ddb(), target.control_table).history("greenleaf")
    assert (entry.parameter, entry.action, entry.old, entry.new) == (
        "tenant",
        "tenants add",
        None,
        {"tenant": "greenleaf", "name": "Green Leaf"},
    )
    assert entry.who.startswith("arn:aws:")  # the caller, from STS
    rows = json.loads(bare_cli("tenants", "list", "-o", "json").stdout)
    assert [(r["tenant"], r["name"], r["credentials"], r["registered"]) for r in rows] == [
        ("greenleaf", "Green Leaf", 0, True)
    ]
    assert rows[0]["created_by"] == entry.who
    table = bare_cli("tenants", "list")
    assert "greenleaf" in table.output and "Green Leaf" in table.output


def test_adding_an_existing_tenant_is_refused(cli: Invoke, target: Target) -> None:
    again = cli("tenants", "add", "t1")

    assert again.exit_code == 1
    assert "tenant t1 already exists" in again.output
    assert len(AuditLog(ddb(), target.control_table).history("t1")) == 1  # only its creation


@pytest.mark.parametrize("tenant", ["Green Leaf", "acme_co", "ACME", ""])
def test_an_invalid_tenant_id_is_refused_before_any_aws_call(offline_cli: Invoke, tenant: str) -> None:
    result = offline_cli("tenants", "add", tenant)

    assert result.exit_code == 1
    assert "is not valid" in result.output and "lower-case letters" in result.output


def test_list_with_no_tenants_says_how_to_create_one(bare_cli: Invoke) -> None:
    result = bare_cli("tenants", "list")

    assert result.exit_code == 0
    assert "no tenants yet" in result.output and "possync tenants add TENANT" in result.output


# --- every command with --tenant refuses an unknown tenant ----------------------------------------------------

UNKNOWN_TENANT_COMMANDS = {
    "settings set": ["settings", "set", "--tenant", "greenlaef", "--vendor", "posabit", "age_gate_attested=true"],
    "settings set tenant-wide": ["settings", "set", "--tenant", "greenlaef", "points_per_dollar=2"],
    "settings unset": ["settings", "unset", "--tenant", "greenlaef", "--vendor", "posabit", "enroll_after", "--yes"],
    "settings show": ["settings", "show", "--tenant", "greenlaef"],
    "settings history": ["settings", "history", "--tenant", "greenlaef"],
    "status": ["status", "--tenant", "greenlaef"],
    "credentials list": ["credentials", "list", "--tenant", "greenlaef"],
    "credentials remove": ["credentials", "remove", "posabit", "--tenant", "greenlaef", "--id", "store-1", "--yes"],
    "personas list": ["personas", "list", "--tenant", "greenlaef"],
    "personas show": ["personas", "show", "--tenant", "greenlaef", "p-1"],
    "stores map": ["stores", "map", "-t", "greenlaef", "-v", "posabit", "--location", "42", "--store", "downtown"],
    "stores unmap": ["stores", "unmap", "-t", "greenlaef", "-v", "posabit", "--location", "42"],
    "stores unmapped": ["stores", "unmapped", "--tenant", "greenlaef"],
    "quarantine list": ["quarantine", "list", "-t", "greenlaef", "-v", "posabit", "--id", "store-1"],
    "replay": ["replay", "-t", "greenlaef", "-v", "posabit", "--from", "2026-05-01", "--to", "2026-05-02"],
}


@pytest.mark.parametrize("args", UNKNOWN_TENANT_COMMANDS.values(), ids=UNKNOWN_TENANT_COMMANDS.keys())
def test_every_command_refuses_an_unknown_tenant_and_names_the_closest(
    cli: Invoke, target: Target, args: list[str]
) -> None:
    assert cli("tenants", "add", "greenleaf").exit_code == 0
    params_before = ssm_names()

    result = cli(*args)

    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # a readable error, not a traceback
    text = " ".join(result.output.split())
    assert "tenant 'greenlaef' does not exist" in text
    assert "did you mean greenleaf?" in text
    assert "Known tenants: greenleaf, t1, t2." in text
    assert "possync tenants add greenlaef" in text and "--new-tenant" in text
    assert ssm_names() == params_before  # nothing configured for the typo
    assert AuditLog(ddb(), target.control_table).history("greenlaef") == []


def test_with_no_tenant_at_all_the_error_says_how_to_create_one(bare_cli: Invoke) -> None:
    result = bare_cli("settings", "set", "--tenant", "acme", "points_per_dollar=2")

    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "tenant 'acme' does not exist" in text and "No tenant exists yet." in text
    assert "possync tenants add acme" in text
    assert ssm_names() == []


def test_a_known_tenant_is_accepted_by_the_same_commands(cli: Invoke) -> None:
    assert cli("settings", "set", "--tenant", "t1", "points_per_dollar=2").exit_code == 0
    assert cli("status", "--tenant", "t1").exit_code == 0
    assert cli("personas", "list", "--tenant", "t1").exit_code == 0


# --- credentials add: --new-tenant ----------------------------------------------------------------------------


def test_adding_a_credential_to_an_unknown_tenant_is_refused_and_stores_nothing(cli: Invoke, target: Target) -> None:
    result = add_posabit(cli, "acme")

    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "tenant 'acme' does not exist" in text
    assert "To create tenant acme with this credential, add --new-tenant." in text
    assert KEY not in result.output
    assert secret_names() == []
    assert ControlStore(ddb(), target.control_table).credentials(Vendor.POSABIT) == []
    assert TenantRegistry(ddb(), target.control_table).get("acme") is None


def test_new_tenant_creates_the_tenant_with_its_first_credential(cli: Invoke, target: Target) -> None:
    result = add_posabit(cli, "acme", "--new-tenant")

    assert result.exit_code == 0, result.output
    assert "Created tenant acme." in result.output and "Added posabit credential store-1" in result.output
    tenant = TenantRegistry(ddb(), target.control_table).get("acme", count_credentials=True)
    assert tenant is not None and tenant.registered and tenant.credentials == 1
    [entry] = AuditLog(ddb(), target.control_table).history("acme")
    assert entry.action == "credentials add posabit store-1 --new-tenant"
    assert target.names.credential_secret("acme", Vendor.POSABIT, "store-1") in secret_names()
    # From now on the tenant is known: the next store needs no flag.
    assert add_posabit(cli, "acme", credential_id="store-2").exit_code == 0
    assert cli("settings", "set", "--tenant", "acme", "points_per_dollar=2").exit_code == 0


def test_new_tenant_for_an_existing_tenant_is_refused_and_stores_nothing(cli: Invoke) -> None:
    result = add_posabit(cli, "t1", "--new-tenant")

    assert result.exit_code == 1
    assert "tenant t1 already exists" in result.output and "drop --new-tenant" in result.output
    assert secret_names() == []


# --- tenants from before the registry: derived from their credentials, registered when they change -----------


def test_a_tenant_known_only_from_its_credentials_is_still_recognised(bare_cli: Invoke, target: Target) -> None:
    legacy_credential(ControlStore(ddb(), target.control_table), "oldco")

    assert bare_cli("settings", "set", "--tenant", "oldco", "points_per_dollar=2").exit_code == 0
    assert bare_cli("status", "--tenant", "oldco").exit_code == 0
    rows = json.loads(bare_cli("tenants", "list", "-o", "json").stdout)
    assert [(r["tenant"], r["credentials"], r["registered"]) for r in rows] == [("oldco", 1, False)]
    assert "known only from their credentials" in bare_cli("tenants", "list").output

    registered = bare_cli("tenants", "add", "oldco")

    assert registered.exit_code == 0, registered.output
    assert "was known from its 1 credentials; it is now registered" in registered.output
    tenant = TenantRegistry(ddb(), target.control_table).get("oldco", count_credentials=True)
    assert tenant is not None and tenant.registered


def test_removing_the_last_credential_of_a_derived_tenant_keeps_the_tenant(bare_cli: Invoke, target: Target) -> None:
    legacy_credential(ControlStore(ddb(), target.control_table), "oldco")

    removed = bare_cli("credentials", "remove", "flourish", "--tenant", "oldco", "--id", "old-1", "--yes")

    assert removed.exit_code == 0, removed.output
    tenant = TenantRegistry(ddb(), target.control_table).get("oldco", count_credentials=True)
    assert tenant is not None and tenant.registered and tenant.credentials == 0
    [entry] = AuditLog(ddb(), target.control_table).history("oldco")
    assert entry.action == "tenants add (backfill: credentials remove)"
    assert bare_cli("settings", "show", "--tenant", "oldco").exit_code == 0


def test_adding_a_credential_to_a_derived_tenant_registers_it(bare_cli: Invoke, target: Target) -> None:
    legacy_credential(ControlStore(ddb(), target.control_table), "oldco")

    result = add_posabit(bare_cli, "oldco")

    assert result.exit_code == 0, result.output
    tenant = TenantRegistry(ddb(), target.control_table).get("oldco", count_credentials=True)
    assert tenant is not None and tenant.registered and tenant.credentials == 2


def test_registering_a_tenant_twice_writes_neither_the_tenant_nor_its_audit_again(
    bare_cli: Invoke, target: Target
) -> None:
    create_tenant(ddb(), target.control_table, "acme", who=ADMIN, name="Acme")

    with pytest.raises(TenantExistsError, match="tenant acme already exists"):
        create_tenant(ddb(), target.control_table, "acme", who="someone-else", name="Other")

    tenant = TenantRegistry(ddb(), target.control_table).get("acme")
    assert tenant is not None and (tenant.name, tenant.created_by) == ("Acme", ADMIN)
    assert [e.who for e in AuditLog(ddb(), target.control_table).history("acme")] == [ADMIN]
