"""--stage: the CLI finds the stack a `cdk deploy -c stage=...` created, and names what it reads from its outputs."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from functions.core.layout import ResourceNames, Vendor
from infra import outputs
from possync.cli import app
from possync.target import DEFAULT_STACK, Target, TargetError, stack_target


class FakeCloudFormation:
    def __init__(self, stacks: dict[str, dict[str, str]]) -> None:
        self.stacks = stacks

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 - boto3's argument name
        if StackName not in self.stacks:
            raise RuntimeError(f"Stack with id {StackName} does not exist")
        values = self.stacks[StackName]
        return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in values.items()]}]}


def stack_outputs(names: ResourceNames) -> dict[str, str]:
    return {
        outputs.RESOURCE_PREFIX_OUTPUT: names.prefix,
        outputs.RECORDS_TABLE_OUTPUT: names.records_table,
        outputs.CONTROL_TABLE_OUTPUT: names.control_table,
        outputs.PERSONAS_TABLE_OUTPUT: names.personas_table,
        outputs.ARCHIVE_BUCKET_OUTPUT: names.archive_bucket("123456789012", "us-west-2"),
    }


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which stack the admin commands read; stops there with a TargetError so no AWS call is made."""
    stacks: list[str] = []
    monkeypatch.delenv("POSSYNC_STAGE", raising=False)
    monkeypatch.delenv("POSSYNC_STACK", raising=False)

    def fake(stack: str, region: str | None) -> Target:
        stacks.append(stack)
        raise TargetError(f"stopped at {stack}")

    monkeypatch.setattr("possync.admin.context.stack_target", fake)
    return stacks


def test_the_default_stage_is_prod(asked: list[str]) -> None:
    CliRunner().invoke(app, ["credentials", "list"])
    assert asked == [DEFAULT_STACK] == ["possync-prod"]


def test_stage_selects_the_stages_stack(asked: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    CliRunner().invoke(app, ["--stage", "dev", "credentials", "list"])
    monkeypatch.setenv("POSSYNC_STAGE", "qa")
    CliRunner().invoke(app, ["credentials", "list"])
    CliRunner().invoke(app, ["--stack", "custom-stack", "credentials", "list"])

    assert asked == ["possync-dev", "possync-qa", "custom-stack"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stage", "Dev"], "stage 'Dev' is not valid"),
        (["--stage", "dev", "--stack", "x"], "use one or the other"),
        (["--local", "--stage", "dev"], "use one or the other"),
    ],
)
def test_bad_or_conflicting_stage_options_say_what_to_do(asked: list[str], args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, [*args, "credentials", "list"])

    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert asked == []


def test_help_shows_the_stage_option() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert "--stage" in result.output and "cdk deploy -c stage=NAME" in " ".join(result.output.split())


def test_the_stack_target_names_settings_and_secrets_from_the_stacks_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    dev = ResourceNames.for_stage("dev")
    fake = FakeCloudFormation({"possync-dev": stack_outputs(dev)})
    monkeypatch.setattr("possync.target.boto3.client", lambda service, **_: fake)

    target = stack_target("possync-dev", "us-west-2")

    assert target.names == dev
    assert target.records_table == "possync-dev-records"
    assert (
        target.names.integration_settings_parameter("t1", Vendor.POSABIT)
        == "/possync-dev/tenants/t1/integrations/posabit"
    )
    assert target.names.credential_secret("t1", Vendor.POSABIT, "c1") == "possync-dev/t1/posabit/c1"


def test_the_stack_target_knows_the_private_ranges_the_stack_deploys(monkeypatch: pytest.MonkeyPatch) -> None:
    dev = ResourceNames.for_stage("dev")
    with_ranges = stack_outputs(dev) | {outputs.PRIVATE_HOST_CIDRS_OUTPUT: "10.20.0.0/16,192.168.50.0/24"}
    fake = FakeCloudFormation(
        {"possync-dev": with_ranges, "possync-prod": stack_outputs(ResourceNames.for_stage("prod"))}
    )
    monkeypatch.setattr("possync.target.boto3.client", lambda service, **_: fake)

    assert [str(n) for n in stack_target("possync-dev", "us-west-2").private_host_networks or ()] == [
        "10.20.0.0/16",
        "192.168.50.0/24",
    ]
    # No output: the deployment allows no private address (not "unknown")
    assert stack_target("possync-prod", "us-west-2").private_host_networks == ()


def test_a_missing_stage_stack_says_how_to_pick_the_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("possync.target.boto3.client", lambda service, **_: FakeCloudFormation({}))

    with pytest.raises(TargetError, match="--stage NAME finds the stack of `cdk deploy -c stage=NAME`"):
        stack_target("possync-dev", "us-west-2")


def test_a_stack_without_the_prefix_output_is_not_taken_for_possync(monkeypatch: pytest.MonkeyPatch) -> None:
    values = stack_outputs(ResourceNames.for_stage("dev"))
    del values[outputs.RESOURCE_PREFIX_OUTPUT]
    monkeypatch.setattr("possync.target.boto3.client", lambda service, **_: FakeCloudFormation({"x": values}))

    with pytest.raises(TargetError, match="no output ResourcePrefix"):
        stack_target("x", "us-west-2")
