"""The opt-in rules as the consumer, the deferral handler and the reply handler run them.

Sending one request: the eligibility rule (rules.py) on the sale and the persona; then the durable send intent
(ConsentStore.record_intent, conditional, before any provider call); then `deliver`: quiet hours and the 24 h cap
(defer), a conditional claim of the request (INTENT/DEFERRED -> SENDING), the provider call, the outcome recorded.
A redelivery finds the intent and resumes it only if the provider was never called; a request left SENDING (a crash
during the call) is marked UNCERTAIN and reported, never sent again.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from functions.core import aws, layout, metrics
from functions.core.errors import AwsServiceError, SettingsError
from functions.core.layout import RecordKind, ResourceNames
from functions.core.loyalty.repository import PersonaStore
from functions.core.loyalty.settings import SettingsReader, report_settings_problem
from functions.core.loyalty.values import iso
from functions.core.models import CanonicalRecord, Sale, Shopper
from functions.core.notify import AwsNotifier, Notifier
from functions.core.observability import logger
from functions.core.sms import rules
from functions.core.sms.consent import SENDABLE, Consent, Evidence, State
from functions.core.sms.deferral import ENV_DEFERRAL_QUEUE_URL, Deferrals, Deferred, SqsDeferrals
from functions.core.sms.gateway import (
    Outgoing,
    SendRejectedError,
    SendUnavailableError,
    SendUncertainError,
    SmsGateway,
    gateway_from_env,
)
from functions.core.sms.keywords import classify
from functions.core.sms.quiet import next_window, recipient_zones
from functions.core.sms.store import ConsentStore
from functions.core.sms.templates import Kind, Templates
from functions.core.sources import SettingsSource
from functions.core.store import RecordStore, record_item_key
from functions.core.streams import BatchFailures, RecordChange, StreamChange

# A request still SENDING after this long was interrupted during the provider call (the function timeout is 2 min).
STALE_SENDING = timedelta(minutes=10)
ENV_NOW = "POSSYNC_NOW"  # the local runtime's `--now`: the instant the run pretends it started at

OUTCOME_METRICS = {
    "sent": metrics.SMS_REQUESTS_SENT,
    "deferred": metrics.SMS_REQUESTS_DEFERRED,
    "failed": metrics.SMS_SENDS_FAILED,
    "uncertain": metrics.SMS_SENDS_UNCERTAIN,
    "confirmed": metrics.SMS_CONFIRMED,
    "opted_out": metrics.SMS_OPTED_OUT,
    "pos_opted_out": metrics.SMS_OPTED_OUT,
    "malformed": metrics.SMS_REPLIES_MALFORMED,
}


class RecordReader(Protocol):
    """functions.core.store.RecordStore, or a fake: one stored record by its key."""

    def get(
        self, tenant: str, vendor: layout.Vendor, credential_id: str, kind: RecordKind, pos_id: str
    ) -> CanonicalRecord | None: ...


@dataclass(frozen=True)
class Reapplied:
    """What `OptinService.reapply` did: the outcomes of the records applied, and how many failed (retry them)."""

    outcomes: Counter[str]
    failed: int


class PersonaNotYetError(AwsServiceError):
    """The sale's shopper has no persona yet (the personas consumer has not seen it): the record is retried."""


def runtime_clock() -> Callable[[], datetime]:
    """The wall clock, or the local runtime's pretend clock (POSSYNC_NOW plus the time since it started)."""
    pretend = os.environ.get(ENV_NOW)
    if not pretend:
        return lambda: datetime.now(UTC)
    start, offset = datetime.fromisoformat(pretend), datetime.now(UTC)
    if start.tzinfo is None:
        raise ValueError(f"{ENV_NOW} must be an ISO-8601 instant with its offset, e.g. 2026-03-08T21:30:00-08:00")
    return lambda: start + (datetime.now(UTC) - offset)


