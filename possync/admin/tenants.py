"""`possync tenants`: create tenants explicitly (audited) and list them; every `--tenant` is checked against them."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from functions.core.tenants import Tenant, TenantExistsError, TenantRegistry, check_tenant_name, closest
from possync.admin.audit import AuditLog
from possync.admin.context import AdminContext, admin, parse_id
from possync.admin.render import Output, OutputOption, console, emit, fail, guarded, when

app = typer.Typer(
    help="Tenants: create them explicitly (here, or with a first `credentials add ... --new-tenant`); every "
    "--tenant must name one, so a mistyped id configures nothing.",
    no_args_is_help=True,
)

# The audit log's parameter for tenant registry changes (settings changes name their SSM parameter).
AUDIT_PARAMETER = "tenant"
KNOWN_SHOWN = 20


def command_line(context: AdminContext, words: str) -> str:
    """A possync command line to suggest, against the same target as the command that suggests it."""
    flags = context.global_flags or (["--local"] if context.local else [])
    return shlex.join(["possync", *flags]) + " " + words


def registry(context: AdminContext) -> TenantRegistry:
    return TenantRegistry(context.client("dynamodb"), context.target().control_table)


def create_tenant(
    ddb: Any, table: str, tenant: str, *, who: str, name: str | None = None, action: str = "tenants add"
) -> Tenant:
    """Register a tenant and its audit entry in one transaction; TenantExistsError if it is registered already.

    The one way a tenant comes to exist: `possync tenants add`, `credentials add --new-tenant` and the local
    runtime's demo tenants all call it.
    """
    moment = datetime.now(UTC)
    new = {"tenant": tenant, **({"name": name} if name else {})}
    audit = AuditLog(ddb, table).put_request(tenant, AUDIT_PARAMETER, who, action, None, new, moment)
    return TenantRegistry(ddb, table).add(tenant, who=who, name=name, at=moment, also=[audit])


def unknown_tenant_hint(context: AdminContext, tenant: str, known: list[str], *, new_tenant_flag: bool = False) -> str:
    parts: list[str] = []
    match = closest(tenant, known)
    if match is not None:
        parts.append(f"did you mean {match}?")
    if known:
        shown = ", ".join(known[:KNOWN_SHOWN])
        more = f" and {len(known) - KNOWN_SHOWN} more (`{command_line(context, 'tenants list')}`)"
        parts.append(f"Known tenants: {shown}{more if len(known) > KNOWN_SHOWN else ''}.")
    else:
        parts.append("No tenant exists yet.")
    if new_tenant_flag:
        parts.append(f"To create tenant {tenant} with this credential, add --new-tenant.")
    else:
        parts.append(
            f"To create it: `{command_line(context, f'tenants add {tenant}')}`, or with its first store "
            f"`{command_line(context, f'credentials add VENDOR --tenant {tenant} --id ID --new-tenant')}`."
        )
    return " ".join(parts)


def require_tenant(context: AdminContext, tenant: str, *, new_tenant_flag: bool = False) -> Tenant:
    """The tenant, or exit 1 with the known tenants, the closest one and how to create it."""
    tenants = registry(context)
    found = tenants.get(tenant)
    if found is not None:
        return found
    known = [t.tenant for t in tenants.all()]
    fail(
        f"tenant {tenant!r} does not exist",
        unknown_tenant_hint(context, tenant, known, new_tenant_flag=new_tenant_flag),
    )


def known_tenant(context: AdminContext, tenant: str) -> str:
    """A `--tenant` value that is a valid id of an existing tenant (else exit 1 saying what to do)."""
    tenant = parse_id(tenant, "tenant")
    require_tenant(context, tenant)
    return tenant


def register_known_tenant(context: AdminContext, found: Tenant, why: str) -> None:
    """Backfill: a tenant known only from its credentials gets its registry item when its credentials change,
    so it stays a tenant (with its settings and personas) even after its last credential is removed."""
    if found.registered:
        return
    try:
        create_tenant(
            context.client("dynamodb"),
            context.target().control_table,
            found.tenant,
            who=context.actor(),
            action=f"tenants add (backfill: {why})",
        )
    except TenantExistsError:
        return  # registered meanwhile: what we wanted


@app.command("add")
@guarded
def add(
    ctx: typer.Context,
    tenant: Annotated[
        str, typer.Argument(metavar="TENANT", help="New tenant id: lower-case letters, digits, dashes (e.g. acme).")
    ],
    name: Annotated[str | None, typer.Option("--name", help='Display name, e.g. "Acme Cannabis".')] = None,
) -> None:
    """Create a tenant (audited: who and when). Then connect its stores with `possync credentials add`.

    Example: possync tenants add acme --name "Acme Cannabis"
    """
    tenant = parse_id(tenant, "tenant")
    if name is not None:
        try:
            name = check_tenant_name(name)
        except ValueError as exc:
            fail(str(exc))
    context = admin(ctx)
    existing = registry(context).get(tenant)
    if existing is not None and existing.registered:
        fail(
            f"tenant {tenant} already exists",
            f"see `{command_line(context, 'tenants list')}`; to connect a store to it use "
            f"`{command_line(context, f'credentials add VENDOR --tenant {tenant} --id ID')}`",
        )
    who = context.actor()
    ddb, table = context.client("dynamodb"), context.target().control_table
    try:
        create_tenant(ddb, table, tenant, who=who, name=name)
    except TenantExistsError:
        fail(f"tenant {tenant} already exists (created while this command ran)")
    out = console()
    if existing is not None:
        out.print(
            f"Tenant [bold]{tenant}[/] was known from its {existing.credentials} credentials; it is now registered "
            f"as {who}."
        )
        return
    out.print(f"Created tenant [bold]{tenant}[/] as {who}.")
    out.print(
        f"Next: connect a store with `{command_line(context, f'credentials add VENDOR --tenant {tenant} --id ID')}`.",
        markup=False,
    )


@app.command("list")
@guarded
def list_tenants(ctx: typer.Context, output: OutputOption = Output.TABLE) -> None:
    """Every tenant: id, name, when and by whom it was created, how many store credentials it has.

    Example: possync tenants list --output csv
    """
    context = admin(ctx)
    tenants = registry(context).all()
    rows = [
        {
            "tenant": t.tenant,
            "name": t.name,
            "credentials": t.credentials,
            "created_at": t.created_at if output is not Output.TABLE else when(t.created_at),
            "created_by": t.created_by,
            "registered": t.registered,
        }
        for t in tenants
    ]
    emit(
        rows,
        [
            ("tenant", "tenant"),
            ("name", "name"),
            ("credentials", "credentials"),
            ("created_at", "created"),
            ("created_by", "by"),
            ("registered", "registered"),
        ],
        output,
        title="Tenants",
        empty=f"no tenants yet; create one with `{command_line(context, 'tenants add TENANT')}`",
    )
    unregistered = [t.tenant for t in tenants if not t.registered]
    if output is Output.TABLE and unregistered:
        console().print(
            f"{len(unregistered)} tenants are known only from their credentials (added before tenants were "
            "registered); they work as they are, and "
            f"`{command_line(context, 'tenants add TENANT')}` registers one.",
            markup=False,
        )
