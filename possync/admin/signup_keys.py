"""`possync signup-keys create|list|revoke|origins`: the API keys and browser origins of a tenant's signup form."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from functions.core.signups.keys import SignupKeyError, SignupKeys
from possync.admin.audit import AuditLog
from possync.admin.context import AdminContext, TenantOption, admin
from possync.admin.render import Output, OutputOption, console, emit, fail, guarded
from possync.admin.tenants import command_line, known_tenant

app = typer.Typer(
    help="API keys (and allowed browser origins) of the form signup endpoint, per tenant.", no_args_is_help=True
)
AUDIT_PARAMETER = "signup-keys"


def signup_keys(context: AdminContext) -> SignupKeys:
    return SignupKeys(context.client("dynamodb"), context.target().control_table)


def _audit(context: AdminContext, tenant: str, action: str, new: dict[str, object] | None) -> None:
    AuditLog(context.client("dynamodb"), context.target().control_table).record(
        tenant, AUDIT_PARAMETER, context.actor(), action, None, new
    )


@app.command("create")
@guarded
def create_command(ctx: typer.Context, tenant: TenantOption, output: OutputOption = Output.TABLE) -> None:
    """Create a signup API key for the tenant's web form. The key is printed once, here: possync keeps only its
    SHA-256 digest, so store it where the form's backend (or page) reads it; revoke it if it leaks.

    Example: possync signup-keys create --tenant greenleaf
    """
    context = admin(ctx)
    tenant = known_tenant(context, tenant)
    stored, key = signup_keys(context).create(tenant, created_by=context.actor())
    _audit(context, tenant, "create", {"key_id": stored.key_id})
    if output is Output.JSON:
        typer.echo(json.dumps({**stored.as_dict(), "key": key}, indent=2))
        return
    console().print(f"Signup key {stored.key_id} for {tenant} (shown once; possync keeps only its digest):")
    console().print(key, markup=False, highlight=False)
    console().print(f"Send it in the x-api-key header of POST /tenants/{tenant}/signups.", markup=False)


@app.command("list")
@guarded
def list_command(ctx: typer.Context, tenant: TenantOption, output: OutputOption = Output.TABLE) -> None:
    """A tenant's signup keys: id, prefix, when created (and by whom), whether revoked. Never the key itself.

    Example: possync signup-keys list --tenant greenleaf
    """
    context = admin(ctx)
    tenant = known_tenant(context, tenant)
    keys = signup_keys(context)
    rows = [k.as_dict() for k in keys.list(tenant)]
    create = command_line(context, f"signup-keys create --tenant {tenant}")
    emit(
        rows,
        [
            ("key_id", "key id"),
            ("prefix", "prefix"),
            ("created_at", "created"),
            ("created_by", "by"),
            ("revoked_at", "revoked"),
        ],
        output,
        title=f"Signup keys of {tenant} (allowed origins: {', '.join(keys.origins(tenant)) or 'none'})",
        empty=f"{tenant} has no signup keys: `{create}` makes one",
    )


@app.command("revoke")
@guarded
def revoke_command(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key id `possync signup-keys list` shows.")],
    tenant: TenantOption,
) -> None:
    """Revoke a signup key at once and for good: requests with it get 401 from then on.

    Example: possync signup-keys revoke 0123456789abcdef --tenant greenleaf
    """
    context = admin(ctx)
    tenant = known_tenant(context, tenant)
    try:
        revoked = signup_keys(context).revoke(tenant, key_id.strip())
    except SignupKeyError as exc:
        fail(str(exc), f"`{command_line(context, f'signup-keys list --tenant {tenant}')}` shows its keys")
    _audit(context, tenant, "revoke", {"key_id": revoked.key_id, "revoked_at": revoked.revoked_at})
    console().print(f"Signup key {revoked.key_id} of {tenant} revoked at {revoked.revoked_at}.", markup=False)


@app.command("origins")
@guarded
def origins_command(
    ctx: typer.Context,
    tenant: TenantOption,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="An origin the form is served from (repeat it); replaces the list."),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Allow no browser origin (server-side posts only).")] = False,
) -> None:
    """Show, or set, the browser origins allowed to post the tenant's form (CORS). Others get no CORS headers,
    so browsers refuse them; there is never a wildcard.

    Example: possync signup-keys origins --tenant greenleaf --allow https://shop.greenleaf.example
    """
    context = admin(ctx)
    tenant = known_tenant(context, tenant)
    keys = signup_keys(context)
    if allow or clear:
        try:
            origins = keys.set_origins(tenant, [] if clear else list(allow or []))
        except SignupKeyError as exc:
            fail(str(exc))
        _audit(context, tenant, "origins", {"origins": list(origins)})
    else:
        origins = keys.origins(tenant)
    console().print(f"Allowed origins of {tenant}: {', '.join(origins) or 'none'}", markup=False)
