"""End to end on the local runtime, as an admin would: connect the stores, let them pull, THEN configure. Each change's
dry-run predicts what it will do; the change, applied with the CLI (`--local`), queues a re-evaluation that the
runtime runs through the real handler; the outcome matches the prediction."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner, Result

from functions.core import layout, record_index
from functions.core.layout import Vendor
from functions.core.loyalty.codecs import ledger_from_item, persona_from_item
from functions.core.loyalty.points import ENROLLING_STATUSES
from functions.core.loyalty.repository import PersonaStore
from functions.core.loyalty.values import Persona
from functions.core.models import Sale, read_record
from functions.core.record_items import record_fields, record_json
from functions.core.sms.gateway import read_outbox
from possync.admin.context import AdminContext
from possync.cli import app
from possync.local.runtime import LocalRuntime, Scale
from possync.target import local_target

pytestmark = pytest.mark.e2e

TENANT = "greenleaf"  # two POSaBIT stores in the demo plan
LA = ZoneInfo("America/Los_Angeles")


class Admin:
    def __init__(self, rt: LocalRuntime) -> None:
        self.rt = rt
        self.context = AdminContext(local=True, target_override=local_target(rt.state_file))

    def __call__(self, *args: str) -> Result:
        result = CliRunner().invoke(app, list(args), obj=self.context)
        assert result.exit_code == 0, result.output
        return result

    def predicted(self, pattern: str, *args: str) -> int:
        out = " ".join(self(*args, "--dry-run").output.split())
        found = re.search(pattern, out)
        assert found is not None, out
        return int(found.group(1))


def profiles(rt: LocalRuntime) -> list[Persona]:
    assert rt.resources is not None
    items = rt.client("dynamodb").get_paginator("scan").paginate(TableName=rt.resources.personas_table)
    return [
        persona_from_item(item)
        for page in items
        for item in page["Items"]
        if item["sk"]["S"] == layout.PERSONA_PROFILE_SK and item["pk"]["S"].startswith(f"P#{TENANT}#")
    ]


def ledger(rt: LocalRuntime, persona_id: str) -> dict[str, Any]:
    assert rt.resources is not None
    items = rt.client("dynamodb").query(
        TableName=rt.resources.personas_table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :ledger)",
        ExpressionAttributeValues={
            ":pk": {"S": layout.persona_pk(TENANT, persona_id)},
            ":ledger": {"S": "LEDGER#"},
        },
    )["Items"]
    return {item["sk"]["S"]: ledger_from_item(item) for item in items}


def stored_sales(rt: LocalRuntime) -> list[Sale]:
    assert rt.resources is not None
    pages = rt.client("dynamodb").get_paginator("scan").paginate(TableName=rt.resources.records_table)
    return [
        sale
        for page in pages
        for item in page["Items"]
        if not record_index.is_page_index(item["pk"]["S"])  # an index entry for a page of records, not a record
        and item["kind"]["S"] == "sale"
        and record_fields(item)["tenant"] == TENANT
        for sale in [read_record(layout.RecordKind.SALE, record_json(item) or "")]
        if isinstance(sale, Sale)
    ]


def reevaluation_done(rt: LocalRuntime, admin: Admin) -> None:
    jobs = rt.reevaluate()
    assert jobs and all(job.ok for job in jobs), jobs
    rows = json.loads(admin("status", "--tenant", TENANT, "-o", "json").output)
    assert rows and {row["reevaluation"]["state"] for row in rows} == {"done"}
    assert "re-evaluation greenleaf / posabit" in admin("status", "--tenant", TENANT).output


def test_settings_made_after_the_pull_reach_the_stored_records_as_their_dry_runs_predict(tmp_path: Path) -> None:
    with LocalRuntime(
        scale=Scale(customers_per_store=12, sales_per_store=30), vendors=(Vendor.POSABIT,), workdir=tmp_path
    ) as rt:
        rt.register_tenants(configure_loyalty=False)
        assert all(job.ok for job in rt.tick("first pull").jobs)
        admin = Admin(rt)
        assert profiles(rt) and not [p for p in profiles(rt) if p.member or p.favourite_store or p.points]
        today = datetime.now(UTC).date()

        # enroll_after: the dry-run's count of new members is what the job enrolls
        enroll_after = (today - timedelta(days=20)).isoformat()
        change = ("settings", "set", "--tenant", TENANT, "--vendor", "posabit", "age_gate_attested=true")
        change += (f"enroll_after={enroll_after}",)
        would_enroll = admin.predicted(r"Would enroll: (\d+) persona", *change)
        assert "queued" in admin(*change, "--yes").output
        reevaluation_done(rt, admin)
        members = [p for p in profiles(rt) if p.member]
        assert len(members) == would_enroll > 0
        # ... each a member from its first qualifying sale's store-local date, with points for its sales since
        owners = PersonaStore(rt.client("dynamodb"), rt.resources.personas_table if rt.resources else "")
        first_sale: dict[str, date] = {}
        sales = stored_sales(rt)
        owner_of = owners.pos_owners(
            TENANT, {(s.vendor, s.credential_id, s.customer_pos_id) for s in sales if s.customer_pos_id}
        )
        for sale in sales:
            owner = owner_of.get((sale.vendor, sale.credential_id, sale.customer_pos_id or ""))
            if owner and sale.status in ENROLLING_STATUSES and sale.local_date >= date.fromisoformat(enroll_after):
                first_sale[owner] = min(first_sale.get(owner, date.max), sale.local_date)
        for member in members:
            assert member.member_since_date == first_sale[member.persona_id].isoformat()
            entries = ledger(rt, member.persona_id)
            assert member.points == sum(e.points for e in entries.values())
            assert all(
                e.points > 0
                for e in entries.values()
                if e.kind == "sale"
                and e.net_cents > 0
                and e.local_date
                and e.local_date >= member.member_since_date
                and e.status == "completed"
            )

        # loyalty_points_imported_on: the balances as of that date are imported, once
        imported_on = (today - timedelta(days=30)).isoformat()
        points_import = ("settings", "set", "--tenant", TENANT, "--vendor", "posabit")
        points_import += (f"loyalty_points_imported_on={imported_on}",)
        would_import = admin.predicted(r"Would import: (\d+) POSaBIT balance", *points_import)
        admin(*points_import)
        reevaluation_done(rt, admin)
        imports = [e for p in profiles(rt) for e in ledger(rt, p.persona_id).values() if e.kind == "import"]
        assert len(imports) == would_import > 0
        admin("reevaluate", "--tenant", TENANT, "--vendor", "posabit", "--force")  # a second run imports nothing new
        reevaluation_done(rt, admin)
        assert len([e for p in profiles(rt) for e in ledger(rt, p.persona_id).values() if e.kind == "import"]) == (
            would_import
        )

        # stores map: the personas that shopped at the location get a favourite store
        locations = defaultdict(int)
        for sale in sales:
            locations[sale.location_id] += 1
        location = sorted(loc for loc in locations if loc)[0]
        mapping = ("stores", "map", "--tenant", TENANT, "--vendor", "posabit", "--location", location, "--store", "dt")
        would_set = admin.predicted(r"Would set the favourite store of (\d+) persona", *mapping)
        admin(*mapping)
        reevaluation_done(rt, admin)
        favourites = [p for p in profiles(rt) if p.favourite_store == "dt"]
        assert len(favourites) == would_set > 0
        assert not [p for p in profiles(rt) if p.favourite_store not in (None, "dt")]


def test_sms_optin_after_set_after_the_pull_texts_as_many_as_its_dry_run_predicts_once(tmp_path: Path) -> None:
    # The runtime as if at noon in Washington (the simulated POSaBIT shoppers' area codes and stores): texts go out
    noon = datetime.now(LA).replace(hour=12, minute=0, second=0, microsecond=0)
    with LocalRuntime(
        scale=Scale(customers_per_store=12, sales_per_store=30), vendors=(Vendor.POSABIT,), workdir=tmp_path, now=noon
    ) as rt:
        rt.register_tenants(configure_loyalty=False)
        assert all(job.ok for job in rt.tick("first pull").jobs)
        admin = Admin(rt)
        assert requests_texted(tmp_path) == []  # pulled before SMS was configured: nobody asked

        sms_after = (noon.date() - timedelta(days=20)).isoformat()
        change = ("settings", "set", "--tenant", TENANT, "--vendor", "posabit", f"sms_optin_after={sms_after}")
        would_text = admin.predicted(r"Would text: (\d+) persona", *change)
        assert "queued" in admin(*change, "--yes").output
        reevaluation_done(rt, admin)
        sent = requests_texted(tmp_path)
        assert len(sent) == would_text > 0
        assert len({line["to"] for line in sent}) == len(sent)  # one per number
        rows = json.loads(admin("status", "--tenant", TENANT, "-o", "json").output)
        # `possync status` shows what the job texted
        assert {row["reevaluation"]["optin_requests_sent"] for row in rows} == {len(sent)}
        assert f"{len(sent)} SMS opt-in requests sent" in " ".join(admin("status", "--tenant", TENANT).output.split())

        # a second run over the same records (and the deferred queue delivered) texts nobody again
        admin("reevaluate", "--tenant", TENANT, "--vendor", "posabit", "--force")
        reevaluation_done(rt, admin)
        assert rt.sms is not None
        rt.sms.deliver_deferred()
        assert len(requests_texted(tmp_path)) == would_text


def requests_texted(workdir: Path) -> list[dict[str, Any]]:
    return [
        line
        for line in read_outbox(workdir / "outbox.jsonl")
        if line["kind"] == "optin_request" and line["tenant"] == TENANT
    ]
