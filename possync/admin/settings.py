"""`possync settings`: show, set and unset integration and tenant settings in SSM, validated, previewed and audited."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from botocore.exceptions import ClientError
from pydantic import BaseModel, TypeAdapter, ValidationError
from rich.markup import escape

from functions.core.errors import SettingsError
from functions.core.layout import ResourceNames, Vendor
from functions.core.settings import (
    POINTS_IMPORT_VENDORS,
    SYNC_VENDORS,
    IntegrationSettings,
    TenantSettings,
    check_mapping_key,
    check_store_id,
    error_location,
)
from functions.core.sources import SETTINGS_MAX_AGE_SECONDS
from possync.admin import impact, reevaluate
from possync.admin.audit import AuditLog
from possync.admin.context import AdminContext, OptionalVendor, TenantOption, YesOption, admin, parse_id, parse_vendor
from possync.admin.problems import describe, did_you_mean
from possync.admin.render import Output, OutputOption, cell, confirm, console, emit, fail, guarded, warn, when
from possync.admin.tenants import command_line, require_tenant

app = typer.Typer(
    help="Integration settings (per tenant and POS) and tenant-wide loyalty settings: validated, previewed, audited.",
    no_args_is_help=True,
)

MAPPING_KEY = "store_mappings"
FAIL_SAFE = "rules fail safe: no enrollment, no texts until this is fixed"
AUTO_KEY = "sync_personas_enabled_on"
# Dates whose setting enrolls or texts shoppers already stored: `set` shows the impact and asks first.
DATE_KEYS = frozenset({"enroll_after", "sms_optin_after"})
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Print the change and write nothing.")]
SettingsVendor = Annotated[
    str | None,
    typer.Option("--vendor", "-v", help="The POS integration; omit for the tenant-wide loyalty settings."),
]


@dataclass(frozen=True)
class Scope:
    """One settings parameter: a tenant's integration with one POS, or the tenant's loyalty settings."""

    tenant: str
    vendor: Vendor | None
    parameter: str

    @classmethod
    def of(cls, names: ResourceNames, tenant: str, vendor: Vendor | None) -> Scope:
        parameter = (
            names.integration_settings_parameter(tenant, vendor)
            if vendor is not None
            else names.tenant_settings_parameter(tenant)
        )
        return cls(tenant, vendor, parameter)

    @property
    def model(self) -> type[IntegrationSettings] | type[TenantSettings]:
        return IntegrationSettings if self.vendor is not None else TenantSettings

    @property
    def label(self) -> str:
        return f"{self.vendor.value} integration" if self.vendor is not None else "tenant loyalty settings"

    def settings_keys(self) -> list[str]:
        return [k for k in self.model.model_fields if k != "vendor"]

    def defaults(self) -> dict[str, Any]:
        return self.validate({})

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        """The model's JSON view of `data`, or SettingsError naming each bad key and the problem."""
        payload = dict(data)
        if self.vendor is not None:
            payload["vendor"] = self.vendor.value
        try:
            model: BaseModel = self.model.model_validate(payload)
        except ValidationError as exc:
            problems = describe(exc.errors(include_input=False), error_location)
            raise SettingsError(f"invalid {self.label} for tenant {self.tenant}: {problems}") from None
        view = model.model_dump(mode="json")
        view.pop("vendor", None)
        if self.vendor is None:
            _check_timezone(view["timezone"])
        return view


def _check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"timezone: {name!r} is not an IANA time zone name (e.g. America/Denver)") from None


@dataclass(frozen=True)
class Stored:
    exists: bool
    data: dict[str, Any]  # the parameter's JSON object as stored ({} when absent or unreadable)
    version: int | None = None
    problem: str | None = None  # why the stored value is not valid settings


