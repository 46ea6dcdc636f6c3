"""`possync stores map|unmap|unmapped`: connect each credential or POS location to a retail store."""

from __future__ import annotations

import shlex
from typing import Annotated, Any

import typer

from functions.core import layout
from functions.core.layout import Vendor
from functions.core.settings import check_mapping_key, check_store_id
from functions.core.store import ControlStore
from functions.core.unmapped import UnmappedStore, UnmappedStores
from possync.admin.context import (
    AdminContext,
    OptionalTenant,
    TenantOption,
    VendorOption,
    admin,
    parse_id,
    parse_vendor,
)
from possync.admin.render import Output, OutputOption, console, emit, fail, guarded, warn, when
from possync.admin.settings import (
    MAPPING_KEY,
    DryRunOption,
    Outcome,
    Scope,
    change_settings,
    current_view,
    read_stored,
)
from possync.admin.tenants import command_line, known_tenant, require_tenant

app = typer.Typer(
    help="Store mappings: which retail store each credential or POS location is (favourite stores come from them).",
    no_args_is_help=True,
)

UNMAPPED_PREFIX = layout.control_unmapped_pk("")

CredentialOption = Annotated[
    str | None, typer.Option("--credential", "-c", help="Map the whole credential (every location it reports).")
]
LocationOption = Annotated[str | None, typer.Option("--location", "-l", help="Map one POS location id.")]
StoreOption = Annotated[str, typer.Option("--store", "-s", help="The retail store id (e.g. downtown).")]


def unmapped_notices(ddb: Any, table: str, tenant: str | None = None) -> list[UnmappedStore]:
    notices = UnmappedStores(ddb, table)
    tenants = [tenant] if tenant is not None else _tenants_with_notices(ddb, table)
    found = [n for t in tenants for n in notices.list_unmapped(t)]
    return sorted(found, key=lambda n: (n.tenant, n.vendor.value, n.credential_id, n.location_id or ""))


