"""`possync replay`: rebuild normalized records from the raw archive after a mapping fix."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from functions.core import replay as core_replay
from functions.core.replay import ArchivedPage, ReplayError, archived_pages, load_codec
from possync.admin.context import TenantOption, VendorOption, admin, parse_id, parse_vendor
from possync.admin.render import Output, console, emit, fail, guarded, warn
from possync.admin.tenants import require_tenant


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a date: use YYYY-MM-DD, e.g. 2026-05-01")


@guarded
def replay_command(
    ctx: typer.Context,
    tenant: TenantOption,
    vendor_name: VendorOption,
    start: Annotated[
        str,
        typer.Option(
            "--from", metavar="YYYY-MM-DD", help="First pull day, UTC (the day pages were pulled, not record time)."
        ),
    ],
    end: Annotated[str, typer.Option("--to", metavar="YYYY-MM-DD", help="Last pull day, UTC (inclusive; e.g. today).")],
    credential_id: Annotated[str | None, typer.Option("--credential", help="Only this credential id.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Compare with what is stored; write nothing.")] = False,
) -> None:
    """Map archived pages again with the current mapping and write what changed.

    Pages are chosen by the UTC day they were pulled (the day in their archive key), not by the time of the
    records in them: to rebuild records pulled since November 1st, use --from 2026-11-01 --to today's date.
    Older versions never overwrite newer ones; items that still fail are quarantined again; quarantine entries
    of items that now map are cleared. Takes each credential's lease, so it never interleaves with a running pull.

    Example: possync replay --tenant acme --vendor posabit --from 2026-11-01 --to 2026-11-30 --dry-run
    """
    tenant = parse_id(tenant, "tenant")
    vendor = parse_vendor(vendor_name)
    first, last = _day(start, "--from"), _day(end, "--to")
    if last < first:
        fail(f"--to {last} is before --from {first}")
    if credential_id is not None:
        credential_id = parse_id(credential_id, "credential id")
    try:
        codec = load_codec(vendor)
    except ReplayError as exc:
        fail(str(exc), "upgrade possync to a build whose connector exports the replay codec")
    context = admin(ctx)
    require_tenant(context, tenant)
    archive = context.archive()
    pages = archived_pages(archive, tenant, vendor, first, last, credential_id)
    scope = f"{tenant} / {vendor.value}" + (f" / {credential_id}" if credential_id else "")
    if not pages:
        days = sorted({p.day for p in archived_pages(archive, tenant, vendor, date.min, date.max, credential_id)})
        console().print(
            f"No pages of {scope} were pulled between {first} and {last} (UTC pull days): nothing to replay. "
            + (
                f"Pages were pulled on {days[0]}" + (f" to {days[-1]}" if len(days) > 1 else "") + "."
                if days
                else "Nothing of it is archived yet."
            ),
            markup=False,
        )
        return
    with Progress(
        TextColumn("[bold]replay[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console(),
        transient=False,
    ) as progress:
        task = progress.add_task(scope, total=len(pages))

        def advance(_page: ArchivedPage) -> None:
            progress.advance(task)

        result = core_replay.replay(
            archive=archive,
            records=context.records(),
            control=context.control(),
            codec=codec,
            tenant=tenant,
            vendor=vendor,
            pages=pages,
            dry_run=dry_run,
            on_page=advance,
        )
    summary = {
        "pages": result.pages,
        "records": result.records,
        "changed": result.changed,
        "unchanged": result.unchanged,
        "stale": result.stale,
        "quarantined": result.quarantined,
        "released from quarantine": result.released,
    }
    verb = "would be" if dry_run else "were"
    heading = f"Replay of {scope}, {first} to {last}" + (" (dry run: nothing written)" if dry_run else "")
    console().print(f"[bold]{escape(heading)}[/]")
    emit([{"what": k, "count": v} for k, v in summary.items()], [("what", "what"), ("count", "count")], Output.TABLE)
    console().print(
        f"{result.changed} records {verb} written; {result.unchanged} unchanged and {result.stale} older than "
        f"what is stored {verb} left alone; {result.quarantined} still fail mapping."
    )
    for credential, reason in result.skipped.items():
        warn(f"credential {credential} not replayed: {reason}")
    if result.unreadable_pages:
        shown = ", ".join(result.unreadable_pages[:3]) + (" ..." if len(result.unreadable_pages) > 3 else "")
        warn(f"{len(result.unreadable_pages)} archived pages could not be read or decoded: {shown}")
    if result.skipped or result.unreadable_pages:
        raise typer.Exit(1)
