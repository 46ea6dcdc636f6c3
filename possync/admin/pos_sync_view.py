"""What `possync personas show` says of persona -> POS sync: per POSaBIT / Flourish credential, whether, where and
when the persona was created or found in the POS, or why not (a recorded reason, or the rule's answer today)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from botocore.exceptions import ClientError

from functions.core.errors import SettingsError
from functions.core.layout import ResourceNames, Vendor
from functions.core.loyalty.codecs import persona_key, s
from functions.core.loyalty.settings import credential_markets
from functions.core.loyalty.values import Persona
from functions.core.pos_sync import rules
from functions.core.pos_sync.records import SyncStore
from functions.core.settings import (
    SYNC_VENDORS,
    IntegrationSettings,
    TenantSettings,
    parse_integration_settings,
    parse_tenant_settings,
)
from functions.core.store import ControlStore

STATE_TEXT = {
    "created": "created in the POS",
    "matched": "found in the POS and linked",
    "uncertain": "create sent, answer lost; not found by search (never sent again)",
    "rejected": "refused by the POS",
    "retrying": "waiting to retry",
    "skipped": "not synced",
    "claimed": "in progress",
    "creating": "create in flight",
}


def _parameter(ssm: Any, name: str) -> str | None:
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return None
        raise


def _integration(ssm: Any, names: ResourceNames, tenant: str, vendor: Vendor) -> IntegrationSettings | str:
    name = names.integration_settings_parameter(tenant, vendor)
    raw = _parameter(ssm, name)
    if raw is None:
        return IntegrationSettings(vendor=vendor)
    try:
        return parse_integration_settings(raw, vendor, name)
    except SettingsError as exc:
        return str(exc)


def _zone(ssm: Any, names: ResourceNames, tenant: str) -> ZoneInfo:
    name = names.tenant_settings_parameter(tenant)
    raw = _parameter(ssm, name)
    try:
        settings = parse_tenant_settings(raw, name) if raw is not None else TenantSettings()
        return ZoneInfo(settings.timezone)
    except (SettingsError, ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(TenantSettings().timezone)


def _state(ddb: Any, table: str, persona: Persona) -> str | None:
    """The contact's state, when the signup recorded one on the profile (the market filter reads it)."""
    item = ddb.get_item(TableName=table, Key=persona_key(persona.tenant, persona.persona_id)).get("Item") or {}
    return s(item, "state")


def pos_sync_rows(
    ddb: Any, ssm: Any, names: ResourceNames, personas_table: str, control: ControlStore, persona: Persona
) -> list[dict[str, Any]]:
    """One row per POSaBIT / Flourish credential of the tenant: the sync record's outcome when there is one, else
    what the sync rule says of this persona and credential now."""
    tenant = persona.tenant
    state = _state(ddb, personas_table, persona)
    records = SyncStore(ddb, personas_table).of_persona(tenant, persona.persona_id)
    recorded = {(r.vendor, r.credential_id): r for r in records}
    rows: list[dict[str, Any]] = []
    zone = _zone(ssm, names, tenant)
    for vendor in sorted(SYNC_VENDORS):
        settings = _integration(ssm, names, tenant, vendor)
        for entry in control.credentials(vendor, tenant):
            record = recorded.pop((vendor, entry.credential_id), None)
            if record is not None:
                rows.append(
                    {
                        "vendor": vendor.value,
                        "credential": entry.credential_id,
                        "synced": record.state in ("created", "matched"),
                        "state": record.state,
                        "what": STATE_TEXT.get(record.state, record.state),
                        "pos_id": record.pos_id,
                        "when": record.synced_at or record.updated_at,
                        "why": record.reason,
                    }
                )
                continue
            if isinstance(settings, str):
                why = f"settings invalid: {settings}"
            elif not entry.active:
                why = "the credential is inactive"
            else:
                decision = rules.decide(persona, settings, entry.credential_id, zone, credential_markets(entry), state)
                due = "due: the next change of this persona syncs it"
                why = decision.reason if isinstance(decision, rules.Skip) else due
            rows.append(
                {
                    "vendor": vendor.value,
                    "credential": entry.credential_id,
                    "synced": False,
                    "state": "none",
                    "what": "not synced",
                    "pos_id": None,
                    "when": None,
                    "why": why,
                }
            )
    for record in recorded.values():  # a credential removed since
        rows.append(
            {
                "vendor": record.vendor.value,
                "credential": record.credential_id,
                "synced": record.state in ("created", "matched"),
                "state": record.state,
                "what": STATE_TEXT.get(record.state, record.state) + " (credential since removed)",
                "pos_id": record.pos_id,
                "when": record.synced_at or record.updated_at,
                "why": record.reason,
            }
        )
    return rows
