"""`possync rewards add|list|show|remove|check`: a tenant's reward catalogue and its mirrors in each POS."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from functions.core.layout import Vendor
from functions.core.loyalty.catalogue import RewardCatalogue, overdrawn_redemptions
from functions.core.loyalty.rewards import MirrorFinding, Reward, RewardError, clash, new_reward
from functions.core.loyalty.values import LedgerEntry
from functions.core.notify import PutMetricCounts
from functions.core.reward_mirrors import UnmirroredNotices, check_tenant
from possync.admin.context import VENDOR_NAMES, AdminContext, OptionalTenant, TenantOption, admin, parse_vendor
from possync.admin.render import Output, OutputOption, console, emit, fail, guarded
from possync.admin.tenants import command_line, known_tenant, registry

app = typer.Typer(
    help="Rewards: the discounts shoppers redeem with points, mirrored in each POS (by name, or Flourish discount id).",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The reward's name, as the POS discount carries it.")]
VendorsOption = Annotated[
    list[str],
    typer.Option("--vendor", "-v", help=f"An integration the reward applies to ({VENDOR_NAMES}); repeat for more."),
]


def _catalogue(context: AdminContext) -> RewardCatalogue:
    return RewardCatalogue(context.client("dynamodb"), context.target().control_table)


def reward_row(reward: Reward) -> dict[str, Any]:
    return {
        "name": reward.name,
        "kind": reward.kind,
        "value": reward.value_text(),
        "points_cost": reward.points_cost,
        "vendors": ", ".join(v.value for v in reward.vendors),
        "flourish_discount_id": reward.flourish_discount_id,
        "created_at": reward.created_at,
    }


REWARD_COLUMNS = [
    ("name", "name"),
    ("value", "value"),
    ("points_cost", "points"),
    ("vendors", "integrations"),
    ("flourish_discount_id", "Flourish discount id"),
]


def redemption_rows(entries: Iterable[LedgerEntry]) -> list[dict[str, Any]]:
    """The redemptions on a persona's ledger, latest first (what `possync personas show` lists)."""
    rows = [
        {
            "reward": r.name,
            "points": r.points,
            "vendor": e.vendor,
            "credential": e.credential_id,
            "sale": e.source_id,
            "pos_discount": r.pos_discount,
            "local_date": e.local_date,
            "at": e.at or None,
            "overdrawn": e.overdrawn,
        }
        for e in entries
        for r in e.redemptions
    ]
    return sorted(rows, key=lambda row: (row["at"] or "", row["reward"]), reverse=True)


