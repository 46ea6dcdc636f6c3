"""Settings from SSM Parameter Store: values and absences are both cached for `max_age`, failures never are."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from functions.core import aws
from functions.core.errors import SettingsUnavailableError
from functions.core.layout import ResourceNames, Vendor
from functions.core.sources import SettingsSource, clear_caches

NAMES = ResourceNames()
ON = {"sync_personas": True, "sync_personas_enabled_on": "2026-11-01"}


@pytest.fixture
def asked(moto_aws: None) -> list[str]:
    """The names of the parameters read from SSM (requests that reached it)."""
    names: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        names.append(params["Name"])

    aws.client("ssm").meta.events.register("before-parameter-build.ssm.GetParameter", count)
    return names


def put(name: str, value: dict[str, Any]) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=name, Value=json.dumps(value), Type="String", Overwrite=True
    )


def test_a_tenant_without_settings_for_a_pos_is_asked_about_once_per_max_age(asked: list[str]) -> None:
    source = SettingsSource(NAMES, max_age=60)
    name = NAMES.integration_settings_parameter("t1", Vendor.POSABIT)

    for _ in range(5):
        settings = source.integration("t1", Vendor.POSABIT)
        assert settings.vendor is Vendor.POSABIT and not settings.sync_personas  # the defaults
        assert source.tenant("t1").model_dump() == source.tenant("t1").model_dump()

    assert asked.count(name) == 1
    assert asked.count(NAMES.tenant_settings_parameter("t1")) == 1
    # Settings written later take effect once the cache is dropped (or max_age has passed), like any value.
    put(name, ON)
    clear_caches()
    assert source.integration("t1", Vendor.POSABIT).sync_personas is True
    assert asked.count(name) == 2


def test_without_caching_every_read_asks(asked: list[str]) -> None:
    SettingsSource(NAMES, max_age=60).integration("t1", Vendor.FLOURISH)  # another reader's absence, cached
    source = SettingsSource(NAMES, max_age=0)
    for _ in range(3):
        source.integration("t1", Vendor.FLOURISH)
    assert asked.count(NAMES.integration_settings_parameter("t1", Vendor.FLOURISH)) == 4


def test_a_failed_read_is_not_taken_for_an_absent_parameter(asked: list[str]) -> None:
    source = SettingsSource(NAMES, max_age=60)
    client = aws.client("ssm")

    def throttle(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetParameter")

    client.meta.events.register_first("before-call.ssm.GetParameter", throttle, unique_id="throttle")
    with pytest.raises(SettingsUnavailableError):
        source.integration("t1", Vendor.POSABIT)
    client.meta.events.unregister("before-call.ssm.GetParameter", unique_id="throttle")
    put(NAMES.integration_settings_parameter("t1", Vendor.POSABIT), ON)

    assert source.integration("t1", Vendor.POSABIT).sync_personas is True  # read again, not cached as absent
