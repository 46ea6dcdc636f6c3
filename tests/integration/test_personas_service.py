"""Personas consumer under moto, driven by real-shaped DynamoDB stream events: identity, races, sync, sources."""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from functions.core import aws, layout
from functions.core.layout import RecordKind, ResourceNames, Vendor
from functions.core.loyalty.codecs import persona_from_item
from functions.core.loyalty.repository import PersonaStore
from functions.core.loyalty.service import LoyaltyService
from functions.core.loyalty.settings import CredentialMarkets
from functions.core.loyalty.values import Claim, Persona, iso
from functions.core.models import CanonicalRecord, LoyaltyBalance, Sale, Shopper
from functions.core.sources import SettingsSource, clear_caches
from functions.core.store import ControlStore, RecordStore, RegisteredCredential, record_item_key
from functions.core.streams import read_batch
from functions.core.unmapped import UnmappedStore, UnmappedStores
from functions.enroll import handler as enroll_handler
from functions.personas import handler as personas_handler
from possync.local.lambda_shim import LambdaContext
from possync.local.provision import Resources, provision

# Also run against unpatched moto by `make test` (see tests/conftest.py).
pytestmark = pytest.mark.moto_store

TENANT = "t1"
T0 = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
PHONE = "+12065550143"
STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/possync-records/stream/2026-01-01T00:00:00.000"
_sequence = itertools.count(1_000)


# --- records and stream events ---------------------------------------------------------------------------------


def shopper(
    pos_id: str, *, vendor: Vendor = Vendor.POSABIT, cred: str = "c1", minutes: int = 0, **fields: Any
) -> Shopper:
    return Shopper(
        tenant=TENANT,
        vendor=vendor,
        credential_id=cred,
        pos_id=pos_id,
        source_updated_at=T0 + timedelta(minutes=minutes),
        **fields,
    )


def sale(
    sale_id: str,
    customer: str | None,
    day: date,
    cents: int,
    *,
    vendor: Vendor = Vendor.POSABIT,
    cred: str = "c1",
    status: str = "completed",
    refunded: int = 0,
    location: str | None = None,
    minutes: int = 0,
) -> Sale:
    ordered = datetime(day.year, day.month, day.day, 19, 30, tzinfo=UTC)
    return Sale(
        tenant=TENANT,
        vendor=vendor,
        credential_id=cred,
        pos_id=sale_id,
        location_id=location,
        source_updated_at=ordered + timedelta(minutes=minutes),
        customer_pos_id=customer,
        ordered_at=ordered,
        local_date=day,
        timezone="America/Los_Angeles",
        status=status,  # type: ignore[arg-type]
        subtotal_cents=cents,
        total_cents=cents,
        refunded_cents=refunded,
    )


def balance(pos_id: str, customer: str, points: int, as_of: date, *, minutes: int = 0) -> LoyaltyBalance:
    moment = datetime(as_of.year, as_of.month, as_of.day, 20, tzinfo=UTC)
    return LoyaltyBalance(
        tenant=TENANT,
        vendor=Vendor.POSABIT,
        credential_id="c1",
        pos_id=pos_id,
        customer_pos_id=customer,
        points=points,
        as_of=moment,
        source_updated_at=moment + timedelta(minutes=minutes),
    )


def stream_record(record: CanonicalRecord, version: int = 1, event_name: str | None = None) -> dict[str, Any]:
    """The stream record Lambda delivers for a records-table item exactly as RecordStore writes it."""
    key = record_item_key(record)
    image = RecordStore._item(
        key, record, record.content_hash(), iso(record.source_updated_at), version, "raw/page.json.gz", iso(T0)
    )
    sequence = next(_sequence)
    return {
        "eventID": f"event-{sequence}",
        "eventName": event_name or ("INSERT" if version == 1 else "MODIFY"),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": int(T0.timestamp()),
            "Keys": {"pk": image["pk"]},
            "NewImage": image,
            "SequenceNumber": f"{sequence:021d}",
            "SizeBytes": len(json.dumps(image)),
            "StreamViewType": layout.RECORDS_STREAM_VIEW_TYPE,
        },
        "eventSourceARN": STREAM_ARN,
    }


def stream_event(*records: CanonicalRecord | tuple[CanonicalRecord, int] | dict[str, Any]) -> dict[str, Any]:
    out = []
    for r in records:
        if isinstance(r, dict):
            out.append(r)
        elif isinstance(r, tuple):
            out.append(stream_record(*r))
        else:
            out.append(stream_record(r))
    return {"Records": out}


