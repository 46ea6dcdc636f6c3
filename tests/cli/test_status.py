"""`possync status` and `possync quarantine list` under moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from functions.core.layout import Stream, Vendor
from functions.core.settings import IntegrationSettings
from functions.core.store import Checkpoint, ControlStore, RegisteredCredential
from tests.cli.conftest import Invoke

CURSOR = datetime(2026, 10, 1, 8, 30, tzinfo=UTC)


def register(control: ControlStore, credential_id: str, vendor: Vendor = Vendor.POSABIT, tenant: str = "t1") -> None:
    control.register_credential(
        RegisteredCredential(
            tenant=tenant,
            vendor=vendor,
            credential_id=credential_id,
            active=True,
            secret_name=f"possync/{tenant}/{vendor.value}/{credential_id}",
            label=f"Store {credential_id}",
            attributes={"store_name": f"Store {credential_id}"},
        )
    )


def test_status_shows_last_pull_counts_error_and_cursors(cli: Invoke, control: ControlStore) -> None:
    register(control, "store-1")
    register(control, "store-2")
    register(control, "fl-1", Vendor.FLOURISH, tenant="t2")
    success = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    control.save_status(
        "t1",
        Vendor.POSABIT,
        "store-1",
        {
            "last_outcome": "ok",
            "last_attempt_at": success,
            "last_success_at": success,
            "last_pages": 4,
            "last_records": 95,
            "last_changed": 12,
            "last_quarantined": 1,
            "timezone": "America/Los_Angeles",
        },
    )
    control.save_checkpoint("t1", Vendor.POSABIT, "store-1", Stream.SALES, Checkpoint(cursor=CURSOR))
    control.save_checkpoint(
        "t1",
        Vendor.POSABIT,
        "store-1",
        Stream.CUSTOMERS,
        Checkpoint(cursor=CURSOR, window_end=CURSOR + timedelta(hours=1), pages_done=2),
    )
    control.save_status(
        "t1",
        Vendor.POSABIT,
        "store-2",
        {"last_outcome": "failed", "last_attempt_at": success, "last_error": "credential store-2 was refused"},
    )

    table = cli("status", "--tenant", "t1")
    rows = json.loads(cli("status", "--tenant", "t1", "-o", "json").stdout)
    csv_lines = cli("status", "--vendor", "posabit", "-o", "csv").stdout.splitlines()

    # store-2's last pull failed: the command says so and exits non-zero (scripts and cron notice it)
    assert table.exit_code == 1, table.output
    assert "needs attention: last pull failed: credential store-2 was refused" in table.output
    assert "1 of 2 credentials need attention: t1/posabit/store-2" in table.output
    assert "t1 / posabit / store-1" in table.output and "3h 0m ago" in table.output
    assert "cursor sales" in table.output and "2026-10-01 08:30 UTC (" in table.output
    assert "2026-10-01T08:30:00+00:00" not in table.output  # an age people read, not a raw ISO string
    assert "window open: 2 pages stored" in table.output
    assert "credential store-2 was refused" in table.output
    assert "1 of 2 credentials did not complete their last pull" in table.output
    assert "fl-1" not in table.output
    assert [r["id"] for r in rows] == ["store-1", "store-2"]
    assert rows[0]["last_records"] == 95 and rows[0]["last_quarantined"] == 1
    assert rows[0]["cursors"]["sales"] == "2026-10-01T08:30:00+00:00"
    # POSaBIT balances are read from the customers pages (one read): their cursor is the customers' cursor
    assert rows[0]["cursors"]["loyalty"] == rows[0]["cursors"]["customers"]
    assert rows[1]["cursors"] == {} and rows[1]["last_outcome"] == "failed"
    assert rows[0]["health"] == "ok" and rows[0]["problems"] == []
    assert rows[1]["health"] == "needs attention" and rows[1]["problems"][0].startswith("last pull failed")
    assert "cursor_sales" in csv_lines[0] and len(csv_lines) == 3


def test_status_of_a_never_pulled_credential_and_of_nothing(cli: Invoke, control: ControlStore) -> None:
    assert "no credentials registered" in cli("status").output
    register(control, "new-1", Vendor.THSUITE)

    result = cli("status", "--vendor", "thsuite")

    assert result.exit_code == 0, result.output
    assert "never pulled" in result.output and "none yet" in result.output


def test_status_bad_vendor(cli: Invoke) -> None:
    result = cli("status", "--vendor", "nope")

    assert result.exit_code == 1 and "unknown vendor 'nope'" in result.output


def test_quarantine_list_shows_reason_and_archived_page(cli: Invoke, control: ControlStore) -> None:
    register(control, "store-1")
    key = "raw/tenant=t1/vendor=posabit/credential=store-1/stream=customers/date=2026-10-01/run=r/page-000001.json.gz"
    control.quarantine(
        "t1",
        Vendor.POSABIT,
        "store-1",
        [
            {
                "stream": "customers",
                "pos_id": "123",
                "reason": "telephone: not a phone",
                "archive_key": key,
                "item_index": "4",
            },
            {"stream": "sales", "pos_id": "9", "reason": "ordered_at: missing", "archive_key": key, "item_index": "0"},
        ],
    )

    table = cli("quarantine", "list", "--tenant", "t1", "--vendor", "posabit", "--id", "store-1")
    rows = json.loads(cli("quarantine", "list", "-t", "t1", "-v", "posabit", "--id", "store-1", "-o", "json").stdout)

    assert table.exit_code == 0, table.output
    assert "telephone: not a phone" in table.output and key in table.output
    assert "possync replay --tenant t1 --vendor posabit --credential store-1" in table.output
    assert {(r["stream"], r["pos_id"], r["item_index"]) for r in rows} == {("customers", "123", 4), ("sales", "9", 0)}


def test_quarantine_list_empty_and_unknown(cli: Invoke, control: ControlStore) -> None:
    register(control, "store-1")

    empty = cli("quarantine", "list", "--tenant", "t1", "--vendor", "posabit", "--id", "store-1")
    unknown = cli("quarantine", "list", "--tenant", "t1", "--vendor", "posabit", "--id", "ghost")

    assert empty.exit_code == 0 and "nothing quarantined" in empty.output
    assert unknown.exit_code == 1 and "has no posabit credential ghost" in unknown.output


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def test_status_exits_zero_only_when_every_credential_is_healthy(cli: Invoke, control: ControlStore) -> None:
    register(control, "store-1")
    register(control, "new-1")  # never pulled yet: not a problem until its first pull is overdue
    control.save_status("t1", Vendor.POSABIT, "store-1", {"last_outcome": "ok", "last_success_at": ago(hours=5)})

    result = cli("status", "--tenant", "t1")

    assert result.exit_code == 0, result.output
    assert "need attention" not in result.output


def test_a_new_credential_its_pos_never_answered_fails_status_at_once(cli: Invoke, control: ControlStore) -> None:
    register(control, "new-1")
    # Given a first pull minutes ago that the POS answered 404 (a store name it does not know), nothing ever pulled
    control.save_status(
        "t1",
        Vendor.POSABIT,
        "new-1",
        {"last_outcome": "unavailable", "last_error": "HTTP 404", "first_enqueued_at": ago(minutes=5)},
    )

    result = cli("status", "--tenant", "t1")
    rows = json.loads(cli("status", "--tenant", "t1", "-o", "json").stdout)

    assert result.exit_code == 1, result.output
    assert rows[0]["health"] != "ok"
    assert rows[0]["problems"] == ["never pulled successfully; last pull unavailable: HTTP 404"]


def test_a_window_that_did_not_settle_is_shown_beside_an_ok_outcome(cli: Invoke, control: ControlStore) -> None:
    register(control, "store-1")
    control.save_status(
        "t1",
        Vendor.POSABIT,
        "store-1",
        {"last_outcome": "ok", "last_success_at": ago(minutes=5), "unsettled_streams": ["customers"]},
    )

    result = cli("status", "--tenant", "t1")

    assert result.exit_code == 0, result.output  # nothing is lost: the window is read again
    text = " ".join(result.output.split())
    assert "read again next run" in text and "customers: the POS changed records in every pass" in text


def test_data_older_than_twice_its_interval_is_stale_and_fails_status(cli: Invoke, control: ControlStore) -> None:
    register(control, "store-1")
    # Given a pull that last succeeded 7 hours ago, and "offline" since (not itself a failure)
    control.save_status(
        "t1",
        Vendor.POSABIT,
        "store-1",
        {"last_outcome": "offline", "last_error": "store PC off", "last_success_at": ago(hours=7)},
    )

    result = cli("status", "--tenant", "t1")
    rows = json.loads(cli("status", "--tenant", "t1", "-o", "json").stdout)

    assert result.exit_code == 1, result.output
    assert "stale: no successful pull for 7h 0m, more than 2 x its 180-minute interval" in result.output
    assert rows[0]["problems"] == ["stale: no successful pull for 7h 0m, more than 2 x its 180-minute interval"]


def test_the_interval_is_each_integrations_own(cli: Invoke, control: ControlStore, target: Any) -> None:
    register(control, "store-1")
    register(control, "fl-1", Vendor.FLOURISH)
    for vendor in (Vendor.POSABIT, Vendor.FLOURISH):
        control.save_status(
            "t1",
            vendor,
            "store-1" if vendor is Vendor.POSABIT else "fl-1",
            {"last_outcome": "ok", "last_success_at": ago(minutes=45)},
        )
    boto3.client("ssm").put_parameter(
        Name=target.names.integration_settings_parameter("t1", Vendor.POSABIT),
        Value=IntegrationSettings(vendor=Vendor.POSABIT, pull_interval_minutes=15).model_dump_json(),
        Type="String",
    )

    result = cli("status", "--tenant", "t1")

    assert result.exit_code == 1, result.output
    assert "1 of 2 credentials need attention: t1/posabit/store-1" in result.output
    assert "more than 2 x its 15-minute interval" in result.output


def test_a_frozen_or_inactive_credential_is_never_stale(cli: Invoke, control: ControlStore, target: Any) -> None:
    register(control, "store-1")
    control.save_status("t1", Vendor.POSABIT, "store-1", {"last_outcome": "ok", "last_success_at": ago(days=9)})
    boto3.client("ssm").put_parameter(
        Name=target.names.integration_settings_parameter("t1", Vendor.POSABIT),
        Value=IntegrationSettings(vendor=Vendor.POSABIT, use_last_backup=True).model_dump_json(),
        Type="String",
    )

    result = cli("status", "--tenant", "t1")

    assert result.exit_code == 0, result.output
    assert "use last backup is on" in result.output


def test_contract_mismatch_names_the_stream_and_field_and_fails_status(cli: Invoke, control: ControlStore) -> None:
    register(control, "fl-1", Vendor.FLOURISH)
    control.save_status(
        "t1",
        Vendor.FLOURISH,
        "fl-1",
        {
            "last_outcome": "contract_mismatch",
            "last_error": "contract mismatch: 7501 of 7501 sales records quarantined for field 'total_price'",
            "contract_mismatch": {
                "sales": {"field": "total_price", "problem": "Field required", "quarantined": 7501, "read": 7501}
            },
            "last_success_at": ago(hours=1),
        },
    )

    result = cli("status", "--tenant", "t1")

    assert result.exit_code == 1, result.output
    assert "last pull contract mismatch: contract mismatch: 7501 of 7501 sales records" in result.output
    assert "sales: 7501 of 7501 records quarantined for field 'total_price' (Field required)" in result.output


def test_a_held_lease_and_a_lease_not_released_are_shown(cli: Invoke, control: ControlStore) -> None:
    register(control, "store-1")
    control.save_status(
        "t1",
        Vendor.POSABIT,
        "store-1",
        {
            "last_outcome": "ok",
            "last_success_at": ago(hours=1),
            "lease_skip": {
                "at": ago(minutes=5),
                "by": "dispatch",
                "holder": "schedule job, Lambda request r-9",
                "since": "2026-11-02T08:00:00+00:00",
                "until": "2026-11-02T09:01:00+00:00",
            },
            "lease_release_failed": {
                "at": ago(minutes=20),
                "error": "delete_item on possync-control failed: InternalServerError",
                "lease_until": "2026-11-02T09:01:00+00:00",
            },
        },
    )

    result = cli("status", "--tenant", "t1")

    assert result.exit_code == 0, result.output  # reported, and the lease expires by itself
    assert "the dispatch found the lease held by schedule job, Lambda request r-9" in result.output
    assert "since 2026-11-02T08:00:00+00:00 until 2026-11-02T09:01:00+00:00" in result.output
    assert "InternalServerError; pulls are skipped until the lease expires" in result.output
