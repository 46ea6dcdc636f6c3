"""Persona -> POS sync, a stream batch at a time: form personas created once as POSaBIT / Flourish customers.

Exactly once, by construction: a durable claim is written before any POS call; the POS is searched (phone,
email) before any create; "creating" is written right before the create is sent, so a create whose answer was
lost (or whose sender stopped) is only ever looked up again, never sent a second time; a created or found
customer is linked to the persona (its POS identity claim) in the same write that records the outcome.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from functions.core import aws, layout, metrics
from functions.core.credentials import Credential
from functions.core.errors import AwsServiceError, CredentialError, SettingsError, VendorUnavailableError
from functions.core.layout import ResourceNames, Vendor
from functions.core.loyalty.codecs import persona_from_item, s
from functions.core.loyalty.settings import SettingsReader, credential_markets, tenant_zone
from functions.core.loyalty.values import Persona, iso
from functions.core.notify import AwsNotifier
from functions.core.observability import logger
from functions.core.pos_sync import rules
from functions.core.pos_sync.records import SyncKey, SyncRecord, SyncStore
from functions.core.pos_sync.writer import PosDuplicateError, PosRejectedError, PosUncertainError, PosWriter
from functions.core.settings import SYNC_VENDORS, IntegrationSettings
from functions.core.sources import CredentialSource, SettingsSource
from functions.core.store import ControlStore, RegisteredCredential
from functions.core.streams import BatchFailures

OUTCOME_METRICS = {
    "created": metrics.POS_SYNC_CREATED,
    "matched": metrics.POS_SYNC_MATCHED,
    "rejected": metrics.POS_SYNC_FAILED,
    "uncertain": metrics.POS_SYNC_UNCERTAIN,
    "retrying": metrics.POS_SYNC_RETRIED,
}


class OpenWriter(Protocol):
    def __call__(self, vendor: Vendor, credential: Credential) -> PosWriter: ...


class MetricCounts(Protocol):
    """functions.core.notify.AwsNotifier, or a fake: counts emitted without dimensions (one alarm per metric)."""

    def counts(self, values: Mapping[str, int]) -> None: ...


class CredentialReader(Protocol):
    def get(self, tenant: str, vendor: Vendor, credential_id: str) -> Credential: ...


class CredentialRegistry(Protocol):
    def credentials(self, vendor: Vendor, tenant: str | None = None) -> list[RegisteredCredential]: ...


@dataclass(frozen=True)
class PersonaChange:
    """One persona profile change of a personas-table stream batch."""

    item_id: str
    key: str
    persona: Persona
    state: str | None  # the contact's state, when the signup recorded one (the market filter reads it)


def persona_changes(event: Mapping[str, Any], failures: BatchFailures) -> list[PersonaChange]:
    """The persona profiles a personas-table stream event carries (inserted or modified), in stream order."""
    changes: list[PersonaChange] = []
    for raw in event.get("Records") or []:
        dynamodb = raw.get("dynamodb") or {}
        item_id = str(dynamodb.get("SequenceNumber", ""))
        keys = dynamodb.get("Keys") or {}
        key = s(keys, "pk") or item_id
        if raw.get("eventName") not in ("INSERT", "MODIFY") or s(keys, "sk") != layout.PERSONA_PROFILE_SK:
            continue
        image = dynamodb.get("NewImage") or {}
        try:
            persona = persona_from_item(image)
        except (AttributeError, KeyError, TypeError, ValueError):
            # A damaged profile (a JSON attribute that is no object, a map entry of the wrong type) fails alone:
            # raising would fail the whole batch and hold the other personas' POS creates back.
            failures.fail(item_id, key, "the stream record is not a persona profile")
            continue
        if not persona.tenant or not persona.persona_id:
            failures.fail(item_id, key, "the stream record is not a persona profile")
            continue
        unreadable = unreadable_dates(persona)
        if unreadable:
            # The rules read both; the reason names the fields, never their values (a birth date is personal data).
            failures.fail(item_id, key, f"the persona profile's {' and '.join(unreadable)} is not an ISO 8601 date")
            continue
        changes.append(PersonaChange(item_id, key, persona, s(image, "state")))
    return changes


def unreadable_dates(persona: Persona) -> list[str]:
    """The profile's date attributes the sync rules read (created_at, birth_date) that are set but not ISO 8601."""
    unreadable = []
    for name, parse in (("created_at", datetime.fromisoformat), ("birth_date", date.fromisoformat)):
        value = getattr(persona, name)
        if not value:
            continue
        try:
            parse(value)
        except (TypeError, ValueError):
            unreadable.append(name)
    return unreadable


