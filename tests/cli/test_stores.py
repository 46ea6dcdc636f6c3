"""`possync stores map/unmap/unmapped` under moto: mappings through the audited settings path, notices cleared."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import boto3
import pytest

from functions.core import layout
from functions.core.layout import Vendor
from functions.core.store import ControlStore, RegisteredCredential
from functions.core.unmapped import UnmappedStore, UnmappedStores
from possync.admin.audit import AuditLog
from possync.admin.tenants import AUDIT_PARAMETER as TENANT_AUDIT_PARAMETER
from possync.target import Target
from tests.cli.conftest import Invoke


def register(control: ControlStore, credential_id: str, tenant: str = "t1", vendor: Vendor = Vendor.POSABIT) -> None:
    control.register_credential(
        RegisteredCredential(
            tenant=tenant,
            vendor=vendor,
            credential_id=credential_id,
            active=True,
            secret_name=f"possync/{tenant}/{vendor.value}/{credential_id}",
            label=f"Store {credential_id}",
            attributes={"store_name": f"Main St {credential_id}"},
        )
    )


def notice(
    target: Target,
    credential_id: str,
    location: str | None = None,
    tenant: str = "t1",
    vendor: Vendor = Vendor.POSABIT,
    first_seen: str = "2026-05-01T17:00:00+00:00",
) -> None:
    # as the enroll rule raises it
    UnmappedStores(boto3.client("dynamodb", region_name="us-east-1"), target.control_table).raise_notice(
        UnmappedStore(tenant, vendor, credential_id, location, first_seen, record_kind="sale")
    )


def notices(target: Target, tenant: str = "t1") -> list[str]:
    items = boto3.client("dynamodb", region_name="us-east-1").query(
        TableName=target.control_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": layout.control_unmapped_pk(tenant)}},
    )["Items"]
    return sorted(i["sk"]["S"] for i in items)


def mappings(target: Target, vendor: Vendor = Vendor.POSABIT) -> dict[str, str] | None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    try:
        value = ssm.get_parameter(Name=target.names.integration_settings_parameter("t1", vendor))["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    return dict(json.loads(value)["store_mappings"])


def audit(target: Target) -> list[Any]:
    """t1's settings changes (its creation, audited too, is left out)."""
    entries = AuditLog(boto3.client("dynamodb", region_name="us-east-1"), target.control_table).history("t1")
    return [e for e in entries if e.parameter != TENANT_AUDIT_PARAMETER]


def stores(cli: Invoke, *args: str, input: str | None = None) -> Any:
    return cli("stores", *args, input=input)


def test_mapping_a_credential_sets_the_mapping_audits_it_and_clears_its_notices(
    cli: Invoke, target: Target, control: ControlStore
) -> None:
    # Given two unmapped locations of store-1 and one of store-2
    register(control, "store-1")
    register(control, "store-2")
    notice(target, "store-1")
    notice(target, "store-1", "loc-a")
    notice(target, "store-2", "loc-b")

    # When store-1 is mapped
    result = stores(cli, "map", "--tenant", "t1", "--vendor", "posabit", "--credential", "store-1", "--store", "dt")

    # Then the setting holds it, the change is audited, and only store-1's notices are gone
    assert result.exit_code == 0, result.output
    assert mappings(target) == {"store-1": "dt"}
    [entry] = audit(target)
    assert entry.action == "stores map credential store-1"
    assert entry.old["store_mappings"] == {} and entry.new["store_mappings"] == {"store-1": "dt"}
    assert notices(target) == ["posabit#store-2#loc-b"]
    assert "Cleared 2 unmapped-store notices" in result.output


def test_mapping_keeps_other_settings_and_mappings(cli: Invoke, target: Target, control: ControlStore) -> None:
    register(control, "store-1")
    register(control, "store-2")
    assert (
        cli(
            "settings", "set", "--tenant", "t1", "--vendor", "posabit", "age_gate_attested=true", "store_mappings.x=up"
        ).exit_code
        == 0
    )

    result = stores(cli, "map", "-t", "t1", "-v", "posabit", "-c", "store-2", "-s", "uptown")

    assert result.exit_code == 0, result.output
    assert mappings(target) == {"x": "up", "store-2": "uptown"}
    value = json.loads(
        boto3.client("ssm", region_name="us-east-1").get_parameter(
            Name=target.names.integration_settings_parameter("t1", Vendor.POSABIT)
        )["Parameter"]["Value"]
    )
    assert value["age_gate_attested"] is True


def test_mapping_an_unknown_credential_is_refused_and_writes_nothing(
    cli: Invoke, target: Target, control: ControlStore
) -> None:
    register(control, "store-1")
    notice(target, "store-9")

    result = stores(cli, "map", "--tenant", "t1", "--vendor", "posabit", "--credential", "store-9", "--store", "dt")

    assert result.exit_code == 1
    assert "tenant t1 has no posabit credential store-9" in result.output
    assert "possync credentials list --tenant t1 --vendor posabit" in result.output
    assert mappings(target) is None and audit(target) == []
    assert notices(target) == ["posabit#store-9#-"]