# --- the world: moto resources, settings in SSM, the real handlers ---------------------------------------------


def create_table(ddb: Any, name: str) -> None:
    """A table shaped like the personas table (the control table has the same pk/sk shape)."""
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": layout.PERSONAS_TABLE_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": layout.PERSONAS_TABLE_SORT_KEY, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": layout.PERSONAS_TABLE_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": layout.PERSONAS_TABLE_SORT_KEY, "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@dataclass
class RecordingNotifier:
    notices: list[UnmappedStore] = field(default_factory=list)
    metrics: dict[str, int] = field(default_factory=dict)
    gauges: dict[str, list[int]] = field(default_factory=dict)

    def unmapped_store(self, notice: UnmappedStore) -> None:
        self.notices.append(notice)
        self.counts({"UnmappedStores": 1})

    def counts(self, values: Mapping[str, int]) -> None:
        for name, value in values.items():
            self.metrics[name] = self.metrics.get(name, 0) + value

    def gauge(self, name: str, value: int) -> None:
        self.gauges.setdefault(name, []).append(value)


@dataclass
class World:
    resources: Resources
    monkeypatch: pytest.MonkeyPatch
    ddb: Any = field(default_factory=lambda: boto3.client("dynamodb", region_name="us-east-1"))
    ssm: Any = field(default_factory=lambda: boto3.client("ssm", region_name="us-east-1"))

    @property
    def names(self) -> ResourceNames:
        return self.resources.names

    @property
    def personas_table(self) -> str:
        """The table the handlers write to now (see use_personas_table)."""
        return os.environ[layout.ENV_PERSONAS_TABLE]

    @property
    def store(self) -> PersonaStore:
        return PersonaStore(self.ddb, self.personas_table)

    @property
    def unmapped(self) -> UnmappedStores:
        return UnmappedStores(self.ddb, self.resources.control_table)

    def use_personas_table(self, table: str) -> None:
        """Point the handlers at another personas table (to replay the same records into a second one)."""
        create_table(self.ddb, table)
        self.monkeypatch.setenv(layout.ENV_PERSONAS_TABLE, table)
        reset_handlers()

    def cold_start(self) -> None:
        """New Lambda instances: nothing remembered in memory (caches, clients' services)."""
        reset_handlers()

    def settings(self, vendor: Vendor, raw: dict[str, Any] | str) -> None:
        value = raw if isinstance(raw, str) else json.dumps({"vendor": vendor.value, **raw}, default=str)
        name = self.names.integration_settings_parameter(TENANT, vendor)
        self.ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
        clear_caches()

    def remove_settings(self, vendor: Vendor) -> None:
        self.ssm.delete_parameter(Name=self.names.integration_settings_parameter(TENANT, vendor))
        clear_caches()

    def loyalty(self, **raw: Any) -> None:
        name = self.names.tenant_settings_parameter(TENANT)
        self.ssm.put_parameter(Name=name, Value=json.dumps(raw, default=str), Type="String", Overwrite=True)
        clear_caches()

    def register(self, vendor: Vendor, cred: str, market: str | None = None, **attributes: Any) -> None:
        ControlStore(self.ddb, self.resources.control_table).register_credential(
            RegisteredCredential(
                TENANT,
                vendor,
                cred,
                True,
                f"possync/{TENANT}/{vendor.value}/{cred}",
                market=market,
                attributes=attributes,
            )
        )

    def shoppers(self, *records: Any) -> dict[str, Any]:
        return personas_handler.handler(stream_event(*records), LambdaContext("possync-personas"))

    def sales(self, *records: Any) -> dict[str, Any]:
        return enroll_handler.handler(stream_event(*records), LambdaContext("possync-enroll"))

    def deliver(self, records: Sequence[dict[str, Any]]) -> None:
        """Hand stream records to the consumer whose filter selects them, in the given order and batching."""
        for record in records:
            kind = record["dynamodb"]["NewImage"]["kind"]["S"]
            handler = personas_handler if kind == RecordKind.SHOPPER.value else enroll_handler
            response = handler.handler({"Records": [record]}, LambdaContext(f"possync-{kind}"))
            assert response == {"batchItemFailures": []}

    def persona_of(self, vendor: Vendor, cred: str, pos_id: str) -> Persona:
        owner = self.store.pos_owner(TENANT, vendor, cred, pos_id)
        assert owner is not None, f"{vendor.value}/{pos_id} has no persona"
        found = self.store.get_persona(TENANT, owner)
        assert found is not None
        return found

    def items(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.personas_table, "ConsistentRead": True}
        while True:
            response = self.ddb.scan(**kwargs)
            out += response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return out
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def profiles(self) -> list[Persona]:
        return [persona_from_item(i) for i in self.items() if i["sk"]["S"] == layout.PERSONA_PROFILE_SK]