@dataclass
class _Tenant:
    """What one batch read of a tenant's settings and credentials (once per batch)."""

    zone: ZoneInfo | None = None
    integrations: dict[Vendor, IntegrationSettings] = field(default_factory=dict)
    credentials: dict[Vendor, list[RegisteredCredential]] = field(default_factory=dict)


class PosSyncService:
    def __init__(
        self,
        *,
        store: SyncStore,
        settings: SettingsReader,
        registry: CredentialRegistry,
        credentials: CredentialReader,
        open_writer: OpenWriter,
        notifier: MetricCounts,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.settings = settings
        self.registry = registry
        self.credentials = credentials
        self.open_writer = open_writer
        self.notifier = notifier
        self.now = now

    @classmethod
    def from_env(cls, open_writer: OpenWriter) -> PosSyncService:
        names = ResourceNames.from_env()
        ddb = aws.client("dynamodb")
        return cls(
            store=SyncStore(ddb, os.environ.get(layout.ENV_PERSONAS_TABLE, names.personas_table)),
            settings=SettingsSource(names),
            registry=ControlStore(ddb, os.environ.get(layout.ENV_CONTROL_TABLE, names.control_table)),
            credentials=CredentialSource(names),
            open_writer=open_writer,
            notifier=AwsNotifier(aws.client("events")),
        )

    # --- one batch -----------------------------------------------------------------------------------------------
    def batch(self, changes: Sequence[PersonaChange], failures: BatchFailures) -> Counter[str]:
        outcomes: Counter[str] = Counter()
        run = _Run(self, uuid.uuid4().hex)
        try:
            for tenant in dict.fromkeys(c.persona.tenant for c in changes):
                run.tenant([c for c in changes if c.persona.tenant == tenant], failures, outcomes)
        finally:
            run.close()
        self.notifier.counts({metric: outcomes[o] for o, metric in OUTCOME_METRICS.items()})
        return outcomes


class _Run:
    """One batch's work: its claim owner token, the settings it read and the POS writers it opened."""

    def __init__(self, service: PosSyncService, owner: str) -> None:
        self.service = service
        self.owner = owner
        self.writers: dict[tuple[str, Vendor, str], PosWriter] = {}

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def tenant(self, changes: Sequence[PersonaChange], failures: BatchFailures, outcomes: Counter[str]) -> None:
        tenant = changes[0].persona.tenant
        try:
            context = self._context(tenant, outcomes, len(changes))
        except AwsServiceError as exc:
            logger.warning("pos sync retried: settings or credentials unreadable", tenant=tenant, error=str(exc))
            for change in changes:
                failures.fail(change.item_id, change.key, "settings or credentials could not be read")
            return
        if not context.integrations:
            if not outcomes["settings invalid"]:
                outcomes["not synced"] += len(changes)
            return
        plan: list[tuple[PersonaChange, Vendor, str, rules.Decision]] = []
        for change in changes:
            for vendor, integration in context.integrations.items():
                for entry in context.credentials.get(vendor, []):
                    assert context.zone is not None
                    decision = rules.decide(
                        change.persona,
                        integration,
                        entry.credential_id,
                        context.zone,
                        credential_markets(entry),
                        change.state,
                    )
                    plan.append((change, vendor, entry.credential_id, decision))
        worth = [
            (c.persona.persona_id, v, cred)
            for c, v, cred, d in plan
            if isinstance(d, rules.Sync) or d.record or d.pos_id is not None
        ]
        try:
            existing = self.service.store.get(tenant, worth) if worth else {}
        except AwsServiceError as exc:
            logger.warning("pos sync retried: sync records unreadable", tenant=tenant, error=str(exc))
            for change in changes:
                failures.fail(change.item_id, change.key, "sync records could not be read")
            return
        for change, vendor, credential_id, decision in plan:
            if failures.blocked(change.key):
                failures.fail(change.item_id, change.key, "an earlier record of the same persona failed")
                continue
            key: SyncKey = (change.persona.persona_id, vendor, credential_id)
            try:
                outcome = self._one(change, vendor, credential_id, decision, existing.get(key))
            except AwsServiceError as exc:
                logger.warning("pos sync retried", tenant=tenant, vendor=vendor.value, error=str(exc))
                failures.fail(change.item_id, change.key, type(exc).__name__)
                continue
            except _Retry as retry:
                failures.fail(change.item_id, change.key, retry.reason)
                outcome = retry.outcome
            outcomes[outcome] += 1

    def _context(self, tenant: str, outcomes: Counter[str], records: int) -> _Tenant:
        service = self.service
        context = _Tenant()
        for vendor in sorted(SYNC_VENDORS):
            try:
                integration = service.settings.integration(tenant, vendor)
            except SettingsError as exc:
                # Fail safe: nothing is written to a POS under settings nobody can read correctly (alarmed).
                logger.error("pos sync skipped: settings invalid", tenant=tenant, vendor=vendor.value, error=str(exc))
                service.notifier.counts({metrics.SETTINGS_INVALID: records})
                outcomes["settings invalid"] += records
                continue
            if integration.sync_personas and not integration.use_last_backup:
                context.integrations[vendor] = integration
                context.credentials[vendor] = [c for c in service.registry.credentials(vendor, tenant) if c.active]
        if context.integrations:
            try:
                context.zone = tenant_zone(service.settings, tenant)
            except SettingsError as exc:  # the tenant's own settings: no sync to any POS until they are fixed
                logger.error("pos sync skipped: tenant settings invalid", tenant=tenant, error=str(exc))
                service.notifier.counts({metrics.SETTINGS_INVALID: records})
                outcomes["settings invalid"] += records
                context.integrations.clear()
        return context

    # --- one persona and credential --------------------------------------------------------------------------------
    def _record(self, change: PersonaChange, vendor: Vendor, credential_id: str, state: str, **kw: Any) -> SyncRecord:
        now = iso(self.service.now())
        return SyncRecord(
            tenant=change.persona.tenant,
            persona_id=change.persona.persona_id,
            vendor=vendor,
            credential_id=credential_id,
            state=state,
            owner=self.owner,
            claimed_at=kw.pop("claimed_at", now),
            updated_at=now,
            **kw,
        )

    def _one(
        self,
        change: PersonaChange,
        vendor: Vendor,
        credential_id: str,
        decision: rules.Decision,
        existing: SyncRecord | None,
    ) -> str:
        if existing is not None and existing.state in rules.TERMINAL_STATES:
            return "already synced"
        if isinstance(decision, rules.Skip):
            if decision.pos_id is not None and existing is not None and existing.state in rules.SETTLED_BY_PULL:
                return self._settle(change, existing, decision.pos_id)
            if not decision.record:
                return "not synced"
            if existing is None or (existing.state == "skipped" and existing.reason != decision.reason):
                self.service.store.note(self._record(change, vendor, credential_id, "skipped", reason=decision.reason))
            return "skipped"
        access = "free"
        if existing is not None:
            access = rules.take_over(existing.state, existing.claimed_at, self.service.now())
        if access == "held":
            raise _Retry("another invocation is creating this customer", "held")
        claimed = self._record(change, vendor, credential_id, "uncertain" if access == "uncertain" else "claimed")
        if existing is not None and access == "uncertain":
            claimed = replace(claimed, reason=existing.reason, claimed_at=existing.claimed_at)
        if not self.service.store.claim(claimed, existing):
            raise _Retry("another invocation claimed this sync first", "held")
        writer = self._writer(change.persona.tenant, vendor, credential_id, claimed)
        if access == "uncertain":
            return self._look_up_uncertain(writer, decision.contact, claimed)
        return self._sync(writer, decision.contact, claimed)

    def _settle(self, change: PersonaChange, existing: SyncRecord, pos_id: str) -> str:
        """The persona became a customer of the credential while its sync record waited (a create whose answer was
        lost and no search found, one waiting to retry, an abandoned claim): the pull brought the POS customer back
        into it, so the record is linked to that customer. Nothing is sent to the POS. A create still in flight is
        left to finish."""
        if rules.take_over(existing.state, existing.claimed_at, self.service.now()) == "held":
            return "not synced"
        claimed = replace(existing, owner=self.owner, updated_at=iso(self.service.now()))
        if not self.service.store.claim(claimed, existing):
            return "lost race"
        reason = f"the pull brought the customer back (was {existing.state}: {existing.reason or 'no reason'})"
        return self._link(claimed, "matched", pos_id, reason[:500])

    def _writer(self, tenant: str, vendor: Vendor, credential_id: str, claimed: SyncRecord) -> PosWriter:
        key = (tenant, vendor, credential_id)
        if key not in self.writers:
            try:
                credential = self.service.credentials.get(tenant, vendor, credential_id)
                self.writers[key] = self.service.open_writer(vendor, credential)
            except CredentialError as exc:
                self._retry_later(claimed, str(exc), failed=True)
        return self.writers[key]

    def _sync(self, writer: PosWriter, contact: rules.Contact, claimed: SyncRecord) -> str:
        store = self.service.store
        try:
            found = writer.find(contact)
        except (VendorUnavailableError, CredentialError) as exc:
            self._retry_later(claimed, str(exc), failed=isinstance(exc, CredentialError))
        if found:
            return self._link(claimed, "matched", found[0], "found in the POS by phone or email")
        creating = replace(claimed, state="creating", updated_at=iso(self.service.now()))
        if not store.advance(creating):
            return "lost race"  # another invocation took the claim over before anything was sent
        try:
            pos_id = writer.create(contact)
        except PosDuplicateError as exc:
            return self._after_duplicate(writer, contact, creating, str(exc))
        except PosUncertainError as exc:
            uncertain = replace(creating, state="uncertain", reason=str(exc), updated_at=iso(self.service.now()))
            store.advance(uncertain)
            return self._look_up_uncertain(writer, contact, uncertain)
        except PosRejectedError as exc:
            logger.error("pos sync rejected", vendor=writer.vendor.value, status=exc.status, fields=list(exc.fields))
            store.advance(replace(creating, state="rejected", reason=str(exc), updated_at=iso(self.service.now())))
            return "rejected"
        except (VendorUnavailableError, CredentialError) as exc:  # not sent, or rate limited: nothing was created
            self._retry_later(creating, str(exc), failed=isinstance(exc, CredentialError))
        return self._link(creating, "created", pos_id, "created in the POS")

    def _after_duplicate(self, writer: PosWriter, contact: rules.Contact, creating: SyncRecord, why: str) -> str:
        try:
            found = writer.find(contact)
        except (VendorUnavailableError, CredentialError) as exc:
            self._retry_later(replace(creating, state="retrying"), str(exc), failed=isinstance(exc, CredentialError))
        if found:
            return self._link(creating, "matched", found[0], "the POS reported a duplicate; found by phone or email")
        reason = f"{why}, but no customer with this phone or email was found; check the POS"
        rejected = replace(creating, state="rejected", reason=reason, updated_at=iso(self.service.now()))
        self.service.store.advance(rejected)
        return "rejected"

    def _look_up_uncertain(self, writer: PosWriter, contact: rules.Contact, uncertain: SyncRecord) -> str:
        """A create that may have happened is looked up, never sent again; not found, it stays uncertain (alarmed)."""
        try:
            found = writer.find(contact)
        except (VendorUnavailableError, CredentialError) as exc:
            logger.warning("uncertain pos create could not be looked up", vendor=writer.vendor.value, error=str(exc))
            raise _Retry("an uncertain create could not be looked up yet", "uncertain") from None
        if found:
            return self._link(uncertain, "matched", found[0], "the create's answer was lost; found by phone or email")
        logger.error("pos create uncertain: not found by search, never repeated", vendor=writer.vendor.value)
        return "uncertain"

    def _link(self, record: SyncRecord, state: str, pos_id: str, reason: str) -> str:
        now = iso(self.service.now())
        done = replace(record, state=state, pos_id=pos_id, reason=reason, updated_at=now, synced_at=now)
        if not self.service.store.link(done, record.tenant, now):
            return "lost race"
        logger.info("persona synced to pos", vendor=record.vendor.value, outcome=state, persona=record.persona_id)
        return state

    def _retry_later(self, record: SyncRecord, reason: str, failed: bool = False) -> Any:
        """Nothing was created: record why (the persona shows it), count it, and fail the record to be retried."""
        self.service.store.advance(replace(record, state="retrying", reason=reason, updated_at=iso(self.service.now())))
        if failed:
            self.service.notifier.counts({metrics.POS_SYNC_FAILED: 1})
        logger.warning("pos sync retried later", vendor=record.vendor.value, error=reason)
        raise _Retry(reason, "retrying")


class _Retry(Exception):  # noqa: N818 - control flow inside the batch, never raised out of it
    def __init__(self, reason: str, outcome: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.outcome = outcome
