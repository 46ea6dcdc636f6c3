"""`make demo`: the main job on the embedded default, with progress and a readable summary."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from functions.core.layout import FORM_SOURCE, RecordKind, Vendor
from possync.admin.context import AdminContext
from possync.admin.tenants import command_line
from possync.local.pos_sync_demo import PosSyncSummary, pos_sync_summary
from possync.local.rewards_demo import RewardsSummary, add_demo_rewards, rewards_summary
from possync.local.runtime import LOCAL_SETTLE_SECONDS, JobRecord, LocalRuntime, PersonaSummary, Scale, TickReport
from possync.local.signups_demo import post_demo_signups, show_signups
from possync.local.sms import SmsReport

KINDS = (RecordKind.SHOPPER, RecordKind.SALE, RecordKind.PRODUCT, RecordKind.LOYALTY_BALANCE)
KIND_TITLES = {
    RecordKind.SHOPPER: "shoppers",
    RecordKind.SALE: "sales",
    RecordKind.PRODUCT: "products",
    RecordKind.LOYALTY_BALANCE: "loyalty",
}


def run_demo(
    console: Console,
    scale: Scale,
    vendors: tuple[Vendor, ...] | None = None,
    seed: int = 7,
    new_sales_per_store: int = 3,
    workdir: Path = Path(".local"),
    now: datetime | None = None,
) -> dict[str, object]:
    """Two schedule ticks: a first full pull, then an incremental one after the POSes record a few new sales.
    `now` runs the SMS opt-in as if at that instant (so quiet hours can be seen at any time of day)."""
    with LocalRuntime(scale=scale, seed=seed, vendors=vendors, workdir=workdir, now=now) as rt:
        console.print(
            f"[bold]possync local runtime[/]: moto at {rt.state()['endpoint_url']}, "
            + ", ".join(f"{v.value} simulator at {s.url}" for v, s in rt.simulators.items())
        )
        rt.register_tenants()
        tenants = sorted({t for t, _ in rt.assignments})
        console.print(
            f"Registered {len(tenants)} tenants ({', '.join(tenants)}) with {len(rt.credential_ids)} store credentials."
        )
        console.print(
            f"Added {add_demo_rewards(rt)} rewards to the tenants' catalogues "
            f"(`{_local('rewards list --tenant T')}` against `possync local serve`)."
        )
        first = _tick(console, rt, "tick 1: first pull")
        _show_tick(console, rt, first)
        if rt.rules:  # form signups through the local HTTP endpoint (their opt-in requests go out on the next tick)
            show_signups(console, rt.plan[0].tenant, post_demo_signups(rt))
            # persona -> POS sync runs on the new form personas now, so tick 2's pull brings the customers back
            rt.drain_persona_stream()
        sms_replies = rt.sms.simulate_replies() if rt.sms is not None and rt.rules else Counter()

        added = 0
        for simulator in rt.simulators.values():
            for store in list(simulator.stores)[:2]:
                simulator.add_sales(store, new_sales_per_store)
                added += new_sales_per_store
        console.print(
            f"\nThe POSes recorded {added} new sales; waiting {LOCAL_SETTLE_SECONDS:.0f}s for them to settle..."
        )
        import time

        time.sleep(LOCAL_SETTLE_SECONDS + 1.0)
        # A schedule tick now would enqueue nothing (each credential is pulled once per its pull interval, 3 h by
        # default); the demo asks for the next pull at once, as an operator's "pull now" does.
        console.print("Pulling now rather than waiting for each store's pull interval (3 h by default)...")
        second = _tick(console, rt, "tick 2: incremental pull", pull_now=True)
        _show_tick(console, rt, second)
        if rt.sms is not None and rt.rules:
            sms_replies.update(rt.sms.simulate_replies())
        written_second = sum(second.written.values())
        console.print(
            f"\nIncremental tick wrote [bold]{written_second}[/] records "
            f"(the {added} new sales and nothing else unless a POS changed more); "
            f"Lambda logs and metrics are in {rt.log_path}."
        )
        personas = rt.persona_summary() if rt.rules else None
        if personas is not None:
            _show_personas(console, rt, personas, (first, second))
        sms = rt.sms.report() if rt.sms is not None and rt.rules else None
        if sms is not None:
            _show_sms(console, sms, now)
        table = rt.resources.personas_table if rt.resources is not None else ""
        synced = pos_sync_summary(rt.client("dynamodb"), table) if rt.rules else None
        if synced is not None:
            _show_pos_sync(console, synced)
        rewards = rewards_summary(rt) if rt.rules else None
        if rewards is not None:
            _show_rewards(console, rewards)
        failures = {name: dead for name, dead in rt.rule_failures().items() if dead.messages} if rt.rules else {}
        for name, dead in failures.items():
            console.print(
                f"[red]{name}: {dead.records} stream records used up their retries (see its failure queue)[/]"
            )
        statuses = rt.statuses()
        failed_jobs = [j.body for t in (first, second) for j in t.jobs if not j.ok]
        _show_pull_health(console, statuses, failed_jobs)
        return {
            "personas": personas.total_personas if personas else 0,
            "members": personas.total_members if personas else 0,
            "points": personas.total_points if personas else 0,
            "unmapped": len(personas.unmapped) if personas else 0,
            "redemptions": sum(rewards.redemptions.values()) if rewards else 0,
            "rule_failures": {name: dead.records for name, dead in failures.items()},
            "pos_sync": synced.as_dict() if synced else {},
            "first_written": sum(first.written.values()),
            "second_written": written_second,
            "added_sales": added,
            "second_written_by_kind": dict(Counter({k: v for (_, k), v in second.written.items()})),
            "failed_jobs": failed_jobs,
            "unhealthy": [s for s in statuses if s["problems"]],
            "stored": {v: dict(c) for v, c in rt.stored_counts().items()},
            "statuses": statuses,
            "sms": {
                "texts": dict(sms.texts) if sms else {},
                "consent": dict(sms.states) if sms else {},
                "deferred": sms.deferred if sms else 0,
                "replies": dict(sms_replies),
            },
        }


def _show_sms(console: Console, report: SmsReport, now: datetime | None) -> None:
    """The SMS double opt-in: requests sent and deferred for quiet hours, the shoppers' answers, consent."""
    texts, states = report.texts, report.states
    clock = f" (as if at {now.isoformat()})" if now is not None else ""
    console.print(
        f"\nSMS opt-in{clock}: [bold]{texts.get('optin_request', 0)}[/] requests sent, "
        f"[bold]{report.deferred}[/] deferred for quiet hours or the 24 h cap, "
        f"[bold]{states.get('confirmed', 0)}[/] confirmed, [bold]{states.get('opted_out', 0)}[/] opted out "
        f"({texts.get('confirmation', 0)} confirmations, {texts.get('help', 0)} help texts, "
        f"{texts.get('stop_ack', 0)} STOP acknowledgements)."
    )
    if report.replies:
        console.print(
            "Simulated shoppers answered: " + ", ".join(f"{k} {n}" for k, n in sorted(report.replies.items()))
        )
    uncertain, failed = states.get("uncertain", 0), states.get("failed", 0)
    if uncertain or failed:
        console.print(f"[red]SMS: {uncertain} uncertain and {failed} failed sends (see .local/lambda.log)[/]")
    console.print("Texts are in .local/outbox.jsonl: `possync sms outbox` lists them.")


