"""`possync credentials`: add a POS store (secret to Secrets Manager, public fields to the registry), list, remove."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import ClientError
from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from functions.core.credentials import (
    AuphanCredential,
    Credential,
    FlourishCredential,
    PosabitCredential,
    ProfitekCredential,
    ThsuiteCredential,
    credential_json,
    parse_credential,
)
from functions.core.errors import CredentialError, HostNotAllowedError, PossyncError
from functions.core.layout import ResourceNames, Vendor
from functions.core.netguard import EXAMPLE as NETGUARD_EXAMPLE
from functions.core.store import RegisteredCredential
from functions.core.tenants import TenantExistsError
from functions.pull_onprem.tls import PinnedCertificate, check_pin
from possync.admin.context import (
    AdminContext,
    CredentialIdOption,
    OptionalTenant,
    OptionalVendor,
    TenantOption,
    VendorArgument,
    YesOption,
    admin,
    parse_id,
    parse_vendor,
)
from possync.admin.problems import describe
from possync.admin.render import Output, OutputOption, age, ask_secret, confirm, console, emit, fail, guarded, warn
from possync.admin.tenants import (
    command_line,
    create_tenant,
    known_tenant,
    register_known_tenant,
    registry,
    require_tenant,
)
from possync.admin.verify import VerificationFailedError, verify
from possync.target import Target

app = typer.Typer(
    help="Connect POS stores: secrets go to Secrets Manager and are never shown; public fields to the registry.",
    no_args_is_help=True,
)

CREDENTIAL_MODELS: dict[Vendor, type[BaseModel]] = {
    Vendor.POSABIT: PosabitCredential,
    Vendor.FLOURISH: FlourishCredential,
    Vendor.THSUITE: ThsuiteCredential,
    Vendor.PROFITEK: ProfitekCredential,
    Vendor.AUPHAN: AuphanCredential,
}
# Credential field -> the option that sets it.
PUBLIC_OPTIONS = {
    "store_name": "--store-name",
    "market": "--market",
    "username": "--username",
    "regions": "--regions",
    "facility_id": "--facility-id",
    "auth_mode": "--auth-mode",
    "custom_ip_port": "--ip-port",
    "pinned_cert_pem": "--pinned-cert",
}
SECRET_ENV_OPTIONS = {
    "integrator_token": "--integrator-token-env",
    "venue_token": "--venue-token-env",
    "key": "--key-env",
    "integration_token": "--integration-token-env",
    "auth_key": "--auth-key-env",
    "api_key": "--api-key-env",
}
ON_PREM = frozenset({Vendor.PROFITEK, Vendor.AUPHAN})
DEFAULT_RECOVERY_DAYS = 7
_SECRETS_PANEL = "Secrets (never on the command line)"


def secret_fields(vendor: Vendor) -> list[str]:
    model = CREDENTIAL_MODELS[vendor]
    return [name for name, info in model.model_fields.items() if info.annotation is SecretStr]


def public_fields(vendor: Vendor) -> list[str]:
    model = CREDENTIAL_MODELS[vendor]
    return [name for name in model.model_fields if name != "vendor" and name not in secret_fields(vendor)]


def read_text_file(path: str, option: str, *, not_text_hint: str, dash_is_stdin: bool = False) -> str:
    """A UTF-8 text file (or stdin), or exit 1 saying why not; its content never reaches a message."""
    from_stdin = dash_is_stdin and path == "-"
    shown = "stdin" if from_stdin else path
    try:
        if from_stdin:
            stream = getattr(sys.stdin, "buffer", None)
            raw: bytes | str = stream.read() if stream is not None else sys.stdin.read()
        else:
            raw = Path(path).read_bytes()
    except FileNotFoundError:
        fail(f"{option} {shown}: no such file", "check the path (relative paths start from the current directory)")
    except IsADirectoryError:
        fail(f"{option} {shown} is a directory, not a file", f"give {option} the path of the file itself")
    except PermissionError:
        fail(f"{option} {shown}: permission denied", "make the file readable by you, or copy it somewhere it is")
    except UnicodeDecodeError as exc:  # stdin opened as text in a non-UTF-8 locale
        fail(f"{option} {shown} is not UTF-8 text (undecodable byte at offset {exc.start})", not_text_hint)
    except OSError as exc:
        fail(f"{option} {shown} could not be read: {exc.strerror or type(exc).__name__}")
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark (Windows editors) is not part of the text
    except UnicodeDecodeError as exc:
        # The offset only: the bytes may be part of a secret.
        fail(f"{option} {shown} is not UTF-8 text (undecodable byte at offset {exc.start})", not_text_hint)


def _read_json(source: str) -> dict[str, Any]:
    text = read_text_file(
        source,
        "--from-json",
        not_text_hint="save it as UTF-8 (e.g. `iconv -f WINDOWS-1252 -t UTF-8 FILE > FILE.json`) and try again",
        dash_is_stdin=True,
    )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # The position only: the text may hold secrets.
        fail(
            f"--from-json input is not valid JSON (line {exc.lineno}, column {exc.colno})",
            'it must be one JSON object of credential fields, e.g. {"store_name": "Main St", "api_key": "..."}',
        )
    except RecursionError:
        fail("--from-json input is nested too deeply to be credential fields", "give one flat JSON object")
    if not isinstance(data, dict):
        fail(
            f"--from-json input must be a JSON object of credential fields, not a JSON {_json_kind(data)}",
            'e.g. {"store_name": "Main St", "api_key": "..."}',
        )
    return data


def _json_kind(value: Any) -> str:
    kinds = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def build_credential_data(
    vendor: Vendor,
    credential_id: str,
    options: dict[str, Any],
    secret_envs: dict[str, str | None],
    from_json: str | None,
    deployment_secrets: dict[str, Callable[[], str]] | None = None,
) -> dict[str, Any]:
    """Merge --from-json, the public options and the secrets (env var or hidden prompt) into one raw dict;
    `deployment_secrets` read the deployment's own (POSaBIT's integrator token), never asked of the merchant, and
    only when --from-json does not give it."""
    allowed_public, secrets = public_fields(vendor), secret_fields(vendor)
    for name, value in options.items():
        if value is not None and name not in allowed_public:
            fail(
                f"{PUBLIC_OPTIONS[name]} does not apply to {vendor.value}",
                f"{vendor.value} takes {_describe_fields(vendor)}",
            )
    for name, variable in secret_envs.items():
        if variable is not None and name not in secrets:
            fail(
                f"{SECRET_ENV_OPTIONS[name]} does not apply to {vendor.value}",
                f"{vendor.value} takes {_describe_fields(vendor)}",
            )
    data: dict[str, Any] = _read_json(from_json) if from_json else {}
    if data.get("vendor", vendor.value) != vendor.value:
        fail(f"--from-json says vendor {data.get('vendor')!r} but the command is for {vendor.value}")
    data["vendor"] = vendor.value
    data.update({k: v for k, v in options.items() if v is not None})
    for name, read in (deployment_secrets or {}).items():
        if name not in data:
            data[name] = read()
    for name in secrets:
        variable = secret_envs.get(name)
        if variable is not None:
            value = os.environ.get(variable)
            if value is None:
                fail(f"environment variable {variable} (for {name}) is not set")
            data[name] = value
        elif name not in data:
            if from_json == "-":  # stdin is spent: there is nothing left to prompt from
                fail(f"{name} is missing", f"put it in the --from-json object or pass {SECRET_ENV_OPTIONS[name]} VAR")
            data[name] = ask_secret(
                PROMPTS.get((vendor, name), f"{vendor.value} {name.replace('_', ' ')}")
                + f" for credential {credential_id}",
                instead=f"pass {SECRET_ENV_OPTIONS[name]} VAR (read from environment variable VAR), or give the "
                "credential as JSON with --from-json FILE",
            )
    model = CREDENTIAL_MODELS[vendor]
    missing = [
        name
        for name, info in model.model_fields.items()
        if info.is_required() and name not in data and name not in secrets
    ]
    if missing:
        fail(
            f"{vendor.value} credential needs {', '.join(missing)}",
            "pass " + ", ".join(PUBLIC_OPTIONS.get(m, m) for m in missing) + " (or put it in the --from-json object)",
        )
    return data


def _describe_fields(vendor: Vendor) -> str:
    public = [PUBLIC_OPTIONS[f] for f in public_fields(vendor)]
    secret = [
        f"{f} (the deployment's, `credentials integrator-token`; or {SECRET_ENV_OPTIONS[f]})"
        if vendor is Vendor.POSABIT and f == INTEGRATOR_FIELD
        else f"{f} (secret: prompt or {SECRET_ENV_OPTIONS[f]})"
        for f in secret_fields(vendor)
    ]
    return ", ".join(public + secret)


def check_address_given(vendor: Vendor, address: object, given_as: str) -> None:
    """No address means the POS's hosted API; an empty one (`--ip-port ""`, an unset variable) is refused, not read
    as that."""
    if isinstance(address, str) and not address.strip():
        fail(
            f"{given_as} is empty",
            f"give the store server's IP:PORT (e.g. {NETGUARD_EXAMPLE}), or leave out {given_as} for {vendor.value}'s "
            "hosted API",
        )


def check_custom_address(vendor: Vendor, address: str, target: Target) -> None:
    """A custom IP:PORT makes our Lambda call that address: refuse loopback, metadata, and any private address outside
    the ranges the target's on-premises pulls may call (a stack's PrivateHostCidrs output, the local runtime's
    `--allow-private-hosts`). The pull applies the same check, so a credential is never stored that every pull of
    that deployment would refuse."""
    try:
        from functions.core.netguard import resolve_allowed
    except ImportError:
        fail(
            "this possync build cannot check a custom IP:PORT (functions.core.netguard is missing), "
            "so it is not stored",
            "upgrade possync, or add the credential without --ip-port",
        )
    networks = target.private_host_networks
    try:
        resolve_allowed(address, allow_private=bool(networks), private_networks=networks)
    except (PossyncError, ValueError) as exc:
        message = str(exc)
        private = message.find(_PRIVATE)
        if target.endpoint_url and private >= 0:
            # netguard's refusal names the CDK context, which is not how the local runtime is told.
            fail(
                f"{message[: private + len(_PRIVATE)]}, and this local runtime's pulls call no private address; "
                "nothing was stored",
                "stop `possync local serve` and start it again with --allow-private-hosts",
            )
        fail(message, "nothing was stored")


_PRIVATE = "a private network address"


def checked_credential(data: dict[str, Any], vendor: Vendor, credential_id: str) -> Credential:
    """The credential, or exit 1 naming each bad field and the rule it breaks (never a value)."""
    try:
        return parse_credential(data, vendor, credential_id)
    except CredentialError:
        try:
            TypeAdapter(Credential).validate_python(data)
        except ValidationError as exc:
            problems = describe(exc.errors(include_input=False), lambda loc: ".".join(map(str, loc[1:] or loc)))
        else:  # pragma: no cover - parse_credential refuses only what the model refuses
            problems = "not valid"
        fail(
            f"this {vendor.value} credential is not valid: {problems}; nothing was stored",
            f"fields of a {vendor.value} credential: {_describe_fields(vendor)}",
        )


def check_pinned_certificate(credential: Credential) -> PinnedCertificate | None:
    """The pin rules every pull applies (functions.pull_onprem.tls.check_pin), applied before anything is stored."""
    if not isinstance(credential, ProfitekCredential | AuphanCredential):
        return None
    try:
        return check_pin(credential.vendor, credential.custom_ip_port, credential.pinned_cert_pem)
    except (CredentialError, HostNotAllowedError) as exc:
        no_address = credential.custom_ip_port is None or not credential.custom_ip_port.strip()
        fail(
            f"{exc}; nothing was stored",
            "pass --ip-port with the store server's IP:PORT (its certificate is the one pinned), or leave out "
            "--pinned-cert to use the vendor's hosted endpoint"
            if no_address
            else None,
        )


# What the merchant calls each secret (the integration card's words), where that differs from the field name.
PROMPTS = {(Vendor.POSABIT, "venue_token"): "POSaBIT key of this store (POSaBIT gives one per store name)"}
INTEGRATOR_FIELD = "integrator_token"


def integrator_secret_name(names: ResourceNames, vendor: Vendor) -> str:
    """The deployment's own integrator token for a POS (possync's, not a merchant's): one secret per stage. It
    cannot collide with a credential's secret, which has four parts (prefix/tenant/vendor/id)."""
    return f"{names.secret_root}{vendor.value}/integrator-token"