def reset_handlers() -> None:
    personas_handler.service.cache_clear()
    enroll_handler.service.cache_clear()
    clear_caches()


@pytest.fixture(scope="module")
def aws_resources() -> Iterator[Resources]:
    """The resources provision() creates (as the `resources` fixture does), once per module: each test then gets
    fresh personas and control tables and no settings, which keeps these tests fast."""
    with mock_aws():
        aws.reset_clients()
        clear_caches()
        yield provision(lambda service: boto3.client(service, region_name="us-east-1"))
    aws.reset_clients()
    clear_caches()


_tables = itertools.count(1)


@pytest.fixture
def world(aws_resources: Resources, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    n = next(_tables)
    personas_table, control_table = f"case{n}-personas", f"case{n}-control"
    create_table(ddb, personas_table)
    create_table(ddb, control_table)
    resources = replace(aws_resources, personas_table=personas_table, control_table=control_table)
    ssm = boto3.client("ssm", region_name="us-east-1")
    stored = ssm.get_parameters_by_path(Path=resources.names.ssm_root, Recursive=True).get("Parameters", [])
    for parameter in stored:
        ssm.delete_parameter(Name=parameter["Name"])
    monkeypatch.setenv(layout.ENV_PERSONAS_TABLE, personas_table)
    monkeypatch.setenv(layout.ENV_CONTROL_TABLE, control_table)
    monkeypatch.setenv(layout.ENV_RECORDS_TABLE, resources.records_table)
    monkeypatch.setenv(layout.ENV_RESOURCE_PREFIX, resources.names.prefix)
    reset_handlers()
    yield World(resources, monkeypatch, ddb, ssm)
    reset_handlers()


# --- identity resolution ---------------------------------------------------------------------------------------


def test_one_phone_in_two_poses_is_one_persona_sourced_from_both(world: World) -> None:
    # Given the same person in POSaBIT and in Flourish (one phone, different emails and ids)
    response = world.shoppers(
        shopper("42", phone=PHONE, email="ava@example.com", first_name="Ava"),
        shopper("f-7", vendor=Vendor.FLOURISH, cred="fl1", phone=PHONE, email="ava.k@example.com", last_name="Kim"),
    )
    # Then one persona holds both records, all their identities, and says where it is sourced from
    assert response == {"batchItemFailures": []}
    [persona] = world.profiles()
    assert persona.sources == {"posabit", "flourish"}
    assert persona.source_records == {"posabit#c1#42", "flourish#fl1#f-7"}
    assert (persona.first_name, persona.last_name, persona.email) == ("Ava", "Kim", "ava@example.com")
    claims = [
        Claim("phone", PHONE),
        Claim("email", "ava@example.com"),
        Claim("email", "ava.k@example.com"),
        Claim("pos", "posabit#c1#42"),
        Claim("pos", "flourish#fl1#f-7"),
    ]
    assert set(world.store.claim_owners(TENANT, claims).values()) == {persona.persona_id}
    assert persona.consent == {"sms": "unknown"}


def test_placeholders_and_names_never_merge_people(world: World) -> None:
    # Given two different people who both typed the placeholder phone and placeholder email, with one name
    world.shoppers(
        shopper("1", phone="+11234567890", email="test@test.com", first_name="Sam", last_name="Lee"),
        shopper("2", phone="+11234567890", email="test@test.com", first_name="Sam", last_name="Lee"),
    )
    # Then they stay two personas, and no persona claims or shows the placeholders
    profiles = world.profiles()
    assert len(profiles) == 2
    assert all(p.phone is None and p.email is None for p in profiles)
    claimed = {i["pk"]["S"] for i in world.items() if i["sk"]["S"] == layout.IDENTITY_SK}
    assert claimed == {layout.identity_pk(TENANT, "pos", f"posabit#c1#{n}") for n in ("1", "2")}


def test_email_matches_when_there_is_no_phone_and_the_pos_id_after_that(world: World) -> None:
    world.shoppers(shopper("1", email="bo@example.com"))
    world.shoppers(shopper("9", vendor=Vendor.THSUITE, cred="th1", email="BO@example.com", phone=PHONE))
    [persona] = world.profiles()
    assert persona.phone == PHONE  # the phone filled an empty field and is now claimed by this persona
    assert world.store.claim_owners(TENANT, [Claim("phone", PHONE)]) == {Claim("phone", PHONE): persona.persona_id}
    # a later change of a record with neither phone nor email still finds its persona by its POS id
    world.shoppers((shopper("1", minutes=5, first_name="Bo"), 2))
    [again] = world.profiles()
    assert (again.persona_id, again.first_name) == (persona.persona_id, "Bo")


class SerializedDynamoDB:
    """DynamoDB whose requests are atomic, as the real service's are (moto's transactions are not thread-safe);
    each thread's first transaction waits until every thread has read, so all of them saw "no persona yet"."""

    def __init__(self, client: Any, parties: int) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._barrier = threading.Barrier(parties, timeout=10)
        self._local = threading.local()
        self.cancelled = 0

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
                    if exc.response["Error"]["Code"] == "TransactionCanceledException":
                        self.cancelled += 1
                    raise

        return call


def test_concurrent_shoppers_with_one_phone_make_one_persona(world: World) -> None:
    # Given two shopper records of one phone, handled at the same moment by two consumers
    ddb = SerializedDynamoDB(world.ddb, parties=2)
    store = PersonaStore(ddb, world.personas_table)
    settings = SettingsSource(world.names)
    notifier = RecordingNotifier()

    def consumer() -> LoyaltyService:
        return LoyaltyService(
            store=store,
            settings=settings,
            markets=lambda *_: frozenset(),
            notifier=notifier,
            unmapped=world.unmapped,
        )

    records = [
        shopper("a-1", phone=PHONE, email="one@example.com"),
        shopper("b-2", vendor=Vendor.FLOURISH, cred="fl1", phone=PHONE, email="two@example.com"),
    ]

    def handle(record: Shopper) -> str:
        batch = read_batch(stream_event(record), {RecordKind.SHOPPER})
        outcomes = consumer().shopper_batch(batch.changes, batch.failures)
        assert len(batch.failures) == 0
        [outcome] = outcomes.elements()
        return outcome

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(handle, records))
    # Then both tried to create it, one transaction lost the race, and its retry joined the winner's persona
    assert ddb.cancelled == 1
    assert sorted(outcomes) == ["created", "updated"]
    [persona] = world.profiles()
    assert persona.source_records == {"posabit#c1#a-1", "flourish#fl1#b-2"}
    claims = [Claim("pos", "posabit#c1#a-1"), Claim("pos", "flourish#fl1#b-2"), Claim("email", "two@example.com")]
    assert set(world.store.claim_owners(TENANT, claims).values()) == {persona.persona_id}


