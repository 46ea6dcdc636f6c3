"""Applies the enrollment, points, visit and store-mapping rules to sales and loyalty balances, via the repository."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from functions.core import aws, layout
from functions.core.errors import SettingsError
from functions.core.layout import ResourceNames, Vendor
from functions.core.models import CanonicalRecord, LoyaltyBalance, Sale
from functions.core.notify import SETTINGS_INVALID_METRIC, AwsNotifier, Notifier
from functions.core.observability import logger
from functions.core.personas_store import (
    LedgerEntry,
    Persona,
    PersonaConflictError,
    PersonaStore,
    Purchase,
    UnmappedStore,
    UnmappedStores,
    iso,
)
from functions.core.settings import IntegrationSettings, TenantSettings
from functions.core.sources import SettingsSource
from functions.enroll import rules
from functions.personas.rules import favourite_store, mapped_store

MAX_ATTEMPTS = 8
# How long a warm Lambda remembers that a store's unmapped notice exists (saves a conditional write per record).
NOTICE_CACHE_SECONDS = 300.0


class SettingsReader(Protocol):
    """functions.core.sources.SettingsSource, or a fake."""

    def integration(self, tenant: str, vendor: Vendor) -> IntegrationSettings: ...

    def tenant(self, tenant: str) -> TenantSettings: ...


def local_date(moment: datetime, settings: SettingsReader, tenant: str) -> date:
    """The date of `moment` in the tenant's time zone (tenant loyalty settings); an unknown zone is invalid settings."""
    zone = settings.tenant(tenant).timezone
    try:
        return moment.astimezone(ZoneInfo(zone)).date()
    except (ZoneInfoNotFoundError, ValueError):
        names: ResourceNames | None = getattr(settings, "names", None)
        where = names.tenant_settings_parameter(tenant) if names else "the tenant loyalty settings"
        raise SettingsError(f"invalid settings in parameter {where}: timezone: not a known IANA time zone") from None


def report_invalid_settings(notifier: Notifier, exc: SettingsError, record: CanonicalRecord, rule: str) -> None:
    """Fail safe, visibly: the SettingsError message names the parameter (never its value)."""
    logger.error(
        "settings invalid or unreadable; rule skipped (fail safe)",
        rule=rule,
        error=str(exc),
        tenant=record.tenant,
        vendor=record.vendor.value,
        credential=record.credential_id,
    )
    notifier.counts({SETTINGS_INVALID_METRIC: 1})


