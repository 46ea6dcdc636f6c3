"""Shared fixtures: AWS under moto with the same resources the CDK app declares."""

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not UNPATCHED_MOTO:
        return
    skip = pytest.mark.skip(reason="asserts what a moto patch changes; this run uses unpatched moto")
    for test in items:
        if test.get_closest_marker("moto_patch") is not None:
            test.add_marker(skip)


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