def _show_pull_health(
    console: Console, statuses: list[dict[str, object]], failed_jobs: list[dict[str, object]]
) -> None:
    """The pulls' health as `possync status` judges it: failed or contract-mismatched last pulls, stale data, and
    jobs whose SQS message failed (left for SQS to retry)."""
    unhealthy = [s for s in statuses if s["problems"]]
    if not unhealthy and not failed_jobs:
        console.print(f"Pull health: all {len(statuses)} store credentials healthy (`possync --local status` agrees).")
        return
    console.print(f"[red]Pull health: {len(unhealthy)} of {len(statuses)} store credentials need attention[/]")
    for status in unhealthy:
        problems = status["problems"]
        assert isinstance(problems, list)
        console.print(f"[red]  {status['tenant']}/{status['vendor']}/{status['credential']}: {'; '.join(problems)}[/]")
    if failed_jobs:
        console.print(f"[red]  {len(failed_jobs)} pull jobs failed and were left for SQS to retry[/]")


def _tick(console: Console, rt: LocalRuntime, label: str, pull_now: bool = False) -> TickReport:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"{label}: pull jobs", total=len(rt.credential_ids))
        rules: dict[str, TaskID] = {}

        def on_job(job: JobRecord) -> None:
            progress.update(
                task, total=max(progress.tasks[0].total or 0, progress.tasks[0].completed + 1 + rt.queued_jobs())
            )
            progress.advance(task)

        def on_stream(pending: dict[str, int]) -> None:
            for name, count in pending.items():
                rules[name] = progress.add_task(f"{label}: {name} stream records", total=count)

        def on_batch(name: str, handled: int) -> None:
            if name in rules:
                progress.advance(rules[name], handled)

        return rt.tick(label, on_job=on_job, on_stream=on_stream, on_batch=on_batch, pull_now=pull_now)


