"""Both consumers under moto, as whole batches: failing safe without losing a record, parked records applied exactly
once, records of newer or older code versions, partial failures in stream order, and the request budget."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.core import aws, ddb_batch, layout, metrics, sources
from functions.core.layout import RecordKind, Vendor
from functions.core.loyalty.repository import PersonaStore
from functions.core.loyalty.service import LoyaltyService
from functions.core.sources import SettingsSource
from functions.core.streams import read_batch
from functions.core.unmapped import UnmappedStores
from tests.integration import test_personas_service as personas_tests
from tests.integration.test_enroll_service import POSABIT_SETTINGS, ledger
from tests.integration.test_personas_service import (
    PHONE,
    TENANT,
    RecordingNotifier,
    World,
    sale,
    shopper,
    stream_event,
    stream_record,
)

aws_resources = personas_tests.aws_resources
world = personas_tests.world

SALE_KINDS = {RecordKind.SALE, RecordKind.LOYALTY_BALANCE}


def emitted(out: str, name: str) -> list[float]:
    """The values of one EMF metric in captured stdout."""
    values: list[float] = []
    for line in out.splitlines():
        if '"_aws"' in line and f'"{name}"' in line:
            values += json.loads(line)[name]
    return values


class SsmDown:
    """SSM throttles every read (past botocore's retries), as in an outage: settings cannot be read."""

    def __init__(self) -> None:
        self.monkeypatch = pytest.MonkeyPatch()  # its own: undone on exit without touching the test's

    def __enter__(self) -> None:
        def throttled(**_: Any) -> Any:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetParameter")

        sources.clear_caches()  # settings the Lambdas cached are gone: the next read asks SSM
        self.monkeypatch.setattr(aws.client("ssm"), "get_parameter", throttled)  # the settings source's client

    def __exit__(self, *_: object) -> None:
        self.monkeypatch.undo()
        sources.clear_caches()


def direct(world: World, ddb: Any = None, notifier: RecordingNotifier | None = None) -> LoyaltyService:
    """The consumers' service built by hand (to put a failing DynamoDB in front of it, or to record metrics)."""
    client = ddb if ddb is not None else world.ddb
    return LoyaltyService(
        store=PersonaStore(client, world.personas_table, sleep=lambda _: None),
        settings=SettingsSource(world.names),
        markets=lambda *_: frozenset(),
        notifier=notifier or RecordingNotifier(),
        unmapped=UnmappedStores(client, world.resources.control_table),
        sleep=lambda _: None,
    )


def sales_through(svc: LoyaltyService, *records: Any) -> dict[str, Any]:
    batch = read_batch(stream_event(*records), SALE_KINDS)
    svc.sale_batch(batch.changes, batch.failures)
    return batch.failures.response()


# --- settings that cannot be read: the record fails and is retried (issue 7) ---------------------------------------


def test_a_sale_whose_settings_cannot_be_read_fails_and_is_booked_when_they_can(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.shoppers(shopper("1", phone=PHONE))
    sale_record = stream_record(sale("s1", "1", date(2026, 3, 2), 1_000))
    # Given SSM throttled past retries while a sale arrives
    with SsmDown():
        response = world.sales(sale_record)
    # Then the sale is reported failed (Lambda retries it), nothing is booked, and an operator sees why
    assert response == {"batchItemFailures": [{"itemIdentifier": sale_record["dynamodb"]["SequenceNumber"]}]}
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert (persona.member, persona.points, ledger(world, persona.persona_id)) == (False, 0, {})
    assert emitted(capsys.readouterr().out, metrics.SETTINGS_UNREADABLE) == [1.0]
    # When SSM answers again, the retried record is booked
    assert world.sales(sale_record) == {"batchItemFailures": []}
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert (persona.member, persona.points) == (True, 10)


def test_a_shopper_whose_sync_settings_cannot_be_read_fails_and_is_retried(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = stream_record(shopper("1", phone=PHONE, first_name="Ava"))
    with SsmDown():
        response = world.shoppers(record)
    assert response == {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
    assert world.profiles() == []
    assert emitted(capsys.readouterr().out, metrics.SETTINGS_UNREADABLE) == [1.0]
    assert world.shoppers(record) == {"batchItemFailures": []}
    assert world.persona_of(Vendor.POSABIT, "c1", "1").first_name == "Ava"


# --- invalid settings: the record waits, durably, and applies once they are valid (issue 7) ------------------------


def test_a_sale_under_invalid_settings_waits_and_is_booked_once_they_are_fixed(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.shoppers(shopper("1", phone=PHONE))
    # enroll_after without the age gate attested: invalid
    world.settings(Vendor.POSABIT, '{"vendor": "posabit", "enroll_after": "2026-03-01"}')
    assert world.sales(sale("s1", "1", date(2026, 3, 2), 1_000)) == {"batchItemFailures": []}
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert (persona.member, persona.points) == (False, 0)  # fail safe: no enrollment, no points
    out = capsys.readouterr().out
    assert emitted(out, metrics.SETTINGS_INVALID) == [1.0]
    assert emitted(out, metrics.RECORDS_WAITING) == [1.0]
    assert [i["sk"]["S"] for i in world.items() if i["pk"]["S"] == layout.waiting_pk(TENANT, Vendor.POSABIT)] == [
        layout.WAITING_FLAG_SK,
        layout.waiting_sk(RecordKind.SALE, "c1", "s1"),
    ]
    # When the settings are fixed, the next batch of that tenant and POS applies the waiting sale first
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.cold_start()
    world.sales(sale("s2", "1", date(2026, 3, 5), 500))
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert (persona.member, persona.member_since_date, persona.points) == (True, "2026-03-02", 10 + 5)
    assert ledger(world, persona.persona_id) == {"posabit#c1#s1": 10, "posabit#c1#s2": 5}
    assert emitted(capsys.readouterr().out, metrics.RECORDS_WAITING) == [1.0, 0.0]  # seen waiting, then cleared
    assert not [i for i in world.items() if i["pk"]["S"].startswith("WAITING#")]


def test_apply_waiting_is_idempotent_and_exactly_once_with_the_stream(world: World) -> None:
    world.shoppers(shopper("1", phone=PHONE))
    world.settings(Vendor.POSABIT, '{"vendor": "posabit", "enroll_after": "2026-03-01"}')
    purchase = sale("s1", "1", date(2026, 3, 2), 1_000)
    refund = sale("s1", "1", date(2026, 3, 2), 1_000, status="partially_refunded", refunded=400, minutes=30)
    world.sales((purchase, 1), (refund, 2), sale("s2", "1", date(2026, 3, 3), 2_000))
    svc = direct(world)
    # While the settings are still invalid, applying does nothing and keeps everything waiting
    still = svc.apply_waiting(TENANT, Vendor.POSABIT)
    assert (still.applied, still.still_waiting, still.remaining) == (0, 2, 2)
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    # When the applier runs twice, and the stream then redelivers the refund and s2
    done = svc.apply_waiting(TENANT, Vendor.POSABIT)
    again = svc.apply_waiting(TENANT, Vendor.POSABIT)
    assert (done.applied, done.remaining, again.applied, again.remaining) == (2, 0, 0, 0)
    assert world.sales((refund, 2), sale("s2", "1", date(2026, 3, 3), 2_000)) == {"batchItemFailures": []}
    # Then each sale is booked once: s1 at its refunded net, s2 in full; a member since the purchase (sticky)
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert ledger(world, persona.persona_id) == {"posabit#c1#s1": 6, "posabit#c1#s2": 20}
    assert (persona.points, persona.member_since_date) == (26, "2026-03-02")


def test_a_shopper_under_invalid_sync_settings_waits_and_its_edit_overwrites_once_fixed(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.loyalty(timezone="America/Los_Angeles")
    world.settings(Vendor.POSABIT, {"sync_personas": True, "sync_personas_enabled_on": "2026-01-01"})
    world.shoppers(shopper("1", phone=PHONE, first_name="Ava"))
    world.sales(sale("s1", "1", date(2026, 3, 2), 1_000))
    # Given the sync settings broken (no enabled day) while the POS edits the name
    world.settings(Vendor.POSABIT, '{"sync_personas": true}')
    world.shoppers((shopper("1", minutes=5, phone=PHONE, first_name="Eva"), 2))
    # Then nothing is overwritten or merely filled: the edit waits, visibly
    assert world.persona_of(Vendor.POSABIT, "c1", "1").first_name == "Ava"
    assert emitted(capsys.readouterr().out, metrics.SETTINGS_INVALID) == [1.0]
    # When they are fixed, the edit applies as sync says: the POS is the source of truth
    world.settings(Vendor.POSABIT, {"sync_personas": True, "sync_personas_enabled_on": "2026-01-01"})
    report = direct(world).apply_waiting(TENANT, Vendor.POSABIT)
    assert (report.applied, report.remaining) == (1, 0)
    assert world.persona_of(Vendor.POSABIT, "c1", "1").first_name == "Eva"


def test_a_waiting_shopper_brings_its_parked_sales_when_applied(world: World) -> None:
    world.settings(Vendor.POSABIT, {**POSABIT_SETTINGS, "sync_personas": True})  # invalid: no enabled day
    world.loyalty(points_per_dollar=1)
    world.sales(sale("s1", "9", date(2026, 3, 2), 1_000))  # waits: settings invalid
    world.shoppers(shopper("9", phone=PHONE))  # waits too
    assert world.profiles() == []
    world.settings(
        Vendor.POSABIT, {**POSABIT_SETTINGS, "sync_personas": True, "sync_personas_enabled_on": "2026-01-01"}
    )
    report = direct(world).apply_waiting(TENANT, Vendor.POSABIT)
    assert report.applied == 2 and report.remaining == 0
    persona = world.persona_of(Vendor.POSABIT, "c1", "9")
    assert (persona.member, persona.points) == (True, 10)
    assert not [i for i in world.items() if i["pk"]["S"].startswith(("WAITING#", "PENDING#"))]


# --- records written by a newer or older version of the code (issue 7) ---------------------------------------------


def with_data(record: dict[str, Any], change: Any) -> dict[str, Any]:
    image = record["dynamodb"]["NewImage"]
    data = json.loads(image["data"]["S"])
    change(data)
    image["data"] = {"S": json.dumps(data)}
    return record


def test_consumers_accept_unknown_fields_and_missing_optional_ones(world: World) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    # a newer writer: a field this version does not know, on the record and on a sale line, and a new item attribute
    newer_shopper = with_data(stream_record(shopper("1", phone=PHONE)), lambda d: d.update(loyalty_tier="gold"))
    newer_shopper["dynamodb"]["NewImage"]["schema"] = {"N": "3"}
    newer_sale = stream_record(
        sale("s1", "1", date(2026, 3, 2), 1_000).model_copy(
            update={
                "lines": (
                    personas_tests.Sale.model_fields["lines"].annotation.__args__[0](  # type: ignore[union-attr]
                        quantity=1, total_cents=1_000
                    ),
                )
            }
        )
    )
    with_data(newer_sale, lambda d: (d.update(channel="kiosk"), d["lines"][0].update(strain="haze")))
    # an older writer: optional fields absent altogether
    older_sale = with_data(
        stream_record(sale("s2", "1", date(2026, 3, 3), 2_000)),
        lambda d: [d.pop(k) for k in ("location_id", "discount_cents", "tax_cents", "refunded_cents", "lines")],
    )
    assert world.shoppers(newer_shopper) == {"batchItemFailures": []}
    assert world.sales(newer_sale, older_sale) == {"batchItemFailures": []}
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert (persona.member, persona.points) == (True, 30)


def test_a_record_missing_a_required_field_fails_alone(world: World) -> None:
    broken = with_data(stream_record(sale("s1", "1", date(2026, 3, 2), 1_000)), lambda d: d.pop("total_cents"))
    fine = stream_record(sale("s2", "2", date(2026, 3, 2), 1_000))
    response = world.sales(broken, fine)
    assert response == {"batchItemFailures": [{"itemIdentifier": broken["dynamodb"]["SequenceNumber"]}]}


# --- partial failures, in stream order --------------------------------------------------------------------------


def test_a_record_after_a_failed_one_of_the_same_item_is_not_applied(world: World) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.shoppers(shopper("1", phone=PHONE), shopper("2", email="two@example.com"))
    # version 1 of s1 cannot be read; version 2 (a refund) follows in the same batch; s9 is another sale
    first = with_data(stream_record(sale("s1", "1", date(2026, 3, 2), 1_000), 1), lambda d: d.pop("status"))
    second = stream_record(sale("s1", "1", date(2026, 3, 2), 1_000, status="refunded", refunded=1_000, minutes=30), 2)
    other = stream_record(sale("s9", "2", date(2026, 3, 2), 500), 1)
    response = world.sales(first, second, other)
    # Then both versions of s1 are reported (Lambda restarts from the first), s9 is applied
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert failed == [first["dynamodb"]["SequenceNumber"], second["dynamodb"]["SequenceNumber"]]
    assert ledger(world, world.persona_of(Vendor.POSABIT, "c1", "1").persona_id) == {}
    assert world.persona_of(Vendor.POSABIT, "c1", "2").points == 5


class ThrottledFor:
    """DynamoDB that throttles (past retries) every transaction writing to one persona."""

    def __init__(self, client: Any, persona_pk: str) -> None:
        self._client = client
        self.persona_pk = persona_pk

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name != "transact_write_items" and name != "update_item":
            return method

        def call(**kwargs: Any) -> Any:
            if self.persona_pk in json.dumps(kwargs):
                raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, name)
            return method(**kwargs)

        return call


def test_a_persona_whose_write_fails_fails_only_its_own_records(world: World) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.shoppers(shopper("1", phone=PHONE), shopper("2", email="two@example.com"))
    stuck = world.persona_of(Vendor.POSABIT, "c1", "1").persona_id
    svc = direct(world, ThrottledFor(world.ddb, layout.persona_pk(TENANT, stuck)))
    records = [
        stream_record(sale("s1", "1", date(2026, 3, 2), 1_000)),
        stream_record(sale("s2", "2", date(2026, 3, 2), 2_000)),
        stream_record(sale("s3", "1", date(2026, 3, 3), 3_000)),
    ]
    response = sales_through(svc, *records)
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        records[0]["dynamodb"]["SequenceNumber"],
        records[2]["dynamodb"]["SequenceNumber"],
    ]
    assert ledger(world, stuck) == {}
    assert world.persona_of(Vendor.POSABIT, "c1", "2").points == 20


# --- conflicts: the one backoff formula ---------------------------------------------------------------------------


class ConflictsFirst:
    """DynamoDB whose first transactions lose a race (TransactionCanceledException), as under contention."""

    def __init__(self, client: Any, conflicts: int) -> None:
        self._client = client
        self.left = conflicts

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name not in ("transact_write_items", "update_item"):
            return method

        def call(**kwargs: Any) -> Any:
            if self.left > 0 and "PROFILE" in json.dumps(kwargs):
                self.left -= 1
                raise ClientError({"Error": {"Code": "TransactionCanceledException"}}, name)
            return method(**kwargs)

        return call


def test_lost_races_back_off_with_the_shared_backoff_formula(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.shoppers(shopper("1", phone=PHONE))
    attempts: list[int] = []
    real = ddb_batch.backoff_delay

    def recorded(attempt: int, *args: Any, **kwargs: Any) -> float:
        attempts.append(attempt)
        return real(attempt, *args, **kwargs)

    monkeypatch.setattr(ddb_batch, "backoff_delay", recorded)
    svc = direct(world, ConflictsFirst(world.ddb, conflicts=2))
    assert sales_through(svc, sale("s1", "1", date(2026, 3, 2), 1_000)) == {"batchItemFailures": []}
    svc = direct(world, ConflictsFirst(world.ddb, conflicts=1))
    batch = read_batch(stream_event(shopper("2", phone="+12065550177")), {RecordKind.SHOPPER})
    svc.shopper_batch(batch.changes, batch.failures)
    assert len(batch.failures) == 0
    assert attempts == [0, 1, 0]  # sales, then shoppers: both back off by ddb_batch.backoff_delay
    assert world.persona_of(Vendor.POSABIT, "c1", "1").points == 10


# --- concurrency: two consumers booking sales of one persona at once ----------------------------------------------


class Interleaved:
    """DynamoDB whose requests are atomic (moto's are not thread-safe) and whose writers all read before any writes."""

    def __init__(self, client: Any, parties: int) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._barrier = threading.Barrier(parties, timeout=10)
        self._local = threading.local()
        self.conflicts = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if name == "transact_write_items" and not getattr(self._local, "waited", False):
                self._local.waited = True
                self._barrier.wait()
            with self._lock:
                try:
                    return method(*args, **kwargs)
                except ClientError as exc:
                    if exc.response["Error"]["Code"] in (
                        "TransactionCanceledException",
                        "ConditionalCheckFailedException",
                    ):
                        self.conflicts += 1
                    raise

        return call


def test_concurrent_batches_for_one_persona_book_each_sale_once(world: World) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.shoppers(shopper("1", phone=PHONE))
    ddb = Interleaved(world.ddb, parties=2)
    batches = [
        [sale("s1", "1", date(2026, 3, 4), 1_000), sale("s2", "1", date(2026, 3, 5), 2_000)],
        [sale("s0", "1", date(2026, 3, 2), 4_000), sale("s2", "1", date(2026, 3, 5), 2_000)],  # s2 twice
    ]

    def run(records: list[Any]) -> dict[str, Any]:
        return sales_through(direct(world, ddb), *records)

    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda r=b: results.append(run(r))) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [{"batchItemFailures": []}] * 2
    assert ddb.conflicts >= 1  # one lost the race and planned again
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    # a member since s0 (the earliest purchase, whichever batch won), every sale booked once and earning
    assert persona.member_since_date == "2026-03-02"
    assert ledger(world, persona.persona_id) == {"posabit#c1#s0": 40, "posabit#c1#s1": 10, "posabit#c1#s2": 20}
    assert persona.points == 70


# --- the request budget -------------------------------------------------------------------------------------------


class Counted:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@pytest.fixture
def counted(world: World) -> Iterator[Counted]:
    counter = Counted()
    client = aws.client("dynamodb")
    client.meta.events.register("before-call.dynamodb", counter)
    yield counter
    client.meta.events.unregister("before-call.dynamodb", counter)


def test_a_batch_of_sales_of_known_shoppers_costs_at_most_one_and_a_half_requests_per_record(
    world: World, counted: Counted
) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.loyalty(points_per_dollar=1)
    shoppers = [shopper(f"{n}", email=f"p{n}@example.com") for n in range(100)]
    # Given 100 shoppers arriving as one batch
    counted.calls.clear()
    assert world.shoppers(*shoppers) == {"batchItemFailures": []}
    assert counted.total <= 1.5 * 100, counted.calls
    # When a batch of 100 sales of theirs arrives (a few shoppers buying twice), each booked with its visit
    counted.calls.clear()
    sales = [sale(f"s{n}", f"{n % 80}", date(2026, 3, 2 + n % 5), 1_000 + n) for n in range(100)]
    assert world.sales(*sales) == {"batchItemFailures": []}
    # Then at most 1.5 DynamoDB requests per record, reads in batches, one write per persona
    assert counted.total <= 1.5 * 100, counted.calls
    assert counted.calls["TransactWriteItems"] == 80
    assert counted.calls["GetItem"] + counted.calls["Query"] <= 2, counted.calls  # no per-sale reads
    persona = world.persona_of(Vendor.POSABIT, "c1", "3")
    assert (persona.member, persona.points, persona.favourite_store) == (True, 1_003 // 100 + 1_083 // 100, "store-a")


def test_membership_moving_back_over_booked_sales_reads_that_ledger_once(world: World, counted: Counted) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.loyalty(points_per_dollar=1)
    world.shoppers(shopper("1", phone=PHONE))
    # Sales before enroll_after (booked, no points) and a qualifying one, then an earlier qualifying one late
    world.sales(*(sale(f"s{n}", "1", date(2026, 3, 10 + n), 1_000) for n in range(5)))
    assert world.persona_of(Vendor.POSABIT, "c1", "1").member_since_date == "2026-03-10"
    counted.calls.clear()
    world.sales(sale("early", "1", date(2026, 3, 3), 1_000))
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert (persona.member_since_date, persona.points) == ("2026-03-03", 60)
    assert counted.calls["Query"] == 1  # the persona's ledger, once


def test_re_evaluating_more_entries_than_one_transaction_holds_keeps_balance_and_ledger_equal(
    world: World, counted: Counted
) -> None:
    world.settings(Vendor.POSABIT, POSABIT_SETTINGS)
    world.loyalty(points_per_dollar=1)
    world.shoppers(shopper("1", phone=PHONE))
    world.sales(sale("joined", "1", date(2026, 3, 25), 1_000))  # a member since March 25th
    # 150 returns recorded as their own sales before that day: booked, earning nothing (not a member yet)
    returns = [sale(f"r{n}", "1", date(2026, 3, 12 + n % 10), -100, status="refunded") for n in range(150)]
    world.sales(*returns[:100])
    world.sales(*returns[100:])
    assert world.persona_of(Vendor.POSABIT, "c1", "1").points == 10
    # When an earlier purchase arrives, the membership moves back over all of them: each return takes a point
    counted.calls.clear()
    assert world.sales(sale("early", "1", date(2026, 3, 11), 2_000)) == {"batchItemFailures": []}
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    entries = ledger(world, persona.persona_id)
    assert (persona.member_since_date, persona.points) == ("2026-03-11", 10 + 20 - 150)
    assert persona.points == sum(entries.values()) and len(entries) == 152
    assert counted.calls["TransactWriteItems"] == 2  # 151 entries: 99 + 52, the profile in each


# --- settings that reach data already stored (the building block of a re-evaluation) ------------------------------


def test_reapplying_stored_records_applies_settings_and_mappings_made_after_they_arrived(world: World) -> None:
    world.loyalty(points_per_dollar=1)
    person = shopper("1", phone=PHONE)
    stored = [
        (sale("s1", "1", date(2026, 3, 2), 1_000, location="loc-9"), 1),
        (sale("s2", "1", date(2026, 3, 4), 2_000, status="cancelled"), 1),
        (personas_tests.balance("b1", "1", 150, date(2026, 2, 20)), 1),
    ]
    # Given a store that pulled before anything was configured: a persona, sales booked for nothing
    world.shoppers(person)
    world.sales(*stored)
    before = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert (before.member, before.points, before.favourite_store) == (False, 0, None)
    # When the admin sets enroll_after, maps the location and sets the points import date, and the stored records
    # are applied again (twice: a re-evaluation may run again)
    world.settings(
        Vendor.POSABIT,
        {**POSABIT_SETTINGS, "store_mappings": {"loc-9": "store-z"}, "loyalty_points_imported_on": "2026-02-28"},
    )
    svc = direct(world)
    first = svc.reapply([(person, 1), *stored])
    second = svc.reapply([(person, 1), *stored])
    # Then the data already stored is brought in line, once
    after = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert (after.member, after.member_since_date, after.favourite_store) == (True, "2026-03-02", "store-z")
    assert after.points == 10 + 150 and {v.store_id: v.count for v in after.visits.values()} == {"store-z": 1}
    assert first.failed == second.failed == 0
    assert first.outcomes["imported"] == 1 and set(second.outcomes) <= {"duplicate", "unchanged"}
