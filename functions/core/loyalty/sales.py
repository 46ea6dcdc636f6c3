"""Sales and POSaBIT balances -> visits, favourite store, membership and points, a batch at a time."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from functions.core import ddb_batch, layout, metrics
from functions.core.errors import AwsServiceError, PossyncError, SettingsError
from functions.core.layout import Vendor
from functions.core.loyalty import points
from functions.core.loyalty.batch import BatchReport, Change, Engine, in_scopes, purchase_of
from functions.core.loyalty.points import Booking
from functions.core.loyalty.repository import Customer, PersonaConflictError
from functions.core.loyalty.rewards import Catalogue
from functions.core.loyalty.settings import tenant_zone
from functions.core.loyalty.stores import mapped_store
from functions.core.loyalty.values import LedgerEntry, Persona
from functions.core.models import CanonicalRecord, LoyaltyBalance, Sale
from functions.core.observability import logger
from functions.core.settings import IntegrationSettings, TenantSettings
from functions.core.streams import BatchFailures
from functions.core.unmapped import UnmappedStore, UnmappedStores

# How long a warm Lambda remembers that a store's unmapped notice exists (saves a conditional write per record).
NOTICE_CACHE_SECONDS = 300.0


class StoreNotices:
    """One "unmapped store" notice per credential / POS location: a conditional put, then the event and metric."""

    def __init__(self, unmapped: UnmappedStores, clock: Callable[[], float] = time.monotonic) -> None:
        self.unmapped = unmapped
        self.clock = clock
        self._noticed: dict[str, float] = {}

    def notice(self, record: CanonicalRecord, engine: Engine) -> None:
        key = f"{record.tenant}#{layout.control_unmapped_sk(record.vendor, record.credential_id, record.location_id)}"
        seen = self._noticed.get(key)
        if seen is not None and self.clock() - seen < NOTICE_CACHE_SECONDS:
            return
        notice = UnmappedStore(
            tenant=record.tenant,
            vendor=record.vendor,
            credential_id=record.credential_id,
            location_id=record.location_id,
            first_seen_at=engine.stamp(),
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
            engine.notifier.unmapped_store(notice)
            self.unmapped.mark_notified(notice.tenant, notice.vendor, notice.credential_id, notice.location_id)
        self._noticed[key] = self.clock()


@dataclass
class BookingTally:
    """What an engine's bookings changed, summed since it was built (a re-evaluation reports the difference)."""

    points: int = 0  # net change of the persona balances
    enrolled: int = 0  # personas that became members
    favourites_set: int = 0  # personas whose favourite store was unset and now is
    imported: int = 0  # POSaBIT balances imported
    redeemed: int = 0  # rewards redeemed on sales
    overdrawn: int = 0  # of those, redemptions that took a balance below zero (flagged)

    def since(self, earlier: BookingTally) -> BookingTally:
        return BookingTally(
            self.points - earlier.points,
            self.enrolled - earlier.enrolled,
            self.favourites_set - earlier.favourites_set,
            self.imported - earlier.imported,
            self.redeemed - earlier.redeemed,
            self.overdrawn - earlier.overdrawn,
        )


@dataclass(frozen=True)
class _Rules:
    """One tenant's settings as a batch reads them."""

    integrations: dict[Vendor, IntegrationSettings]
    tenant: TenantSettings
    catalogue: Catalogue = field(default_factory=Catalogue)


