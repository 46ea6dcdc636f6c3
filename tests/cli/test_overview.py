"""`possync tenants show`, `stores list`, `quarantine list` per tenant; every --tenant command refuses a typo."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from functions.core.layout import Vendor
from functions.core.settings import IntegrationSettings
from functions.core.store import ControlStore
from possync.target import Target
from tests.cli.conftest import Invoke, PersonaSeeder
from tests.cli.test_status import register


def quarantine(control: ControlStore, credential: str, pos_id: str, vendor: Vendor = Vendor.POSABIT) -> None:
    entry = {
        "stream": "customers",
        "pos_id": pos_id,
        "reason": "field email: not an email",
        "archive_key": "raw/key.json.gz",
        "item_index": "3",
        "field": "email",
    }
    control.quarantine("t1", vendor, credential, [entry])


def test_tenants_show_gives_the_overview(
    cli: Invoke, control: ControlStore, personas: PersonaSeeder, target: Target
) -> None:
    register(control, "store-1")
    register(control, "store-2")
    success = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    control.save_status(
        "t1", Vendor.POSABIT, "store-1", {"last_outcome": "ok", "last_attempt_at": success, "last_success_at": success}
    )
    quarantine(control, "store-1", "c9")
    personas.persona("t1", "p1", first_name="Ada", member=True, points=120, sources={"posabit"})
    personas.persona("t1", "p2", first_name="Bo", points=5, sources={"posabit"})
    personas.persona("t2", "p3", first_name="Cy", member=True, points=999)

    table = cli("tenants", "show", "t1")
    data = json.loads(cli("tenants", "show", "t1", "-o", "json").stdout)

    assert table.exit_code == 0, table.output
    assert (data["personas"], data["members"], data["points"], data["quarantined"]) == (2, 1, 125, 1)
    assert [c["id"] for c in data["credentials"]] == ["store-1", "store-2"]
    assert "2h 0m ago" in table.output and "never succeeded" in table.output
    assert "possync pull --tenant t1 --wait" in table.output  # store-2 was never pulled
    assert "possync quarantine list --tenant t1" in table.output


def test_tenants_show_of_a_typo_suggests_the_tenant(cli: Invoke) -> None:
    result = cli("tenants", "show", "t11")

    assert result.exit_code == 1 and "did you mean t1?" in result.output


def test_quarantine_list_per_tenant_without_vendor_or_id(cli: Invoke, control: ControlStore) -> None:
    register(control, "store-1")
    register(control, "fl-1", Vendor.FLOURISH)
    quarantine(control, "store-1", "c1")
    quarantine(control, "fl-1", "c2", Vendor.FLOURISH)

    every = json.loads(cli("quarantine", "list", "--tenant", "t1", "-o", "json").stdout)
    one = json.loads(cli("quarantine", "list", "--tenant", "t1", "--vendor", "flourish", "-o", "json").stdout)
    missing = cli("quarantine", "list", "--tenant", "t1", "--id", "nope")

    assert sorted((r["vendor"], r["credential"], r["pos_id"]) for r in every) == [
        ("flourish", "fl-1", "c2"),
        ("posabit", "store-1", "c1"),
    ]
    assert [r["credential"] for r in one] == ["fl-1"]
    assert missing.exit_code == 1 and "has no credential nope" in missing.output


def test_stores_list_shows_mappings_as_a_table(cli: Invoke, control: ControlStore, target: Target) -> None:
    register(control, "store-1")
    register(control, "store-2")
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=target.names.integration_settings_parameter("t1", Vendor.POSABIT),
        Value=IntegrationSettings(
            vendor=Vendor.POSABIT, store_mappings={"store-1": "downtown", "42": "mall"}
        ).model_dump_json(),
        Type="String",
    )

    table = cli("stores", "list", "--tenant", "t1")
    rows = json.loads(cli("stores", "list", "--tenant", "t1", "-o", "json").stdout)

    assert table.exit_code == 0, table.output
    assert rows == [
        {"vendor": "posabit", "kind": "location", "key": "42", "store": "mall", "store_name": None},
        {
            "vendor": "posabit",
            "kind": "credential",
            "key": "store-1",
            "store": "downtown",
            "store_name": "Store store-1",
        },
    ]
    assert "downtown" in table.output and "posabit/store-2" in table.output


# Every command that takes --tenant, with the other arguments it needs to get as far as the tenant check.
TENANT_COMMANDS = [
    ["settings", "set", "points_per_dollar=2"],
    ["settings", "unset", "enroll_after"],
    ["settings", "show"],
    ["settings", "history"],
    ["status"],
    ["quarantine", "list"],
    ["replay", "--vendor", "posabit", "--from", "2026-11-01", "--to", "2026-11-02"],
    ["reevaluate"],
    ["personas", "list"],
    ["personas", "show", "+12065550123"],
    ["stores", "list"],
    ["stores", "unmapped"],
    ["stores", "map", "--vendor", "posabit", "--credential", "c1", "--store", "s1"],
    ["stores", "unmap", "--vendor", "posabit", "--credential", "c1"],
    ["credentials", "list"],
    ["credentials", "remove", "posabit", "--id", "c1", "--yes"],
    ["pull"],
    ["sms", "outbox"],
    ["rewards", "add", "Spring", "--percent", "15", "--points", "150", "--vendor", "posabit"],
    ["rewards", "list"],
    ["rewards", "show", "Spring"],
    ["rewards", "remove", "Spring"],
    ["rewards", "check"],
    ["signup-keys", "create"],
    ["signup-keys", "list"],
    ["signup-keys", "revoke", "0123456789abcdef"],
    ["signup-keys", "origins"],
    ["personas", "signup", "--first-name", "Ada", "--birth-date", "1990-04-01", "--store", "s1", "--age-confirmed"],
]


@pytest.mark.parametrize("words", TENANT_COMMANDS, ids=lambda w: " ".join(w[:2]))
def test_every_tenant_command_refuses_an_unknown_tenant(cli: Invoke, words: list[str]) -> None:
    result = cli(*words, "--tenant", "t11")

    assert result.exit_code == 1, result.output
    assert "tenant 't11' does not exist" in result.output and "did you mean t1?" in result.output


def test_the_list_of_tenant_commands_is_complete() -> None:
    """A new command with --tenant must join TENANT_COMMANDS (and so the typo test)."""
    from typer.main import get_command

    from possync.cli import app

    def walk(command: object, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        found = []
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, (*path, name))
        if any("--tenant" in getattr(p, "opts", []) for p in getattr(command, "params", [])):
            found.append(path)
        return found

    with_tenant = set(walk(get_command(app), ()))
    assert {("pull",), ("settings", "set"), ("tenants", "show")} - {("tenants", "show")} <= with_tenant
    covered = {
        tuple(w for w in words if not w.startswith("-") and "=" not in w)[: len(p)]
        for words in TENANT_COMMANDS
        for p in with_tenant
    }
    missing = [p for p in with_tenant if p not in covered and p != ("credentials", "add")]
    assert not missing, missing
