"""The local runtime creates its demo tenants the way `possync tenants add` does, so the CLI accepts them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from functions.core.layout import Vendor
from functions.core.tenants import TenantRegistry
from possync.admin.audit import AuditLog
from possync.admin.context import AdminContext
from possync.cli import app
from possync.local.runtime import LOCAL_ACTOR, LocalRuntime, Scale
from possync.target import local_target

pytestmark = pytest.mark.e2e


def test_demo_tenants_are_registered_and_audited_and_a_typo_is_refused(tmp_path: Path) -> None:
    with LocalRuntime(
        scale=Scale(customers_per_store=2, sales_per_store=2), vendors=(Vendor.POSABIT,), workdir=tmp_path
    ) as rt:
        rt.register_tenants()
        assert rt.resources is not None
        ddb = rt.client("dynamodb")
        planned = sorted(plan.tenant for plan in rt.plan)

        tenants = TenantRegistry(ddb, rt.resources.control_table).all()

        assert [(t.tenant, t.registered, t.created_by) for t in tenants] == [(t, True, LOCAL_ACTOR) for t in planned]
        for tenant in planned:
            [entry] = AuditLog(ddb, rt.resources.control_table).history(tenant)
            assert (entry.action, entry.who) == ("tenants add", LOCAL_ACTOR)
        context = AdminContext(local=True, target_override=local_target(rt.state_file))
        runner = CliRunner()
        known = runner.invoke(app, ["settings", "show", "--tenant", planned[0]], obj=context)
        typo = runner.invoke(app, ["settings", "show", "--tenant", planned[0] + "x"], obj=context)
        assert known.exit_code == 0, known.output
        assert typo.exit_code == 1 and f"did you mean {planned[0]}?" in typo.output
