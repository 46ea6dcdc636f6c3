"""Enrollment and points rules as pure functions: who becomes a member, what a sale is worth, ledger changes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from functions.core.settings import POINTS_IMPORT_VENDORS, IntegrationSettings, TenantSettings

# A purchase that enrolls (kept, at least in part); and the statuses whose net moves points (a return nets negative).
ENROLLING_STATUSES = frozenset({"completed", "partially_refunded"})
EARNING_STATUSES = frozenset({"completed", "partially_refunded", "refunded"})
# A store visit: the shopper was served (a cancelled or still pending order is not a visit).
VISIT_STATUSES = EARNING_STATUSES


class SaleLike(Protocol):
    """What enrollment reads of a sale (functions.core.models.Sale has it)."""

    @property
    def status(self) -> str: ...

    @property
    def local_date(self) -> date: ...

    @property
    def ordered_at(self) -> datetime: ...


@dataclass(frozen=True)
class Enrollment:
    since: datetime
    since_date: date  # the enrolling sale's store-local date: points count from this day
    how: str


def enrollment_for(settings: IntegrationSettings, sale: SaleLike) -> Enrollment | None:
    """With "enroll after" set and the age gate attested for the integration, a completed sale (kept at least in part)
    on or after the date (store-local) makes its shopper a member since that sale. Membership is sticky: no rule
    ever ends it, and a sale that was once a purchase keeps counting after a full refund."""
    if settings.enroll_after is None or not settings.age_gate_attested:
        return None
    if sale.status not in ENROLLING_STATUSES or sale.local_date < settings.enroll_after:
        return None
    return Enrollment(since=sale.ordered_at, since_date=sale.local_date, how=f"enroll_after:{settings.vendor.value}")


def would_enroll(settings: IntegrationSettings, sales_of_persona: Iterable[SaleLike], already_member: bool) -> bool:
    """Whether these settings would newly enroll a persona with these sales (a member already is not counted)."""
    return not already_member and any(enrollment_for(settings, sale) is not None for sale in sales_of_persona)


def sale_points(net_cents: int, points_per_dollar: int) -> int:
    """floor(net cents x points per dollar / 100) for a purchase; a return (negative net) takes back the same way."""
    magnitude = abs(net_cents) * points_per_dollar // 100
    return magnitude if net_cents >= 0 else -magnitude


def points_for_sale(
    *,
    status: str,
    local_date: date,
    net_cents: int,
    member_since_date: date | None,
    tenant: TenantSettings,
) -> int:
    """Members earn points for sales on or after the day they joined and the tenant's accrual start date; refunds
    lower the sale's net (and so its points); cancelled and pending sales earn nothing; non-members earn nothing."""
    if member_since_date is None or status not in EARNING_STATUSES or local_date < member_since_date:
        return 0
    if tenant.accrual_start_date is not None and local_date < tenant.accrual_start_date:
        return 0
    return sale_points(net_cents, tenant.points_per_dollar)


# Orders the changes of one ledger entry's source: (update time or as-of time, record version).
LedgerKey = tuple[str, int]


def ledger_delta(current: tuple[LedgerKey, int] | None, incoming: LedgerKey, points: int) -> int | None:
    """The balance change when a ledger entry keyed `incoming` (the record's update time and version) worth `points`
    replaces the entry `current` = (key, points). None when nothing is to be written: the incoming change is older
    than the entry (replayed or reordered), or it is the entry already (redelivered). Each sale so counts once."""
    if current is None:
        return points
    key, held = current
    if incoming < key or (incoming == key and points == held):
        return None
    return points - held


def import_applies(settings: IntegrationSettings, as_of_local: date) -> bool:
    """POSaBIT "loyalty points imported on": balances as of that date or earlier are imported; later ones ignored."""
    return (
        settings.vendor in POINTS_IMPORT_VENDORS
        and settings.loyalty_points_imported_on is not None
        and as_of_local <= settings.loyalty_points_imported_on
    )