def _customer(record: CanonicalRecord) -> tuple[str, str, str, str]:
    return (record.tenant, record.vendor.value, record.credential_id, record.pos_id)


class OptinService:
    def __init__(
        self,
        *,
        consents: ConsentStore,
        personas: PersonaStore,
        records: RecordReader,
        settings: SettingsReader,
        gateway: SmsGateway | None,
        deferrals: Deferrals,
        notifier: Notifier,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.consents = consents
        self.personas = personas
        self.records = records
        self.settings = settings
        self.gateway = gateway
        self.deferrals = deferrals
        self.notifier = notifier
        self.now = now

    @classmethod
    def from_env(cls) -> OptinService:
        names = ResourceNames.from_env()
        ddb = aws.client("dynamodb")
        personas_table = os.environ.get(layout.ENV_PERSONAS_TABLE, names.personas_table)
        return cls(
            consents=ConsentStore(ddb, personas_table),
            personas=PersonaStore(ddb, personas_table),
            records=RecordStore(ddb, os.environ.get(layout.ENV_RECORDS_TABLE, names.records_table)),
            settings=SettingsSource(names),
            gateway=gateway_from_env(aws.client),
            deferrals=SqsDeferrals(aws.client("sqs"), os.environ[ENV_DEFERRAL_QUEUE_URL]),
            notifier=AwsNotifier(aws.client("events")),
            now=runtime_clock(),
        )

    def count(self, outcomes: Counter[str]) -> None:
        totals: Counter[str] = Counter()
        for outcome, metric in OUTCOME_METRICS.items():
            totals[metric] += outcomes.get(outcome, 0)
        self.notifier.counts(totals)

    # --- the stream consumer -------------------------------------------------------------------------------
    def batch(self, changes: Sequence[StreamChange], failures: BatchFailures) -> Counter[str]:
        """Sales may ask for an opt-in; shoppers carry the consent their POS recorded. A transient failure fails
        the record (and the later records of the same item); every decision is a conditional write, so the
        redelivered records decide nothing twice."""
        outcomes: Counter[str] = Counter()
        settled = self._settled_sales(changes)
        waiting = self._waiting_shoppers(changes)
        for change in changes:
            if failures.blocked(change.key):
                failures.fail(change.item_id, change.key, "an earlier record of the same item failed")
                continue
            record = change.change.record
            if change.item_id in settled:
                outcomes[settled[change.item_id]] += 1
                continue
            try:
                try:
                    if isinstance(record, Sale):
                        outcome = self.sale(record)
                    elif isinstance(record, Shopper):
                        outcome = self.shopper(record, maybe_waiting=waiting is None or _customer(record) in waiting)
                    else:
                        outcome = "ignored"
                except SettingsError as exc:
                    outcome = self._wait_for_settings(record, exc)
            except AwsServiceError as exc:
                logger.warning("opt-in record failed; retried", error=str(exc), tenant=record.tenant)
                failures.fail(change.item_id, change.key, type(exc).__name__)
                continue
            outcomes[outcome] += 1
        return outcomes

    def reapply(self, records: Sequence[tuple[CanonicalRecord, int]]) -> Reapplied:
        """Stored sales and shoppers (each with its version in the records table) again: what the re-evaluation job
        runs after a settings change (`sms_optin_after` set, tenant settings fixed). The stream consumer's own batch
        path, so a persona is asked once, ever, however the job and the stream interleave or the job repeats."""
        changes = [
            StreamChange(f"reapply#{index}", record_item_key(record), RecordChange(record.kind, version, record))
            for index, (record, version) in enumerate(records)
            if isinstance(record, Sale | Shopper)
        ]
        failures = BatchFailures()
        outcomes = self.batch(changes, failures)
        self.count(outcomes)
        return Reapplied(outcomes, len(failures))

    def _wait_for_settings(self, record: CanonicalRecord, exc: SettingsError) -> str:
        """Invalid settings text no one (fail safe). The record waits for valid settings: the waiting flag of its
        tenant and POS makes the re-evaluation job their fix requests run over the stored records (through
        `reapply`) even when the fixed settings read as those of its last run. AwsServiceError if the flag could not
        be raised (the record is then retried)."""
        report_settings_problem(self.notifier, exc, record.tenant, record.vendor, "optin", 1)
        self.personas.flag_waiting(record.tenant, record.vendor, iso(self.now()))
        logger.warning(
            "opt-in waits for valid settings: asked by the re-evaluation their fix runs",
            tenant=record.tenant,
            vendor=record.vendor.value,
            kind=record.kind.value,
        )
        return "waiting_for_settings"

    def _settled_sales(self, changes: Sequence[StreamChange]) -> dict[str, str]:
        """The qualifying sales of a batch whose persona was asked before or has answered, found with a few batched
        reads (owners, profiles, consents and markers) instead of several reads per sale; and the later sales of a
        customer whose earlier sale in the batch asks already. Everything else takes the one-by-one path."""
        candidates: dict[tuple[str, layout.Vendor, str, str], list[str]] = {}
        for change in changes:
            sale = change.change.record
            if not isinstance(sale, Sale) or sale.customer_pos_id is None:
                continue
            try:
                after = self.settings.integration(sale.tenant, sale.vendor).sms_optin_after
            except (SettingsError, AwsServiceError):
                continue  # the one-by-one path reports it
            if rules.sale_qualifies(sale, after):
                key = (sale.tenant, sale.vendor, sale.credential_id, sale.customer_pos_id)
                candidates.setdefault(key, []).append(change.item_id)
        settled: dict[str, str] = {}
        for tenant in {key[0] for key in candidates}:
            customers = {key[1:]: ids for key, ids in candidates.items() if key[0] == tenant}
            try:
                owners = self.personas.pos_owners(tenant, list(customers))
                personas = self.personas.get_personas(tenant, set(owners.values()))
                numbers = {p.persona_id: p.phone for p in personas.values() if p.phone and rules.textable(p.phone)}
                done = self.consents.settled(tenant, numbers)
            except AwsServiceError as exc:
                logger.warning("opt-in batch reads failed; sales read one by one", error=str(exc), tenant=tenant)
                continue
            first_of: dict[str, str] = {}
            for customer, ids in customers.items():
                persona_id = owners.get(customer)
                if persona_id is None:
                    continue
                if persona_id in done:
                    settled.update(dict.fromkeys(ids, done[persona_id]))
                    continue
                # one sale per persona in a batch is enough to ask; a failure of that one fails its own record
                first = first_of.setdefault(persona_id, ids[0])
                settled.update({i: "already_requested" for i in ids if i != first})
        return settled

    def sale(self, sale: Sale) -> str:
        try:
            integration = self.settings.integration(sale.tenant, sale.vendor)
            self.settings.tenant(sale.tenant)  # read now: invalid tenant settings text no one (fail safe)
        except AwsServiceError as exc:  # SettingsUnavailableError: unreadable, so the record fails and is retried
            report_settings_problem(self.notifier, exc, sale.tenant, sale.vendor, "optin", 1)
            raise
        if not rules.sale_qualifies(sale, integration.sms_optin_after) or sale.customer_pos_id is None:
            return "not_eligible"
        if self.gateway is None:
            logger.warning(
                "opt-in not sent: the stack has no SMS origination identity (deploy with -c sms_origination_identity)",
                tenant=sale.tenant,
            )
            return "sms_not_configured"
        persona_id = self.personas.pos_owner(sale.tenant, sale.vendor, sale.credential_id, sale.customer_pos_id)
        sale_ref = f"{sale.vendor.value}#{sale.credential_id}#{sale.pos_id}"
        if persona_id is None:
            # The shopper's record has not made a persona yet: the sale waits for it (the opt-in consumer sees the
            # shopper record too), then the owner is read again in case the persona appeared meanwhile.
            waiting = {"tenant": sale.tenant, "store_zone": sale.timezone, "sale": sale_ref}
            self.consents.park_sale(sale.tenant, sale.vendor.value, sale.credential_id, sale.customer_pos_id, waiting)
            persona_id = self.personas.pos_owner(sale.tenant, sale.vendor, sale.credential_id, sale.customer_pos_id)
            if persona_id is None:
                return "waiting_for_persona"
            asked = self._ask(sale.tenant, persona_id, sale.timezone, sale_ref)
            self.consents.drop_waiting_sale(sale.tenant, sale.vendor.value, sale.credential_id, sale.customer_pos_id)
            return asked
        return self._ask(sale.tenant, persona_id, sale.timezone, sale_ref)

    def _ask(self, tenant_id: str, persona_id: str, store_zone: str | None, sale_ref: str) -> str:
        """The opt-in request of a persona with a qualifying sale, unless it was ever asked or has answered."""
        persona = self.personas.get_persona(tenant_id, persona_id)
        if persona is None:
            raise PersonaNotYetError("the sale's persona is not readable yet")
        if not rules.textable(persona.phone) or persona.phone is None:
            return "no_phone"
        number = persona.phone
        tenant = self.settings.tenant(tenant_id)
        existing = self.consents.consent(tenant_id, number)
        if existing is not None:
            return self._resume(existing, tenant.sms_texts())
        if self.consents.persona_marker(tenant_id, persona_id) is not None:
            return "already_requested"
        shoppers = self._shoppers(persona.tenant, persona.source_records)
        flagged = rules.pos_consent(shoppers)
        if flagged is not None:
            return self._record_pos_consent(tenant_id, number, *flagged)
        state = next((s.state for s in shoppers if s.state and s.phone == number), None)
        zones = recipient_zones(state=state, store_zone=store_zone, number=number)
        templates = tenant.sms_texts()
        now = self.now()
        consent = Consent(
            tenant=tenant_id,
            number=number,
            state=State.INTENT,
            source="optin",
            persona_id=persona_id,
            template_version=templates.version,
            request_text=templates.render(Kind.OPTIN_REQUEST),
            zones=zones,
            requested_at=iso(now),
        )
        evidence = Evidence(
            tenant_id,
            number,
            "requested",
            iso(now),
            "optin",
            {
                "persona_id": persona_id,
                "template_version": templates.version,
                "text": consent.request_text,
                "sale": sale_ref,
                "zones": ",".join(zones),
            },
        )
        if not self.consents.record_intent(consent, evidence):
            return "duplicate"
        return self.deliver(consent, templates)

    def _shoppers(self, tenant: str, sources: frozenset[str]) -> list[Shopper]:
        found: list[Shopper] = []
        for source in sorted(sources):
            vendor, credential_id, pos_id = source.split("#", 2)
            record = self.records.get(tenant, layout.Vendor(vendor), credential_id, RecordKind.SHOPPER, pos_id)
            if isinstance(record, Shopper):
                found.append(record)
        return found

    def _resume(self, consent: Consent, templates: Templates) -> str:
        """A consent found where a request would be recorded: an earlier attempt's intent (resumed only if the
        provider was never called), an interrupted send (marked uncertain), or an answer (nothing to do)."""
        if consent.source != "optin":
            return "answered"
        if consent.state in SENDABLE:
            return self.deliver(consent, templates)
        if consent.state is State.SENDING and consent.sent_at is None:
            started = datetime.fromisoformat(consent.sending_since or consent.requested_at or iso(self.now()))
            if self.now() - started >= STALE_SENDING:
                return self._uncertain(consent, "interrupted during the provider call")
        return "already_requested"

    # --- sending -------------------------------------------------------------------------------------------
    def deliver(self, consent: Consent, templates: Templates) -> str:
        """Send a recorded request now if quiet hours and the cap allow, else defer it; exactly one provider call."""
        now = self.now()
        opens = next_window(now, consent.zones)
        if opens is None:
            logger.error("no shared daytime window for the recipient's zones; not sent", tenant=consent.tenant)
            return self._fail(consent, "no shared daytime window across the recipient's time zones")
        if opens > now:
            return self._defer(consent, opens, "quiet hours")
        frees = self.consents.reserve_text(consent.number, now)
        if frees is not None:
            later = next_window(frees, consent.zones) or frees
            return self._defer(consent, later, "24 h text cap")
        sending = replace(consent, state=State.SENDING, deferred_until=None, sending_since=iso(now))
        if not self.consents.change(consent, sending):
            return "duplicate"  # another batch, the deferral queue or a STOP got there first
        claimed = replace(sending, version=consent.version + 1)
        body = consent.request_text or templates.render(Kind.OPTIN_REQUEST)
        try:
            message_id = self._gateway().send(Outgoing(consent.tenant, consent.number, Kind.OPTIN_REQUEST, body), now)
        except SendUnavailableError:
            self.consents.change(claimed, replace(claimed, state=State.INTENT))
            raise
        except SendUncertainError as exc:
            return self._uncertain(claimed, str(exc))
        except SendRejectedError as exc:
            return self._fail(claimed, str(exc))
        sent = replace(claimed, state=State.REQUESTED, sent_at=iso(now), message_ids=(*claimed.message_ids, message_id))
        event = Evidence(
            consent.tenant,
            consent.number,
            "sent",
            iso(now),
            "optin",
            {"message_id": message_id, "kind": "optin_request"},
        )
        if not self.consents.change(claimed, sent, [event]):
            logger.warning("opt-in request sent but its record changed meanwhile", tenant=consent.tenant)
            self.consents.append(event)
        logger.info("opt-in request sent", tenant=consent.tenant, message_id=message_id)
        return "sent"

    def _gateway(self) -> SmsGateway:
        if self.gateway is None:
            raise SendUnavailableError("no SMS origination identity is configured (-c sms_origination_identity)")
        return self.gateway

    def _defer(self, consent: Consent, until: datetime, why: str) -> str:
        now = self.now()
        self.deferrals.defer(Deferred(consent.tenant, consent.number, until), now)
        if consent.state is State.DEFERRED and consent.deferred_until == iso(until):
            return "deferred"
        deferred = replace(consent, state=State.DEFERRED, deferred_until=iso(until))
        event = Evidence(
            consent.tenant, consent.number, "deferred", iso(now), "optin", {"until": iso(until), "why": why}
        )
        self.consents.change(consent, deferred, [event])
        logger.info("opt-in request deferred", tenant=consent.tenant, until=iso(until), why=why)
        return "deferred"

    def _uncertain(self, consent: Consent, why: str) -> str:
        now = self.now()
        marked = replace(consent, state=State.UNCERTAIN)
        event = Evidence(consent.tenant, consent.number, "uncertain", iso(now), "optin", {"why": why})
        self.consents.change(consent, marked, [event])
        logger.error("opt-in send uncertain: not repeated; check the provider's delivery events", tenant=consent.tenant)
        return "uncertain"

    def _fail(self, consent: Consent, why: str) -> str:
        now = self.now()
        failed = replace(consent, state=State.FAILED)
        event = Evidence(consent.tenant, consent.number, "failed", iso(now), "optin", {"why": why})
        self.consents.change(consent, failed, [event])
        logger.error("opt-in request not sent", tenant=consent.tenant, why=why)
        return "failed"

    # --- the deferral queue ----------------------------------------------------------------------------------
    def deferred(self, request: Deferred) -> str:
        """A deferred request's time came (or a hop of its wait ended): sent if still wanted, else dropped."""
        now = self.now()
        if now < request.not_before:
            self.deferrals.defer(request, now)
            return "waiting"
        consent = self.consents.consent(request.tenant, request.number)
        if consent is None or consent.state not in SENDABLE:
            return "cancelled"  # a STOP, a POS opt-out or another delivery came first
        try:
            templates = self.settings.tenant(request.tenant).sms_texts()
        except SettingsError as exc:
            logger.error("tenant settings invalid; deferred request waits", error=str(exc), tenant=request.tenant)
            self.deferrals.defer(Deferred(request.tenant, request.number, now + timedelta(hours=1)), now)
            return "waiting"
        return self.deliver(consent, templates)

    # --- consent the POS recorded --------------------------------------------------------------------------
    def _waiting_shoppers(self, changes: Sequence[StreamChange]) -> set[tuple[str, str, str, str]] | None:
        """The batch's shoppers with a sale waiting for their persona, in one batched read (None: read each)."""
        shoppers = {_customer(c.change.record) for c in changes if isinstance(c.change.record, Shopper)}
        if not shoppers:
            return set()
        try:
            return self.consents.waiting_sales(shoppers)
        except AwsServiceError as exc:
            logger.warning("waiting sales not read in a batch; read one by one", error=str(exc))
            return None

    def shopper(self, shopper: Shopper, maybe_waiting: bool = True) -> str:
        """The consent the POS records (below), then a qualifying sale that waited for this shopper's persona."""
        outcome = self.pos_consent(shopper)
        if not maybe_waiting:
            return outcome
        waiting = self.consents.waiting_sale(
            shopper.tenant, shopper.vendor.value, shopper.credential_id, shopper.pos_id
        )
        if waiting is None:
            return outcome
        persona_id = self.personas.pos_owner(shopper.tenant, shopper.vendor, shopper.credential_id, shopper.pos_id)
        if persona_id is None:
            if self.personas.is_waiting(shopper):
                # Settled, not late: the personas consumer parked the shopper until its settings are valid. Retrying
                # would end in the dead-letter queue; the re-evaluation job that fixing the settings runs (the park
                # raised its flag) makes the persona in its shopper phase, then asks for the waiting sale here.
                logger.info(
                    "opt-in waits for the shopper's persona, parked until the settings are valid",
                    tenant=shopper.tenant,
                    vendor=shopper.vendor.value,
                )
                return "waiting_for_persona"
            raise PersonaNotYetError("a sale waits for this shopper's persona, which the personas consumer makes")
        asked = self._ask(shopper.tenant, persona_id, waiting.get("store_zone"), waiting.get("sale", ""))
        self.consents.drop_waiting_sale(shopper.tenant, shopper.vendor.value, shopper.credential_id, shopper.pos_id)
        return asked

    def pos_consent(self, shopper: Shopper) -> str:
        """A POS opt-out is an opt-out; a POS signup with recorded consent is an opt-in with the POS as evidence."""
        flagged = rules.pos_consent([shopper])
        if flagged is None or not rules.textable(shopper.phone) or shopper.phone is None:
            return "no_flag"
        return self._record_pos_consent(shopper.tenant, shopper.phone, *flagged)

    def _record_pos_consent(self, tenant: str, number: str, state: State, source: str, detail: str) -> str:
        now = iso(self.now())
        outcome = "pos_opted_out" if state is State.OPTED_OUT else "pos_opted_in"
        for _ in range(3):
            existing = self.consents.consent(tenant, number)
            event = Evidence(tenant, number, state.value, now, source, {"pos_field": detail})
            if existing is None:
                consent = Consent(
                    tenant=tenant,
                    number=number,
                    state=state,
                    source=source,
                    confirmed_at=now if state is State.CONFIRMED else None,
                    opted_out_at=now if state is State.OPTED_OUT else None,
                )
                if self.consents.create(consent, [event]):
                    return outcome
                continue
            if not rules.pos_overrides(existing.state, state):
                return "answered"
            after = replace(
                existing,
                state=state,
                deferred_until=None,
                confirmed_at=now if state is State.CONFIRMED else existing.confirmed_at,
                opted_out_at=now if state is State.OPTED_OUT else existing.opted_out_at,
            )
            if self.consents.change(existing, after, [event]):
                return outcome
        raise AwsServiceError("the consent kept changing while the POS consent was recorded; retried")

    # --- replies -------------------------------------------------------------------------------------------
    def reply(self, number: str, body: str, inbound_id: str) -> str:
        """One inbound text from `number` (E.164): YES confirms, STOP opts out for good, HELP gets the help text,
        anything else from a pending number gets the help text once. Unknown numbers change nothing."""
        consents = self.consents.consents(number)
        if not consents:
            logger.info("reply from a number possync never texted; nothing changed", inbound_id=inbound_id)
            return "unknown"
        kind = classify(body)
        now = iso(self.now())
        outcome = "ignored"
        for consent in consents:
            replied = Evidence(
                consent.tenant, number, "replied", now, "sms", {"inbound_message_id": inbound_id, "body": body}
            )
            decision = rules.answer(consent, kind)
            after = replace(consent, replied_at=now)
            events = [replied]
            if decision.state is not None:
                after = replace(
                    after,
                    state=decision.state,
                    deferred_until=None,
                    confirmed_at=now if decision.state is State.CONFIRMED else after.confirmed_at,
                    opted_out_at=now if decision.state is State.OPTED_OUT else after.opted_out_at,
                )
                events.append(Evidence(consent.tenant, number, decision.state.value, now, "sms", {}))
                if consent.state in SENDABLE:
                    events.append(Evidence(consent.tenant, number, "cancelled", now, "sms", {"why": "STOP"}))
            if decision.answer is not None and decision.once_key is not None:
                after = replace(after, replies_answered=after.replies_answered | {decision.once_key})
            if not self.consents.change(consent, after, events):
                raise AwsServiceError("the consent changed while a reply was recorded; retried")
            outcome = decision.outcome
            if decision.answer is not None:
                self._answer(replace(after, version=consent.version + 1), decision.answer)
        return outcome

    def _answer(self, consent: Consent, kind: Kind) -> None:
        """A text in answer to a reply (confirmation, help, STOP acknowledgement), within the 24 h cap."""
        now = self.now()
        frees = self.consents.reserve_text(consent.number, now)
        if frees is not None:
            logger.warning(
                "answer not sent: the number had its 3 texts in 24 h", tenant=consent.tenant, kind=kind.value
            )
            self.consents.append(
                Evidence(
                    consent.tenant, consent.number, "not_sent", iso(now), "sms", {"kind": kind.value, "why": "24 h cap"}
                )
            )
            return
        try:
            templates = self.settings.tenant(consent.tenant).sms_texts()
        except SettingsError:
            templates = Templates(brand=consent.tenant)
        try:
            message_id = self._gateway().send(
                Outgoing(consent.tenant, consent.number, kind, templates.render(kind)), now
            )
        except (SendUncertainError, SendRejectedError, SendUnavailableError) as exc:
            uncertain = isinstance(exc, SendUncertainError)
            self.notifier.counts({metrics.SMS_SENDS_UNCERTAIN if uncertain else metrics.SMS_SENDS_FAILED: 1})
            logger.error("answer not sent", tenant=consent.tenant, kind=kind.value, error=str(exc))
            self.consents.append(
                Evidence(
                    consent.tenant,
                    consent.number,
                    "uncertain" if uncertain else "failed",
                    iso(now),
                    "sms",
                    {"kind": kind.value},
                )
            )
            return
        self.consents.append(
            Evidence(
                consent.tenant, consent.number, "sent", iso(now), "sms", {"kind": kind.value, "message_id": message_id}
            )
        )
