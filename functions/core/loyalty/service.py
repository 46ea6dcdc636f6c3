"""The loyalty rules as the consumers, the parked-record applier and the re-evaluation job run them.

`LoyaltyService.from_env()` builds it from the Lambda environment. The consumers hand it stream batches
(`shopper_batch`, `sale_batch`); parked records are applied by the same engines, so exactly once with the stream:

- `apply_waiting(tenant, vendor)`: every record parked because that tenant's settings for that POS were invalid
  (safe to call at any time, idempotent; what a settings change should trigger). The consumers also call it
  before a batch of that tenant and POS once the settings read valid again.
- `apply_pending(customers)`: the sales and balances parked until these POS customers had a persona.
- `reapply(records)`: stored records applied again after a settings or store-mapping change.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from functions.core import aws, layout, metrics
from functions.core.ddb_batch import chunks
from functions.core.errors import AwsServiceError, SettingsError
from functions.core.layout import RecordKind, ResourceNames, Vendor
from functions.core.loyalty.batch import MAX_ATTEMPTS, BatchReport, Change
from functions.core.loyalty.catalogue import CachedCatalogues, RewardCatalogue
from functions.core.loyalty.repository import Customer, PersonaStore
from functions.core.loyalty.sales import SalesEngine, StoreNotices
from functions.core.loyalty.settings import CredentialMarkets, Markets, SettingsReader, tenant_zone
from functions.core.loyalty.shoppers import ShopperEngine
from functions.core.models import CanonicalRecord
from functions.core.notify import AwsNotifier, Notifier
from functions.core.observability import logger
from functions.core.sources import SettingsSource
from functions.core.store import ControlStore, record_item_key
from functions.core.streams import BatchFailures, StreamChange
from functions.core.unmapped import UnmappedStores

# A consumer that finds records waiting for its tenant's settings applies at most this many before its own batch.
WAITING_PER_BATCH = 500
# How long a warm Lambda trusts what it read of a waiting flag (the settings cache is as old at most).
WAITING_CHECK_SECONDS = 60.0
APPLY_CHUNK = 100  # parked records applied per engine call (a stream batch's size)

CustomerOf = tuple[str, Customer]  # (tenant, customer)


@dataclass
class ApplyReport:
    """What applying parked records did: `applied` are done and removed; the others stay parked."""

    applied: int = 0
    still_waiting: int = 0  # settings still invalid, or a newer version was parked meanwhile
    failed: int = 0  # a transient failure: tried again next time
    remaining: int = 0  # records left waiting for the tenant and POS afterwards
    outcomes: Counter[str] = field(default_factory=Counter)


class LoyaltyService:
    def __init__(
        self,
        *,
        store: PersonaStore,
        settings: SettingsReader,
        markets: Markets,
        notifier: Notifier,
        unmapped: UnmappedStores,
        catalogue: RewardCatalogue | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.store = store
        self.settings = settings
        self.notifier = notifier
        self.clock = clock
        self.shoppers = ShopperEngine(
            markets=markets,
            new_id=new_id,
            store=store,
            settings=settings,
            notifier=notifier,
            now=now,
            sleep=sleep,
            max_attempts=max_attempts,
        )
        self.sales = SalesEngine(
            notices=StoreNotices(unmapped, clock),
            catalogues=CachedCatalogues(catalogue, clock) if catalogue is not None else None,
            store=store,
            settings=settings,
            notifier=notifier,
            now=now,
            sleep=sleep,
            max_attempts=max_attempts,
        )
        self._waiting_seen: dict[tuple[str, Vendor], tuple[float, bool]] = {}

    @classmethod
    def from_env(cls) -> LoyaltyService:
        names = ResourceNames.from_env()
        ddb = aws.client("dynamodb")
        control = os.environ.get(layout.ENV_CONTROL_TABLE, names.control_table)
        return cls(
            store=PersonaStore(ddb, os.environ.get(layout.ENV_PERSONAS_TABLE, names.personas_table)),
            settings=SettingsSource(names),
            markets=CredentialMarkets(ControlStore(ddb, control)),
            notifier=AwsNotifier(aws.client("events")),
            unmapped=UnmappedStores(ddb, control),
            catalogue=RewardCatalogue(ddb, control),
        )

    # --- the stream consumers ------------------------------------------------------------------------------
    def shopper_batch(self, changes: Sequence[StreamChange], failures: BatchFailures) -> Counter[str]:
        """Shopper changes of one stream batch (records waiting for their tenant's settings go first)."""
        mine = [Change.from_stream(c) for c in changes]
        self._waiting_first(mine)
        return self._shoppers(mine, failures).counts()

    def sale_batch(self, changes: Sequence[StreamChange], failures: BatchFailures) -> Counter[str]:
        """Sale and loyalty balance changes of one stream batch (records waiting for settings go first)."""
        mine = [Change.from_stream(c) for c in changes]
        self._waiting_first(mine)
        return self._sales(mine, failures).counts()

    def _shoppers(self, changes: Sequence[Change], failures: BatchFailures) -> BatchReport:
        """The shopper engine, then the sales parked for the customers it handled. If those cannot be applied now,
        the shopper change fails too: its redelivery looks again (a parked record's marker stays until applied)."""
        report = self.shoppers.apply(changes, failures)
        failed = self.apply_pending(report.customers)
        for change in changes:
            record = change.record
            if (record.tenant, (record.vendor, record.credential_id, record.pos_id)) in failed:
                failures.fail(change.item_id, change.key, "parked sales could not be applied")
        return report

    def _sales(self, changes: Sequence[Change], failures: BatchFailures) -> BatchReport:
        """The sales engine, then for the customers it parked records of: the owner read again, after parking (a
        persona created meanwhile has not seen those records), and their parked records applied if there is one."""
        report = self.sales.apply(changes, failures)
        if not report.customers:
            return report
        owned: set[CustomerOf] = set()
        failed: set[CustomerOf] = set()
        for tenant in {t for t, _ in report.customers}:
            customers = {c for t, c in report.customers if t == tenant}
            try:
                owned |= {(tenant, c) for c in self.store.pos_owners(tenant, customers)}
            except AwsServiceError as exc:
                logger.warning("owners not read again after parking; retried", error=str(exc), tenant=tenant)
                failed |= {(tenant, c) for c in customers}
        failed |= self.apply_pending(owned)
        for change in changes:
            record = change.record
            customer = getattr(record, "customer_pos_id", None)
            parked_here = report.outcomes.get(change.item_id) == "pending"
            if parked_here and customer and (record.tenant, (record.vendor, record.credential_id, customer)) in failed:
                failures.fail(change.item_id, change.key, "parked sales could not be applied")
        return report

    # --- the parked-record applier -------------------------------------------------------------------------
    def apply_pending(self, customers: Iterable[CustomerOf]) -> set[CustomerOf]:
        """Apply what is parked for these POS customers (now that they have personas): their markers are read in
        batches, the few with parked records are applied. Returns the customers whose parked records could not
        all be applied for a transient reason (they stay parked, with their marker)."""
        failed: set[CustomerOf] = set()
        by_tenant: dict[str, set[Customer]] = {}
        for tenant, customer in customers:
            by_tenant.setdefault(tenant, set()).add(customer)
        for tenant, group in by_tenant.items():
            try:
                marked = self.store.pending_markers(tenant, group)
            except AwsServiceError as exc:
                logger.warning("parked-sale markers not read; retried", error=str(exc), tenant=tenant)
                failed |= {(tenant, c) for c in group}
                continue
            for customer in sorted(marked):
                try:
                    if not self._apply_customer(tenant, customer):
                        failed.add((tenant, customer))
                except AwsServiceError as exc:
                    logger.warning("parked sales not applied; retried", error=str(exc), tenant=tenant)
                    failed.add((tenant, customer))
        return failed

    def _apply_customer(self, tenant: str, customer: Customer) -> bool:
        parked = self.store.pending(tenant, *customer)
        changes = [Change.from_parked(p) for p in parked]
        failures = BatchFailures()
        report = self.sales.apply(changes, failures) if changes else BatchReport()
        remaining = False
        for item, change in zip(parked, changes, strict=True):
            if change.item_id in failures or report.outcomes.get(change.item_id) == "pending":
                remaining = True
            elif not self.store.delete_parked(item):
                remaining = True  # a newer version was parked meanwhile: it stays for its turn
        if not remaining:
            self.store.drop_pending_marker(tenant, *customer)
        return len(failures) == 0

    def apply_waiting(self, tenant: str, vendor: Vendor, limit: int | None = None) -> ApplyReport:
        """Apply every record parked because the tenant's settings for this POS were invalid (at most `limit`):
        shoppers first, then sales and balances, through the stream's engines. Records whose settings are still
        invalid stay (and are counted as waiting); the RecordsWaiting gauge is emitted with what is left."""
        report = ApplyReport()
        seen = self.store.waiting_flag(tenant, vendor)
        if seen is None:
            self._waiting_seen[(tenant, vendor)] = (self.clock(), False)
            return report
        parked = self.store.waiting(tenant, vendor)[:limit]
        shoppers = [p for p in parked if p.kind is RecordKind.SHOPPER]
        others = [p for p in parked if p.kind is not RecordKind.SHOPPER]
        for group, run in ((shoppers, self._shoppers), (others, self._sales)):
            for chunk in chunks(group, APPLY_CHUNK):
                changes = [Change.from_parked(p) for p in chunk]
                failures = BatchFailures()
                outcomes = run(changes, failures).outcomes
                for item, change in zip(chunk, changes, strict=True):
                    outcome = outcomes.get(change.item_id)
                    if change.item_id in failures or outcome is None:
                        report.failed += 1
                    elif outcome == "waiting" or not self.store.delete_parked(item):
                        report.still_waiting += 1
                    else:
                        report.applied += 1
                        report.outcomes[outcome] += 1
        report.remaining = self.store.count_waiting(tenant, vendor)
        if report.remaining == 0:
            self.store.clear_waiting_flag(tenant, vendor, seen)
        self._waiting_seen[(tenant, vendor)] = (self.clock(), report.remaining > 0)
        self.notifier.gauge(metrics.RECORDS_WAITING, report.remaining)
        logger.info(
            "waiting records applied",
            tenant=tenant,
            vendor=vendor.value,
            applied=report.applied,
            still_waiting=report.still_waiting,
            failed=report.failed,
            remaining=report.remaining,
        )
        return report

    def reapply(self, records: Iterable[tuple[CanonicalRecord, int]]) -> ApplyReport:
        """Apply stored records again, shoppers first (each with the version it has in the records table): what a
        re-evaluation after a settings or store-mapping change runs. The same engines as the stream, so exactly
        once with it: a change already applied changes nothing unless the settings now say otherwise (a member
        enrolled by `enroll_after`, points at a new rate, a visit at a store mapped since, a points import)."""
        report = ApplyReport()
        changes = [
            Change(f"reapply#{index}", record_item_key(record), record, version)
            for index, (record, version) in enumerate(records)
        ]
        shoppers = [c for c in changes if c.record.kind is RecordKind.SHOPPER]
        others = [c for c in changes if c.record.kind is not RecordKind.SHOPPER]
        for group, run in ((shoppers, self._shoppers), (others, self._sales)):
            for chunk in chunks(group, APPLY_CHUNK):
                failures = BatchFailures()
                outcomes = run(chunk, failures).outcomes
                for change in chunk:
                    outcome = outcomes.get(change.item_id)
                    if change.item_id in failures or outcome is None:
                        report.failed += 1
                    elif outcome == "waiting":
                        report.still_waiting += 1
                    else:
                        report.applied += 1
                        report.outcomes[outcome] += 1
        return report

    def _waiting_first(self, changes: Sequence[Change]) -> None:
        """Before a batch, apply the records that wait for its tenant's settings, once those read valid: they are
        older than the batch. Cheap when nothing waits: one read of a flag per tenant and POS per minute."""
        for scope in dict.fromkeys((c.record.tenant, c.record.vendor) for c in changes):
            if not self._may_wait(scope):
                continue
            tenant, vendor = scope
            try:
                self.settings.integration(tenant, vendor)
                tenant_zone(self.settings, tenant)
            except (SettingsError, AwsServiceError):
                continue  # still invalid or unreadable: the batch's own records meet the same
            try:
                self.apply_waiting(tenant, vendor, WAITING_PER_BATCH)
            except AwsServiceError as exc:
                logger.warning("waiting records not applied now", error=str(exc), tenant=tenant, vendor=vendor.value)

    def _may_wait(self, scope: tuple[str, Vendor]) -> bool:
        for engine in (self.shoppers, self.sales):
            if scope in engine.parked_waiting:
                engine.parked_waiting.discard(scope)
                return True
        held = self._waiting_seen.get(scope)
        if held is not None and self.clock() - held[0] < WAITING_CHECK_SECONDS:
            return held[1]
        try:
            present = self.store.waiting_flag(*scope) is not None
            if present:  # keep the gauge (and its alarm) current while records wait
                self.notifier.gauge(metrics.RECORDS_WAITING, self.store.count_waiting(*scope))
        except AwsServiceError:
            return False
        self._waiting_seen[scope] = (self.clock(), present)
        return present
