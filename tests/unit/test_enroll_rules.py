"""Enrollment eligibility and points arithmetic (property-based): exactly once, refunds, dates, stickiness."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.core.layout import Vendor
from functions.core.loyalty import points as rules
from functions.core.settings import IntegrationSettings, TenantSettings

ENROLL_AFTER = date(2026, 3, 1)
SETTINGS = IntegrationSettings(vendor=Vendor.POSABIT, age_gate_attested=True, enroll_after=ENROLL_AFTER)


@dataclass(frozen=True)
class S:
    status: str
    local_date: date
    ordered_at: datetime


def sale(day: date, status: str = "completed") -> S:
    return S(status, day, datetime(day.year, day.month, day.day, 20, tzinfo=UTC))


# --- enrollment ------------------------------------------------------------------------------------------------


def test_a_completed_sale_on_or_after_the_date_enrolls_recording_how_and_when() -> None:
    on_the_day = sale(ENROLL_AFTER)
    enrollment = rules.enrollment_for(SETTINGS, on_the_day)
    assert enrollment == rules.Enrollment(on_the_day.ordered_at, ENROLL_AFTER, "enroll_after:posabit")
    assert rules.enrollment_for(SETTINGS, sale(ENROLL_AFTER - timedelta(days=1))) is None


@pytest.mark.parametrize(
    ("status", "enrolls"),
    [("completed", True), ("partially_refunded", True), ("refunded", False), ("cancelled", False), ("pending", False)],
)
def test_only_a_kept_purchase_enrolls(status: str, enrolls: bool) -> None:
    assert (rules.enrollment_for(SETTINGS, sale(ENROLL_AFTER, status)) is not None) is enrolls


def test_no_enrollment_without_the_date_or_without_the_age_gate() -> None:
    assert rules.enrollment_for(IntegrationSettings(vendor=Vendor.POSABIT), sale(ENROLL_AFTER)) is None
    # the settings model refuses this combination; the rule does not rely on that
    ungated = IntegrationSettings.model_construct(vendor=Vendor.POSABIT, enroll_after=ENROLL_AFTER)
    assert rules.enrollment_for(ungated, sale(ENROLL_AFTER)) is None


days = st.integers(-30, 30).map(lambda n: ENROLL_AFTER + timedelta(days=n))
statuses = st.sampled_from(["completed", "refunded", "partially_refunded", "cancelled", "pending"])
sales = st.lists(st.builds(sale, days, statuses), max_size=6)


@given(sales=sales, member=st.booleans())
def test_would_enroll_counts_non_members_with_a_qualifying_sale(sales: list[S], member: bool) -> None:
    kept = ("completed", "partially_refunded")
    qualifying = any(s.status in kept and s.local_date >= ENROLL_AFTER for s in sales)
    assert rules.would_enroll(SETTINGS, sales, already_member=member) is (qualifying and not member)
    # without the setting nobody would be enrolled (removing it never un-enrolls anyone either: no rule can)
    assert rules.would_enroll(IntegrationSettings(vendor=Vendor.POSABIT), sales, already_member=member) is False


# --- points arithmetic -----------------------------------------------------------------------------------------

cents = st.integers(-1_000_000, 1_000_000)
rates = st.integers(0, 100)


@given(net=cents, rate=rates)
def test_points_are_floor_of_net_dollars_times_rate_and_returns_mirror_them(net: int, rate: int) -> None:
    points = rules.sale_points(net, rate)
    if net >= 0:
        assert points == (net * rate) // 100
        assert points * 100 <= net * rate < (points + 1) * 100
    # a full return takes back exactly what the purchase earned
    assert rules.sale_points(-net, rate) == -points


@given(a=cents, b=cents, rate=rates)
def test_more_net_never_earns_fewer_points(a: int, b: int, rate: int) -> None:
    low, high = sorted((a, b))
    assert rules.sale_points(low, rate) <= rules.sale_points(high, rate)


def test_points_need_membership_the_membership_day_and_the_accrual_start() -> None:
    tenant = TenantSettings(points_per_dollar=2, accrual_start_date=date(2026, 3, 10))

    def points(day: date, status: str = "completed", since: date | None = date(2026, 3, 5)) -> int:
        return rules.points_for_sale(
            status=status, local_date=day, net_cents=1999, member_since_date=since, tenant=tenant
        )

    assert points(date(2026, 3, 10)) == 39  # floor(19.99 * 2)
    assert points(date(2026, 3, 9)) == 0  # before the accrual start
    assert points(date(2026, 3, 12), since=None) == 0  # not a member
    assert points(date(2026, 3, 12), since=date(2026, 3, 13)) == 0  # before joining
    assert points(date(2026, 3, 12), status="cancelled") == 0
    assert points(date(2026, 3, 12), status="pending") == 0
    assert points(date(2026, 3, 12), status="partially_refunded") == 39


# --- the ledger: each sale counts exactly once -----------------------------------------------------------------

versions = st.lists(st.tuples(st.integers(1, 6), st.integers(-5000, 50_000)), min_size=1, max_size=6)


@given(data=st.data(), changes=versions)
def test_redelivered_and_reordered_changes_leave_the_points_of_the_newest_version(
    data: st.DataObject, changes: list[tuple[int, int]]
) -> None:
    # Given the versions of one sale (version n was updated at minute n; refunds lower its net)
    worth = {v: rules.sale_points(net, 1) for v, net in dict(changes).items()}
    # When the stream delivers them in any order, some of them more than once
    deliveries = data.draw(st.lists(st.sampled_from(sorted(worth)), min_size=1, max_size=12))
    deliveries += data.draw(st.permutations(sorted(worth)))  # every version arrives at least once
    balance = 0
    entry: tuple[rules.LedgerKey, int] | None = None
    for version in deliveries:
        key = (f"2026-03-01T00:{version:02d}", version)
        delta = rules.ledger_delta(entry, key, worth[version])
        if delta is not None:
            balance += delta
            entry = (key, worth[version])
    # Then the balance holds exactly the newest version's points, once
    newest = max(worth)
    assert balance == worth[newest]
    assert entry is not None and entry[0][1] == newest


def test_a_refund_moves_the_balance_by_the_difference() -> None:
    bought = ((("2026-03-01T10:00", 1)), 50)
    assert rules.ledger_delta(None, ("2026-03-01T10:00", 1), 50) == 50
    assert rules.ledger_delta(bought, ("2026-03-02T10:00", 2), 20) == -30  # partly refunded
    assert rules.ledger_delta(bought, ("2026-03-01T10:00", 1), 50) is None  # redelivered
    assert rules.ledger_delta(bought, ("2026-02-28T10:00", 0), 10) is None  # an older version replayed
    # the same version re-priced (membership began after it was booked) moves the balance too
    assert rules.ledger_delta(bought, ("2026-03-01T10:00", 1), 0) == -50


def test_points_import_is_as_of_the_date_and_posabit_only() -> None:
    imported = IntegrationSettings(vendor=Vendor.POSABIT, loyalty_points_imported_on=date(2026, 3, 1))
    assert rules.import_applies(imported, date(2026, 3, 1))
    assert rules.import_applies(imported, date(2026, 2, 1))
    assert not rules.import_applies(imported, date(2026, 3, 2))  # from the next day on, points are ours
    assert not rules.import_applies(IntegrationSettings(vendor=Vendor.POSABIT), date(2026, 3, 1))
