"""`possync pull`: pull a tenant's stores now (the job the schedule's dispatch enqueues), and optionally wait."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape

from functions.core.layout import PULL_FUNCTION, Vendor
from functions.core.pull_runtime import PullJob
from functions.core.store import ControlStore, RegisteredCredential
from possync.admin.context import AdminContext, OptionalVendor, TenantOption, admin, parse_id, parse_vendor
from possync.admin.render import console, fail, guarded, warn
from possync.admin.status import IntervalLookup
from possync.admin.tenants import KNOWN_SHOWN, command_line, require_tenant

# How often --wait reads the credentials' status (one GetItem each).
POLL_SECONDS = 2.0
# Outcomes that end a wait; "continued" means the pull goes on in a continuation job.
FINAL_OUTCOMES = frozenset({"ok", "contract_mismatch", "failed", "unavailable", "offline", "frozen"})
GOOD_OUTCOMES = frozenset({"ok"})


@dataclass(frozen=True)
class Enqueued:
    entry: RegisteredCredential
    at: datetime

    @property
    def label(self) -> str:
        return f"{self.entry.tenant}/{self.entry.vendor.value}/{self.entry.credential_id}"


def sleep(seconds: float) -> None:
    """The wait between two status reads (a seam: tests run a pull job here)."""
    time.sleep(seconds)


def chosen_credentials(
    control: ControlStore, tenant: str, vendor: Vendor | None, credential_id: str | None
) -> list[RegisteredCredential]:
    vendors = [vendor] if vendor is not None else list(Vendor)
    found = [c for v in vendors for c in control.credentials(v, tenant)]
    if credential_id is not None:
        found = [c for c in found if c.credential_id == credential_id]
    return sorted(found, key=lambda c: (c.vendor.value, c.credential_id))


def nothing_to_pull(
    context: AdminContext, control: ControlStore, tenant: str, vendor: Vendor | None, credential_id: str | None
) -> NoReturn:
    """Exit 1 saying which credential is missing, and the ones the tenant has."""
    pos = f"{vendor.value} " if vendor else ""
    add = command_line(context, f"credentials add {vendor.value if vendor else 'VENDOR'} --tenant {tenant} --id ID")
    known = sorted(c.credential_id for c in chosen_credentials(control, tenant, vendor, None))
    if credential_id is None or not known:
        missing = "store credential to pull" if credential_id is None else f"credential {credential_id!r}"
        fail(f"tenant {tenant} has no {pos}{missing}", f"connect one with `{add}`")
    listing = command_line(
        context, f"credentials list --tenant {tenant}" + (f" --vendor {vendor.value}" if vendor else "")
    )
    more = " ..." if len(known) > KNOWN_SHOWN else ""
    fail(
        f"tenant {tenant} has no {pos}credential {credential_id!r}",
        f"its {pos}credentials are {', '.join(known[:KNOWN_SHOWN])}{more}; `{listing}` lists them",
    )


def _skip_reason(context: AdminContext, control: ControlStore, entry: RegisteredCredential) -> str | None:
    """Why the dispatch would not enqueue this credential now (the schedule's rules, see PullService._consider)."""
    if not entry.active:
        return "inactive (not pulled)"
    settings = IntervalLookup(context.client("ssm"), context.target().names)(entry.tenant, entry.vendor)
    if settings is None:
        return (
            "its settings cannot be read or are not valid: the POS is not called until they are fixed "
            f"(`{command_line(context, f'settings show --tenant {entry.tenant} --vendor {entry.vendor.value}')}`)"
        )
    if settings.use_last_backup:
        return "frozen: use_last_backup is on, so possync does not call this POS"
    lease = control.get_lease(entry.tenant, entry.vendor, entry.credential_id)
    if lease is not None:
        held = lease.describe()
        return f"a pull is running now (lease held by {held.get('holder')} until {held.get('until')})"
    return None


def enqueue(context: AdminContext, entry: RegisteredCredential, now: datetime) -> Enqueued:
    """Send the manual pull job (the dispatch's own message model) and stamp the status as the dispatch does."""
    target = context.target()
    function = PULL_FUNCTION[entry.vendor]
    url = target.queue_urls.get(function)
    if not url:
        fail(
            f"the target has no jobs queue for {function}",
            "is this a possync stack (or local runtime) of this version?",
        )
    job = PullJob(tenant=entry.tenant, vendor=entry.vendor, credential_id=entry.credential_id, reason="manual")
    context.client("sqs").send_message(QueueUrl=url, MessageBody=job.model_dump_json())
    context.control().save_status(
        entry.tenant,
        entry.vendor,
        entry.credential_id,
        {"last_enqueued_at": now.isoformat(), "dispatch_problem": None},
    )
    return Enqueued(entry, now)


def outcome_of(status: dict[str, Any], since: datetime) -> str | None:
    """The outcome of the pull enqueued at `since`, once it is known: a final outcome attempted after it, or
    "skipped" when another pull held the lease; None while it is queued or continues."""
    attempted = status.get("last_attempt_at")
    if isinstance(attempted, str) and datetime.fromisoformat(attempted) >= since:
        outcome = str(status.get("last_outcome"))
        if outcome in FINAL_OUTCOMES:
            return outcome
    skip = status.get("lease_skip")
    if isinstance(skip, dict) and isinstance(skip.get("at"), str) and datetime.fromisoformat(skip["at"]) >= since:
        return "skipped"
    return None


def _describe(outcome: str, status: dict[str, Any]) -> str:
    if outcome == "ok":
        return (
            f"ok: {status.get('last_records', 0)} records read, {status.get('last_changed', 0)} changed, "
            f"{status.get('last_quarantined', 0)} quarantined"
        )
    if outcome == "skipped":
        return "skipped: another pull of this store held its lease"
    return f"{outcome}: {status.get('last_error') or 'no detail recorded'}"


def wait_for(context: AdminContext, jobs: list[Enqueued], timeout: float) -> dict[str, str]:
    """Poll each credential's status until its pull's outcome is known (or `timeout` seconds pass)."""
    control = context.control()
    pending = {job.label: job for job in jobs}
    outcomes: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    out = console()
    while pending:
        for label, job in list(pending.items()):
            status = control.get_status(job.entry.tenant, job.entry.vendor, job.entry.credential_id)
            outcome = outcome_of(status, job.at)
            if outcome is None:
                continue
            outcomes[label] = outcome
            del pending[label]
            colour = "green" if outcome in GOOD_OUTCOMES else "red"
            out.print(f"[{colour}]{escape(label)}: {escape(_describe(outcome, status))}[/]")
        if not pending or time.monotonic() >= deadline:
            break
        sleep(POLL_SECONDS)
    for label in pending:
        outcomes[label] = "waiting"
    return outcomes


@guarded
def pull_command(
    ctx: typer.Context,
    tenant: TenantOption,
    vendor_name: OptionalVendor = None,
    credential_id: Annotated[
        str | None, typer.Option("--credential", "--id", help="Only this store credential (its id).")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for each pull's outcome; exit 1 unless all are ok.")
    ] = False,
    timeout: Annotated[int, typer.Option(min=1, help="With --wait: give up waiting after this many seconds.")] = 900,
) -> None:
    """Pull a tenant's stores now: the same job the schedule enqueues, whatever the pull interval.

    Test a new credential at once: `possync pull --tenant acme --vendor posabit --credential downtown --wait`
    shows its outcome (records read, or the error) and exits 1 if it failed or mismatched the POS's contract.
    Without --wait the jobs are queued and `possync status --tenant acme` shows how they went.

    Example: possync pull --tenant acme --vendor posabit --credential downtown --wait
    """
    context = admin(ctx)
    tenant = parse_id(tenant, "tenant")
    vendor = parse_vendor(vendor_name) if vendor_name else None
    if credential_id is not None:
        credential_id = parse_id(credential_id, "credential id")
    require_tenant(context, tenant)
    control = context.control()
    entries = chosen_credentials(control, tenant, vendor, credential_id)
    if not entries:
        nothing_to_pull(context, control, tenant, vendor, credential_id)
    now = datetime.now(UTC)
    queued: list[Enqueued] = []
    out = console()
    skipped = 0
    for entry in entries:
        label = f"{entry.tenant}/{entry.vendor.value}/{entry.credential_id}"
        reason = _skip_reason(context, control, entry)
        if reason is not None:
            warn(f"{label} not pulled: {reason}")
            skipped += 1
            continue
        queued.append(enqueue(context, entry, now))
        out.print(f"Queued a pull of {escape(label)}.")
    if not queued:
        fail("nothing was queued", "see the reasons above")
    where = "the local runtime pulls it within a few seconds" if context.target().endpoint_url else "the pull Lambda"
    if not wait:
        out.print(
            f"{len(queued)} pull jobs queued ({where}). Follow them with "
            f"`{command_line(context, f'status --tenant {tenant}')}`, or pass --wait.",
            markup=False,
        )
        if skipped:
            raise typer.Exit(1)
        return
    out.print(f"Waiting for {len(queued)} pulls (up to {timeout} s; {where})...", markup=False)
    outcomes = wait_for(context, queued, timeout)
    waiting = [label for label, outcome in outcomes.items() if outcome == "waiting"]
    bad = [label for label, outcome in outcomes.items() if outcome not in GOOD_OUTCOMES | {"waiting"}]
    if waiting:
        warn(
            f"still running after {timeout} s: {', '.join(waiting)}; follow with "
            f"`{command_line(context, f'status --tenant {tenant}')}`"
        )
    if bad:
        fail(
            f"{len(bad)} of {len(queued)} pulls did not succeed: {', '.join(bad)}",
            f"details: `{command_line(context, f'status --tenant {tenant}')}`"
            + (f"; quarantined records: `{command_line(context, f'quarantine list --tenant {tenant}')}`"),
        )
    if waiting or skipped:
        raise typer.Exit(1)
    out.print(f"All {len(queued)} pulls succeeded.")