@app.command("add")
@guarded
def add_command(
    ctx: typer.Context,
    name: NameArgument,
    tenant: TenantOption,
    points: Annotated[int, typer.Option("--points", help="What the reward costs in points (0 or more).")],
    vendors: VendorsOption,
    flat: Annotated[str | None, typer.Option("--flat", help="A flat reward: dollars off (e.g. 5 or 5.50).")] = None,
    percent: Annotated[str | None, typer.Option("--percent", help="A percent reward: percent off (0-100).")] = None,
    flourish_discount_id: Annotated[
        str | None,
        typer.Option("--flourish-discount-id", help="Flourish only: the id of the discount created in Flourish first."),
    ] = None,
) -> None:
    """Add a reward. POSaBIT, THSuite, Profitek and Auphan: create it here first, then mirror it in the POS under
    exactly this name. Flourish: create the discount in Flourish first and give its id.

    Example: possync rewards add 'Spring 15%' --tenant acme --percent 15 --points 150 --vendor posabit
    """
    if (flat is None) == (percent is None):
        fail("give exactly one of --flat DOLLARS or --percent PERCENT", "a reward is flat ($) or percent (%)")
    context = admin(ctx)
    tenant = known_tenant(context, tenant)
    catalogue = _catalogue(context)
    try:
        reward = new_reward(
            tenant=tenant,
            name=name,
            kind="flat" if flat is not None else "percent",
            value=flat if flat is not None else percent or "",
            points_cost=points,
            vendors=[parse_vendor(v) for v in vendors],
            flourish_discount_id=flourish_discount_id,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        problem = clash(reward, catalogue.rewards(tenant))
        if problem is not None:
            raise problem
        catalogue.add(reward)
    except RewardError as exc:
        fail(str(exc))
    out = console()
    out.print(
        f"Added reward {escape(reward.name)!r} to {tenant}: {reward.value_text()} for {reward.points_cost} points."
    )
    by_name = [v.value for v in reward.vendors if v is not Vendor.FLOURISH]
    if by_name:
        out.print(
            f"Mirror it in {', '.join(by_name)} as a discount named exactly {escape(reward.name)!r}; "
            f"`{command_line(context, f'rewards check --tenant {tenant}')}` shows where it is mirrored."
        )


@app.command("list")
@guarded
def list_command(ctx: typer.Context, tenant: TenantOption, output: OutputOption = Output.TABLE) -> None:
    """A tenant's rewards.

    Example: possync rewards list --tenant acme
    """
    context = admin(ctx)
    tenant = known_tenant(context, tenant)
    rows = [reward_row(r) for r in _catalogue(context).rewards(tenant)]
    columns = [*REWARD_COLUMNS, ("created_at", "created")] if output is not Output.TABLE else REWARD_COLUMNS
    emit(rows, columns, output, title=f"Rewards of {tenant}", empty=f"tenant {tenant} has no rewards yet")


@app.command("show")
@guarded
def show_command(
    ctx: typer.Context, name: NameArgument, tenant: TenantOption, output: OutputOption = Output.TABLE
) -> None:
    """One reward and its mirror at each store of the integrations it applies to.

    Example: possync rewards show 'Spring 15%' --tenant acme
    """
    context = admin(ctx)
    tenant = known_tenant(context, tenant)
    catalogue = _catalogue(context)
    reward = catalogue.get(tenant, name)
    if reward is None:
        fail(
            f"tenant {tenant} has no reward named like {name!r}",
            f"see `{command_line(context, f'rewards list --tenant {tenant}')}`",
        )
    findings = [f for f in _findings(context, tenant, [reward]) if f.reward == reward.name]
    row = reward_row(reward)
    row["mirrors"] = [_finding_row(f) for f in findings]
    if output is not Output.TABLE:
        emit([row], [*REWARD_COLUMNS, ("created_at", "created"), ("mirrors", "mirror problems")], output)
        return
    emit([row], REWARD_COLUMNS, output, title=f"Reward {reward.name}")
    emit(
        row["mirrors"],
        FINDING_COLUMNS,
        output,
        title="Mirror problems",
        empty="mirrored at every store of its integrations",
    )


@app.command("remove")
@guarded
def remove_command(ctx: typer.Context, name: NameArgument, tenant: TenantOption) -> None:
    """Remove a reward. Redemptions already booked keep the points they cost.

    Example: possync rewards remove 'Spring 15%' --tenant acme
    """
    context = admin(ctx)
    tenant = known_tenant(context, tenant)
    removed = _catalogue(context).remove(tenant, name)
    if removed is None:
        fail(
            f"tenant {tenant} has no reward named like {name!r}",
            f"see `{command_line(context, f'rewards list --tenant {tenant}')}`",
        )
    console().print(
        f"Removed reward {escape(removed.name)!r} of {tenant}. Its POS discount no longer redeems it; redemptions "
        "already booked keep their points."
    )


FINDING_COLUMNS = [
    ("vendor", "vendor"),
    ("credential", "store (credential)"),
    ("problem", "problem"),
    ("reward", "reward"),
    ("pos_discount", "POS discount"),
    ("advice", "what to do"),
]
PROBLEM_TEXT = {
    "missing": "missing in the POS",
    "name_differs": "name differs (case/spacing)",
    "unknown_id": "Flourish id does not exist",
    "inactive": "inactive in the POS",
    "no_reward": "POS discount, no reward",
}


def _finding_row(finding: MirrorFinding) -> dict[str, Any]:
    return {
        "vendor": finding.vendor.value,
        "credential": finding.credential_id,
        "problem": PROBLEM_TEXT[finding.problem],
        "reward": finding.reward,
        "pos_discount": finding.pos_discount,
        "advice": finding.advice,
    }


def _findings(context: AdminContext, tenant: str, rewards: Sequence[Reward]) -> list[MirrorFinding]:
    control = context.control()
    credentials = [c for v in Vendor for c in control.credentials(v, tenant)]
    return check_tenant(rewards, credentials, context.records(), tenant)


def check_tenant_mirrors(context: AdminContext, tenant: str) -> tuple[list[MirrorFinding], int]:
    """The tenant's findings, with a notice raised (once) for each store where a reward is not mirrored."""
    target = context.target()
    findings = _findings(context, tenant, _catalogue(context).rewards(tenant))
    notices = UnmirroredNotices(context.client("dynamodb"), target.control_table)
    counter = PutMetricCounts(context.client("cloudwatch"), target.names.metrics_namespace)
    raised = notices.raise_notices(tenant, findings, context.client("events"), counter)
    return findings, raised


@app.command("check")
@guarded
def check_command(ctx: typer.Context, tenant: OptionalTenant = None, output: OutputOption = Output.TABLE) -> None:
    """Per store: rewards missing in the POS, names that differ only by case or spacing, Flourish ids that do not
    exist or are inactive, POS discounts with no reward here; then redemptions that took a balance below zero.

    A reward not mirrored at a store raises one notice (event and metric), as an unmapped store does.

    Example: possync rewards check --tenant acme
    """
    context = admin(ctx)
    tenants = [known_tenant(context, tenant)] if tenant is not None else [t.tenant for t in registry(context).all()]
    rows: list[dict[str, Any]] = []
    overdrawn: list[dict[str, Any]] = []
    raised = 0
    for name in tenants:
        findings, new = check_tenant_mirrors(context, name)
        raised += new
        rows += [{"tenant": name, **_finding_row(f)} for f in findings]
        for persona_id, entry in overdrawn_redemptions(
            context.client("dynamodb"), context.target().personas_table, name
        ):
            for r in entry.redemptions:
                overdrawn.append(
                    {"tenant": name, "persona": persona_id, "reward": r.name, "points": r.points,
                     "vendor": entry.vendor, "sale": entry.source_id, "local_date": entry.local_date}
                )  # fmt: skip
    if output is not Output.TABLE:
        emit(
            [{**r, "kind": "mirror"} for r in rows] + [{**o, "kind": "overdrawn"} for o in overdrawn],
            [("kind", "kind"), ("tenant", "tenant"), *FINDING_COLUMNS, ("persona", "persona"), ("points", "points"),
             ("sale", "sale"), ("local_date", "store date")],
            output,
        )  # fmt: skip
        return
    emit(
        rows,
        [("tenant", "tenant"), *FINDING_COLUMNS],
        output,
        title="Reward mirrors",
        empty="every reward is mirrored at every store, and every POS discount has a reward",
    )
    emit(
        overdrawn,
        [("tenant", "tenant"), ("persona", "persona"), ("reward", "reward"), ("points", "points"),
         ("vendor", "vendor"), ("sale", "sale"), ("local_date", "store date")],
        output,
        title="Redemptions that took a balance below zero",
        empty="no redemption took a balance below zero",
    )  # fmt: skip
    if raised:
        console().print(f"Raised {raised} new unmirrored-reward notice{'s' if raised != 1 else ''}.")
