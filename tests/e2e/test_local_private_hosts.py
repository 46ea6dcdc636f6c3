"""`possync local serve --allow-private-hosts`: the CLI stores a private custom IP:PORT only when the local runtime's
on-premises pulls would call it, and the metadata address stays refused by both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from functions.core.errors import HostNotAllowedError
from functions.core.layout import PULL_FUNCTION, Vendor
from functions.core.netguard import resolve_allowed
from functions.core.pull_runtime import RuntimeConfig
from possync.admin.context import AdminContext
from possync.cli import app
from possync.local.runtime import LocalRuntime, Scale, TenantPlan
from possync.target import local_target

pytestmark = pytest.mark.e2e

PLAN = (TenantPlan("acme", {Vendor.PROFITEK: 1}),)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    workdir = tmp_path_factory.mktemp("private-hosts") / ".local"
    with LocalRuntime(plan=PLAN, scale=Scale(2, 2), workdir=workdir, allow_private_hosts=True) as rt:
        rt.register_tenants()
        yield rt


def add(rt: LocalRuntime, credential_id: str, address: str) -> Result:
    context = AdminContext(local=True, target_override=local_target(rt.state_file))
    args = ["credentials", "add", "profitek", "--tenant", "acme", "--id", credential_id, "--store-name", credential_id]
    args += ["--ip-port", address, "--auth-key-env", "PROFITEK_KEY", "--no-verify", "--yes"]
    return CliRunner().invoke(app, args, obj=context, env={"PROFITEK_KEY": "k" * 32, "COLUMNS": "200"})


def pull_check(rt: LocalRuntime, address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check the on-premises pull applies to a credential's address, with the environment the runtime gives it."""
    assert rt.resources is not None
    for key, value in rt.resources.lambda_env(PULL_FUNCTION[Vendor.PROFITEK]).items():
        monkeypatch.setenv(key, value)
    config = RuntimeConfig.from_env({})
    resolve_allowed(address, config.allow_private_hosts, private_networks=config.private_host_networks)


def test_a_private_address_is_stored_and_the_pull_calls_it(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = add(runtime, "m2", "10.0.0.5:8080")

    assert stored.exit_code == 0, stored.output
    pull_check(runtime, "10.0.0.5:8080", monkeypatch)  # no HostNotAllowedError: the pull would call it


def test_the_metadata_address_stays_refused(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = add(runtime, "m3", "169.254.169.254:80")

    assert refused.exit_code == 1 and "link-local" in refused.output, refused.output
    with pytest.raises(HostNotAllowedError):
        pull_check(runtime, "169.254.169.254:80", monkeypatch)


def test_without_the_flag_the_pull_calls_no_private_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalRuntime(plan=PLAN, scale=Scale(2, 2), workdir=tmp_path / ".local") as rt:
        assert local_target(rt.state_file).private_host_networks == ()
        with pytest.raises(HostNotAllowedError):
            pull_check(rt, "10.0.0.5:8080", monkeypatch)
