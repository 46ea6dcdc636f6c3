"""End to end: a form persona is created once in POSaBIT and Flourish through the local runtime's pos_sync, comes
back with the next pull merged into the same persona, triggers nothing further, and no read-only POS is written."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from functions.core import layout
from functions.core.layout import FORM_SOURCE, Vendor
from functions.core.loyalty.repository import PersonaStore
from functions.core.loyalty.values import Claim, Persona, iso
from functions.core.pos_sync.records import SyncStore
from possync.local.runtime import LOCAL_SETTLE_SECONDS, LocalRuntime, Scale

pytestmark = pytest.mark.e2e

TINY = Scale(customers_per_store=4, sales_per_store=4)
READ_ONLY = (Vendor.THSUITE, Vendor.PROFITEK, Vendor.AUPHAN)


def sign_up(rt: LocalRuntime, tenant: str, persona_id: str, phone: str, email: str) -> None:
    """A form persona as the signup endpoint stores it: the profile and its phone and email claims."""
    assert rt.resources is not None
    now = iso(datetime.now(UTC))
    persona = Persona(
        tenant, persona_id, first_name="Rosa", last_name="Diaz", email=email, phone=phone, birth_date="1988-02-03",
        sources=frozenset({FORM_SOURCE}), favourite_store=f"{tenant}-store-1", created_at=now, updated_at=now,
    )  # fmt: skip
    store = PersonaStore(rt.client("dynamodb"), rt.resources.personas_table)
    store.create_persona(persona, [Claim("phone", phone), Claim("email", email)])


def test_signups_are_created_once_merged_back_and_read_only_poses_never_written(tmp_path: Path) -> None:
    with LocalRuntime(scale=TINY, workdir=tmp_path) as rt:
        assert rt.resources is not None
        rt.register_tenants()
        first = rt.tick("first")
        assert all(job.ok for job in first.jobs)
        personas_before = rt.persona_summary().personas["greenleaf"]

        sign_up(rt, "greenleaf", "form-1", "+14585550101", "rosa.diaz@example.com")
        synced = rt.drain_persona_stream()

        assert synced["pos_sync"].delivered == 1
        posts = {v: [w for w in rt.simulators[v].writes if w[0] == "POST"] for v in (Vendor.POSABIT, Vendor.FLOURISH)}
        # greenleaf's store 1 is its first POSaBIT venue: created there (not in its other venue) and in Flourish
        assert len(posts[Vendor.POSABIT]) == 1 and len(posts[Vendor.FLOURISH]) == 1
        records = SyncStore(rt.client("dynamodb"), rt.resources.personas_table).of_persona("greenleaf", "form-1")
        assert sorted((r.vendor.value, r.state) for r in records) == [("flourish", "created"), ("posabit", "created")]

        time.sleep(LOCAL_SETTLE_SECONDS + 1.0)
        second = rt.tick("second", pull_now=True)
        assert all(job.ok for job in second.jobs)

        # the pulls brought both customers back: the same persona, now sourced from both POSes, no new persona
        persona = PersonaStore(rt.client("dynamodb"), rt.resources.personas_table).get_persona("greenleaf", "form-1")
        assert persona is not None
        assert persona.sources == {FORM_SOURCE, "posabit", "flourish"}
        assert rt.persona_summary().personas["greenleaf"] == personas_before + 1
        for record in records:
            assert layout.pos_identity_value(record.vendor, record.credential_id, record.pos_id or "") in (
                persona.source_records
            )
        # ... and that merge reached pos_sync again, which wrote to no POS (no loop)
        assert second.rules["pos_sync"].delivered >= 1
        for vendor, before in posts.items():
            assert [w for w in rt.simulators[vendor].writes if w[0] == "POST"] == before
        assert rt.rule_failures()["pos_sync"].messages == []
        for vendor in READ_ONLY:
            assert rt.simulators[vendor].request_log, f"{vendor.value} was pulled"
            assert rt.simulators[vendor].writes == [], f"{vendor.value} is read-only"
