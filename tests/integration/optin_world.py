"""An OptinService under moto with in-memory fakes for settings, the SMS provider, the deferral queue and records."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3

from functions.core import layout
from functions.core.layout import RecordKind, Vendor
from functions.core.loyalty.repository import PersonaStore
from functions.core.loyalty.values import Claim, Persona
from functions.core.models import CanonicalRecord, Sale, Shopper
from functions.core.settings import IntegrationSettings, TenantSettings
from functions.core.sms.deferral import Deferred
from functions.core.sms.gateway import Outgoing
from functions.core.sms.service import OptinService
from functions.core.sms.store import ConsentStore

TENANT = "t1"
CREDENTIAL = "c1"
NUMBER = "+12065550123"  # a Seattle area code: America/Los_Angeles
OPTIN_AFTER = date(2026, 1, 1)
# 12:00 in Los Angeles: inside the window
NOON_LA = datetime(2026, 7, 1, 19, 0, tzinfo=UTC)


class FakeSettings:
    def __init__(self, sms_optin_after: date | None = OPTIN_AFTER, **tenant: Any) -> None:
        self.integrations = {
            v: IntegrationSettings(vendor=v, sms_optin_after=sms_optin_after) for v in (Vendor.POSABIT, Vendor.FLOURISH)
        }
        self.tenant_settings = TenantSettings(brand_name="Greenleaf", **tenant)

    def integration(self, tenant: str, vendor: Vendor) -> IntegrationSettings:
        return self.integrations[vendor]

    def tenant(self, tenant: str) -> TenantSettings:
        return self.tenant_settings


@dataclass
class FakeGateway:
    """Records each text; `fail_with` raises instead (after recording the attempt when `after_call`)."""

    sent: list[Outgoing] = field(default_factory=list)
    attempts: int = 0
    fail_with: Exception | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: Outgoing, now: datetime) -> str:
        with self.lock:
            self.attempts += 1
            if self.fail_with is not None:
                raise self.fail_with
            self.sent.append(message)
            return f"msg-{len(self.sent)}"

    def kinds(self, to: str = NUMBER) -> list[str]:
        return [m.kind.value for m in self.sent if m.to == to]


@dataclass
class FakeDeferrals:
    queued: list[Deferred] = field(default_factory=list)

    def defer(self, deferred: Deferred, now: datetime) -> None:
        self.queued.append(deferred)


@dataclass
class FakeRecords:
    records: dict[tuple[str, str, str, str], CanonicalRecord] = field(default_factory=dict)

    def put(self, record: CanonicalRecord) -> None:
        self.records[(record.tenant, record.vendor.value, record.credential_id, record.pos_id)] = record

    def get(
        self, tenant: str, vendor: Vendor, credential_id: str, kind: RecordKind, pos_id: str
    ) -> CanonicalRecord | None:
        return self.records.get((tenant, vendor.value, credential_id, pos_id))


@dataclass
class RecordingNotifier:
    totals: dict[str, int] = field(default_factory=dict)

    def counts(self, values: Mapping[str, int]) -> None:
        for name, value in values.items():
            self.totals[name] = self.totals.get(name, 0) + value

    def gauge(self, name: str, value: int) -> None:
        self.totals[name] = value

    def unmapped_store(self, notice: Any) -> None:
        pass


class Clock:
    def __init__(self, now: datetime = NOON_LA) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class World:
    resources: Any
    clock: Clock
    settings: FakeSettings
    gateway: FakeGateway
    deferrals: FakeDeferrals
    records: FakeRecords
    notifier: RecordingNotifier
    consents: ConsentStore
    personas: PersonaStore

    def service(self) -> OptinService:
        return OptinService(
            consents=ConsentStore(boto3.client("dynamodb"), self.resources.personas_table),
            personas=self.personas,
            records=self.records,
            settings=self.settings,
            gateway=self.gateway,
            deferrals=self.deferrals,
            notifier=self.notifier,
            now=self.clock,
        )

    def shopper(
        self, pos_id: str = "s1", phone: str | None = NUMBER, persona: str | None = "p1", **extra: Any
    ) -> Shopper:
        shopper = Shopper(
            tenant=TENANT,
            vendor=extra.pop("vendor", Vendor.POSABIT),
            credential_id=CREDENTIAL,
            pos_id=pos_id,
            source_updated_at=datetime(2026, 6, 1, tzinfo=UTC),
            phone=phone,
            **extra,
        )
        self.records.put(shopper)
        if persona is not None:
            source = layout.pos_identity_value(shopper.vendor, CREDENTIAL, pos_id)
            self.personas.create_persona(
                Persona(TENANT, persona, phone=phone, source_records=frozenset({source}), created_at="2026-06-01"),
                [Claim("pos", source)],
            )
        return shopper

    def sale(self, pos_id: str = "o1", customer: str = "s1", on: date = date(2026, 7, 1), **extra: Any) -> Sale:
        return Sale(
            tenant=TENANT,
            vendor=extra.pop("vendor", Vendor.POSABIT),
            credential_id=CREDENTIAL,
            pos_id=pos_id,
            source_updated_at=datetime(2026, 7, 1, tzinfo=UTC),
            customer_pos_id=customer,
            ordered_at=datetime.combine(on, datetime.min.time(), tzinfo=UTC) + timedelta(hours=19),
            local_date=on,
            timezone=extra.pop("timezone", "America/Los_Angeles"),
            status=extra.pop("status", "completed"),
            subtotal_cents=1000,
            total_cents=1000,
            **extra,
        )


def make_world(resources: Any, **settings: Any) -> World:
    ddb = boto3.client("dynamodb")
    return World(
        resources=resources,
        clock=Clock(),
        settings=FakeSettings(**settings),
        gateway=FakeGateway(),
        deferrals=FakeDeferrals(),
        records=FakeRecords(),
        notifier=RecordingNotifier(),
        consents=ConsentStore(ddb, resources.personas_table),
        personas=PersonaStore(ddb, resources.personas_table),
    )
