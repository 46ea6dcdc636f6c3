"""`possync local serve`: keep a local runtime up, tick it like the schedule, run what the CLI queues."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from rich.console import Console
from rich.markup import escape

from functions.core.layout import Vendor
from infra.defaults import DEFAULT_DISPATCH_TICK_MINUTES
from possync.local.runtime import JobRecord, LocalRuntime, Scale, TickReport
from possync.local.signup_server import LocalSignupServer, start_signups

# How often the loop looks for jobs the CLI queued (pulls, re-evaluations).
JOB_POLL_SECONDS = 2.0


def commands_to_try(tenant: str) -> list[str]:
    return [
        f"possync --local tenants show {tenant}",
        f"possync --local pull --tenant {tenant} --wait",
        f"possync --local personas list --tenant {tenant} --member-only",
        f"possync --local settings show --tenant {tenant}",
        f"possync --local status --tenant {tenant}",
    ]


def describe_jobs(report: TickReport) -> str:
    failed = [job for job in report.jobs if not job.ok]
    text = f"{len(report.jobs)} pull jobs, {sum(report.written.values())} records written"
    if failed:
        who = ", ".join(
            f"{job.body.get('tenant', '?')}/{job.body.get('vendor', '?')}/{job.body.get('credential_id', '?')}"
            for job in failed
        )
        text += f"; [red]{len(failed)} FAILED: {escape(who)}[/] (retried; see `possync --local status`)"
    return text


def serve(
    console: Console,
    *,
    vendors: tuple[Vendor, ...] | None,
    scale: Scale,
    seed: int,
    tick_minutes: float | None,
    allow_private_hosts: bool = False,
    stop_after: Callable[[], bool] = lambda: False,
) -> None:
    """Run until Ctrl-C (or `stop_after()` says so): the first pull, then a tick every `tick_minutes` (None: the
    deployment's default tick; 0: none), and within seconds every pull or re-evaluation the CLI queued."""
    minutes = DEFAULT_DISPATCH_TICK_MINUTES if tick_minutes is None else tick_minutes
    with (
        _sigterm_as_interrupt(),
        LocalRuntime(
            vendors=vendors, scale=scale, seed=seed, publish=True, allow_private_hosts=allow_private_hosts
        ) as rt,
    ):
        signups: LocalSignupServer | None = None
        try:
            rt.register_tenants()
            console.print(f"Local runtime up: moto at {rt.state()['endpoint_url']}; state in {rt.state_file}")
            report = rt.tick("first pull")
            console.print(f"First pull: {describe_jobs(report)}.")
            console.print("Demo tenants:")
            for plan in rt.plan:
                stores = ", ".join(f"{count} {vendor.value}" for vendor, count in plan.stores.items())
                console.print(f"  {escape(plan.tenant)} ({escape(stores)})")
            console.print("Try, from any directory:")
            for line in commands_to_try(rt.plan[0].tenant):
                console.print(f"  {escape(line)}")
            signups = start_signups(rt)
            describe_signups(console, signups, rt)
            console.print(
                (f"A schedule tick every {minutes:g} minutes" if minutes else "No schedule ticks (--tick-minutes 0)")
                + "; Ctrl-C to stop."
            )
            next_tick = time.monotonic() + max(1.0, minutes * 60) if minutes else None
            while not stop_after():
                time.sleep(JOB_POLL_SECONDS)
                if rt.sms is not None:
                    rt.sms.deliver_deferred()  # opt-in requests whose quiet hours are over
                if rt.queued_jobs():
                    console.print(f"manual pull: {describe_jobs(rt.tick('manual pull', dispatch=False))}")
                for job in rt.reevaluate():
                    console.print(
                        f"re-evaluation message for {_where(job)}: {'done' if job.ok else 'failed (retried)'}"
                    )
                if next_tick is not None and time.monotonic() >= next_tick:
                    next_tick += max(1.0, minutes * 60)
                    console.print(f"tick: {describe_jobs(rt.tick('scheduled pull'))}")
        except KeyboardInterrupt:
            console.print("stopping")
        finally:
            if signups is not None:
                signups.stop()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (`kill`, a process manager stopping the runtime) stops it as Ctrl-C does: its state files removed.
    Python's default for SIGTERM ends the process at once, leaving runtime.json to name a dead runtime."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set a handler; a runtime in a thread is stopped by its caller
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def describe_signups(console: Console, server: LocalSignupServer, rt: LocalRuntime) -> None:
    tenant, key = rt.extra_state["signup_demo_tenant"], rt.extra_state["signup_demo_key"]
    url = server.signups_url(tenant)
    console.print(f"Form signups: POST {escape(url)} with the demo key of {escape(tenant)} (x-api-key):")
    console.print(f"  {key}", markup=False, highlight=False)
    body = (
        '{"first_name": "Ada", "phone": "+12065550188", "birth_date": "1990-04-01", "store": "downtown", '
        '"age_confirmed": true}'
    )
    console.print(
        f"  curl -s -X POST {url} -H 'content-type: application/json' -H 'x-api-key: {key}' -d '{body}'",
        markup=False,
        highlight=False,
    )
    console.print(
        f"  possync --local personas signup --tenant {tenant} --first-name Ada --phone +12065550188 "
        "--birth-date 1990-04-01 --store downtown --age-confirmed",
        markup=False,
        highlight=False,
    )


def _where(job: JobRecord) -> str:
    return f"{job.body.get('tenant', '?')}/{job.body.get('vendor', '?')}"
