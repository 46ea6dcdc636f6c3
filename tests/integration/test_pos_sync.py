"""Persona -> POS sync over moto (sync records, identity claims) and the POSaBIT / Flourish simulators (real HTTP)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest

from functions.core import layout
from functions.core.connector import ConnectorConfig
from functions.core.credentials import Credential, parse_credential
from functions.core.errors import SettingsError
from functions.core.http import RetryPolicy
from functions.core.layout import FORM_SOURCE, Vendor
from functions.core.loyalty.codecs import persona_item
from functions.core.loyalty.values import Persona, iso
from functions.core.pos_sync.records import SyncStore
from functions.core.pos_sync.service import PosSyncService, persona_changes
from functions.core.pos_sync.writer import PosWriter
from functions.core.settings import IntegrationSettings, TenantSettings
from functions.core.store import RegisteredCredential
from functions.core.streams import BatchFailures
from functions.pull_flourish import writer as flourish_writer
from functions.pull_posabit import writer as posabit_writer
from simulators.flourish import FlourishSimulator
from simulators.posabit import PosabitSimulator

TENANT = "t1"
YESTERDAY = datetime.now(UTC).date() - timedelta(days=1)
FAST = RetryPolicy(attempts=2, wait_initial=0.001, wait_max=0.001, wait_jitter=0, timeout=5)


@pytest.fixture(scope="module")
def posabit() -> Iterator[PosabitSimulator]:
    with PosabitSimulator(store_count=1, customers_per_store=3, sales_per_store=2, products_per_store=1) as sim:
        yield sim  # type: ignore[misc]


@pytest.fixture(scope="module")
def flourish() -> Iterator[FlourishSimulator]:
    with FlourishSimulator(store_count=1, customers_per_store=3, sales_per_store=2, products_per_store=1) as sim:
        yield sim  # type: ignore[misc]


@pytest.fixture(autouse=True)
def clean_faults(posabit: PosabitSimulator, flourish: FlourishSimulator) -> Iterator[None]:
    for sim in (posabit, flourish):
        sim.faults.timeout_seconds = 0.6
        sim.request_log.clear()
    yield
    for sim in (posabit, flourish):
        for name in ("timeout", "server_error", "rate_limit_without_retry_after", "write_conflict", "write_invalid",
                     "write_response_lost", "write_rate_limited", "write_server_error"):  # fmt: skip
            setattr(sim.faults, name, 0)


class Settings:
    def __init__(self) -> None:
        self.integrations: dict[Vendor, IntegrationSettings | SettingsError] = {}
        self.tenant_problem: SettingsError | None = None

    def integration(self, tenant: str, vendor: Vendor) -> IntegrationSettings:
        found = self.integrations.get(vendor, IntegrationSettings(vendor=vendor))
        if isinstance(found, SettingsError):
            raise found
        return found

    def tenant(self, tenant: str) -> TenantSettings:
        if self.tenant_problem is not None:
            raise self.tenant_problem
        return TenantSettings(timezone="America/Los_Angeles")


class Registry:
    def __init__(self) -> None:
        self.entries: list[RegisteredCredential] = []

    def credentials(self, vendor: Vendor, tenant: str | None = None) -> list[RegisteredCredential]:
        return [e for e in self.entries if e.vendor is vendor and e.tenant == tenant]


class Secrets:
    def __init__(self) -> None:
        self.values: dict[tuple[Vendor, str], Credential] = {}

    def get(self, tenant: str, vendor: Vendor, credential_id: str) -> Credential:
        return self.values[(vendor, credential_id)]


class Counts:
    def __init__(self) -> None:
        self.total: Counter[str] = Counter()

    def counts(self, values: Mapping[str, int]) -> None:
        self.total.update({k: v for k, v in values.items() if v})


class World:
    def __init__(self, posabit: PosabitSimulator, flourish: FlourishSimulator) -> None:
        self.ddb = boto3.client("dynamodb", region_name="us-east-1")
        self.table = layout.ResourceNames().personas_table
        self.settings = Settings()
        self.registry = Registry()
        self.secrets = Secrets()
        self.metrics = Counts()
        self.sims: dict[Vendor, Any] = {Vendor.POSABIT: posabit, Vendor.FLOURISH: flourish}
        self.requests = 0

    def connect(self, vendor: Vendor, credential_id: str = "c1", **settings: Any) -> None:
        sim = self.sims[vendor]
        raw = sim.credential_for(sim.stores[0])
        self.secrets.values[(vendor, credential_id)] = parse_credential(raw, vendor, credential_id)
        market = raw.get("market")
        regions = raw.get("regions", [])
        self.registry.entries.append(
            RegisteredCredential(TENANT, vendor, credential_id, True, "secret", market=market,
                                 attributes={"regions": regions})
        )  # fmt: skip
        self.settings.integrations[vendor] = IntegrationSettings(
            vendor=vendor, sync_personas=True, sync_personas_enabled_on=YESTERDAY, **settings
        )

    def open_writer(self, vendor: Vendor, credential: Credential) -> PosWriter:
        config = ConnectorConfig(base_url=self.sims[vendor].url, read_timeout=0.3, connect_timeout=1.0)
        opener = posabit_writer.open_writer if vendor is Vendor.POSABIT else flourish_writer.open_writer
        return opener(credential, config, FAST)

    def service(self) -> PosSyncService:
        def count() -> None:
            self.requests += 1

        return PosSyncService(
            store=SyncStore(self.ddb, self.table, on_request=count),
            settings=self.settings,
            registry=self.registry,
            credentials=self.secrets,
            open_writer=self.open_writer,
            notifier=self.metrics,
        )

    def signup(
        self, n: int, *, created: datetime | None = None, state: str | None = "WA", **fields: Any
    ) -> dict[str, Any]:
        """A form persona as the signup endpoint stores it; returns its stream record."""
        at = iso(created or datetime.now(UTC))
        values: dict[str, Any] = {
            "first_name": "Ivy",
            "last_name": f"Form{n}",
            "phone": f"+1458555{n:04d}",
            "email": f"ivy.form{n}@example.com",
            "birth_date": "1990-04-05",
            **fields,
        }
        persona = Persona(TENANT, f"p{n}", sources=frozenset({FORM_SOURCE}), created_at=at, updated_at=at, **values)
        item = persona_item(persona)
        if state:
            item["state"] = {"S": state}
        self.ddb.put_item(TableName=self.table, Item=item)
        return {
            "eventName": "INSERT",
            "dynamodb": {"Keys": {"pk": item["pk"], "sk": item["sk"]}, "NewImage": item, "SequenceNumber": f"{n}00"},
        }

    def run(
        self, *records: dict[str, Any], service: PosSyncService | None = None
    ) -> tuple[Counter[str], BatchFailures]:
        failures = BatchFailures()
        changes = persona_changes({"Records": list(records)}, failures)
        return (service or self.service()).batch(changes, failures), failures

    def record(self, n: int, vendor: Vendor = Vendor.POSABIT, credential_id: str = "c1") -> dict[str, Any]:
        records = SyncStore(self.ddb, self.table).of_persona(TENANT, f"p{n}")
        found = [r for r in records if r.vendor is vendor and r.credential_id == credential_id]
        return found[0].as_dict() if found else {}

    def owner_of(self, vendor: Vendor, pos_id: str, credential_id: str = "c1") -> str | None:
        value = layout.pos_identity_value(vendor, credential_id, pos_id)
        item = self.ddb.get_item(
            TableName=self.table,
            Key={"pk": {"S": layout.identity_pk(TENANT, "pos", value)}, "sk": {"S": layout.IDENTITY_SK}},
        ).get("Item")
        return item["persona_id"]["S"] if item else None

    def posts(self, vendor: Vendor = Vendor.POSABIT) -> int:
        return sum(1 for method, _ in self.sims[vendor].writes if method == "POST")


@pytest.fixture
def world(resources: Any, posabit: PosabitSimulator, flourish: FlourishSimulator) -> World:
    return World(posabit, flourish)


def customers_with_phone(sim: PosabitSimulator, digits: str) -> list[dict[str, Any]]:
    credential = parse_credential(sim.credential_for(sim.stores[0]), Vendor.POSABIT, "c1")
    writer = posabit_writer.open_writer(credential, ConnectorConfig(base_url=sim.url), FAST)
    try:
        return writer.client.find_customers(telephone=digits)
    finally:
        writer.close()


# --- create, match ------------------------------------------------------------------------------------------------


def test_a_form_persona_with_no_match_is_created_in_posabit_and_linked(world: World, posabit: PosabitSimulator) -> None:
    world.connect(Vendor.POSABIT)
    outcomes, failures = world.run(world.signup(1))

    assert outcomes["created"] == 1 and not len(failures)
    record = world.record(1)
    assert record["state"] == "created" and record["synced_at"]
    [customer] = customers_with_phone(posabit, "4585550001")
    assert str(customer["id"]) == record["pos_id"]
    assert (customer["email"], customer["first_name"], customer["birthday"]) == ("ivy.form1@example.com", "Ivy",
                                                                                 "1990-04-05")  # fmt: skip
    assert world.owner_of(Vendor.POSABIT, record["pos_id"]) == "p1"  # the next pull resolves to this persona
    assert world.posts() == 1
    assert world.metrics.total == Counter({"PosSyncCreated": 1})


def test_a_persona_the_pos_already_knows_is_linked_never_created(world: World, posabit: PosabitSimulator) -> None:
    world.connect(Vendor.POSABIT)
    world.run(world.signup(2))  # the POS now has phone ...0002
    world.ddb.delete_item(TableName=world.table, Key={"pk": {"S": layout.pos_sync_pk(TENANT, "p2")},
                                                       "sk": {"S": "posabit#c1"}})  # fmt: skip
    posabit.request_log.clear()

    outcomes, _ = world.run(world.signup(3, phone="+14585550002"))

    assert outcomes["matched"] == 1
    assert world.posts() == 0
    assert world.record(3)["state"] == "matched"
    assert world.record(3)["pos_id"] == str(customers_with_phone(posabit, "4585550002")[0]["id"])


def test_a_profile_with_an_unreadable_birth_date_fails_alone_and_the_batch_goes_on(world: World) -> None:
    # Given a batch of two form signups, the first profile's birth date damaged (not an ISO date)
    world.connect(Vendor.POSABIT)
    damaged = world.signup(11, birth_date="04/05/1990")
    # When the batch is synced
    outcomes, failures = world.run(damaged, world.signup(12))
    # Then the other persona is created, and only the damaged record is reported, without its value
    assert outcomes["created"] == 1 and world.record(12)["state"] == "created"
    assert failures.response() == {"batchItemFailures": [{"itemIdentifier": damaged["dynamodb"]["SequenceNumber"]}]}
    assert "04/05/1990" not in str(failures.reasons())
    assert world.posts() == 1


# --- exactly once ------------------------------------------------------------------------------------------------


def test_a_replayed_or_redelivered_signup_creates_one_customer(world: World) -> None:
    world.connect(Vendor.POSABIT)
    event = world.signup(4)
    first, _ = world.run(event)
    again, failures = world.run(event, event)  # redelivered twice in one batch, after the first run

    assert first["created"] == 1 and again == Counter({"already synced": 2}) and not len(failures)
    assert world.posts() == 1


def test_concurrent_invocations_create_one_customer(world: World, posabit: PosabitSimulator) -> None:
    world.connect(Vendor.POSABIT)
    event = world.signup(5)
    posabit.faults.slow = 1  # the first request waits, so the second invocation runs into the first one's claim
    posabit.faults.slow_seconds = 0.1
    results: list[Counter[str]] = []

    def invoke() -> None:
        results.append(world.run(event)[0])

    threads = [threading.Thread(target=invoke) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert world.posts() == 1
    assert len(customers_with_phone(posabit, "4585550005")) == 1
    assert sum(r["created"] for r in results) == 1
    assert world.record(5)["state"] == "created"


def test_a_create_whose_answer_is_lost_is_looked_up_not_sent_again(world: World, posabit: PosabitSimulator) -> None:
    world.connect(Vendor.POSABIT)
    posabit.faults.write_response_lost = 1

    outcomes, failures = world.run(world.signup(6))

    assert outcomes["matched"] == 1 and not len(failures)
    assert world.posts() == 1
    assert len(customers_with_phone(posabit, "4585550006")) == 1
    record = world.record(6)
    assert record["state"] == "matched" and "answer was lost" in record["reason"]
    assert world.owner_of(Vendor.POSABIT, record["pos_id"]) == "p6"


def test_an_uncertain_create_not_found_is_never_repeated(world: World, posabit: PosabitSimulator) -> None:
    world.connect(Vendor.POSABIT)
    posabit.faults.write_server_error = 1  # a 500: the create may or may not have happened
    event = world.signup(7)

    outcomes, failures = world.run(event)
    again, _ = world.run(event)

    assert outcomes["uncertain"] == 1 and not len(failures)
    assert again["uncertain"] == 1  # looked up again, still not found
    assert world.posts() == 1
    assert world.record(7)["state"] == "uncertain"
    assert "HTTP 500" in world.record(7)["reason"]
    assert world.metrics.total["PosSyncUncertain"] == 2


def test_an_uncertain_create_is_linked_when_the_pull_brings_the_customer_back(
    world: World, posabit: PosabitSimulator
) -> None:
    world.connect(Vendor.POSABIT)
    posabit.faults.write_server_error = 1  # created or not, nobody knows; the search does not find it yet
    event = world.signup(40)
    outcomes, _ = world.run(event)
    assert outcomes["uncertain"] == 1 and world.record(40)["state"] == "uncertain" and world.posts() == 1

    # The next pull finds the customer in the POS and resolves it into the persona (by phone, email or POS id): the
    # persona's change reaches pos_sync again, now a customer of the credential.
    image = event["dynamodb"]["NewImage"]
    image["sources"] = {"SS": [FORM_SOURCE, Vendor.POSABIT.value]}
    image["source_records"] = {"SS": ["posabit#c1#4040"]}
    world.ddb.put_item(TableName=world.table, Item=image)
    posabit.request_log.clear()
    settled, failures = world.run(event)

    assert settled == Counter({"matched": 1}) and not len(failures)
    record = world.record(40)
    assert record["state"] == "matched" and record["pos_id"] == "4040" and record["synced_at"]
    assert "the pull brought the customer back (was uncertain" in record["reason"]
    assert world.owner_of(Vendor.POSABIT, "4040") == "p40"
    assert not posabit.request_log  # nothing sent to the POS, not even a search
    assert world.run(event)[0] == Counter({"already synced": 1})


def test_a_customer_of_the_credential_without_a_sync_record_writes_none(world: World) -> None:
    world.connect(Vendor.POSABIT)
    event = world.signup(41)
    image = event["dynamodb"]["NewImage"]
    image["sources"] = {"SS": [FORM_SOURCE, Vendor.POSABIT.value]}
    image["source_records"] = {"SS": ["posabit#c1#4141"]}

    outcomes, _ = world.run(event)

    assert outcomes == Counter({"not synced": 1}) and world.record(41) == {} and world.posts() == 0


def test_a_create_that_times_out_is_uncertain_and_sent_once(world: World, posabit: PosabitSimulator) -> None:
    world.connect(Vendor.POSABIT)
    # the searches pass, the create hangs past the client's read timeout (the simulator never applies it)
    posabit.faults.write_rate_limited = 0
    event = world.signup(8)
    original = posabit.dispatch

    def hang_posts(request: Any) -> Any:
        if request.method == "POST":
            posabit.faults.timeout = 1
        return original(request)

    posabit.dispatch = hang_posts  # type: ignore[method-assign]
    try:
        outcomes, _ = world.run(event)
    finally:
        del posabit.dispatch
    assert outcomes["uncertain"] == 1
    assert world.posts() == 1
    assert "ReadTimeout" in world.record(8)["reason"]


# --- the rules ---------------------------------------------------------------------------------------------------


def test_a_persona_created_before_sync_began_is_not_synced(world: World) -> None:
    world.connect(Vendor.POSABIT)
    outcomes, _ = world.run(world.signup(9, created=datetime.now(UTC) - timedelta(days=10)))

    assert outcomes == Counter({"skipped": 1})
    assert world.posts() == 0 and not world.sims[Vendor.POSABIT].request_log
    assert "not retroactive" in world.record(9)["reason"]


def test_sync_to_relevant_market_syncs_only_the_credentials_market(world: World, posabit: PosabitSimulator) -> None:
    world.connect(Vendor.POSABIT, sync_to_relevant_market=True)
    market = posabit.credential_for(posabit.stores[0])["market"]
    elsewhere = "OR" if market != "OR" else "WA"

    outcomes, _ = world.run(world.signup(10, state=elsewhere), world.signup(11, state=market))

    assert outcomes == Counter({"skipped": 1, "created": 1})
    assert "outside the credential's market" in world.record(10)["reason"]
    assert world.record(11)["state"] == "created"
    assert world.posts() == 1


def test_flourish_needs_a_birth_date(world: World, flourish: FlourishSimulator) -> None:
    world.connect(Vendor.FLOURISH)
    region = flourish.credential_for(flourish.stores[0])["regions"][0]

    outcomes, _ = world.run(world.signup(12, birth_date=None, state=region), world.signup(13, state=region))

    assert outcomes == Counter({"skipped": 1, "created": 1})
    assert world.record(12, Vendor.FLOURISH)["reason"] == "no date of birth: Flourish requires one to create a customer"
    assert world.record(13, Vendor.FLOURISH)["state"] == "created"
    assert world.posts(Vendor.FLOURISH) == 1


def test_sync_personas_off_or_a_persona_not_from_a_form_writes_nothing(world: World) -> None:
    world.connect(Vendor.POSABIT)
    pulled = world.signup(14)
    pulled["dynamodb"]["NewImage"]["sources"] = {"SS": ["posabit"]}
    outcomes, _ = world.run(pulled)
    world.settings.integrations[Vendor.POSABIT] = IntegrationSettings(vendor=Vendor.POSABIT)
    off, _ = world.run(world.signup(15))

    assert outcomes == Counter({"not synced": 1}) and off == Counter({"not synced": 1})
    assert not world.sims[Vendor.POSABIT].request_log


# --- POS errors ---------------------------------------------------------------------------------------------------


def test_a_validation_error_is_recorded_with_its_field_and_alarmed(world: World) -> None:
    world.connect(Vendor.POSABIT)
    world.sims[Vendor.POSABIT].faults.write_invalid = 1

    outcomes, failures = world.run(world.signup(16))

    assert outcomes["rejected"] == 1 and not len(failures)
    record = world.record(16)
    assert record["state"] == "rejected" and "HTTP 422 (fields: email)" in record["reason"]
    assert "ivy.form16" not in record["reason"]  # names the field, never the value
    assert world.metrics.total["PosSyncFailed"] == 1


def test_a_conflict_is_looked_up_and_linked_or_recorded(world: World, posabit: PosabitSimulator) -> None:
    world.connect(Vendor.POSABIT)
    posabit.faults.write_conflict = 1

    outcomes, _ = world.run(world.signup(17))

    assert outcomes["rejected"] == 1
    assert "409" in world.record(17)["reason"] and "no customer with this phone or email" in world.record(17)["reason"]
    assert world.posts() == 1


def test_a_duplicate_the_pos_reports_is_found_and_linked(world: World, posabit: PosabitSimulator) -> None:
    world.connect(Vendor.POSABIT)
    world.run(world.signup(18))
    # another persona whose email the POS holds, with a phone it does not: POSaBIT says "has already been taken"
    world.ddb.delete_item(TableName=world.table, Key={"pk": {"S": layout.pos_sync_pk(TENANT, "p18")},
                                                       "sk": {"S": "posabit#c1"}})  # fmt: skip
    writer = world.open_writer(Vendor.POSABIT, world.secrets.values[(Vendor.POSABIT, "c1")])
    original_find = type(writer).find
    calls: list[int] = []

    def blind_first(self: Any, contact: Any) -> list[str]:
        calls.append(1)
        return [] if len(calls) == 1 else original_find(self, contact)

    type(writer).find = blind_first  # type: ignore[method-assign]
    try:
        outcomes, _ = world.run(world.signup(19, phone="+14585559999", email="ivy.form18@example.com"))
    finally:
        type(writer).find = original_find  # type: ignore[method-assign]
    assert outcomes["matched"] == 1
    assert "duplicate" in world.record(19)["reason"]


def test_rate_limits_and_server_errors_are_retried(world: World, posabit: PosabitSimulator) -> None:
    world.connect(Vendor.POSABIT)
    posabit.faults.rate_limit_without_retry_after = 1  # the first search
    outcomes, failures = world.run(world.signup(20))
    assert outcomes["created"] == 1 and not len(failures)

    posabit.faults.server_error = 10  # the searches fail past the policy's attempts: retried later, not dropped
    outcomes, failures = world.run(world.signup(21))
    assert outcomes["retrying"] == 1 and len(failures) == 1
    assert world.record(21)["state"] == "retrying" and "HTTP 503" in world.record(21)["reason"]

    posabit.faults.server_error = 0
    posabit.faults.write_rate_limited = 1  # the create is rate limited: nothing created, retried later
    outcomes, failures = world.run(world.signup(22))
    assert outcomes["retrying"] == 1 and len(failures) == 1 and "429" in world.record(22)["reason"]
    outcomes, failures = world.run(world.signup(22))  # Lambda's retry
    assert outcomes["created"] == 1 and not len(failures)
    assert len(customers_with_phone(posabit, "4585550022")) == 1


def test_a_refused_credential_is_retried_recorded_and_alarmed(world: World) -> None:
    world.connect(Vendor.POSABIT)
    good = world.secrets.values[(Vendor.POSABIT, "c1")]
    raw = {**good.model_dump(), "venue_token": "not-the-token", "integrator_token": "wrong-integrator"}
    world.secrets.values[(Vendor.POSABIT, "c1")] = parse_credential(raw, Vendor.POSABIT, "c1")

    outcomes, failures = world.run(world.signup(23))

    assert outcomes["retrying"] == 1 and len(failures) == 1
    assert "refused the credential" in world.record(23)["reason"]
    assert "not-the-token" not in world.record(23)["reason"]
    assert world.metrics.total["PosSyncFailed"] == 1


def test_invalid_settings_write_nothing_and_count(world: World) -> None:
    world.connect(Vendor.POSABIT)
    world.settings.integrations[Vendor.POSABIT] = SettingsError("invalid settings in parameter /x: bad")

    outcomes, failures = world.run(world.signup(24))

    assert outcomes["settings invalid"] == 1 and not len(failures)
    assert world.metrics.total["SettingsInvalid"] == 1 and world.posts() == 0

    world.connect(Vendor.POSABIT)
    world.settings.tenant_problem = SettingsError("invalid settings in parameter /t: timezone")
    outcomes, failures = world.run(world.signup(26))
    assert outcomes == Counter({"settings invalid": 1}) and not len(failures)
    assert world.metrics.total["SettingsInvalid"] == 2 and world.posts() == 0


def test_dynamodb_requests_per_synced_persona(world: World) -> None:
    world.connect(Vendor.POSABIT)
    world.requests = 0
    world.run(*(world.signup(30 + i) for i in range(5)))
    # one batched read of the sync records, then per persona: the claim, "creating", the linked outcome
    assert world.requests == 1 + 3 * 5, world.requests


def test_a_signup_in_the_past_uses_the_tenant_day(world: World) -> None:
    world.connect(Vendor.POSABIT)
    # created at 01:00 UTC on the day sync began = the evening before in Los Angeles: before it, not synced
    start = datetime.combine(YESTERDAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=1)
    outcomes, _ = world.run(world.signup(25, created=start))
    assert outcomes == Counter({"skipped": 1})
    assert date.fromisoformat(YESTERDAY.isoformat()) == YESTERDAY
