"""`possync status` and `possync quarantine list` under moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from functions.core.layout import Stream, Vendor
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

    assert table.exit_code == 0, table.output
    assert "t1 / posabit / store-1" in table.output and "3h 0m ago" in table.output
    assert "cursor sales" in table.output and "2026-10-01T08:30:00+00:00" in table.output
    assert "window open: 2 pages stored" in table.output
    assert "credential store-2 was refused" in table.output
    assert "1 of 2 credentials did not complete their last pull" in table.output
    assert "fl-1" not in table.output
    assert [r["id"] for r in rows] == ["store-1", "store-2"]
    assert rows[0]["last_records"] == 95 and rows[0]["last_quarantined"] == 1
    assert rows[0]["cursors"]["sales"] == "2026-10-01T08:30:00+00:00"
    assert rows[1]["cursors"] == {} and rows[1]["last_outcome"] == "failed"
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
