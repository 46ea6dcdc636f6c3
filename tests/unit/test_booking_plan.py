"""What a batch of sales does to one persona (functions.core.loyalty.points.plan_bookings), without AWS."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from functions.core import layout
from functions.core.layout import Vendor
from functions.core.loyalty.points import Booking, plan_bookings
from functions.core.loyalty.values import LedgerEntry, Persona, Purchase
from functions.core.models import LoyaltyBalance, Sale
from functions.core.settings import IntegrationSettings, TenantSettings

NOW = "2026-03-20T00:00:00.000000+00:00"
INTEGRATIONS = {
    Vendor.POSABIT: IntegrationSettings(
        vendor=Vendor.POSABIT, age_gate_attested=True, enroll_after=date(2026, 3, 1), loyalty_points_imported_on=None
    )
}
TENANT = TenantSettings(points_per_dollar=1)


def persona(**fields: Any) -> Persona:
    return Persona(tenant="t1", persona_id="p1", version=3, created_at=NOW, updated_at=NOW, **fields)


def sale(pos_id: str, day: date, cents: int, *, status: str = "completed", refunded: int = 0, minutes: int = 0) -> Sale:
    ordered = datetime(day.year, day.month, day.day, 19, tzinfo=UTC)
    return Sale(
        tenant="t1",
        vendor=Vendor.POSABIT,
        credential_id="c1",
        pos_id=pos_id,
        source_updated_at=ordered + timedelta(minutes=minutes),
        customer_pos_id="42",
        ordered_at=ordered,
        local_date=day,
        timezone="America/Los_Angeles",
        status=status,  # type: ignore[arg-type]
        subtotal_cents=cents,
        total_cents=cents,
        refunded_cents=refunded,
    )


def booking(record: Sale | LoyaltyBalance, version: int = 1, store: str | None = "store-a", **kw: Any) -> Booking:
    return Booking(f"{record.pos_id}@{version}", record, version, store, **kw)


def plan(profile: Persona, bookings: list[Booking], entries: dict[str, LedgerEntry] | None = None, **kw: Any) -> Any:
    return plan_bookings(profile, entries or {}, bookings, INTEGRATIONS, TENANT, NOW, **kw)


def test_a_first_purchase_enrolls_and_every_sale_of_the_batch_earns_and_counts_a_visit() -> None:
    result = plan(persona(), [booking(sale("s1", date(2026, 3, 2), 1_050)), booking(sale("s2", date(2026, 3, 3), 990))])
    after = result.profile
    assert (after.member, after.member_since_date, after.member_how) == (True, "2026-03-02", "enroll_after:posabit")
    assert after.points == 10 + 9 and after.version == 4 and after.last_sale_date == "2026-03-03"
    assert {v.store_id: v.count for v in after.visits.values()} == {"store-a": 2}
    assert after.favourite_store == "store-a"
    assert [(new.source_id, new.points, old) for new, old in result.writes] == [("s1", 10, None), ("s2", 9, None)]
    assert result.outcomes == {"s1@1": "enrolled", "s2@1": "applied"}


def test_versions_of_one_sale_fold_into_one_write_and_a_purchase_keeps_enrolling() -> None:
    purchase = sale("s1", date(2026, 3, 2), 1_000)
    refund = sale("s1", date(2026, 3, 2), 1_000, status="refunded", refunded=1_000, minutes=30)
    result = plan(persona(), [booking(purchase, 1), booking(refund, 2)])
    [(written, previous)] = result.writes
    assert (written.record_version, written.points, previous) == (2, 0, None)
    assert result.profile.member and result.profile.points == 0
    assert sum(v.count for v in result.profile.visits.values()) == 1  # one sale, one visit


def test_a_refund_parked_without_its_purchase_still_enrolls_by_the_purchase_it_remembers() -> None:
    refund = sale("s1", date(2026, 3, 2), 1_000, status="refunded", refunded=1_000, minutes=30)
    remembered = Purchase("completed", date(2026, 3, 2), datetime(2026, 3, 2, 19, tzinfo=UTC))
    result = plan(persona(), [booking(refund, 2, purchase=remembered)])
    assert result.profile.member_since_date == "2026-03-02"


def test_redelivered_and_older_versions_change_nothing() -> None:
    first = plan(persona(), [booking(sale("s1", date(2026, 3, 2), 1_000), 2)])
    stored = persona_after(first)
    entries = {new.sk: new for new, _ in first.writes}
    again = plan(stored, [booking(sale("s1", date(2026, 3, 2), 1_000), 2)], entries)
    older = plan(stored, [booking(sale("s1", date(2026, 3, 2), 5_000, minutes=-5), 1)], entries)
    for result in (again, older):
        assert (result.changed, result.writes, result.profile) == (False, (), stored)
        assert set(result.outcomes.values()) == {"duplicate"}


def persona_after(result: Any) -> Persona:
    profile: Persona = result.profile
    return profile


def test_membership_moving_back_over_booked_sales_asks_for_the_ledger_then_re_evaluates_it() -> None:
    # a member since March 10th with a sale booked on March 12th; a March 5th purchase arrives late
    booked = LedgerEntry(
        sk=layout.ledger_sk(Vendor.POSABIT, "c1", "s9"),
        kind="sale",
        vendor="posabit",
        credential_id="c1",
        source_id="s9",
        record_version=1,
        source_updated_at="2026-03-12T19:00:00.000000+00:00",
        points=0,  # booked before the member's first day: nothing
        net_cents=3_000,
        local_date="2026-03-08",
        status="completed",
        at="2026-03-08T19:00:00.000000+00:00",
    )
    member = persona(
        member=True,
        member_since="2026-03-10T19:00:00.000000+00:00",
        member_since_date="2026-03-10",
        member_how="enroll_after:posabit",
        last_sale_date="2026-03-10",
    )
    late = [booking(sale("s0", date(2026, 3, 5), 1_000))]
    assert plan(member, late).needs_ledger
    result = plan(member, late, ledger=[booked])
    assert result.profile.member_since_date == "2026-03-05"
    assert {new.source_id: (new.points, old) for new, old in result.writes} == {"s0": (10, None), "s9": (30, booked)}
    assert result.profile.points == 40


def test_a_later_purchase_never_moves_membership_forward_nor_needs_the_ledger() -> None:
    member = persona(
        member=True,
        member_since="2026-03-02T19:00:00.000000+00:00",
        member_since_date="2026-03-02",
        last_sale_date="2026-03-02",
        points=10,
    )
    result = plan(member, [booking(sale("s5", date(2026, 3, 6), 2_000))])
    assert not result.needs_ledger and result.profile.member_since_date == "2026-03-02"
    assert result.profile.points == 30


def test_a_balance_import_is_one_ledger_entry_by_its_as_of_time() -> None:
    moment = datetime(2026, 2, 27, 20, tzinfo=UTC)
    balance = LoyaltyBalance(
        tenant="t1",
        vendor=Vendor.POSABIT,
        credential_id="c1",
        pos_id="b1",
        customer_pos_id="42",
        points=175,
        as_of=moment,
        source_updated_at=moment,
    )
    result = plan(persona(), [booking(balance, 2, store=None)])
    [(written, _)] = result.writes
    assert (written.kind, written.points, result.profile.points, result.profile.member) == ("import", 175, 175, False)
    stored = persona_after(result)
    replayed = plan(stored, [booking(balance.model_copy(update={"points": 150}), 1, store=None)], {written.sk: written})
    assert not replayed.changed


statuses = st.sampled_from(["completed", "refunded", "partially_refunded", "cancelled", "pending"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.integers(1, 3), statuses, st.integers(100, 9_000)),
        min_size=1,
        max_size=12,
    ),
    st.randoms(use_true_random=False),
)
def test_any_order_and_split_of_the_same_versions_ends_in_the_same_persona(
    changes: list[tuple[int, int, str, int]], rng: Any
) -> None:
    """Batches may split, repeat and reorder the versions of sales: the final persona and ledger are the same."""
    versions: dict[tuple[int, int], Booking] = {}
    for sale_no, version, status, cents in changes:
        record = sale(
            f"s{sale_no}",
            date(2026, 2, 25) + timedelta(days=sale_no * 3),
            cents,
            status=status,
            refunded=cents if status == "refunded" else 0,
            minutes=version,
        )
        versions.setdefault((sale_no, version), booking(record, version))  # one content per version
    bookings = list(versions.values())

    def run(order: list[Booking], cut: int) -> tuple[Persona, dict[str, LedgerEntry]]:
        """As the engine runs it: each part planned against the entries it names, the whole ledger if asked."""
        profile, ledger = persona(), {}
        for part in (order[:cut], order[cut:]):
            if not part:
                continue
            named = {b.record.pos_id for b in part}
            entries = {sk: e for sk, e in ledger.items() if e.source_id in named}
            result = plan(profile, part, entries)
            if result.needs_ledger:
                result = plan(profile, part, entries, ledger=list(ledger.values()))
            ledger.update({new.sk: new for new, _ in result.writes})
            profile = result.profile
        return replace(profile, version=0, updated_at=""), {k: replace(v, applied_at="") for k, v in ledger.items()}

    expected = run(bookings, len(bookings))
    shuffled = bookings[:]
    rng.shuffle(shuffled)
    assert run(shuffled + rng.sample(bookings, len(bookings) // 2), rng.randint(0, len(bookings))) == expected