def _tenants_with_notices(ddb: Any, table: str) -> list[str]:
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "begins_with(pk, :prefix)",
        "ExpressionAttributeValues": {":prefix": {"S": UNMAPPED_PREFIX}},
        "ProjectionExpression": "pk",
    }
    tenants: set[str] = set()
    while True:
        response = ddb.scan(**kwargs)
        tenants.update(i["pk"]["S"].removeprefix(UNMAPPED_PREFIX) for i in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return sorted(tenants)
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def notices_covered(notices: list[UnmappedStore], vendor: Vendor, key: str, by_credential: bool) -> list[UnmappedStore]:
    """The notices a new mapping answers: all of a credential's locations, or one location under any credential
    (the rules look a record's location up first, then its credential)."""
    found = [n for n in notices if n.vendor is vendor]
    if by_credential:
        return [n for n in found if n.credential_id == key]
    return [n for n in found if n.location_id == key]


def _what(credential_id: str | None, location: str | None) -> tuple[str, str]:
    """The store_mappings key and how to name it, from exactly one of --credential / --location."""
    if (credential_id is None) == (location is None):
        fail("give exactly one of --credential or --location", "a credential maps all its locations; --location one")
    if credential_id is not None:
        return parse_id(credential_id, "credential id"), f"credential {credential_id}"
    key = (location or "").strip()
    try:
        check_mapping_key(key)
    except ValueError as exc:
        fail(f"location id {location!r} is not usable as a mapping key: {exc}")
    return key, f"location {key}"


def _store_id(store: str) -> str:
    """The same check the settings model applies to every store mapping, however it was written."""
    value = store.strip()
    try:
        return check_store_id(value)
    except ValueError as exc:
        fail(f"store id {store!r} is not valid: {exc}")


def map_command_line(context: AdminContext, notice: UnmappedStore, store: str = "STORE_ID") -> str:
    words = ["possync", *(["--local"] if context.local else []), "stores", "map", "--tenant", notice.tenant]
    words += ["--vendor", notice.vendor.value]
    if notice.location_id is not None:
        words += ["--location", notice.location_id]
    else:
        words += ["--credential", notice.credential_id]
    return shlex.join([*words, "--store"]) + f" {store}"


@app.command("map")
@guarded
def map_store(
    ctx: typer.Context,
    tenant: TenantOption,
    vendor_name: VendorOption,
    store: StoreOption,
    credential_id: CredentialOption = None,
    location: LocationOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Map a credential (or one POS location) to a retail store; clears its unmapped-store notice.

    The mapping is an integration setting (store_mappings), validated and audited like `possync settings set`; its
    stored sales count toward favourite stores too (a re-evaluation applies it to them). --dry-run says how many
    personas would get a favourite store.

    Example: possync stores map --tenant acme --vendor posabit --credential downtown --store downtown
    """
    tenant = parse_id(tenant, "tenant")
    vendor = parse_vendor(vendor_name)
    key, what = _what(credential_id, location)
    store = _store_id(store)
    context = admin(ctx)
    require_tenant(context, tenant)
    target = context.target()
    ddb = context.client("dynamodb")
    control = ControlStore(ddb, target.control_table)
    notices = unmapped_notices(ddb, target.control_table, tenant)
    covered = notices_covered(notices, vendor, key, by_credential=credential_id is not None)
    scope = Scope.of(target.names, tenant, vendor)
    if credential_id is not None:
        if control.get_credential(tenant, vendor, key) is None:
            fail(
                f"tenant {tenant} has no {vendor.value} credential {key}",
                f"see `{command_line(context, f'credentials list --tenant {tenant} --vendor {vendor.value}')}` "
                f"or `{command_line(context, f'stores unmapped --tenant {tenant}')}`",
            )
    elif not covered:
        mapped = current_view(scope, read_stored(context.client("ssm"), scope)).get(MAPPING_KEY) or {}
        if key not in mapped:
            warn(
                f"no {vendor.value} data from location {key} has been seen yet; if the id is mistyped, "
                "its sales stay unmapped (compare with "
                f"`{command_line(context, f'stores unmapped --tenant {tenant}')}`)"
            )
    outcome = change_settings(
        context, scope, {}, {key: store}, [], dry_run=dry_run, yes=False, action=f"stores map {what}"
    )
    if outcome is Outcome.DRY_RUN:
        return
    unmapped_stores = UnmappedStores(ddb, target.control_table)
    for notice in covered:
        unmapped_stores.clear(notice.tenant, notice.vendor, notice.credential_id, notice.location_id)
    out = console()
    out.print(
        f"{vendor.value} {what} of {tenant} is store {store}. Its sales count toward favourite stores: new ones as "
        "they arrive, stored ones through the re-evaluation."
    )
    if covered:
        out.print(f"Cleared {len(covered)} unmapped-store notice{'s' if len(covered) != 1 else ''}.")


@app.command("unmap")
@guarded
def unmap_store(
    ctx: typer.Context,
    tenant: TenantOption,
    vendor_name: VendorOption,
    credential_id: CredentialOption = None,
    location: LocationOption = None,
) -> None:
    """Remove a store mapping (audited). Favourite stores already computed from it stay until new sales arrive.

    Example: possync stores unmap --tenant acme --vendor posabit --location 42
    """
    tenant = parse_id(tenant, "tenant")
    vendor = parse_vendor(vendor_name)
    key, what = _what(credential_id, location)
    context = admin(ctx)
    require_tenant(context, tenant)
    scope = Scope.of(context.target().names, tenant, vendor)
    outcome = change_settings(
        context, scope, {}, {}, [f"{MAPPING_KEY}.{key}"], dry_run=False, yes=False, action=f"stores unmap {what}"
    )
    if outcome is Outcome.SAVED:
        console().print(
            f"{vendor.value} {what} of {tenant} maps to no store now. Favourite stores already computed from it stay "
            "until new sales arrive; new data from it raises an unmapped-store notice "
            f"(`{command_line(context, 'stores unmapped')}`)."
        )


@app.command("unmapped")
@guarded
def unmapped(
    ctx: typer.Context,
    tenant: OptionalTenant = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Credentials and POS locations that sent data but map to no store, each with the command that maps it.

    Example: possync stores unmapped --tenant acme
    """
    context = admin(ctx)
    if tenant is not None:
        tenant = known_tenant(context, tenant)
    target = context.target()
    ddb = context.client("dynamodb")
    notices = unmapped_notices(ddb, target.control_table, tenant)
    control = ControlStore(ddb, target.control_table)
    store_names: dict[tuple[str, Vendor], dict[str, str]] = {}
    rows = []
    for notice in notices:
        registered = store_names.get((notice.tenant, notice.vendor))
        if registered is None:
            registered = store_names[(notice.tenant, notice.vendor)] = {
                c.credential_id: str(c.attributes.get("store_name") or c.label or "")
                for c in control.credentials(notice.vendor, notice.tenant)
            }
        rows.append(
            {
                "tenant": notice.tenant,
                "vendor": notice.vendor.value,
                "credential": notice.credential_id,
                "store_name": registered.get(notice.credential_id) or None,
                "location": notice.location_id,
                "first_seen": notice.first_seen_at if output is not Output.TABLE else when(notice.first_seen_at),
                "map_command": map_command_line(context, notice),
            }
        )
    columns = [
        ("tenant", "tenant"),
        ("vendor", "vendor"),
        ("credential", "credential"),
        ("store_name", "store name"),
        ("location", "POS location"),
        ("first_seen", "first seen"),
    ]
    if output is not Output.TABLE:
        columns.append(("map_command", "map with"))
    emit(
        rows,
        columns,
        output,
        title="Unmapped stores" + (f" of {tenant}" if tenant else ""),
        empty="no unmapped stores"
        + (f" for tenant {tenant}" if tenant else "")
        + ": every store sending data is mapped",
    )
    if output is Output.TABLE and rows:
        out = console()
        out.print("Map each one to its retail store (favourite stores stay unset until then):")
        for row in rows:
            out.print(f"  {row['map_command']}", markup=False)


@app.command("list")
@guarded
def list_mappings(
    ctx: typer.Context,
    tenant: TenantOption,
    vendor_name: Annotated[str | None, typer.Option("--vendor", "-v", help="Only this POS.")] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """A tenant's store mappings as a table: which retail store each credential or POS location is.

    Example: possync stores list --tenant acme
    """
    context = admin(ctx)
    tenant = known_tenant(context, tenant)
    vendors = [parse_vendor(vendor_name)] if vendor_name else list(Vendor)
    target = context.target()
    ssm = context.client("ssm")
    control = context.control()
    rows: list[dict[str, Any]] = []
    unmapped_credentials: list[str] = []
    for vendor in vendors:
        scope = Scope.of(target.names, tenant, vendor)
        mappings: dict[str, str] = dict(current_view(scope, read_stored(ssm, scope)).get(MAPPING_KEY) or {})
        credentials = {c.credential_id: c for c in control.credentials(vendor, tenant)}
        for key, store in sorted(mappings.items()):
            credential = credentials.get(key)
            rows.append(
                {
                    "vendor": vendor.value,
                    "kind": "credential" if credential is not None else "location",
                    "key": key,
                    "store": store,
                    "store_name": (credential.attributes.get("store_name") or credential.label) if credential else None,
                }
            )
        unmapped_credentials += [f"{vendor.value}/{c}" for c in sorted(credentials) if c not in mappings]
    emit(
        rows,
        [
            ("vendor", "vendor"),
            ("kind", "maps"),
            ("key", "credential / location"),
            ("store", "store"),
            ("store_name", "POS store name"),
        ],
        output,
        title=f"Store mappings of {tenant}",
        empty=f"no store mappings for {tenant} yet",
    )
    if output is Output.TABLE:
        out = console()
        if unmapped_credentials:
            out.print(
                "Credentials with no mapping of their own (their locations may be mapped one by one): "
                + ", ".join(unmapped_credentials),
                markup=False,
            )
        map_line = f"stores map --tenant {tenant} --vendor VENDOR --credential ID --store STORE"
        out.print(
            f"Map one with `{command_line(context, map_line)}`; "
            f"`{command_line(context, f'stores unmapped --tenant {tenant}')}` lists stores sending unmapped data.",
            markup=False,
        )
