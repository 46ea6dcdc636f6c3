"""End to end: the local runtime pulls every demo store through the real handlers, then pulls incrementally."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from functions.core.layout import STREAM_KIND, Stream, Vendor
from functions.core.record_index import is_page_index
from functions.core.record_items import record_fields
from possync.cli import app
from possync.demo import _show_pull_health
from possync.local.runtime import LOCAL_SETTLE_SECONDS, LocalRuntime, Scale

pytestmark = pytest.mark.e2e

# Small on purpose: every assertion compares what each simulator holds with what was stored, record by record, so it
# proves the same at any volume (10 customers / 20 sales a store took 23% longer and proved nothing more).
SMALL = Scale(customers_per_store=4, sales_per_store=8)


def stored_ids(rt: LocalRuntime) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(vendor, kind) -> {(credential, pos_id)} in the records table."""
    assert rt.resources is not None
    out: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    paginator = rt.client("dynamodb").get_paginator("scan")
    for page in paginator.paginate(TableName=rt.resources.records_table):
        for item in page["Items"]:
            if is_page_index(item["pk"]["S"]):
                continue  # the records index's entry for a page of new records, not a record
            key = (item["vendor"]["S"], item["kind"]["S"])
            entry = (record_fields(item)["credential_id"], record_fields(item)["pos_id"])
            assert entry not in out[key], f"{entry} stored twice"
            out[key].add(entry)
    return out


def test_every_simulated_record_is_stored_once_and_the_second_tick_writes_only_new_sales(tmp_path: Path) -> None:
    with LocalRuntime(scale=SMALL, workdir=tmp_path) as rt:
        rt.register_tenants()

        first = rt.tick("first")

        assert first.jobs and all(job.ok for job in first.jobs)
        assert len(first.jobs) == len(rt.credential_ids)
        statuses = rt.statuses()
        assert {s["last_outcome"] for s in statuses} == {"ok"}, statuses
        assert [s for s in statuses if s["problems"]] == []
        stored = stored_ids(rt)
        for vendor in rt.vendors:
            for stream in Stream:
                expected = {
                    (rt.credential_ids[(vendor, store)][1], pos_id)
                    for store, pos_id in rt.simulators[vendor].all_ids(stream)
                    if (vendor, store) in rt.credential_ids
                }
                got = stored.get((vendor.value, STREAM_KIND[stream].value), set())
                assert got == expected, f"{vendor.value} {stream.value}: {len(got)} stored, {len(expected)} held"
        assert sum(first.written.values()) == sum(len(v) for v in stored.values())
        assert rt.archived_pages()

        added = 0
        for vendor in (Vendor.POSABIT, Vendor.THSUITE):
            if vendor in rt.simulators:
                rt.simulators[vendor].add_sales(rt.simulators[vendor].stores[0], 3)
                added += 3
        time.sleep(LOCAL_SETTLE_SECONDS + 1.0)

        # A schedule tick before any pull interval has passed enqueues nothing; "pull now" pulls every store.
        too_soon = rt.tick("too soon")
        assert too_soon.jobs == [] and not too_soon.written
        second = rt.tick("second", pull_now=True)

        assert all(job.ok for job in second.jobs)
        assert sum(second.written.values()) == added
        assert {kind for (_, kind) in second.written} == {"sale"}

        # The stream consumers saw every change and made personas, members and points of them.
        assert second.rules["enroll"].delivered == added
        assert first.rules["personas"].delivered == sum(
            n for (_, kind), n in first.written.items() if kind == "shopper"
        )
        personas = rt.persona_summary()
        assert personas.total_personas > 0 and personas.without_sources == 0
        assert set(personas.sourced_from) == {v.value for v in rt.vendors}
        assert personas.total_members > 0 and personas.total_points > 0
        assert {tenant for tenant, _ in personas.members} <= {tenant for tenant, _ in rt.enroll_integrations}
        unmapped = {(tenant, key) for tenant, key in personas.unmapped}
        assert {(t, v.value, c) for t, v, c in rt.unmapped_credentials} == {
            (tenant, key.split("#")[0], key.split("#")[1]) for tenant, key in unmapped
        }
        assert not any(dead.messages for dead in rt.rule_failures().values())


def test_make_demo_prints_the_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # A wide terminal, pinned: the refusal reason below is one table cell, which a narrower $COLUMNS would wrap.
    result = CliRunner().invoke(
        app, ["demo", "--customers", "10", "--sales", "15", "--vendors", "posabit"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "tick 1: first pull" in result.output and "tick 2: incremental pull" in result.output
    assert "Incremental tick wrote" in result.output
    assert "Pull health: all 3 store credentials healthy" in result.output
    assert "archived" in result.output and "this tick" in result.output and "…" not in result.output
    assert "Loyalty personas" in result.output and "Personas sourced from: posabit" in result.output
    # form signups posted through the local endpoint: two new personas, one matched POS persona, one refused
    assert "Form signups posted to the local endpoint" in result.output
    # (the third: a POS shopper matched by phone, when the tenant has one with a phone)
    assert re.search(r"Personas sourced from: posabit [\d,]+, form [23]\b", result.output), result.output
    assert "birth_date: the shopper must be 21 or older" in result.output
    # persona -> POS sync ran on the signups before tick 2, whose pull brought every created customer back
    back = re.search(r"(\d+) of (\d+) customers created or found came back", " ".join(result.output.split()))
    assert back is not None and back.group(1) == back.group(2) != "0", result.output
    assert "Rewards (catalogue, mirrors in each POS, redemptions)" in result.output


def test_the_demo_summary_names_a_failed_pull(tmp_path: Path) -> None:
    with LocalRuntime(scale=SMALL, workdir=tmp_path, vendors=(Vendor.POSABIT,), rules=False) as rt:
        rt.register_tenants()
        assert rt.resources is not None
        tenant, credential_id = sorted(rt.credential_ids.values())[0]
        rt.client("secretsmanager").delete_secret(
            SecretId=rt.resources.names.credential_secret(tenant, Vendor.POSABIT, credential_id),
            ForceDeleteWithoutRecovery=True,
        )

        report = rt.tick("first")
        out = Console(record=True, width=300)
        _show_pull_health(out, rt.statuses(), [job.body for job in report.jobs if not job.ok])

        text = out.export_text()
        assert "Pull health: 1 of" in text and "need attention" in text
        assert f"{tenant}/posabit/{credential_id}: last pull failed: credential {credential_id}" in text