def deployment_integrator_token(context: AdminContext, vendor: Vendor) -> str:
    """The integrator token every credential of this POS is added with (exit 1 saying how to set it if unset)."""
    name = integrator_secret_name(context.target().names, vendor)
    try:
        return str(context.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("ResourceNotFoundException", "InvalidRequestException"):
            raise
    fail(
        f"this deployment has no {vendor.value} integrator token yet (secret {name})",
        f"set it once, for every store: `{command_line(context, f'credentials integrator-token {vendor.value}')}`; "
        "or pass --integrator-token-env VAR",
    )


def existing_credential(secrets: Any, name: str, vendor: Vendor, credential_id: str) -> Credential | None:
    """The credential stored under `name`, if it is one (None when absent or unreadable)."""
    try:
        raw = secrets.get_secret_value(SecretId=name)["SecretString"]
    except ClientError:
        return None
    try:
        return parse_credential(raw, vendor, credential_id)
    except CredentialError:
        return None


def credential_changes(old: Credential | None, new: Credential) -> list[dict[str, str]]:
    """What an update changes: public fields with old and new values; secret fields only as changed or not."""
    if old is None:
        return []
    rows = []
    before, after = old.public_fields(), new.public_fields()
    for key in sorted(set(before) | set(after)):
        if key == "vendor" or before.get(key) == after.get(key):
            continue
        rows.append({"field": key, "old": _shown(before.get(key)), "new": _shown(after.get(key))})
    for key in secret_fields(new.vendor):
        old_value, new_value = getattr(old, key, None), getattr(new, key, None)
        old_secret = old_value.get_secret_value() if isinstance(old_value, SecretStr) else None
        new_secret = new_value.get_secret_value() if isinstance(new_value, SecretStr) else None
        if old_secret != new_secret:
            rows.append({"field": key, "old": "(secret)", "new": "(new secret, not shown)"})
    return rows


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "(unset)"
    if isinstance(value, str) and "BEGIN CERTIFICATE" in value:
        return "(a certificate)"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _store_name_of_existing(secrets: Any, name: str, vendor: Vendor, credential_id: str) -> str | None:
    try:
        raw = secrets.get_secret_value(SecretId=name)["SecretString"]
    except ClientError:
        return None
    try:
        existing = parse_credential(raw, vendor, credential_id)
    except CredentialError:
        return None
    store_name = existing.public_fields().get("store_name")
    return str(store_name) if store_name else None


def _fallback_store_name_rule(old: str | None, new: str) -> None:
    if old is not None and old.strip() != new.strip():
        raise CredentialError(
            "the Profitek store name of an existing credential cannot be changed: Profitek keys a store's data by "
            "its store name, so a rename would orphan the history already pulled. To connect a different store, "
            "add a new credential with its own store name and AuthKey (and remove this one if the store is gone)"
        )


def _store_name_rule() -> Callable[[str | None, str], None]:
    """The pull_onprem folder owns the rule; this build may predate it."""
    try:
        from functions.pull_onprem.profitek.store_name import check_store_name_change
    except ImportError:
        return _fallback_store_name_rule
    return check_store_name_change


def check_store_name_unchanged(
    context: AdminContext, tenant: str, vendor: Vendor, credential_id: str, old: str | None, new: str | None
) -> None:
    """Profitek keys a store's data by its store name: renaming would orphan the history already pulled."""
    if vendor is not Vendor.PROFITEK or old is None or new is None:
        return
    try:
        _store_name_rule()(old, new)
    except CredentialError as exc:
        add = command_line(context, f"credentials add profitek --tenant {tenant} --id NEW-ID --store-name NAME")
        remove = command_line(context, f"credentials remove profitek --tenant {tenant} --id {credential_id}")
        fail(
            f"profitek credential {credential_id}: {exc}",
            f"e.g. `{add}`, then `{remove}` once it is no longer used",
        )


def _secret_state(secrets: Any, name: str) -> str:
    """absent, present, or deleted (scheduled for deletion, restorable)."""
    try:
        described = secrets.describe_secret(SecretId=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return "absent"
        raise
    return "deleted" if described.get("DeletedDate") else "present"


def store_secret(secrets: Any, name: str, value: str, state: str, description: str) -> None:
    if state == "absent":
        secrets.create_secret(Name=name, SecretString=value, Description=description)
        return
    if state == "deleted":
        secrets.restore_secret(SecretId=name)
    secrets.put_secret_value(SecretId=name, SecretString=value)


def registry_entry(
    tenant: str,
    credential_id: str,
    credential: Credential,
    secret_name: str,
    label: str | None,
    active: bool,
) -> RegisteredCredential:
    public = {k: v for k, v in credential.public_fields().items() if k != "vendor" and v not in (None, (), "")}
    if public.pop("pinned_cert_pem", None):
        public["pinned_cert"] = True  # the certificate is long; the registry only says one is pinned
    shown = label or public.get("store_name") or public.get("username") or credential_id
    return RegisteredCredential(
        tenant=tenant,
        vendor=credential.vendor,
        credential_id=credential_id,
        active=active,
        secret_name=secret_name,
        label=str(shown),
        market=public.get("market"),
        attributes=json.loads(json.dumps(public, default=str)),
    )


@app.command("add")
@guarded
def add(
    ctx: typer.Context,
    vendor_name: VendorArgument,
    tenant: TenantOption,
    credential_id: CredentialIdOption,
    store_name: Annotated[
        str | None,
        typer.Option(
            help="Store name the key belongs to (POSaBIT, THSuite, Profitek); a Profitek store name never changes "
            "once set.",
            rich_help_panel="Fields",
        ),
    ] = None,
    market: Annotated[
        str | None, typer.Option(help="POSaBIT market (state, e.g. WA).", rich_help_panel="Fields")
    ] = None,
    username: Annotated[str | None, typer.Option(help="Flourish username.", rich_help_panel="Fields")] = None,
    regions: Annotated[
        str | None, typer.Option(help="Flourish regions, comma-separated (e.g. CO,OK).", rich_help_panel="Fields")
    ] = None,
    facility_id: Annotated[str | None, typer.Option(help="Flourish FacilityID.", rich_help_panel="Fields")] = None,
    auth_mode: Annotated[
        str | None, typer.Option(help="Flourish auth: api_key (default) or basic (legacy).", rich_help_panel="Fields")
    ] = None,
    ip_port: Annotated[
        str | None,
        typer.Option(
            help="Profitek / Auphan on-premises server, IP:PORT (checked before it is stored).",
            rich_help_panel="Fields",
        ),
    ] = None,
    pinned_cert: Annotated[
        Path | None,
        typer.Option(help="Profitek / Auphan: PEM file of the store server's certificate.", rich_help_panel="Fields"),
    ] = None,
    label: Annotated[str | None, typer.Option(help="Name shown in lists (default: the store name).")] = None,
    integrator_token_env: Annotated[
        str | None,
        typer.Option(
            metavar="VAR",
            help="POSaBIT integrator token from env var VAR (default: the deployment's, see `credentials "
            "integrator-token`).",
            rich_help_panel=_SECRETS_PANEL,
        ),
    ] = None,
    venue_token_env: Annotated[
        str | None,
        typer.Option(
            metavar="VAR",
            help="POSaBIT key of the store (venue token) from env var VAR.",
            rich_help_panel=_SECRETS_PANEL,
        ),
    ] = None,
    key_env: Annotated[
        str | None,
        typer.Option(metavar="VAR", help="Flourish API key from env var VAR.", rich_help_panel=_SECRETS_PANEL),
    ] = None,
    integration_token_env: Annotated[
        str | None,
        typer.Option(metavar="VAR", help="THSuite integration token from env var VAR.", rich_help_panel=_SECRETS_PANEL),
    ] = None,
    auth_key_env: Annotated[
        str | None,
        typer.Option(metavar="VAR", help="Profitek AuthKey from env var VAR.", rich_help_panel=_SECRETS_PANEL),
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(metavar="VAR", help="Auphan APIKey from env var VAR.", rich_help_panel=_SECRETS_PANEL)
    ] = None,
    from_json: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Read fields (secrets included) from a JSON object in FILE, or '-' for stdin.",
            rich_help_panel=_SECRETS_PANEL,
        ),
    ] = None,
    allow_private: Annotated[
        bool,
        typer.Option(
            "--allow-private",
            hidden=True,  # kept so that older scripts still run; the deployment decides (see check_custom_address)
            help="No longer needed: the deployment decides which private --ip-port its pulls may call.",
        ),
    ] = False,
    new_tenant: Annotated[
        bool,
        typer.Option("--new-tenant", help="Create the tenant with this, its first credential (refused if it exists)."),
    ] = False,
    yes: YesOption = False,
    verify_pos: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify",
            envvar="POSSYNC_VERIFY",
            help="Check the credential with the POS (the simulator with --local) before saving it.",
        ),
    ] = True,
) -> None:
    """Add or update a POS credential: validate it, store the secret, register the store for pulls.

    Secrets come from a hidden prompt, an env var (e.g. --key-env FLOURISH_KEY) or --from-json FILE|-.

    They are never taken from the command line, never printed and never logged.

    The tenant must exist (`possync tenants add`); --new-tenant creates it with this, its first credential.

    Example: possync credentials add posabit --tenant acme --id downtown --store-name "Downtown" --market WA
    """
    vendor = parse_vendor(vendor_name)
    tenant = parse_id(tenant, "tenant")
    credential_id = parse_id(credential_id, "credential id")
    pem = None
    if pinned_cert is not None:
        pem = read_text_file(
            str(pinned_cert),
            "--pinned-cert",
            not_text_hint=f"it may be a binary (DER) certificate: convert it with "
            f"`openssl x509 -inform der -in {pinned_cert} -out store.pem` and pin store.pem",
        )
    options: dict[str, Any] = {
        "store_name": store_name,
        "market": market.upper() if market else None,
        "username": username,
        "regions": [r.strip().upper() for r in regions.split(",") if r.strip()] if regions else None,
        "facility_id": facility_id,
        "auth_mode": auth_mode,
        "custom_ip_port": ip_port,
        "pinned_cert_pem": pem,
    }
    envs = {
        "integrator_token": integrator_token_env,
        "venue_token": venue_token_env,
        "key": key_env,
        "integration_token": integration_token_env,
        "auth_key": auth_key_env,
        "api_key": api_key_env,
    }
    context = admin(ctx)
    deployment: dict[str, Callable[[], str]] = {}
    if vendor is Vendor.POSABIT and integrator_token_env is None:
        # The merchant has one key per store (the venue token); the integrator token is the deployment's.
        deployment[INTEGRATOR_FIELD] = lambda: deployment_integrator_token(context, vendor)
    data = build_credential_data(vendor, credential_id, options, envs, from_json, deployment)
    check_address_given(vendor, data.get("custom_ip_port"), "--ip-port" if ip_port is not None else "custom_ip_port")
    if vendor in ON_PREM and data.get("custom_ip_port") is None:
        data.pop("custom_ip_port", None)
    credential = checked_credential(data, vendor, credential_id)
    pin = check_pinned_certificate(credential)

    address = credential.public_fields().get("custom_ip_port")
    if address:
        check_custom_address(vendor, str(address), context.target())
    if allow_private:
        warn(
            "--allow-private is no longer needed and changes nothing: a deployment's pulls call the private ranges it "
            "is deployed with (CDK context allow_private_hosts and onprem_vpc; locally, `possync local serve "
            "--allow-private-hosts`), and `credentials add` checks those"
        )
    found = registry(context).get(tenant)
    if new_tenant and found is not None:
        fail(
            f"tenant {tenant} already exists, and --new-tenant is for creating one",
            "drop --new-tenant to add this credential to it, or pick another tenant id "
            f"(`{command_line(context, 'tenants list')}` shows the taken ones)",
        )
    if not new_tenant and found is None:
        require_tenant(context, tenant, new_tenant_flag=True)
    target = context.target()
    secrets = context.client("secretsmanager")
    control = context.control()
    secret_name = target.names.credential_secret(tenant, vendor, credential_id)
    state = _secret_state(secrets, secret_name)
    registered = control.get_credential(tenant, vendor, credential_id)
    if vendor is Vendor.PROFITEK:
        old_store = _store_name_of_existing(secrets, secret_name, vendor, credential_id) if state == "present" else None
        if old_store is None and registered is not None:
            old_store = registered.attributes.get("store_name")
        check_store_name_unchanged(
            context, tenant, vendor, credential_id, old_store, credential.public_fields().get("store_name")
        )
    exists = state == "present" or registered is not None
    if exists:
        previous = existing_credential(secrets, secret_name, vendor, credential_id) if state == "present" else None
        changes = credential_changes(previous, credential)
        if previous is not None and not changes:
            console().print(f"{vendor.value} credential {credential_id} of tenant {tenant} already has these values.")
        elif changes:
            emit(
                changes,
                [("field", "field"), ("old", "now"), ("new", "after the update")],
                Output.TABLE,
                title=f"Changes to {vendor.value} credential {credential_id} of {tenant}",
            )
    if verify_pos:
        try:
            found_out = verify(credential, vendor, tenant, credential_id, target)
        except VerificationFailedError as exc:
            fail(
                f"{exc}; nothing was stored",
                "check the values with the merchant, then run the command again; --no-verify saves it without "
                "asking the POS (e.g. a store server reachable only from the deployment's network)",
            )
        console().print(f"Verified with {vendor.value}: the credential works ({found_out}).", markup=False)
    if exists and not yes:
        confirm(f"{vendor.value} credential {credential_id} of tenant {tenant} exists; replace its values?")
    if new_tenant:
        try:
            create_tenant(
                context.client("dynamodb"),
                target.control_table,
                tenant,
                who=context.actor(),
                action=f"credentials add {vendor.value} {credential_id} --new-tenant",
            )
        except TenantExistsError:
            fail(f"tenant {tenant} was created by someone else while this command ran; nothing was stored")
        console().print(f"Created tenant [bold]{tenant}[/].")
    elif found is not None:
        register_known_tenant(context, found, "credentials add")
    store_secret(
        secrets,
        secret_name,
        credential_json(credential),
        state,
        f"possync {vendor.value} credential {credential_id} of tenant {tenant}",
    )
    control.register_credential(
        registry_entry(tenant, credential_id, credential, secret_name, label, registered.active if registered else True)
    )
    verb = "Updated" if exists else "Added"
    out = console()
    out.print(f"{verb} {vendor.value} credential [bold]{credential_id}[/] for tenant [bold]{tenant}[/].")
    if pin is not None:
        out.print(
            f"Pinned certificate, SHA-256 fingerprint {pin.fingerprint}. Only a server presenting exactly this "
            "certificate is called; compare with `openssl x509 -noout -fingerprint -sha256 -in FILE`.",
            markup=False,
            soft_wrap=True,  # never break the fingerprint: it is copied and compared
        )
    out.print(f"Secret stored in Secrets Manager as {secret_name} (not shown). The next scheduled pull uses it.")
    if state == "deleted":
        out.print("The secret had been scheduled for deletion; it was restored with the new values.")