class SalesEngine(Engine):
    """Books each sale (visit, membership, points) and POSaBIT balance import on its shopper's persona.

    A batch reads its settings once per tenant and POS, the owners of its customers and then the profiles and
    ledger entries it touches in batched reads (the whole ledger of a persona only when its membership moves
    back over sales already booked), and writes each persona's effects in one transaction: the ledger entries
    (each only if still as read) and the profile's balance, visits, favourite store and membership (only if
    the profile is still at the version read). A lost race re-reads that persona and plans again.
    """

    rule = "enroll"

    def __init__(
        self, *, notices: StoreNotices, catalogues: Callable[[str], Catalogue] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.notices = notices
        self.catalogues = catalogues or (lambda tenant: Catalogue())
        self.tally = BookingTally()

    def apply(self, changes: Sequence[Change], failures: BatchFailures) -> BatchReport:
        report = BatchReport()
        order = {change.item_id: index for index, change in enumerate(changes)}
        rules: dict[str, _Rules] = {}
        bookable: list[tuple[Change, Booking, Customer]] = []
        for scope, group in in_scopes(changes).items():
            tenant, vendor = scope
            try:
                integration = self.settings.integration(tenant, vendor)
                tenant_settings = self.settings.tenant(tenant)
                zone = tenant_zone(self.settings, tenant)
                catalogue = rules[tenant].catalogue if tenant in rules else self.catalogues(tenant)
            except (SettingsError, AwsServiceError) as exc:
                self.settings_problem(exc, scope, group, failures, report)
                continue
            rules.setdefault(tenant, _Rules({}, tenant_settings, catalogue)).integrations[vendor] = integration
            for change in group:
                record = change.record
                try:
                    if isinstance(record, Sale):
                        store_id = mapped_store(integration.store_mappings, record.credential_id, record.location_id)
                        if store_id is None:
                            self.notices.notice(record, self)
                        if not record.customer_pos_id:
                            report.outcomes[change.item_id] = "anonymous"
                            continue
                        customer = (record.vendor, record.credential_id, record.customer_pos_id)
                        booking = Booking(change.item_id, record, change.version, store_id, change.purchase)
                    elif isinstance(record, LoyaltyBalance):
                        if integration.loyalty_points_imported_on is None:
                            report.outcomes[change.item_id] = "ignored"
                            continue
                        if not points.import_applies(integration, record.as_of.astimezone(zone).date()):
                            report.outcomes[change.item_id] = "after_import_date"
                            continue
                        customer = (record.vendor, record.credential_id, record.customer_pos_id)
                        booking = Booking(change.item_id, record, change.version)
                    else:
                        report.outcomes[change.item_id] = "ignored"
                        continue
                except PossyncError as exc:  # the unmapped notice could not be recorded or announced
                    logger.warning("sale retried", error=str(exc), tenant=tenant, vendor=vendor.value)
                    failures.fail(change.item_id, change.key, type(exc).__name__)
                    continue
                bookable.append((change, booking, customer))
        bookable.sort(key=lambda b: order[b[0].item_id])
        for tenant in dict.fromkeys(change.record.tenant for change, _, _ in bookable):
            mine = [b for b in bookable if b[0].record.tenant == tenant]
            self._book_tenant(tenant, mine, rules[tenant], failures, report)
        return report

    def _book_tenant(
        self,
        tenant: str,
        bookable: Sequence[tuple[Change, Booking, Customer]],
        rules: _Rules,
        failures: BatchFailures,
        report: BatchReport,
    ) -> None:
        try:
            owners = self.store.pos_owners(tenant, {customer for _, _, customer in bookable})
        except AwsServiceError as exc:
            logger.warning("sale batch retried", error=str(exc), tenant=tenant)
            for change, _, _ in bookable:
                failures.fail(change.item_id, change.key, "owners could not be read")
            return
        groups: dict[str, list[tuple[Change, Booking]]] = {}
        persona_of_key: dict[str, str] = {}
        for change, booking, customer in bookable:
            if failures.blocked(change.key):
                failures.fail(change.item_id, change.key, "an earlier record of the same item failed")
                continue
            owner = owners.get(customer)
            if owner is None:
                self._park(change, customer, failures, report)
                continue
            if persona_of_key.setdefault(change.key, owner) != owner:
                # The sale's customer changed within this batch: its earlier version is booked on another persona
                # in this batch; this one waits for the redelivery, after it (records of one item stay in order).
                failures.fail(change.item_id, change.key, "an earlier version is booked on another persona")
                continue
            groups.setdefault(owner, []).append((change, booking))
        if not groups:
            return
        try:
            profiles, entries = self.store.read_bookings(
                tenant, {owner: [points.ledger_sk_of(b.record) for _, b in group] for owner, group in groups.items()}
            )
        except AwsServiceError as exc:
            logger.warning("sale batch retried", error=str(exc), tenant=tenant)
            for group in groups.values():
                for change, _ in group:
                    failures.fail(change.item_id, change.key, "personas could not be read")
            return
        for owner, group in groups.items():
            live = []
            for change, booking in group:
                if failures.blocked(change.key):
                    failures.fail(change.item_id, change.key, "an earlier record of the same item failed")
                else:
                    live.append((change, booking))
            if not live:
                continue
            bookings = [booking for _, booking in live]
            try:
                outcomes = self.book(tenant, owner, bookings, rules, profiles.get(owner), entries.get(owner, {}))
            except (PersonaConflictError, AwsServiceError) as exc:
                logger.warning("sales retried", error=str(exc), tenant=tenant, persona=owner, records=len(live))
                for change, _ in live:
                    failures.fail(change.item_id, change.key, type(exc).__name__)
                continue
            report.outcomes.update(outcomes)

    def _park(self, change: Change, customer: Customer, failures: BatchFailures, report: BatchReport) -> None:
        """Park a sale or balance whose customer has no persona yet; the service then checks the owner again."""
        record = change.record
        try:
            purchase = change.purchase or purchase_of(record)
            self.store.park_pending(record, customer[2], change.version, self.stamp(), purchase)
        except AwsServiceError as exc:
            logger.warning("sale retried", error=str(exc), tenant=record.tenant)
            failures.fail(change.item_id, change.key, "parking failed")
            return
        report.outcomes[change.item_id] = "pending"
        report.customers.add((record.tenant, customer))

    def book(
        self,
        tenant: str,
        persona_id: str,
        bookings: Sequence[Booking],
        rules: _Rules,
        profile: Persona | None,
        entries: Mapping[str, LedgerEntry],
    ) -> dict[str, str]:
        """Plan the persona's bookings and write them in one transaction; after a lost race, read and plan again."""
        ledger: list[LedgerEntry] | None = None
        for attempt in range(self.max_attempts):
            if profile is None:
                profiles, read = self.store.read_bookings(
                    tenant, {persona_id: [points.ledger_sk_of(b.record) for b in bookings]}
                )
                profile, entries = profiles.get(persona_id), read[persona_id]
                if profile is None:
                    raise PersonaConflictError(f"persona {persona_id} has a claim but no profile")
            now = self.stamp()
            plan = points.plan_bookings(
                profile, entries, bookings, rules.integrations, rules.tenant, now, ledger, rules.catalogue
            )
            if plan.needs_ledger:
                ledger = self.store.ledger_entries(tenant, persona_id)
                plan = points.plan_bookings(
                    profile, entries, bookings, rules.integrations, rules.tenant, now, ledger, rules.catalogue
                )
            if not plan.changed:
                return dict(plan.outcomes)
            try:
                self.store.book(plan.profile, plan.writes, profile)
            except PersonaConflictError:
                self.sleep(ddb_batch.backoff_delay(attempt))
                profile, ledger = None, None
                continue
            outcomes = list(plan.outcomes.values())
            self.tally.points += plan.profile.points - profile.points
            self.tally.enrolled += outcomes.count("enrolled")
            self.tally.imported += outcomes.count("imported")
            self.tally.favourites_set += profile.favourite_store is None and plan.profile.favourite_store is not None
            self.tally.redeemed += plan.redeemed
            self.tally.overdrawn += plan.overdrawn
            if plan.redeemed:
                counts = {metrics.REWARDS_REDEEMED: plan.redeemed, metrics.REDEMPTIONS_OVERDRAWN: plan.overdrawn}
                self.notifier.counts(counts)
            if plan.overdrawn:
                logger.warning("redemption overdrew a balance", tenant=tenant, persona=persona_id)
            if "enrolled" in outcomes:
                logger.info("persona enrolled", tenant=tenant, persona=persona_id, how=plan.profile.member_how)
            return dict(plan.outcomes)
        raise PersonaConflictError(f"sales of a persona kept conflicting after {self.max_attempts} attempts")