def _show_tick(console: Console, rt: LocalRuntime, report: TickReport) -> None:
    stored = rt.stored_counts()
    pages = rt.archived_pages()
    quarantined = rt.quarantined()
    title = f"{report.label} ({report.seconds:.1f}s, {len(report.jobs)} pull jobs)"
    # Narrow terminals get a compact table (no rules, one space between columns); headers wrap at their spaces
    # rather than lose letters.
    compact = console.width < 100
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD if compact else box.HEAVY_HEAD,
        padding=(0, 0) if compact else (0, 1),
        show_edge=not compact,
    )
    table.add_column("vendor", min_width=8)
    table.add_column("stores", justify="right")
    for kind in KINDS:
        table.add_column(KIND_TITLES[kind], justify="right", min_width=len(KIND_TITLES[kind]))
    table.add_column("pages\narchived", justify="right")
    table.add_column("written\nthis tick", justify="right")
    table.add_column("quarantined", justify="right", min_width=len("quarantined"))
    statuses = rt.statuses()
    for vendor in rt.vendors:
        counts = stored.get(vendor.value, Counter())
        written = sum(n for (v, _), n in report.written.items() if v == vendor.value)
        stores = sum(1 for s in statuses if s["vendor"] == vendor.value)
        table.add_row(
            vendor.value,
            str(stores),
            *(f"{counts.get(k.value, 0):,}" for k in KINDS),
            f"{pages.get(vendor.value, 0):,}",
            f"{written:,}",
            str(quarantined.get(vendor.value, 0)),
        )
    console.print(table)
    problems = [s for s in statuses if s.get("last_outcome") not in ("ok", None)]
    for status in problems:
        console.print(
            f"[yellow]{status['tenant']}/{status['credential']}: {status.get('last_outcome')}: "
            f"{status.get('last_error')}[/]"
        )


def _show_personas(console: Console, rt: LocalRuntime, summary: PersonaSummary, ticks: tuple[TickReport, ...]) -> None:
    """What the stream consumers made of the pulled records: personas, sources, members, points, unmapped stores."""
    handled: Counter[str] = Counter()
    seconds: dict[str, float] = {}
    for report in ticks:
        for name, stats in report.rules.items():
            handled[name] += stats.delivered
            seconds[name] = seconds.get(name, 0.0) + stats.seconds
    console.print(
        "\nStream consumers: "
        + ", ".join(f"{name} handled {handled[name]:,} records in {seconds[name]:.1f}s" for name in sorted(handled))
    )
    table = Table(title="Loyalty personas (personas table)", title_justify="left")
    for column, justify in (
        ("tenant", "left"),
        ("personas", "right"),
        ("members", "right"),
        ("points", "right"),
        ("enrolls after", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    tenants = sorted({t for t, _ in rt.assignments})
    for tenant in tenants:
        members = sum(n for (t, _), n in summary.members.items() if t == tenant)
        enrolling = sorted(v.value for t, v in rt.enroll_integrations if t == tenant)
        table.add_row(
            tenant,
            f"{summary.personas.get(tenant, 0):,}",
            f"{members:,}",
            f"{summary.points.get(tenant, 0):,}",
            ", ".join(enrolling) or "-",
        )
    console.print(table)
    # the POSes first, then the form signups
    ordered = sorted(summary.sourced_from.items(), key=lambda pair: (pair[0] == FORM_SOURCE, pair[0]))
    sources = ", ".join(f"{vendor} {n:,}" for vendor, n in ordered)
    console.print(f"Personas sourced from: {sources or 'nothing yet'}")
    if summary.unmapped:
        console.print(
            f"[yellow]Unmapped stores ({len(summary.unmapped)}): "
            + ", ".join(f"{tenant} {key}" for tenant, key in summary.unmapped)
            + f"[/]\n  Map each with `{_local('stores map --tenant T --vendor V --credential C --store STORE_ID')}`; "
            f"`{_local('stores unmapped')}` lists them."
        )
    else:
        console.print("Unmapped stores: none")


def _show_pos_sync(console: Console, summary: PosSyncSummary) -> None:
    """Form signups created in POSaBIT / Flourish (or found there), and how many the next pull merged back."""
    if not summary.outcomes:
        console.print("\nPOS sync: no form signups to create in POSaBIT or Flourish yet.")
        return
    outcomes = ", ".join(f"{vendor} {state}: {n}" for (vendor, state), n in sorted(summary.outcomes.items()))
    console.print(
        f"\nPOS sync (form signups -> POSaBIT / Flourish): {outcomes}; {summary.merged_back} of {summary.linked} "
        "customers created or found came back with the next pull into the same persona."
    )


def _show_rewards(console: Console, summary: RewardsSummary) -> None:
    """Rewards per tenant: the catalogue, the store mirrors that redeem, mirror problems, redemptions booked."""
    table = Table(title="Rewards (catalogue, mirrors in each POS, redemptions)", title_justify="left")
    for column in ("tenant", "rewards", "store mirrors", "mirror problems", "redemptions", "overdrawn"):
        table.add_column(column, justify="left" if column == "tenant" else "right")
    for tenant in sorted(summary.rewards):
        table.add_row(
            tenant,
            *(
                f"{counter.get(tenant, 0):,}"
                for counter in (
                    summary.rewards,
                    summary.mirrors,
                    summary.problems,
                    summary.redemptions,
                    summary.overdrawn,
                )
            ),
        )
    console.print(table)
    console.print(
        f"Unmirrored-reward notices standing: {summary.notices} (raised after each pull of a store's discounts); "
        f"`{_local('rewards check --tenant T')}` lists each store's "
        "mirror problems (one name is mis-mirrored on purpose) and the redemptions that overdrew a balance."
    )


def _local(words: str) -> str:
    """A command to try against `possync local serve`, the runtime the demo's own is gone after."""
    return command_line(AdminContext(local=True), words)