def read_stored(ssm: Any, scope: Scope) -> Stored:
    try:
        parameter = ssm.get_parameter(Name=scope.parameter)["Parameter"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return Stored(False, {})
        raise
    version = int(parameter.get("Version", 0)) or None
    try:
        data = json.loads(parameter["Value"])
    except json.JSONDecodeError:
        return Stored(True, {}, version, f"{scope.parameter} is not valid JSON")
    if not isinstance(data, dict):
        return Stored(True, {}, version, f"{scope.parameter} is not a JSON object")
    data.pop("vendor", None)
    try:
        scope.validate(data)
    except SettingsError as exc:
        return Stored(True, data, version, str(exc))
    return Stored(True, data, version)


def current_view(scope: Scope, stored: Stored) -> dict[str, Any]:
    """The settings in force: defaults when absent; the raw stored object when it does not validate."""
    if stored.problem is not None:
        return {**scope.defaults(), **stored.data}
    return scope.validate(stored.data)


# Per-kind SMS text overrides (tenant settings), given as one JSON object; checked for wording and length when set.
SMS_TEMPLATES_KEY = "sms_templates"


def parse_assignments(scope: Scope, pairs: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """`key=value` pairs, and `store_mappings.<credential or location>=<store>` pairs (one store mapping each)."""
    changes: dict[str, Any] = {}
    mappings: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            fail(f"{pair!r} is not key=value", "e.g. `enroll_after=2026-05-01` or `age_gate_attested=true`")
        if key.startswith(f"{MAPPING_KEY}.") and scope.vendor is not None:
            location, store = mapping_pair(key.removeprefix(f"{MAPPING_KEY}."), value)
            mappings[location] = store
            continue
        _known(scope, key, stored_keys=())
        if key == AUTO_KEY:
            fail(
                f"{AUTO_KEY} is set for you: it becomes today when sync_personas is turned on (syncing is not "
                "retroactive)",
                "set sync_personas=true",
            )
        if key == SMS_TEMPLATES_KEY:
            try:
                changes[key] = json.loads(value)
            except json.JSONDecodeError:
                fail(
                    f"{SMS_TEMPLATES_KEY} takes a JSON object of template kind to text",
                    f"""e.g. {SMS_TEMPLATES_KEY}='{{"help": "{{brand}} {{program}}. Msg & data rates may apply. """
                    """Reply STOP to cancel."}'""",
                )
            continue
        if key == MAPPING_KEY:
            try:
                changes[key] = json.loads(value)
            except json.JSONDecodeError:
                fail(
                    f"{MAPPING_KEY} takes a JSON object",
                    f"or set one mapping with {MAPPING_KEY}.<credential-or-location-id>=<store-id>",
                )
            continue
        changes[key] = value.strip()
    return changes, mappings


def mapping_pair(location: str, store: str) -> tuple[str, str]:
    """One store mapping as typed, checked by the validators the settings model applies (exit 1 when not valid)."""
    location, store = location.strip(), store.strip()
    try:
        check_mapping_key(location)
    except ValueError as exc:
        fail(f"{MAPPING_KEY}.{location!r}: {exc}", f"e.g. {MAPPING_KEY}.store-12=downtown")
    try:
        check_store_id(store)
    except ValueError as exc:
        fail(f"{MAPPING_KEY}.{location}={store!r}: {exc}", f"e.g. {MAPPING_KEY}.{location}=downtown")
    return location, store


def settable_keys(scope: Scope) -> list[str]:
    """The keys `set` accepts for this scope: not the ones it fills in itself, nor those this POS does not offer."""
    keys = [k for k in scope.settings_keys() if k != AUTO_KEY]
    if scope.vendor is not None and scope.vendor not in SYNC_VENDORS:
        keys = [k for k in keys if k not in ("sync_personas", "sync_to_relevant_market")]
    if scope.vendor is not None and scope.vendor not in POINTS_IMPORT_VENDORS:
        keys = [k for k in keys if k != "loyalty_points_imported_on"]
    if scope.vendor is not None:
        keys = [f"{MAPPING_KEY}.<credential-or-location>" if k == MAPPING_KEY else k for k in keys]
    return keys


def _known(scope: Scope, key: str, stored_keys: tuple[str, ...]) -> None:
    if key not in scope.settings_keys() and key not in stored_keys:
        other = "--vendor" if scope.vendor is None else "no --vendor"
        elsewhere = Scope(scope.tenant, None if scope.vendor is not None else Vendor.POSABIT, "")
        hint = f"settings here are: {', '.join(settable_keys(scope))}"
        if key in elsewhere.settings_keys():
            hint = f"{key} is a {'tenant-wide' if scope.vendor is not None else 'per-POS'} setting: use {other}"
        fail(f"unknown setting {key!r} for the {scope.label}{did_you_mean(key, scope.settings_keys())}", hint)


def _as_bool(value: Any) -> bool | None:
    try:
        return TypeAdapter(bool).validate_python(value)
    except ValidationError:
        return None


def apply_change(
    scope: Scope,
    stored: Stored,
    sets: dict[str, Any],
    mappings: dict[str, str],
    unsets: list[str],
    today: date,
) -> dict[str, Any]:
    """The new settings view, validated; SettingsError (nothing to write) when they are not valid."""
    data = dict(stored.data)
    before = current_view(scope, stored)
    data.update(sets)
    if mappings:
        data[MAPPING_KEY] = {**dict(data.get(MAPPING_KEY) or {}), **mappings}
    for key in unsets:
        if key.startswith(f"{MAPPING_KEY}.") and scope.vendor is not None:
            location = key.removeprefix(f"{MAPPING_KEY}.")
            current = dict(data.get(MAPPING_KEY) or {})
            if location not in current:
                fail(f"there is no store mapping for {location!r}", f"mapped: {', '.join(sorted(current)) or 'none'}")
            current.pop(location)
            data[MAPPING_KEY] = current
            continue
        _known(scope, key, stored_keys=tuple(data))
        data.pop(key, None)
        if key == "sync_personas":
            data.pop(AUTO_KEY, None)
    if scope.vendor is not None:
        want = _as_bool(data.get("sync_personas", False))
        if want is True and (not before.get("sync_personas") or not data.get(AUTO_KEY)):
            data[AUTO_KEY] = today.isoformat()  # syncing starts the day it is enabled; not retroactive
        elif want is False:
            data.pop(AUTO_KEY, None)
    return scope.validate(data)


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"setting": key, "old": before.get(key), "new": after.get(key)}
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


def consequences(scope: Scope, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What an admin must know (and confirm) before a change that stops or freezes something."""
    notes = []
    where = f"{scope.vendor.value} " if scope.vendor is not None else ""
    if before.get("enroll_after") and not after.get("enroll_after"):
        notes.append(
            f"Removing enroll_after: shoppers already enrolled stay members (enrollment is sticky); "
            f"from now on nobody new is enrolled from {where}sales."
        )
    if before.get("sms_optin_after") and not after.get("sms_optin_after"):
        notes.append(
            f"Removing sms_optin_after: nobody new gets an opt-in text from {where}sales; "
            "shoppers who already opted in stay opted in."
        )
    if after.get("use_last_backup") and not before.get("use_last_backup"):
        notes.append(
            f"Turning use_last_backup on freezes the {where}integration: possync stops calling the POS "
            "(no more pulls); all data already pulled is kept. Turn it off to resume from where pulls stopped."
        )
    return notes


def _tenant_today(ssm: Any, names: ResourceNames, tenant: str) -> date:
    """Today in the tenant's time zone (the day a setting such as sync_personas starts)."""
    stored = read_stored(ssm, Scope.of(names, tenant, None))
    zone = stored.data.get("timezone") if stored.problem is None else None
    try:
        tz = ZoneInfo(str(zone or TenantSettings().timezone))
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    return datetime.now(tz).date()


def _print_diff(changes: list[dict[str, Any]], title: str) -> None:
    console().print(f"[bold]{escape(title)}[/]")
    emit(
        [{**c, "old": cell(c["old"]) or "(unset)", "new": cell(c["new"]) or "(unset)"} for c in changes],
        [("setting", "setting"), ("old", "old"), ("new", "new")],
        Output.TABLE,
    )


class Outcome(StrEnum):
    UNCHANGED = "unchanged"
    DRY_RUN = "dry run"
    SAVED = "saved"


def change_settings(
    context: AdminContext,
    scope: Scope,
    sets: dict[str, Any],
    mappings: dict[str, str],
    unsets: list[str],
    *,
    dry_run: bool,
    yes: bool,
    action: str,
) -> Outcome:
    """The one read-modify-write path for settings: validate, show the diff, preview, confirm, write, audit."""
    target = context.target()
    tenant = scope.tenant
    ssm = context.client("ssm")
    stored = read_stored(ssm, scope)
    before = current_view(scope, stored)
    today = _tenant_today(ssm, target.names, tenant) if scope.vendor is not None else datetime.now(UTC).date()
    try:
        after = apply_change(scope, stored, sets, mappings, unsets, today)
    except SettingsError as exc:
        shown = f"settings show --tenant {tenant}" + (f" --vendor {scope.vendor.value}" if scope.vendor else "")
        fail(f"{exc}; nothing was written", f"see `{command_line(context, shown)}` for the current values")
    changes = diff(before, after)
    if not changes:
        console().print(f"Nothing to change: the {scope.label} of {tenant} already say that.")
        return Outcome.UNCHANGED
    _print_diff(changes, f"{scope.label} of {tenant}: {scope.parameter}")
    notes = consequences(scope, before, after)
    for note in notes:
        warn(note)
    changed_keys = {c["setting"] for c in changes}
    # Setting an enroll or opt-in date acts on stored shoppers: show what it will do (the --dry-run counts) and ask.
    dated = scope.vendor is not None and any(after.get(k) for k in DATE_KEYS & changed_keys)
    if dry_run or dated:
        lines = impact.preview(context, tenant, scope.vendor, after, changed_keys) if scope.vendor is not None else []
        for line in lines:
            console().print(escape(line))
    if dry_run:
        console().print(
            "Dry run: nothing was written."
            if lines
            else "Dry run: nothing was written. The diff above is the whole preview: it enrolls or texts nobody."
        )
        return Outcome.DRY_RUN
    if (notes or dated) and not yes:
        confirm("Apply this change?")
    vendor = scope.vendor
    stored_value = json.dumps({"vendor": vendor.value, **after} if vendor is not None else after, sort_keys=True)
    version = ssm.put_parameter(Name=scope.parameter, Value=stored_value, Type="String", Overwrite=True)["Version"]
    who = context.actor()
    try:
        AuditLog(context.client("dynamodb"), target.control_table).record(
            tenant, scope.parameter, who, action, before, after
        )
    except ClientError as exc:
        fail(
            f"the setting was saved (version {version}) but its audit entry could not be written "
            f"({exc.response.get('Error', {}).get('Code')})",
            "record the change by hand; check the CLI's permissions on the control table",
        )
    if stored.version is not None and version != stored.version + 1:
        warn(
            f"{scope.parameter} changed while this command ran (version {stored.version} -> {version}); "
            f"check `{command_line(context, f'settings history --tenant {tenant}')}`"
        )
    console().print(
        f"Saved {scope.parameter} (version {version}) as {who}. Pulls and rules use it within "
        f"{SETTINGS_MAX_AGE_SECONDS} seconds."
    )
    # The records already stored: a re-evaluation job applies the new settings to them (the job itself decides
    # whether the change is one the rules read; one that is not, such as pull_interval_minutes, costs one read).
    keys = ", ".join(c["setting"] for c in changes)
    what = f"settings {action}" if action in ("set", "unset") else action
    reevaluate.after_change(context, tenant, vendor, f"{what} ({keys})")
    return Outcome.SAVED


def _change(
    ctx: typer.Context,
    tenant: str,
    vendor_name: str | None,
    sets: list[str],
    unsets: list[str],
    dry_run: bool,
    yes: bool,
    action: str,
) -> None:
    context = admin(ctx)
    tenant = parse_id(tenant, "tenant")
    vendor = parse_vendor(vendor_name) if vendor_name else None
    scope = Scope.of(context.target().names, tenant, vendor)
    parsed, mappings = parse_assignments(scope, sets)  # before any AWS call: a typo costs nothing
    require_tenant(context, tenant)
    change_settings(context, scope, parsed, mappings, unsets, dry_run=dry_run, yes=yes, action=action)


@app.command("set")
@guarded
def set_settings(
    ctx: typer.Context,
    assignments: Annotated[
        list[str],
        typer.Argument(
            metavar="KEY=VALUE", help="e.g. age_gate_attested=true enroll_after=2026-05-01", show_default=False
        ),
    ],
    tenant: TenantOption,
    vendor_name: SettingsVendor = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
) -> None:
    """Change settings: validated as a whole before anything is written; every change is audited.

    Integration keys: age_gate_attested enroll_after sms_optin_after sync_personas sync_to_relevant_market

    loyalty_points_imported_on use_last_backup pull_interval_minutes store_mappings.<credential-or-location>=<store>

    Tenant keys (no --vendor): brand_name points_per_dollar accrual_start_date timezone

    Example: possync settings set -t acme -v posabit age_gate_attested=true enroll_after=2026-11-01 --dry-run
    """
    _change(ctx, tenant, vendor_name, assignments, [], dry_run, yes, "set")


@app.command("unset")
@guarded
def unset_settings(
    ctx: typer.Context,
    keys: Annotated[list[str], typer.Argument(metavar="KEY", help="Settings to return to their default.")],
    tenant: TenantOption,
    vendor_name: SettingsVendor = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
) -> None:
    """Return settings to their default (store_mappings.<id> removes one store mapping).

    Example: possync settings unset --tenant acme --vendor posabit enroll_after
    """
    _change(ctx, tenant, vendor_name, [], keys, dry_run, yes, "unset")


@app.command("show")
@guarded
def show(
    ctx: typer.Context,
    tenant: TenantOption,
    vendor_name: SettingsVendor = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Show the settings in force (defaults marked) for one integration, or the tenant-wide settings.

    Example: possync settings show --tenant acme --vendor posabit
    """
    context = admin(ctx)
    tenant = parse_id(tenant, "tenant")
    vendor = parse_vendor(vendor_name) if vendor_name else None
    require_tenant(context, tenant)
    target = context.target()
    scope = Scope.of(target.names, tenant, vendor)
    ssm = context.client("ssm")
    stored = read_stored(ssm, scope)
    view = current_view(scope, stored)
    defaults = scope.defaults()
    if output is Output.JSON:
        typer.echo(
            json.dumps(
                {"parameter": scope.parameter, "stored": stored.exists, "problem": stored.problem, **view}, indent=2
            )
        )
    else:
        rows = []
        for key, value in view.items():
            note = "default" if key not in stored.data or value == defaults.get(key) else ""
            if (
                vendor is not None
                and vendor not in SYNC_VENDORS
                and key in ("sync_personas", "sync_to_relevant_market")
            ):
                note = f"not offered for {vendor.value}"
            rows.append({"setting": key, "value": value, "note": note})
        if output is Output.TABLE:
            console().print(f"[bold]{escape(scope.label)} of {escape(tenant)}: {escape(scope.parameter)}[/]")
        emit(rows, [("setting", "setting"), ("value", "value"), ("note", "")], output)
    invalid: list[tuple[str, str]] = [] if stored.problem is None else [(scope.parameter, stored.problem)]
    integrations: list[str] = []  # with --vendor omitted: each configured integration, flagged when not valid
    if vendor is None:
        known = {v.value for v in Vendor}
        for name in _configured_integrations(ssm, target.names, tenant):
            if name not in known:
                continue  # a parameter no POS integration reads
            other = Scope.of(target.names, tenant, Vendor(name))
            problem = read_stored(ssm, other).problem
            if problem is not None:
                invalid.append((other.parameter, problem))
            integrations.append(name if problem is None else f"{name} (NOT VALID)")
    if output is Output.TABLE:
        if not stored.exists:
            console().print("Not set yet: these are the defaults (nothing switched on).")
        if vendor is None:
            console().print(
                "Integrations with settings: "
                + (", ".join(integrations) if integrations else "none")
                + ". Show one with --vendor."
            )
    if invalid:
        fail(
            "\n".join(f"settings parameter {parameter} is not valid: {problem}" for parameter, problem in invalid)
            + f"\n{FAIL_SAFE}",
            "fix with `"
            + command_line(
                context, f"settings set --tenant {tenant} --vendor {vendor.value if vendor else 'VENDOR'} KEY=VALUE"
            )
            + "` or `"
            + command_line(
                context, f"settings unset --tenant {tenant} --vendor {vendor.value if vendor else 'VENDOR'} KEY"
            )
            + "`",
        )


def _configured_integrations(ssm: Any, names: ResourceNames, tenant: str) -> list[str]:
    prefix = names.integration_settings_parameter(tenant, Vendor.POSABIT).rsplit("/", 1)[0]
    found: list[str] = []
    paginator = ssm.get_paginator("get_parameters_by_path")
    for page in paginator.paginate(Path=prefix):
        found.extend(p["Name"].rsplit("/", 1)[-1] for p in page.get("Parameters", []))
    return sorted(found)


@app.command("history")
@guarded
def history(
    ctx: typer.Context,
    tenant: TenantOption,
    vendor_name: OptionalVendor = None,
    limit: Annotated[int, typer.Option(min=1, help="Newest N changes.")] = 20,
    output: OutputOption = Output.TABLE,
) -> None:
    """Every settings change of a tenant, newest first: who, when, what changed.

    Example: possync settings history --tenant acme --vendor posabit
    """
    context = admin(ctx)
    tenant = parse_id(tenant, "tenant")
    target = context.target()
    only = Scope.of(target.names, tenant, parse_vendor(vendor_name)).parameter if vendor_name else None
    require_tenant(context, tenant)
    entries = AuditLog(context.client("dynamodb"), target.control_table).history(tenant)
    entries = [e for e in entries if only is None or e.parameter == only][:limit]
    rows = []
    for entry in entries:
        changes = diff(entry.old or {}, entry.new or {})
        rows.append(
            {
                "at": entry.at if output is not Output.TABLE else when(entry.at),
                "who": entry.who,
                "parameter": entry.parameter,
                "action": entry.action,
                "changes": "; ".join(
                    f"{c['setting']}: {cell(c['old']) or '(unset)'} -> {cell(c['new']) or '(unset)'}" for c in changes
                )
                if output is not Output.JSON
                else changes,
                "old": entry.old,
                "new": entry.new,
            }
        )
    columns = [("at", "when"), ("who", "who"), ("parameter", "parameter"), ("action", "action"), ("changes", "changes")]
    if output is Output.JSON:
        columns += [("old", "old"), ("new", "new")]
    emit(
        rows, columns, output, title=f"Settings changes of {tenant}", empty=f"no settings changes recorded for {tenant}"
    )
