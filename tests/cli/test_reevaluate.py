"""The CLI requests the re-evaluation of stored records after a saved change (not on --dry-run), `possync
reevaluate` requests one by hand, and `possync status` shows each job and exits 1 when one failed."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from functions.core.layout import Vendor
from functions.core.reevaluation import ReevaluationJob, RunStatuses
from functions.core.store import ControlStore
from possync.admin.context import AdminContext
from possync.cli import app
from possync.target import Target
from tests.cli.conftest import Invoke
from tests.cli.test_status import register


def queued_jobs(target: Target) -> list[ReevaluationJob]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    jobs = []
    while messages := sqs.receive_message(QueueUrl=target.reevaluation_queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in messages:
            jobs.append(ReevaluationJob.model_validate_json(message["Body"]))
            sqs.delete_message(QueueUrl=target.reevaluation_queue_url, ReceiptHandle=message["ReceiptHandle"])
    return jobs


def statuses(target: Target) -> RunStatuses:
    return RunStatuses(boto3.client("dynamodb", region_name="us-east-1"), target.control_table)


def test_a_saved_integration_change_queues_the_re_evaluation_of_that_pos(cli: Invoke, target: Target) -> None:
    result = cli(
        "settings",
        "set",
        "--tenant",
        "t1",
        "--vendor",
        "posabit",
        "age_gate_attested=true",
        "enroll_after=2026-11-20",
        "--yes",
    )

    assert result.exit_code == 0, result.output
    assert "Re-evaluation of the stored posabit records of t1 queued" in result.output
    assert "possync status --tenant t1" in result.output
    [job] = queued_jobs(target)
    assert (job.tenant, job.vendor, job.run_id) == ("t1", Vendor.POSABIT, None)
    assert job.trigger == "settings set (age_gate_attested, enroll_after)"
    status = statuses(target).get("t1", Vendor.POSABIT)
    assert status.shown_state(datetime.now(UTC)) == "queued" and status.requested_by == job.trigger


def test_a_dry_run_or_a_change_that_changes_nothing_queues_nothing(cli: Invoke, target: Target) -> None:
    dry = cli("settings", "set", "--tenant", "t1", "--vendor", "posabit", "pull_interval_minutes=60", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert queued_jobs(target) == [] and statuses(target).of_tenant("t1") == []

    cli("settings", "set", "--tenant", "t1", "--vendor", "posabit", "pull_interval_minutes=60")
    assert len(queued_jobs(target)) == 1
    same = cli("settings", "set", "--tenant", "t1", "--vendor", "posabit", "pull_interval_minutes=60")
    assert "Nothing to change" in same.output and queued_jobs(target) == []


def test_a_tenant_settings_change_queues_one_job_per_pos_with_credentials(
    cli: Invoke, control: ControlStore, target: Target
) -> None:
    register(control, "store-1")
    register(control, "store-2")
    register(control, "fl-1", Vendor.FLOURISH)
    register(control, "th-1", Vendor.THSUITE, tenant="t2")

    result = cli("settings", "set", "--tenant", "t1", "points_per_dollar=2")

    assert result.exit_code == 0, result.output
    assert "Re-evaluation of the stored posabit, flourish records of t1 queued" in result.output
    assert sorted((j.tenant, j.vendor.value) for j in queued_jobs(target)) == [("t1", "flourish"), ("t1", "posabit")]


def test_a_tenant_without_stores_has_nothing_to_re_evaluate(cli: Invoke, target: Target) -> None:
    result = cli("settings", "set", "--tenant", "t2", "points_per_dollar=3")

    assert result.exit_code == 0, result.output
    assert "t2 has no store credentials yet: no stored records to re-evaluate" in result.output
    assert queued_jobs(target) == []


def test_store_mappings_queue_the_re_evaluation(cli: Invoke, control: ControlStore, target: Target) -> None:
    register(control, "store-1")

    mapped = cli("stores", "map", "--tenant", "t1", "--vendor", "posabit", "--credential", "store-1", "--store", "dt")
    unmapped = cli("stores", "unmap", "--tenant", "t1", "--vendor", "posabit", "--credential", "store-1")

    assert mapped.exit_code == 0, mapped.output
    assert "stored ones through the re-evaluation" in mapped.output
    assert unmapped.exit_code == 0, unmapped.output
    assert [j.trigger for j in queued_jobs(target)] == [
        "stores map credential store-1 (store_mappings)",
        "stores unmap credential store-1 (store_mappings)",
    ]


def test_a_stack_without_a_re_evaluation_queue_saves_the_change_and_says_what_is_missing(
    target: Target, tenants: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    old_stack = replace(target, reevaluation_queue_url="")
    context = AdminContext(target_override=old_stack)

    result = CliRunner().invoke(
        app, ["settings", "set", "--tenant", "t1", "--vendor", "posabit", "sync_personas=true"], obj=context
    )

    text = " ".join(result.output.split())  # the error is wrapped to the terminal
    assert result.exit_code == 1
    assert "the change was saved, but the records already stored were not re-evaluated" in text
    assert "no re-evaluation queue" in text and "possync reevaluate --tenant t1 --vendor posabit" in text
    shown = CliRunner().invoke(
        app, ["settings", "show", "--tenant", "t1", "--vendor", "posabit", "-o", "json"], obj=context
    )
    assert json.loads(shown.output)["sync_personas"] is True


def test_reevaluate_by_hand(cli: Invoke, control: ControlStore, target: Target) -> None:
    typo = cli("reevaluate", "--tenant", "t9")
    assert typo.exit_code == 1 and "tenant 't9' does not exist" in typo.output
    nothing = cli("reevaluate", "--tenant", "t1")
    assert nothing.exit_code == 1 and "t1 has no store credentials" in nothing.output

    register(control, "store-1")
    register(control, "fl-1", Vendor.FLOURISH)
    every = cli("reevaluate", "--tenant", "t1")
    one = cli("reevaluate", "--tenant", "t1", "--vendor", "flourish", "--force")

    assert every.exit_code == one.exit_code == 0, every.output + one.output
    jobs = queued_jobs(target)
    assert sorted((j.vendor.value, j.force) for j in jobs) == [
        ("flourish", False),
        ("flourish", True),
        ("posabit", False),
    ]
    assert {j.trigger for j in jobs} == {"possync reevaluate"}


def _run(target: Target, vendor: Vendor, **fields: Any) -> None:
    """A run's item as the job writes it (started, then ended)."""
    runs = statuses(target)
    now = datetime.now(UTC) - timedelta(minutes=5)
    assert runs.start_run("t1", vendor, f"run-{vendor.value}", "settings set (enroll_after)", now)
    if fields:
        assert runs.hold("t1", vendor, f"run-{vendor.value}", now, **fields)