def test_a_record_whose_phone_now_matches_another_persona_moves_there(world: World) -> None:
    world.shoppers(shopper("1", email="x@example.com"), shopper("2", vendor=Vendor.THSUITE, cred="th1", phone=PHONE))
    first = world.persona_of(Vendor.POSABIT, "c1", "1")
    other = world.persona_of(Vendor.THSUITE, "th1", "2")
    assert first.persona_id != other.persona_id
    # the POSaBIT record gains the phone the THSuite persona holds: phone matches before the POS id
    world.shoppers((shopper("1", minutes=5, email="x@example.com", phone=PHONE), 2))
    moved = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert moved.persona_id == other.persona_id
    assert moved.sources == {"thsuite", "posabit"}


# --- contact sync ----------------------------------------------------------------------------------------------


def test_without_sync_pos_data_only_fills_empty_fields(world: World) -> None:
    world.shoppers(shopper("1", phone=PHONE, first_name="Ava"))
    world.shoppers((shopper("1", minutes=60, phone=PHONE, first_name="Eva", last_name="Kim"), 2))
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert (persona.first_name, persona.last_name) == ("Ava", "Kim")


def test_with_sync_edits_from_the_enabled_day_overwrite_and_earlier_ones_do_not(world: World) -> None:
    world.settings(Vendor.POSABIT, {"sync_personas": True, "sync_personas_enabled_on": "2026-03-01"})
    world.loyalty(timezone="America/Los_Angeles")
    world.shoppers(shopper("1", minutes=-24 * 60, phone=PHONE, first_name="Ava"))
    # an edit made on Feb 28 (local) is not applied retroactively
    world.shoppers((shopper("1", minutes=-20 * 60, phone=PHONE, first_name="Avery"), 2))
    assert world.persona_of(Vendor.POSABIT, "c1", "1").first_name == "Ava"
    # an edit made on Mar 1 (local) overwrites: the POS is the source of truth
    world.shoppers((shopper("1", minutes=0, phone=PHONE, first_name="Eva", email="eva@example.com"), 3))
    persona = world.persona_of(Vendor.POSABIT, "c1", "1")
    assert (persona.first_name, persona.email) == ("Eva", "eva@example.com")
    assert persona.field_sources["first_name"].source_updated_at == iso(T0)
    # a replayed older change (version 2) never overwrites the newer data
    world.shoppers((shopper("1", minutes=-20 * 60, phone=PHONE, first_name="Avery"), 2))
    assert world.persona_of(Vendor.POSABIT, "c1", "1").first_name == "Eva"


