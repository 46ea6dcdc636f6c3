"""What the loyalty engines share: a record change to apply, a batch's outcome, and failing safe on bad settings."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from functions.core import metrics
from functions.core.errors import AwsServiceError, SettingsError
from functions.core.layout import Vendor
from functions.core.loyalty.points import ENROLLING_STATUSES
from functions.core.loyalty.repository import Customer, PersonaStore
from functions.core.loyalty.settings import SettingsReader, report_settings_problem
from functions.core.loyalty.values import ParkedRecord, Purchase, iso
from functions.core.models import CanonicalRecord, Sale
from functions.core.notify import Notifier
from functions.core.observability import logger
from functions.core.store import record_item_key
from functions.core.streams import BatchFailures, StreamChange

# Attempts at a persona write that keeps losing races (each after a backoff) before its records fail the batch.
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Change:
    """One version of a record to apply: from a stream batch, or a parked record applied later."""

    item_id: str  # the stream record's sequence number, or the parked record's key
    key: str  # its records-table key: changes of one key are applied in order
    record: CanonicalRecord
    version: int
    purchase: Purchase | None = None  # a parked sale: some earlier version of it was a purchase

    @classmethod
    def from_stream(cls, change: StreamChange) -> Change:
        return cls(change.item_id, change.key, change.change.record, change.change.version)

    @classmethod
    def from_parked(cls, parked: ParkedRecord) -> Change:
        return cls(
            f"{parked.pk}|{parked.sk}", record_item_key(parked.record), parked.record, parked.version, parked.purchase
        )


@dataclass
class BatchReport:
    """What an engine did with each change (failures are in the BatchFailures), and what it leaves to follow up."""

    outcomes: dict[str, str] = field(default_factory=dict)  # item id -> outcome
    # (tenant, customer) of every POS customer handled: their parked sales may now apply
    customers: set[tuple[str, Customer]] = field(default_factory=set)

    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())


def purchase_of(record: CanonicalRecord) -> Purchase | None:
    """What a parked sale version keeps for enrollment: that it was a purchase (enrollment is sticky)."""
    if isinstance(record, Sale) and record.status in ENROLLING_STATUSES:
        return Purchase(record.status, record.local_date, record.ordered_at)
    return None


def in_scopes(changes: Iterable[Change]) -> dict[tuple[str, Vendor], list[Change]]:
    """Changes by (tenant, vendor), each group in the order given: settings are read once per group."""
    groups: dict[tuple[str, Vendor], list[Change]] = {}
    for change in changes:
        groups.setdefault((change.record.tenant, change.record.vendor), []).append(change)
    return groups


class Engine:
    """The parts of a loyalty engine that are the same for shoppers and sales."""

    rule = "loyalty"

    def __init__(
        self,
        *,
        store: PersonaStore,
        settings: SettingsReader,
        notifier: Notifier,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.store = store
        self.settings = settings
        self.notifier = notifier
        self.now = now
        self.sleep = sleep
        self.max_attempts = max_attempts
        # (tenant, vendor) this instance parked records of (the service then looks for them sooner)
        self.parked_waiting: set[tuple[str, Vendor]] = set()

    def stamp(self) -> str:
        return iso(self.now())

    def settings_problem(
        self,
        exc: SettingsError | AwsServiceError,
        scope: tuple[str, Vendor],
        changes: Sequence[Change],
        failures: BatchFailures,
        report: BatchReport,
    ) -> None:
        """Fail safe, never dropping: settings that cannot be read fail the records (Lambda retries them);
        invalid settings park them durably until valid settings apply them (see ParkedApplier.apply_waiting)."""
        tenant, vendor = scope
        report_settings_problem(self.notifier, exc, tenant, vendor, self.rule, len(changes))
        if not isinstance(exc, SettingsError):
            for change in changes:
                failures.fail(change.item_id, change.key, "settings could not be read")
            return
        parked = False
        for change in changes:
            if failures.blocked(change.key):
                failures.fail(change.item_id, change.key, "an earlier record of the same item failed")
                continue
            try:
                purchase = change.purchase or purchase_of(change.record)
                self.store.park_waiting(change.record, change.version, self.stamp(), purchase)
            except AwsServiceError as park_error:
                logger.error("record could not be parked; retried", error=str(park_error), tenant=tenant)
                failures.fail(change.item_id, change.key, "parking failed")
                continue
            report.outcomes[change.item_id] = "waiting"
            parked = True
        if parked:
            self.parked_waiting.add(scope)
            try:
                self.notifier.gauge(metrics.RECORDS_WAITING, self.store.count_waiting(tenant, vendor))
            except AwsServiceError as count_error:  # the records are parked: only the gauge is late
                logger.warning("waiting records not counted", error=str(count_error), tenant=tenant)
