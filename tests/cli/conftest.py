"""The admin CLI against moto: a Target pointing at the resources the `resources` fixture provisions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner, Result

from functions.core.layout import ResourceNames
from functions.core.store import ControlStore
from possync.admin.context import AdminContext
from possync.cli import app
from possync.target import Target

Invoke = Callable[..., Result]


@pytest.fixture
def target(resources: Any) -> Target:
    # endpoint_url None: inside mock_aws every boto3 client is mocked.
    return Target(
        names=resources.names,
        records_table=resources.records_table,
        control_table=resources.control_table,
        archive_bucket=resources.archive_bucket,
        queue_urls=resources.queue_urls,
        endpoint_url=None,
        region="us-east-1",
    )


@pytest.fixture
def cli(target: Target, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("COLUMNS", "250")  # wide tables: assertions read whole cells
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, list(args), obj=AdminContext(target_override=target), input=input, env=env)

    return invoke


@pytest.fixture
def control(target: Target) -> ControlStore:
    return ControlStore(boto3.client("dynamodb", region_name="us-east-1"), target.control_table)


@pytest.fixture
def offline_cli(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """For errors caught before any AWS call: the target is a closed port, so a stray call could not succeed."""
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    nowhere = Target(
        names=ResourceNames(),
        records_table="none",
        control_table="none",
        archive_bucket="none",
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
    )

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, list(args), obj=AdminContext(target_override=nowhere), input=input, env=env)

    return invoke