def test_a_credential_of_another_vendor_is_unknown(cli: Invoke, target: Target, control: ControlStore) -> None:
    register(control, "store-1", vendor=Vendor.FLOURISH)

    result = stores(cli, "map", "--tenant", "t1", "--vendor", "posabit", "--credential", "store-1", "--store", "dt")

    assert result.exit_code == 1 and "has no posabit credential store-1" in result.output


def test_bad_vendor_is_refused(offline_cli: Invoke) -> None:
    result = offline_cli("stores", "map", "--tenant", "t1", "--vendor", "clover", "--credential", "c1", "--store", "x")

    assert result.exit_code == 1
    assert "unknown vendor 'clover'" in result.output and "posabit" in result.output


@pytest.mark.parametrize(
    "which",
    [[], ["--credential", "store-1", "--location", "loc-a"]],
    ids=["neither", "both"],
)
def test_exactly_one_of_credential_or_location(offline_cli: Invoke, which: list[str]) -> None:
    result = offline_cli("stores", "map", "--tenant", "t1", "--vendor", "posabit", "--store", "dt", *which)

    assert result.exit_code == 1
    assert "exactly one of --credential or --location" in result.output


def test_a_blank_store_id_is_refused(offline_cli: Invoke) -> None:
    result = offline_cli("stores", "map", "-t", "t1", "-v", "posabit", "-c", "store-1", "--store", "  ")

    assert result.exit_code == 1 and "store id '  ' is not valid" in result.output


def test_mapping_a_location_clears_that_location_only(cli: Invoke, target: Target) -> None:
    notice(target, "store-1", "loc-a")
    notice(target, "store-1", "loc-b")

    result = stores(cli, "map", "--tenant", "t1", "--vendor", "posabit", "--location", "loc-a", "--store", "north")

    assert result.exit_code == 0, result.output
    assert mappings(target) == {"loc-a": "north"}
    assert notices(target) == ["posabit#store-1#loc-b"]
    assert "warning" not in result.output


def test_mapping_an_unseen_location_warns(cli: Invoke, target: Target) -> None:
    notice(target, "store-1", "loc-a")

    result = stores(cli, "map", "--tenant", "t1", "--vendor", "posabit", "--location", "loc-z", "--store", "north")

    assert result.exit_code == 0, result.output
    assert "no posabit data from location loc-z has been seen yet" in result.output
    assert mappings(target) == {"loc-z": "north"}
    assert notices(target) == ["posabit#store-1#loc-a"]


def test_mapping_again_to_the_same_store_still_clears_a_new_notice(
    cli: Invoke, target: Target, control: ControlStore
) -> None:
    register(control, "store-1")
    assert stores(cli, "map", "-t", "t1", "-v", "posabit", "-c", "store-1", "-s", "dt").exit_code == 0
    notice(target, "store-1")  # raised by a rule that read the settings just before the change

    again = stores(cli, "map", "-t", "t1", "-v", "posabit", "-c", "store-1", "-s", "dt")

    assert again.exit_code == 0, again.output
    assert "Nothing to change" in again.output
    assert notices(target) == [] and len(audit(target)) == 1


def test_unmap_removes_the_mapping_and_explains(cli: Invoke, target: Target, control: ControlStore) -> None:
    register(control, "store-1")
    assert stores(cli, "map", "-t", "t1", "-v", "posabit", "-c", "store-1", "-s", "dt").exit_code == 0

    result = stores(cli, "unmap", "--tenant", "t1", "--vendor", "posabit", "--credential", "store-1")

    assert result.exit_code == 0, result.output
    assert mappings(target) == {}
    assert "Favourite stores already computed from it stay until new sales arrive" in result.output
    assert audit(target)[0].action == "stores unmap credential store-1"


def test_unmap_of_something_not_mapped_is_refused(cli: Invoke, target: Target) -> None:
    assert cli("settings", "set", "-t", "t1", "-v", "posabit", "store_mappings.loc-a=north").exit_code == 0

    result = stores(cli, "unmap", "--tenant", "t1", "--vendor", "posabit", "--location", "loc-b")

    assert result.exit_code == 1
    assert "no store mapping for 'loc-b'" in result.output and "mapped: loc-a" in result.output
    assert mappings(target) == {"loc-a": "north"}


def seed_listing(target: Target, control: ControlStore) -> None:
    register(control, "store-1")
    notice(target, "store-1", first_seen="2026-05-02T10:00:00+00:00")
    notice(target, "store-7", "Front Room", first_seen="2026-05-03T10:00:00+00:00")
    notice(target, "fl-1", tenant="t2", vendor=Vendor.FLOURISH, first_seen="2026-05-04T10:00:00+00:00")


def test_unmapped_lists_each_notice_with_the_command_that_maps_it(
    cli: Invoke, target: Target, control: ControlStore
) -> None:
    seed_listing(target, control)

    result = stores(cli, "unmapped", "--tenant", "t1")

    assert result.exit_code == 0, result.output
    assert "Main St store-1" in result.output and "2026-05-02 10:00 UTC" in result.output
    assert "possync stores map --tenant t1 --vendor posabit --credential store-1 --store STORE_ID" in result.output
    assert "possync stores map --tenant t1 --vendor posabit --location 'Front Room' --store STORE_ID" in result.output
    assert "fl-1" not in result.output  # another tenant's