def test_sync_to_relevant_market_only_syncs_contacts_of_the_credential_market(world: World) -> None:
    world.register(Vendor.POSABIT, "c1", market="WA")
    world.settings(
        Vendor.POSABIT,
        {"sync_personas": True, "sync_personas_enabled_on": "2026-01-01", "sync_to_relevant_market": True},
    )
    world.shoppers(
        shopper("wa", phone=PHONE, first_name="Ava", state="WA"), shopper("or", first_name="Olu", state="OR")
    )
    world.shoppers(
        (shopper("wa", minutes=5, phone=PHONE, first_name="Eva", state="WA"), 2),
        (shopper("or", minutes=5, first_name="Ola", state="OR"), 2),
    )
    assert world.persona_of(Vendor.POSABIT, "c1", "wa").first_name == "Eva"
    assert world.persona_of(Vendor.POSABIT, "c1", "or").first_name == "Olu"


def test_credential_markets_come_from_the_registry(world: World) -> None:
    world.register(Vendor.POSABIT, "c1", market="wa")
    world.register(Vendor.FLOURISH, "fl1", regions=["CO", "ok"])
    markets = CredentialMarkets(ControlStore(world.ddb, world.resources.control_table))
    assert markets(TENANT, Vendor.POSABIT, "c1") == {"WA"}
    assert markets(TENANT, Vendor.FLOURISH, "fl1") == {"CO", "OK"}
    assert markets(TENANT, Vendor.FLOURISH, "unknown") == frozenset()


def test_invalid_sync_settings_make_shopper_changes_wait_instead_of_filling_only(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # (This consumer used to fall back to fill-only here, which loses an edit that should overwrite: issue 7.)
    world.settings(Vendor.POSABIT, '{"sync_personas": true}')  # no enabled day: invalid
    world.shoppers(shopper("1", first_name="Ava"))
    world.shoppers((shopper("1", minutes=5, first_name="Eva"), 2))
    # nothing is applied while the settings are invalid, and an operator is told
    assert world.profiles() == []
    assert '"SettingsInvalid"' in capsys.readouterr().out
    # once fixed, the newest change applies (the next batch of that tenant and POS takes the waiting ones first)
    world.settings(Vendor.POSABIT, {"sync_personas": True, "sync_personas_enabled_on": "2026-01-01"})
    world.cold_start()
    world.shoppers(shopper("2", first_name="Bo"))
    assert world.persona_of(Vendor.POSABIT, "c1", "1").first_name == "Eva"


# --- the handler's batch contract ------------------------------------------------------------------------------


def test_the_handler_skips_what_is_not_its_own_and_reports_only_the_failed_record(world: World) -> None:
    removed = stream_record(shopper("gone"), 1, event_name="REMOVE")
    a_sale = stream_record(sale("s1", "1", date(2026, 3, 1), 100))
    broken = stream_record(shopper("bad"))
    broken["dynamodb"]["NewImage"]["data"] = {"S": '{"kind": "shopper"}'}
    response = world.shoppers(removed, a_sale, broken, shopper("ok", phone=PHONE))
    assert response == {"batchItemFailures": [{"itemIdentifier": broken["dynamodb"]["SequenceNumber"]}]}
    assert [p.source_records for p in world.profiles()] == [{"posabit#c1#ok"}]


def test_list_and_get_personas_for_the_cli(world: World) -> None:
    world.shoppers(shopper("1", phone=PHONE, first_name="Ava"), shopper("2", email="bo@example.com"))
    listed = world.store.list_personas(TENANT, limit=10)
    assert {p.first_name for p in listed} == {"Ava", None}
    assert len(world.store.list_personas(TENANT, limit=1)) == 1
    assert world.store.list_personas("other-tenant") == []
    one = world.store.get_persona(TENANT, listed[0].persona_id)
    assert one is not None and one.as_dict()["sources"] == ["posabit"]
    assert one.as_dict()["member"] is False and one.as_dict()["points"] == 0
