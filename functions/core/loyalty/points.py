"""Enrollment and points rules as pure functions: who becomes a member, what a sale is worth, ledger changes, and
what a batch of sales does to one persona."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Protocol

from functions.core import layout
from functions.core.layout import Vendor
from functions.core.loyalty.rewards import Catalogue, redemptions_of
from functions.core.loyalty.stores import favourite_store, with_visit
from functions.core.loyalty.values import LedgerEntry, Persona, Purchase, iso
from functions.core.models import LoyaltyBalance, Sale
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


# --- a batch of sales on one persona ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Booking:
    """One version of a sale or POSaBIT balance to book on a persona, with what the rules need around it."""

    item_id: str  # the stream record (or parked record) it came from
    record: Sale | LoyaltyBalance
    version: int
    store_id: str | None = None  # the retail store a sale's location or credential maps to (None: unmapped)
    purchase: Purchase | None = None  # an earlier version of the sale that was a purchase (kept while parked)


@dataclass(frozen=True)
class BookingPlan:
    """What a batch of bookings does to one persona: the profile after it, the ledger entries to write (each with
    the entry as it was read, the condition of its write) and an outcome per booking."""

    profile: Persona
    writes: tuple[tuple[LedgerEntry, LedgerEntry | None], ...] = ()
    outcomes: Mapping[str, str] = field(default_factory=dict)
    changed: bool = False
    needs_ledger: bool = False
    redeemed: int = 0  # rewards newly redeemed by these bookings (their points are off the balance)
    overdrawn: int = 0  # of those, redemptions that took the balance below zero (kept, flagged)


def ledger_sk_of(record: Sale | LoyaltyBalance) -> str:
    """A sale's ledger entry, or a balance's import entry, on its persona."""
    if isinstance(record, Sale):
        return layout.ledger_sk(record.vendor, record.credential_id, record.pos_id)
    return layout.ledger_import_sk(record.vendor, record.credential_id, record.pos_id)


def plan_bookings(
    profile: Persona,
    read_entries: Mapping[str, LedgerEntry],
    bookings: Sequence[Booking],
    integrations: Mapping[Vendor, IntegrationSettings],
    tenant: TenantSettings,
    now: str,
    ledger: Sequence[LedgerEntry] | None = None,
    catalogue: Catalogue | None = None,
) -> BookingPlan:
    """Book each sale (in order; its versions fold) and balance of one persona: the earliest qualifying purchase
    makes the persona a member since that sale (membership only ever moves earlier and never ends), every sale's
    points follow the membership, a sale counts one visit to its mapped store if any version of it was served, and
    the favourite store follows the visits. Otherwise changes older than the ledger entry, or equal to it, change
    nothing: the result is the same in whatever order and grouping the versions arrive.

    When the membership moves to a day on or before a sale already booked, the points of booked sales may change:
    without `ledger` (all the persona's entries) the plan only says so (`needs_ledger`).

    A sale carrying a mirrored discount (`catalogue`) redeems its reward: the reward's points come off the sale's
    ledger entry, so they are taken exactly once with it (a redelivered or older version changes nothing) and given
    back when the sale is refunded in full. A redemption that takes the balance below zero is booked and flagged
    on its entry."""
    rewards = catalogue if catalogue is not None else Catalogue()
    since, since_date, how = profile.member_since, profile.member_since_date, profile.member_how
    enroller: str | None = None
    for booking in bookings:
        record = booking.record
        if not isinstance(record, Sale):
            continue
        settings = integrations[record.vendor]
        enrollment = enrollment_for(settings, record)
        if enrollment is None and booking.purchase is not None:
            enrollment = enrollment_for(settings, booking.purchase)
        if enrollment is not None and (since is None or iso(enrollment.since) < since):
            since, since_date, how = iso(enrollment.since), enrollment.since_date.isoformat(), enrollment.how
            enroller = booking.item_id
    moved = since != profile.member_since
    booked_until = profile.last_sale_date
    if moved and ledger is None and booked_until is not None and since_date is not None and since_date <= booked_until:
        return BookingPlan(profile, needs_ledger=True)
    member_since_date = date.fromisoformat(since_date) if since_date else None

    read: dict[str, LedgerEntry | None] = dict(read_entries)
    if ledger is not None:
        read.update({entry.sk: entry for entry in ledger})
    state: dict[str, LedgerEntry | None] = dict(read)
    visits = dict(profile.visits)
    outcomes: dict[str, str] = {}
    for booking in bookings:
        record = booking.record
        if isinstance(record, Sale):
            sk = ledger_sk_of(record)
            current = state.get(sk)
            redemptions = redemptions_of(record, rewards, current.redemptions if current else ())
            points = points_for_sale(
                status=record.status,
                local_date=record.local_date,
                net_cents=record.net_cents,
                member_since_date=member_since_date,
                tenant=tenant,
            ) - sum(r.points for r in redemptions)
            updated = iso(record.source_updated_at)
            held = ((current.source_updated_at, current.record_version), current.points) if current else None
            counted = current.visit_store if current else None
            new_visit = None
            if booking.store_id and counted is None and record.status in VISIT_STATUSES:
                new_visit = booking.store_id
            if ledger_delta(held, (updated, booking.version), points) is None:
                if current is not None and new_visit is not None:
                    # an older version that was served arrives after a newer one that was not (say, cancelled
                    # later): the visit happened all the same, whatever order the versions came in
                    visits = with_visit(visits, new_visit, iso(record.ordered_at))
                    state[sk] = replace(current, visit_store=new_visit, applied_at=now)
                    outcomes[booking.item_id] = "applied"
                else:
                    outcomes[booking.item_id] = "duplicate"
                continue
            if new_visit is not None:
                visits = with_visit(visits, new_visit, iso(record.ordered_at))
            state[sk] = LedgerEntry(
                sk=sk,
                kind="sale",
                vendor=record.vendor.value,
                credential_id=record.credential_id,
                source_id=record.pos_id,
                record_version=booking.version,
                source_updated_at=updated,
                points=points,
                net_cents=record.net_cents,
                local_date=record.local_date.isoformat(),
                status=record.status,
                at=iso(record.ordered_at),
                visit_store=counted or new_visit,
                applied_at=now,
                redemptions=redemptions,
                overdrawn=bool(redemptions) and current is not None and current.overdrawn,
            )
            outcomes[booking.item_id] = "applied"
        else:
            sk = ledger_sk_of(record)
            current = state.get(sk)
            as_of = iso(record.as_of)
            held = ((current.at, current.record_version), current.points) if current else None
            if ledger_delta(held, (as_of, booking.version), record.points) is None:
                outcomes[booking.item_id] = "duplicate"
                continue
            state[sk] = LedgerEntry(
                sk=sk,
                kind="import",
                vendor=record.vendor.value,
                credential_id=record.credential_id,
                source_id=record.pos_id,
                record_version=booking.version,
                source_updated_at=iso(record.source_updated_at),
                points=record.points,
                at=as_of,
                applied_at=now,
            )
            outcomes[booking.item_id] = "imported"
    if moved:
        # the membership moved: every sale booked on or after its new first day earns by the new membership
        for sk, entry in list(state.items()):
            if entry is None or entry.kind != "sale" or not entry.local_date:
                continue
            points = (
                points_for_sale(
                    status=entry.status or "",
                    local_date=date.fromisoformat(entry.local_date),
                    net_cents=entry.net_cents,
                    member_since_date=member_since_date,
                    tenant=tenant,
                )
                - entry.redeemed_points
            )
            if points != entry.points:
                state[sk] = replace(entry, points=points, applied_at=now)
        if enroller is not None and profile.member_since is None:
            outcomes[enroller] = "enrolled"

    writes = tuple(
        (entry, read.get(sk)) for sk, entry in sorted(state.items()) if entry is not None and entry != read.get(sk)
    )
    delta = sum(new.points - (old.points if old else 0) for new, old in writes)
    redeeming = [new for new, old in writes if _new_redemptions(new, old)]
    if profile.points + delta < 0 and redeeming:
        # the POS gave the discount already: the redemption stands, and is flagged for `possync rewards check`
        flagged = {new.sk for new in redeeming}
        writes = tuple((replace(new, overdrawn=True) if new.sk in flagged else new, old) for new, old in writes)
    sale_dates = [e.local_date for e, _ in writes if e.kind == "sale" and e.local_date]
    last_sale_date = max([*sale_dates, *([profile.last_sale_date] if profile.last_sale_date else [])], default=None)
    after = replace(
        profile,
        points=profile.points + delta,
        visits=visits,
        favourite_store=favourite_store(visits.values()),
        member=profile.member or since is not None,
        member_since=since,
        member_since_date=since_date,
        member_how=how,
        last_sale_date=last_sale_date,
    )
    if not writes and after == profile:
        return BookingPlan(profile, outcomes=outcomes)
    redeemed = sum(_new_redemptions(new, old) for new, old in writes)
    overdrawn = sum(_new_redemptions(new, old) for new, old in writes if new.overdrawn)
    return BookingPlan(
        replace(after, version=profile.version + 1, updated_at=now),
        writes,
        outcomes,
        changed=True,
        redeemed=redeemed,
        overdrawn=overdrawn,
    )


def _new_redemptions(new: LedgerEntry, old: LedgerEntry | None) -> int:
    """Rewards on the entry that were not redeemed on it before (a redelivery or later version adds none)."""
    before = {r.pos_discount for r in old.redemptions} if old else set()
    return sum(r.pos_discount not in before for r in new.redemptions)
