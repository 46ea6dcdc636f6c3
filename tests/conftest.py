"""Shared fixtures: AWS under moto with the same resources the CDK app declares.

How `make test` spreads the tests over its xdist workers (`-n 4 --dist loadgroup`), so a new test needs nothing special:
- An expensive set-up shared by several tests belongs in a module- or session-scoped fixture (a synthesized CDK app, a
  local runtime, a simulator). Tests that share such a fixture are put in one xdist group here, so the fixture is built
  once on one worker, not once on every worker that happens to get one of its tests.
- Slow tests start first: those marked `e2e`, then `infra`, then the rest, so no worker is left with a long test at the
  end while the others idle. A new slow test should carry one of those markers (or share a grouped fixture).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from functions.core import aws
from functions.core.sources import clear_caches
from possync.local import moto_fixes

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SECURITY_TOKEN="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
    POWERTOOLS_METRICS_NAMESPACE="possync",
    POWERTOOLS_SERVICE_NAME="possync-tests",
    POWERTOOLS_TRACE_DISABLED="true",
)
os.environ.pop("AWS_ENDPOINT_URL", None)
# A `possync local serve` running on this machine publishes its state in the user's runtime dir; the tests must never
# find it (each test that wants a local runtime starts its own).
os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="possync-tests-")
os.environ.pop("POSSYNC_LOCAL", None)
# The same moto the local runtime runs: transactions back up the items they name, not whole tables. `make test` also
# runs the tests marked `moto_store` once with POSSYNC_TEST_UNPATCHED_MOTO=1, against moto as released, so a patch
# cannot hide a behavioural difference; tests marked `moto_patch` assert what a patch itself changes and are skipped.
UNPATCHED_MOTO = os.environ.get("POSSYNC_TEST_UNPATCHED_MOTO") == "1"
if not UNPATCHED_MOTO:
    moto_fixes.install()


# tryfirst: xdist's own hook (which reads the xdist_group marks) must see the groups added here.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=start_order)
    for test, group in shared_fixture_groups(items).items():
        test.add_marker(pytest.mark.xdist_group(group))
    if not UNPATCHED_MOTO:
        return
    skip = pytest.mark.skip(reason="asserts what a moto patch changes; this run uses unpatched moto")
    for test in items:
        if test.get_closest_marker("moto_patch") is not None:
            test.add_marker(skip)


def start_order(test: pytest.Item) -> int:
    """The slowest kinds first (a stable sort: the collection order within each kind)."""
    if test.get_closest_marker("e2e") is not None:
        return 0
    if test.get_closest_marker("infra") is not None:
        return 1
    return 2


def shared_fixture_groups(items: list[pytest.Item]) -> dict[pytest.Item, str]:
    """Tests joined by a module- or session-scoped fixture of this suite they use (directly or through another
    fixture), each group named after one of its fixtures; tests that share nothing expensive are left out."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    keys_of: dict[pytest.Item, list[str]] = {}
    for test in items:
        keys = shared_fixture_keys(test)
        if keys:
            keys_of[test] = keys
            for key in keys:
                parent[find(key)] = find(keys[0])
    # A group's name: its widest fixture (session before module), then the smallest key; the same on every worker.
    names: dict[str, str] = {}
    for key in sorted(parent, key=lambda key: (not key.startswith("session "), key)):
        names.setdefault(find(key), key.split(" ", 1)[1])
    return {test: names[find(keys[0])] for test, keys in keys_of.items()}


def shared_fixture_keys(test: pytest.Item) -> list[str]:
    """One key per instance of a module- or session-scoped fixture of this suite the test uses (pytest's own, such
    as tmp_path_factory, are cheap and shared by all)."""
    info = getattr(test, "_fixtureinfo", None)
    if info is None:
        return []
    keys = []
    for name in info.names_closure:
        definitions = info.name2fixturedefs.get(name)
        if not definitions:
            continue
        fixture = definitions[-1]
        if not fixture.baseid.startswith("tests"):
            continue
        if fixture.scope in ("session", "package"):
            keys.append(f"session {fixture.baseid}:{name}")
        elif fixture.scope == "module":
            keys.append(f"module {test.nodeid.split('::')[0]}:{name}")
        elif fixture.scope == "class":
            keys.append(f"class {test.nodeid.rsplit('::', 1)[0]}:{name}")
    return sorted(keys)


@pytest.fixture
def moto_aws() -> Iterator[None]:
    with mock_aws():
        # mock_aws drops boto3's default session; its replacement shares the parsed service models (aws.session).
        boto3.DEFAULT_SESSION = aws.session()
        aws.reset_clients()
        clear_caches()
        yield
    aws.reset_clients()
    clear_caches()


@pytest.fixture
def resources(moto_aws: None):  # type: ignore[no-untyped-def]
    from possync.local.provision import provision

    return provision(lambda service: boto3.client(service, region_name="us-east-1"))
