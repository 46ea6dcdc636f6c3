"""`possync personas show` says whether, where and when a persona was synced to POSaBIT / Flourish, or why not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3

from functions.core.layout import FORM_SOURCE, Vendor
from functions.core.pos_sync.records import SyncRecord, SyncStore
from functions.core.settings import IntegrationSettings
from functions.core.store import ControlStore, RegisteredCredential
from possync.target import Target
from tests.cli.conftest import Invoke, PersonaSeeder

NOW = datetime.now(UTC)


def setup(target: Target, control: ControlStore, personas: PersonaSeeder) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    for vendor in (Vendor.POSABIT, Vendor.FLOURISH):
        settings = IntegrationSettings(
            vendor=vendor, sync_personas=True, sync_personas_enabled_on=(NOW - timedelta(days=2)).date()
        )
        ssm.put_parameter(
            Name=target.names.integration_settings_parameter("t1", vendor),
            Value=settings.model_dump_json(),
            Type="String",
            Overwrite=True,
        )
    for vendor, credential_id in ((Vendor.POSABIT, "venue-1"), (Vendor.FLOURISH, "fl-1")):
        control.register_credential(RegisteredCredential("t1", vendor, credential_id, True, "secret"))
    at = NOW.isoformat()
    personas.persona("t1", "f1", first_name="Rosa", last_name="Diaz", phone="+14585550101", email="rosa@example.com",
                     sources=[FORM_SOURCE], created_at=at)  # fmt: skip
    store = SyncStore(boto3.client("dynamodb", region_name="us-east-1"), target.personas_table)
    done = SyncRecord("t1", "f1", Vendor.POSABIT, "venue-1", "created", "created in the POS", "100042", "x", at, at, at)
    assert store.claim(done, None)


def test_show_says_where_and_when_a_persona_was_synced_or_why_not(
    cli: Invoke, target: Target, control: ControlStore, personas: PersonaSeeder
) -> None:
    setup(target, control, personas)

    shown = json.loads(cli("personas", "show", "-t", "t1", "f1", "-o", "json").stdout)
    table = cli("personas", "show", "-t", "t1", "f1").output

    rows = {r["vendor"]: r for r in shown["pos_sync"]}
    assert rows["posabit"]["synced"] is True and rows["posabit"]["pos_id"] == "100042"
    assert rows["posabit"]["what"] == "created in the POS" and rows["posabit"]["when"] == NOW.isoformat()
    assert rows["flourish"]["synced"] is False
    assert rows["flourish"]["why"] == "no date of birth: Flourish requires one to create a customer"
    assert "Synced to POS" in table and "100042" in table and "no date of birth" in table