class EnrollService:
    """Sales -> store visits, favourite store, enrollment and points; POSaBIT balances -> a one-time import."""

    def __init__(
        self,
        *,
        store: PersonaStore,
        unmapped: UnmappedStores,
        settings: SettingsReader,
        notifier: Notifier,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.store = store
        self.unmapped = unmapped
        self.settings = settings
        self.notifier = notifier
        self.now = now
        self.sleep = sleep
        self.clock = clock
        self.max_attempts = max_attempts
        self._noticed: dict[str, float] = {}

    @classmethod
    def from_env(cls) -> EnrollService:
        names = ResourceNames.from_env()
        ddb = aws.client("dynamodb")
        return cls(
            store=PersonaStore(ddb, os.environ.get(layout.ENV_PERSONAS_TABLE, names.personas_table)),
            unmapped=UnmappedStores(ddb, os.environ.get(layout.ENV_CONTROL_TABLE, names.control_table)),
            settings=SettingsSource(names),
            notifier=AwsNotifier(aws.client("events")),
        )

    def _stamp(self) -> str:
        return iso(self.now())

    def _backoff(self, attempt: int) -> None:
        self.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))

    # --- entry points ------------------------------------------------------------------------------------
    def handle(self, record: CanonicalRecord, version: int) -> str:
        if isinstance(record, Sale):
            return self.handle_sale(record, version)
        if isinstance(record, LoyaltyBalance):
            return self.handle_balance(record, version)
        return "ignored"

    def handle_sale(self, sale: Sale, version: int) -> str:
        """Count the visit, enroll, and book the sale's points; park it if its customer has no persona yet."""
        try:
            integration = self.settings.integration(sale.tenant, sale.vendor)
            tenant = self.settings.tenant(sale.tenant)
        except SettingsError as exc:
            report_invalid_settings(self.notifier, exc, sale, "enroll")
            return "settings_invalid"
        store_id = mapped_store(integration.store_mappings, sale.credential_id, sale.location_id)
        if store_id is None:
            self._notice_unmapped(sale)
        if not sale.customer_pos_id:
            return "anonymous"
        persona_id = self.store.pos_owner(sale.tenant, sale.vendor, sale.credential_id, sale.customer_pos_id)
        if persona_id is None:
            return self._park(sale, sale.customer_pos_id, version)
        return self._apply_sale(persona_id, sale, version, integration, tenant, store_id)

    def handle_balance(self, balance: LoyaltyBalance, version: int) -> str:
        """Import a POSaBIT point balance as of "loyalty points imported on" (once); later balances are ignored."""
        try:
            integration = self.settings.integration(balance.tenant, balance.vendor)
            if integration.loyalty_points_imported_on is None:
                return "ignored"
            as_of_local = self._local_date(balance.as_of, balance.tenant)
        except SettingsError as exc:
            report_invalid_settings(self.notifier, exc, balance, "points import")
            return "settings_invalid"
        if not rules.import_applies(integration, as_of_local):
            return "after_import_date"
        persona_id = self.store.pos_owner(
            balance.tenant, balance.vendor, balance.credential_id, balance.customer_pos_id
        )
        if persona_id is None:
            return self._park(balance, balance.customer_pos_id, version)
        return self._apply_balance(persona_id, balance, version)

    def apply_pending(
        self, tenant: str, vendor: Vendor, credential_id: str, customer_pos_id: str, persona_id: str | None = None
    ) -> int:
        """Apply the sales and balances parked for a POS customer now that it has a persona; returns how many."""
        parked = self.store.pending(tenant, vendor, credential_id, customer_pos_id)
        if not parked:
            return 0
        persona_id = persona_id or self.store.pos_owner(tenant, vendor, credential_id, customer_pos_id)
        if persona_id is None:
            return 0
        applied = 0
        for item in parked:
            record = item.record
            try:
                if isinstance(record, Sale):
                    integration = self.settings.integration(tenant, vendor)
                    tenant_settings = self.settings.tenant(tenant)
                    store_id = mapped_store(integration.store_mappings, credential_id, record.location_id)
                    self._apply_sale(
                        persona_id, record, item.version, integration, tenant_settings, store_id, item.purchase
                    )
                elif isinstance(record, LoyaltyBalance):
                    integration = self.settings.integration(tenant, vendor)
                    as_of_local = self._local_date(record.as_of, tenant)
                    if rules.import_applies(integration, as_of_local):
                        self._apply_balance(persona_id, record, item.version)
            except SettingsError as exc:
                # the parked record stays: a later shopper or sale change applies it once settings are fixed
                report_invalid_settings(self.notifier, exc, record, "pending")
                return applied
            self.store.delete_pending(item)
            applied += 1
        return applied

    # --- helpers -----------------------------------------------------------------------------------------
    def _local_date(self, moment: datetime, tenant_id: str) -> date:
        return local_date(moment, self.settings, tenant_id)

    def _park(self, record: CanonicalRecord, customer_pos_id: str, version: int) -> str:
        purchase = None
        if isinstance(record, Sale) and record.status in rules.ENROLLING_STATUSES:
            purchase = Purchase(record.status, record.local_date, record.ordered_at)
        self.store.put_pending(record, customer_pos_id, version, self._stamp(), purchase)
        # The shopper may have been resolved while this was parked: then nobody else would apply it.
        if self.store.pos_owner(record.tenant, record.vendor, record.credential_id, customer_pos_id) is None:
            return "pending"
        self.apply_pending(record.tenant, record.vendor, record.credential_id, customer_pos_id)
        return "applied"

    def _notice_unmapped(self, record: CanonicalRecord) -> None:
        """One notice per unmapped credential / POS location: a conditional put, then the event and metric."""
        key = layout.control_unmapped_sk(record.vendor, record.credential_id, record.location_id)
        cache_key = f"{record.tenant}#{key}"
        seen = self._noticed.get(cache_key)
        if seen is not None and self.clock() - seen < NOTICE_CACHE_SECONDS:
            return
        notice = UnmappedStore(
            tenant=record.tenant,
            vendor=record.vendor,
            credential_id=record.credential_id,
            location_id=record.location_id,
            first_seen_at=self._stamp(),
            record_kind=record.kind.value,
        )
        if self.unmapped.raise_notice(notice):
            logger.warning(
                "unmapped store",
                tenant=record.tenant,
                vendor=record.vendor.value,
                credential=record.credential_id,
                location=record.location_id,
            )
            self.notifier.unmapped_store(notice)
            self.unmapped.mark_notified(notice.tenant, notice.vendor, notice.credential_id, notice.location_id)
        self._noticed[cache_key] = self.clock()

    def _apply_sale(
        self,
        persona_id: str,
        sale: Sale,
        version: int,
        integration: IntegrationSettings,
        tenant: TenantSettings,
        store_id: str | None,
        earlier_purchase: Purchase | None = None,
    ) -> str:
        """Enroll (from this sale, or from an earlier version of it that was a purchase), then book its points."""
        outcome = "applied"
        enrollment = rules.enrollment_for(integration, sale)
        if enrollment is None and earlier_purchase is not None:
            enrollment = rules.enrollment_for(integration, earlier_purchase)
        sk = layout.ledger_sk(sale.vendor, sale.credential_id, sale.pos_id)
        profile, entry = self.store.persona_and_entry(sale.tenant, persona_id, sk)
        if profile is None:
            raise PersonaConflictError(f"persona {persona_id} has a claim but no profile")
        if enrollment is not None and profile.member_since is not None and profile.member_since < iso(enrollment.since):
            # A member since an earlier sale: nothing to write (membership only moves back). The enrolling sale
            # itself goes on, so its redelivery finishes re-evaluating points if a crash cut that short.
            enrollment = None
        if enrollment is not None:
            since = iso(enrollment.since)
            changed, member_since = self.store.enroll(
                sale.tenant, persona_id, since, enrollment.since_date.isoformat(), enrollment.how, self._stamp()
            )
            if changed:
                outcome = "enrolled"
                logger.info("persona enrolled", tenant=sale.tenant, persona=persona_id, how=enrollment.how)
            if changed or member_since == since:
                # this sale starts the membership: sales booked before it may earn points now (order-independent)
                self._reevaluate(sale.tenant, persona_id, tenant)
            profile = entry = None  # membership moved: read both again
        booked, profile, visit_store, counted = self._book_sale(
            persona_id, sale, version, tenant, store_id, profile, entry
        )
        if visit_store is not None:
            moved = self.store.touch_visit(sale.tenant, persona_id, visit_store, iso(sale.ordered_at))
            if counted or moved:
                self._refresh_favourite(sale.tenant, persona_id, profile)
        return outcome if booked else ("duplicate" if outcome == "applied" else outcome)

    def _book_sale(
        self,
        persona_id: str,
        sale: Sale,
        version: int,
        tenant: TenantSettings,
        store_id: str | None,
        profile: Persona | None = None,
        entry: LedgerEntry | None = None,
    ) -> tuple[bool, Persona | None, str | None, bool]:
        """Write the sale's ledger entry and move the balance by the difference, in one transaction.

        `profile` and `entry` may come from a read just made; a retry reads both again. Returns whether the sale
        was booked, the profile as written, the store its visit counts for and whether that visit is new."""
        sk = layout.ledger_sk(sale.vendor, sale.credential_id, sale.pos_id)
        updated = iso(sale.source_updated_at)
        for attempt in range(self.max_attempts):
            if profile is None:
                profile, entry = self.store.persona_and_entry(sale.tenant, persona_id, sk)
            if profile is None:
                raise PersonaConflictError(f"persona {persona_id} has a claim but no profile")
            points = rules.points_for_sale(
                status=sale.status,
                local_date=sale.local_date,
                net_cents=sale.net_cents,
                member_since_date=_date(profile.member_since_date),
                tenant=tenant,
            )
            current = ((entry.source_updated_at, entry.record_version), entry.points) if entry else None
            delta = rules.ledger_delta(current, (updated, version), points)
            if delta is None:
                return False, profile, entry.visit_store if entry else None, False
            counted = entry.visit_store if entry else None
            new_visit = store_id if store_id and counted is None and sale.status in rules.VISIT_STATUSES else None
            new = LedgerEntry(
                sk=sk,
                kind="sale",
                vendor=sale.vendor.value,
                credential_id=sale.credential_id,
                source_id=sale.pos_id,
                record_version=version,
                source_updated_at=updated,
                points=points,
                net_cents=sale.net_cents,
                local_date=sale.local_date.isoformat(),
                status=sale.status,
                at=iso(sale.ordered_at),
                visit_store=counted or new_visit,
                applied_at=self._stamp(),
            )
            try:
                self.store.apply_ledger(sale.tenant, persona_id, new, entry, profile.member_since_date, new_visit)
            except PersonaConflictError:
                profile = entry = None
                self._backoff(attempt)
                continue
            return True, replace(profile, version=profile.version + 1), new.visit_store, new_visit is not None
        raise PersonaConflictError(f"sale ledger entry kept conflicting after {self.max_attempts} attempts")

    def _reevaluate(self, tenant_id: str, persona_id: str, tenant: TenantSettings) -> None:
        """Recompute the points of every sale booked for the persona against its current membership."""
        for attempt in range(self.max_attempts):
            profile = self.store.get_persona(tenant_id, persona_id)
            if profile is None:
                return
            since = _date(profile.member_since_date)
            try:
                for entry in self.store.ledger_entries(tenant_id, persona_id):
                    if entry.kind != "sale" or not entry.local_date:
                        continue
                    points = rules.points_for_sale(
                        status=entry.status or "",
                        local_date=date.fromisoformat(entry.local_date),
                        net_cents=entry.net_cents,
                        member_since_date=since,
                        tenant=tenant,
                    )
                    if points != entry.points:
                        self.store.apply_ledger(
                            tenant_id,
                            persona_id,
                            replace(entry, points=points, applied_at=self._stamp()),
                            entry,
                            profile.member_since_date,
                        )
            except PersonaConflictError:
                self._backoff(attempt)
                continue
            return
        raise PersonaConflictError(f"re-evaluating points kept conflicting after {self.max_attempts} attempts")

    def _refresh_favourite(self, tenant_id: str, persona_id: str, profile: Persona | None) -> None:
        for attempt in range(self.max_attempts):
            favourite = favourite_store(self.store.visits(tenant_id, persona_id))
            if profile is None:
                profile = self.store.get_persona(tenant_id, persona_id)
                if profile is None:
                    return
            if favourite == profile.favourite_store:
                return
            try:
                self.store.set_favourite(tenant_id, persona_id, favourite, profile.version, self._stamp())
            except PersonaConflictError:
                profile = None
                self._backoff(attempt)
                continue
            return
        raise PersonaConflictError(f"favourite store kept conflicting after {self.max_attempts} attempts")

    def _apply_balance(self, persona_id: str, balance: LoyaltyBalance, version: int) -> str:
        sk = layout.ledger_import_sk(balance.vendor, balance.credential_id, balance.pos_id)
        as_of = iso(balance.as_of)
        for attempt in range(self.max_attempts):
            entry = self.store.ledger_entry(balance.tenant, persona_id, sk)
            current = ((entry.at, entry.record_version), entry.points) if entry else None
            if rules.ledger_delta(current, (as_of, version), balance.points) is None:
                return "duplicate"
            new = LedgerEntry(
                sk=sk,
                kind="import",
                vendor=balance.vendor.value,
                credential_id=balance.credential_id,
                source_id=balance.pos_id,
                record_version=version,
                source_updated_at=iso(balance.source_updated_at),
                points=balance.points,
                at=as_of,
                applied_at=self._stamp(),
            )
            try:
                self.store.apply_ledger(balance.tenant, persona_id, new, entry, None, check_member=False)
            except PersonaConflictError:
                self._backoff(attempt)
                continue
            return "imported"
        raise PersonaConflictError(f"points import kept conflicting after {self.max_attempts} attempts")


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