def test_status_shows_each_re_evaluation_and_exits_1_when_one_failed(
    cli: Invoke, control: ControlStore, target: Target
) -> None:
    register(control, "store-1")
    register(control, "fl-1", Vendor.FLOURISH)
    from functions.core.reevaluation import Counts

    _run(target, Vendor.POSABIT, phase="done", counts=Counts(evaluated=120, enrolled=7, points=340, favourites_set=3))
    assert statuses(target).end("t1", Vendor.POSABIT, "run-posabit", "done", datetime.now(UTC))
    healthy = cli("status", "--tenant", "t1")

    assert healthy.exit_code == 0, healthy.output
    assert "re-evaluation t1 / posabit" in healthy.output
    assert "120 records evaluated, 7 members enrolled, 340 points booked, 3 favourite stores set" in healthy.output
    assert "settings set (enroll_after)" in healthy.output

    _run(target, Vendor.FLOURISH, phase="sale")
    running = cli("status", "--tenant", "t1")
    assert running.exit_code == 0 and "running (sale records)" in running.output

    error = "DynamoDB query failed: ThrottlingException; gave up after 4 attempts"
    assert statuses(target).end("t1", Vendor.FLOURISH, "run-flourish", "failed", datetime.now(UTC), error)
    failed = cli("status", "--tenant", "t1")
    as_json = cli("status", "--tenant", "t1", "-o", "json")

    text = " ".join(failed.output.split())
    assert failed.exit_code == 1
    assert "gave up after 4 attempts" in text and "1 re-evaluations need attention: t1/flourish" in text
    assert as_json.exit_code == 1
    rows = {r["vendor"]: r["reevaluation"] for r in json.loads(as_json.output)}
    assert rows["posabit"]["state"] == "done" and rows["posabit"]["members_enrolled"] == 7
    assert rows["flourish"]["state"] == "failed" and rows["flourish"]["needs_attention"] is True


def test_reevaluate_refuses_a_pos_the_tenant_has_no_credentials_for(
    cli: Invoke, control: ControlStore, target: Target
) -> None:
    register(control, "store-1")
    register(control, "fl-1", Vendor.FLOURISH)

    result = cli("reevaluate", "--tenant", "t1", "--vendor", "profitek")

    text = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "tenant t1 has no profitek credentials" in text
    assert "its POSes are posabit, flourish; `possync reevaluate --tenant t1` re-evaluates them all" in text
    assert queued_jobs(target) == []
