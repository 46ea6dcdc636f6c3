"""Integration and tenant settings: one pydantic model shared by the Lambdas, the CLI and the local runtime."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from functions.core.errors import SettingsError
from functions.core.layout import Vendor
from functions.core.sms.templates import (
    DEFAULT_PROGRAM,
    DEFAULT_TEMPLATES,
    Kind,
    TemplateError,
    Templates,
    check_templates,
)

STORE_ID_MAX = 100


def _id_problem(value: str) -> str | None:
    if not value:
        return "is empty"
    if value != value.strip():
        return "starts or ends with whitespace"
    if len(value) > STORE_ID_MAX:
        return f"is longer than {STORE_ID_MAX} characters"
    if not value.isprintable():
        return "contains control or other non-printable characters"
    return None


def check_store_id(value: str) -> str:
    """A retail store id: 1-100 printable characters without '#' (store ids become parts of DynamoDB keys,
    where '#' separates the parts) and without surrounding whitespace. The message never quotes the value."""
    problem = _id_problem(value) or ("contains '#'" if "#" in value else None)
    if problem is not None:
        raise ValueError(f"a store id {problem}; use 1-{STORE_ID_MAX} printable characters without '#', e.g. downtown")
    return value


def check_mapping_key(value: str) -> str:
    """What a store mapping maps: a credential id or a POS location id, as the POS reports it (so '#' is allowed),
    1-100 printable characters without surrounding whitespace."""
    problem = _id_problem(value)
    if problem is not None:
        raise ValueError(
            f"a store mapping's credential or location id {problem}; copy the id from `possync stores unmapped`"
        )
    return value


def error_location(loc: tuple[int | str, ...]) -> str:
    """A validation error's location, dotted, with control characters in mapping keys escaped for the log line."""
    return ".".join("".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(part)) for part in loc)


StoreId = Annotated[str, AfterValidator(check_store_id)]
MappingKey = Annotated[str, AfterValidator(check_mapping_key)]

# Vendors whose integration card offers two-way persona sync and the market/state restriction.
SYNC_VENDORS = frozenset({Vendor.POSABIT, Vendor.FLOURISH})
POINTS_IMPORT_VENDORS = frozenset({Vendor.POSABIT})


class IntegrationSettings(BaseModel):
    """The settings of one tenant's integration with one POS (DESIGN.md section 5)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vendor: Vendor
    age_gate_attested: bool = False
    enroll_after: date | None = None
    sms_optin_after: date | None = None
    sync_personas: bool = False
    sync_personas_enabled_on: date | None = None
    sync_to_relevant_market: bool = False
    loyalty_points_imported_on: date | None = None
    use_last_backup: bool = False
    # credential id or POS location id -> retail store id
    store_mappings: dict[MappingKey, StoreId] = Field(default_factory=dict)
    pull_interval_minutes: int = Field(default=180, ge=15, le=1440)

    @model_validator(mode="after")
    def _vendor_specific(self) -> IntegrationSettings:
        if self.vendor not in SYNC_VENDORS and (self.sync_personas or self.sync_to_relevant_market):
            raise ValueError(f"sync personas / sync to relevant market are not offered for {self.vendor.value}")
        if self.vendor not in POINTS_IMPORT_VENDORS and self.loyalty_points_imported_on is not None:
            raise ValueError(f"loyalty points import is only offered for posabit, not {self.vendor.value}")
        if self.sync_personas and self.sync_personas_enabled_on is None:
            raise ValueError("sync_personas needs sync_personas_enabled_on (the day syncing starts)")
        if self.enroll_after is not None and not self.age_gate_attested:
            raise ValueError("enroll_after needs age_gate_attested: enrollment requires the age gate")
        return self


class TenantSettings(BaseModel):
    """Tenant-wide loyalty settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brand_name: str = Field(default="Our store", min_length=1, max_length=40)
    points_per_dollar: int = Field(default=1, ge=0, le=100)
    accrual_start_date: date | None = None
    timezone: str = "America/Los_Angeles"
    # SMS double opt-in texts (functions.core.sms.templates): the program described, per-kind template overrides
    # and their version, recorded with each request as its evidence. Checked for wording and length when set.
    sms_program: str = Field(default=DEFAULT_PROGRAM, min_length=1, max_length=120)
    sms_templates: dict[str, str] = Field(default_factory=dict)
    sms_template_version: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _sms_templates_fit(self) -> TenantSettings:
        try:
            check_templates(self.brand_name, self.sms_program, self.sms_templates)
        except TemplateError as exc:
            raise ValueError(str(exc)) from None
        return self

    def sms_texts(self) -> Templates:
        texts = {**DEFAULT_TEMPLATES, **{Kind(k): v for k, v in self.sms_templates.items()}}
        return Templates(self.brand_name, self.sms_program, texts, self.sms_template_version)


def parse_integration_settings(raw: Any, vendor: Vendor, parameter: str) -> IntegrationSettings:
    """Validate a parameter's JSON value; the error names the parameter, never the value."""
    try:
        data = json.loads(raw) if isinstance(raw, str | bytes) else dict(raw or {})
        if not isinstance(data, dict):
            raise SettingsError(f"invalid settings in parameter {parameter}: expected a JSON object")
        data.setdefault("vendor", vendor.value)
        settings = IntegrationSettings.model_validate(data)
    except json.JSONDecodeError:
        raise SettingsError(f"invalid settings in parameter {parameter}: not valid JSON") from None
    except ValidationError as exc:
        problems = "; ".join(f"{error_location(e['loc']) or 'value'}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"invalid settings in parameter {parameter}: {problems}") from None
    if settings.vendor != vendor:
        raise SettingsError(f"invalid settings in parameter {parameter}: vendor is {settings.vendor}, not {vendor}")
    return settings


def parse_tenant_settings(raw: Any, parameter: str) -> TenantSettings:
    try:
        if isinstance(raw, str | bytes):
            return TenantSettings.model_validate_json(raw)
        return TenantSettings.model_validate(raw or {})
    except ValidationError as exc:
        problems = "; ".join(f"{error_location(e['loc']) or 'value'}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"invalid settings in parameter {parameter}: {problems}") from None