def test_unmapped_as_csv_and_json(cli: Invoke, target: Target, control: ControlStore) -> None:
    seed_listing(target, control)

    as_csv = list(csv.DictReader(io.StringIO(stores(cli, "unmapped", "-o", "csv").stdout)))
    as_json = json.loads(stores(cli, "unmapped", "--tenant", "t2", "-o", "json").stdout)

    assert [(r["tenant"], r["vendor"], r["credential"], r["location"]) for r in as_csv] == [
        ("t1", "posabit", "store-1", ""),
        ("t1", "posabit", "store-7", "Front Room"),
        ("t2", "flourish", "fl-1", ""),
    ]
    assert as_csv[0]["first_seen"] == "2026-05-02T10:00:00+00:00" and as_csv[0]["store_name"] == "Main St store-1"
    assert as_csv[1]["store_name"] == ""  # store-7 is not registered
    assert as_json == [
        {
            "tenant": "t2",
            "vendor": "flourish",
            "credential": "fl-1",
            "store_name": None,
            "location": None,
            "first_seen": "2026-05-04T10:00:00+00:00",
            "map_command": "possync stores map --tenant t2 --vendor flourish --credential fl-1 --store STORE_ID",
        }
    ]


def test_unmapped_commands_keep_the_local_flag(cli: Invoke, target: Target) -> None:
    notice(target, "store-1")

    result = cli("--local", "stores", "unmapped", "-o", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["map_command"].startswith("possync --local stores map --tenant t1")


def test_no_unmapped_stores(cli: Invoke) -> None:
    result = stores(cli, "unmapped", "--tenant", "t1")
    as_json = stores(cli, "unmapped", "-o", "json")

    assert result.exit_code == 0
    assert "no unmapped stores for tenant t1" in result.output
    assert json.loads(as_json.stdout) == []


def test_mapping_removes_the_store_from_the_unmapped_listing(
    cli: Invoke, target: Target, control: ControlStore
) -> None:
    seed_listing(target, control)
    assert stores(cli, "map", "-t", "t1", "-v", "posabit", "-l", "Front Room", "-s", "back").exit_code == 0

    listed = json.loads(stores(cli, "unmapped", "--tenant", "t1", "-o", "json").stdout)

    assert [(r["credential"], r["location"]) for r in listed] == [("store-1", None)]
    assert mappings(target) == {"Front Room": "back"}


# --- one store-id validator: `stores map`, `settings set store_mappings...` and the settings model ---------------

BAD_STORES = {"hash": "down#town", "control": "down\x07town", "tab": "down\ttown", "long": "s" * 101}


@pytest.mark.parametrize("store", BAD_STORES.values(), ids=BAD_STORES.keys())
def test_stores_map_and_settings_set_refuse_the_same_store_ids(cli: Invoke, target: Target, store: str) -> None:
    by_map = stores(cli, "map", "-t", "t1", "-v", "posabit", "--location", "loc-a", "--store", store)
    by_set = cli("settings", "set", "-t", "t1", "-v", "posabit", f"store_mappings.loc-a={store}")
    by_json = cli("settings", "set", "-t", "t1", "-v", "posabit", "store_mappings=" + json.dumps({"loc-a": store}))

    for result in (by_map, by_set, by_json):
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit)
        assert "a store id" in result.output
    assert mappings(target) is None and audit(target) == []


def test_settings_set_refuses_an_empty_store_id(cli: Invoke, target: Target) -> None:
    result = cli("settings", "set", "-t", "t1", "-v", "posabit", "store_mappings.loc-a=")

    assert result.exit_code == 1 and "a store id is empty" in result.output
    assert mappings(target) is None


BAD_KEYS = {"empty": "", "control": "loc\x07a", "long": "k" * 101}


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_the_credential_or_location_side_is_checked_the_same_way(cli: Invoke, target: Target, key: str) -> None:
    by_map = stores(cli, "map", "-t", "t1", "-v", "posabit", "--location", key, "--store", "downtown")
    by_set = cli("settings", "set", "-t", "t1", "-v", "posabit", f"store_mappings.{key}=downtown")
    by_json = cli("settings", "set", "-t", "t1", "-v", "posabit", "store_mappings=" + json.dumps({key: "downtown"}))

    for result in (by_map, by_set, by_json):
        assert result.exit_code == 1, result.output
        assert "credential or location id" in result.output
    assert mappings(target) is None and audit(target) == []


def test_a_good_mapping_set_by_either_command_is_the_same(cli: Invoke, target: Target) -> None:
    assert cli("settings", "set", "-t", "t1", "-v", "posabit", "store_mappings.Front Room #2= uptown ").exit_code == 0
    assert stores(cli, "map", "-t", "t1", "-v", "posabit", "--location", "42", "--store", "North Side").exit_code == 0

    assert mappings(target) == {"Front Room #2": "uptown", "42": "North Side"}