@app.command("list")
@guarded
def list_credentials(
    ctx: typer.Context,
    tenant: OptionalTenant = None,
    vendor_name: OptionalVendor = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """List registered credentials with their last pull (never their secrets).

    Example: possync credentials list --tenant acme
    """
    vendors = [parse_vendor(vendor_name)] if vendor_name else list(Vendor)
    context = admin(ctx)
    if tenant is not None:
        tenant = known_tenant(context, tenant)
    control = context.control()
    rows = []
    for vendor in vendors:
        for entry in control.credentials(vendor, tenant):
            status = control.get_status(entry.tenant, vendor, entry.credential_id)
            rows.append(
                {
                    "tenant": entry.tenant,
                    "vendor": vendor.value,
                    "id": entry.credential_id,
                    "store": entry.attributes.get("store_name") or entry.label,
                    "market": entry.market,
                    "active": entry.active,
                    "last_outcome": status.get("last_outcome"),
                    "last_attempt_at": status.get("last_attempt_at")
                    if output is not Output.TABLE
                    else age(status.get("last_attempt_at")),
                    "last_success_at": status.get("last_success_at")
                    if output is not Output.TABLE
                    else age(status.get("last_success_at")),
                }
            )
    rows.sort(key=lambda r: (r["tenant"], r["vendor"], r["id"]))
    add_one = command_line(context, f"credentials add VENDOR --tenant {tenant or 'T'} --id ID")
    emit(
        rows,
        [
            ("tenant", "tenant"),
            ("vendor", "vendor"),
            ("id", "id"),
            ("store", "store"),
            ("market", "market"),
            ("active", "active"),
            ("last_outcome", "last pull"),
            ("last_attempt_at", "at"),
            ("last_success_at", "last success"),
        ],
        output,
        title="Credentials",
        empty="no credentials registered" + (f" for tenant {tenant}" if tenant else "") + f"; add one with `{add_one}`",
    )


@app.command("remove")
@guarded
def remove(
    ctx: typer.Context,
    vendor_name: VendorArgument,
    tenant: TenantOption,
    credential_id: CredentialIdOption,
    recovery_days: Annotated[
        int, typer.Option(min=7, max=30, help="Days Secrets Manager keeps the secret restorable.")
    ] = DEFAULT_RECOVERY_DAYS,
    yes: YesOption = False,
) -> None:
    """Stop pulling a store: delete its secret (restorable for a while) and its registry entry.

    Data already pulled (records, the raw archive, personas) stays.

    Example: possync credentials remove posabit --tenant acme --id downtown
    """
    vendor = parse_vendor(vendor_name)
    tenant = parse_id(tenant, "tenant")
    credential_id = parse_id(credential_id, "credential id")
    context = admin(ctx)
    found = require_tenant(context, tenant)
    secrets = context.client("secretsmanager")
    control = context.control()
    secret_name = context.target().names.credential_secret(tenant, vendor, credential_id)
    state = _secret_state(secrets, secret_name)
    registered = control.get_credential(tenant, vendor, credential_id)
    if registered is None and state != "present":
        fail(
            f"tenant {tenant} has no {vendor.value} credential {credential_id}",
            f"see `{command_line(context, f'credentials list --tenant {tenant}')}`",
        )
    if not yes:
        confirm(
            f"Remove {vendor.value} credential {credential_id} of tenant {tenant}? Pulls of this store stop; "
            "data already pulled stays",
        )
    register_known_tenant(context, found, "credentials remove")  # its last credential must not take the tenant
    if state == "present":
        secrets.delete_secret(SecretId=secret_name, RecoveryWindowInDays=recovery_days)
    control.remove_credential(tenant, vendor, credential_id)
    out = console()
    out.print(f"Removed {vendor.value} credential [bold]{credential_id}[/] of tenant [bold]{tenant}[/]: no more pulls.")
    if state == "present":
        out.print(removed_secret_note(context, vendor, tenant, credential_id, secret_name, recovery_days), markup=False)
    else:
        warn("it had no secret in Secrets Manager; only the registry entry was removed")
    out.print("Data already pulled (records, raw archive, personas) stays.")


def removed_secret_note(
    context: AdminContext, vendor: Vendor, tenant: str, credential_id: str, secret_name: str, recovery_days: int
) -> str:
    """How to undo a removal: adding the credential again restores its secret (with the values given) and registers
    it, which is all the local runtime offers; in AWS the old values can be recovered first."""
    add_again = command_line(context, f"credentials add {vendor.value} --tenant {tenant} --id {credential_id}")
    if context.local:
        return (
            f"The secret {secret_name} is deleted after {recovery_days} days; until then `{add_again}` with its "
            "values restores it and pulls this store again."
        )
    restore = f"aws secretsmanager restore-secret --secret-id {secret_name}"
    if context.region:
        restore += f" --region {context.region}"
    return (
        f"The secret {secret_name} is deleted after {recovery_days} days; until then `{restore}` recovers its "
        f"values, and `{add_again}` with them pulls this store again."
    )


@app.command("integrator-token")
@guarded
def integrator_token(
    ctx: typer.Context,
    vendor_name: VendorArgument,
    token_env: Annotated[
        str | None, typer.Option("--token-env", metavar="VAR", help="Read the token from env var VAR (else a prompt).")
    ] = None,
) -> None:
    """Set the deployment's own POSaBIT integrator token, once: every POSaBIT credential is added with it, so a
    merchant gives only the key POSaBIT issued for each store.

    Example: possync credentials integrator-token posabit --token-env POSABIT_INTEGRATOR_TOKEN
    """
    vendor = parse_vendor(vendor_name)
    if vendor is not Vendor.POSABIT:
        fail(f"{vendor.value} has no integrator token", "only POSaBIT authenticates the integrator and the store")
    if token_env is not None:
        token = os.environ.get(token_env)
        if token is None:
            fail(f"environment variable {token_env} is not set")
    else:
        token = ask_secret(
            "POSaBIT integrator token of this deployment",
            instead="pass --token-env VAR (read from environment var VAR)",
        )
    try:
        PosabitCredential.model_validate({"store_name": "check", INTEGRATOR_FIELD: token, "venue_token": "x" * 8})
    except ValidationError as exc:
        problems = describe([e for e in exc.errors(include_input=False) if e["loc"][:1] == (INTEGRATOR_FIELD,)], None)
        fail(f"the integrator token is not valid: {problems}; nothing was stored")
    context = admin(ctx)
    secrets = context.client("secretsmanager")
    name = integrator_secret_name(context.target().names, vendor)
    store_secret(secrets, name, token, _secret_state(secrets, name), "possync's own POSaBIT integrator token")
    console().print(
        f"Saved the POSaBIT integrator token as {name} (not shown) as {context.actor()}. Credentials added from now "
        "on use it; existing ones keep the token they were added with (add them again to change it).",
        markup=False,
    )
