"""Persona rules: identity matching (property-based), contact sync modes, stale changes, favourite store."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.core.layout import Vendor
from functions.core.loyalty import identity as rules
from functions.core.loyalty import stores
from functions.core.loyalty.values import Claim, FieldSource, Persona, Visit, iso
from functions.core.models import PLACEHOLDER_EMAILS, PLACEHOLDER_PHONES, Shopper
from functions.core.settings import IntegrationSettings

T0 = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
NOW = iso(T0)


def shopper(pos_id: str = "42", **fields: Any) -> Shopper:
    base: dict[str, Any] = {
        "tenant": "t1",
        "vendor": Vendor.POSABIT,
        "credential_id": "c1",
        "pos_id": pos_id,
        "source_updated_at": T0,
    }
    return Shopper(**{**base, **fields})


def persona(**fields: Any) -> Persona:
    return Persona(tenant="t1", persona_id="p1", created_at=NOW, updated_at=NOW, version=1, **fields)


phones = (
    st.integers(min_value=2_002_000_000, max_value=9_899_999_999)
    .filter(lambda n: str(n) not in PLACEHOLDER_PHONES)
    .map(lambda n: f"+1{n}")
)
emails = st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.com", fullmatch=True).filter(lambda e: e not in PLACEHOLDER_EMAILS)
names = st.one_of(st.none(), st.text(alphabet="abcdefgh ", min_size=0, max_size=8))


# --- identity --------------------------------------------------------------------------------------------------


@given(digits=st.sampled_from(sorted(PLACEHOLDER_PHONES)), email=st.sampled_from(sorted(PLACEHOLDER_EMAILS)))
def test_placeholders_are_never_identities(digits: str, email: str) -> None:
    # Given a record whose phone and email are what people type to get past a required field
    record = shopper(phone=f"+1{digits}", email=email)
    # Then only its own POS record identifies it
    assert rules.identity_claims(record) == [Claim("pos", "posabit#c1#42")]
    assert rules.shopper_contact(record)["phone"] is None
    assert rules.shopper_contact(record)["email"] is None


@given(phone=st.one_of(st.none(), phones), email=st.one_of(st.none(), emails), first=names, last=names)
def test_claims_are_phone_then_email_then_pos_and_never_names(
    phone: str | None, email: str | None, first: str | None, last: str | None
) -> None:
    record = shopper(phone=phone, email=email, first_name=first, last_name=last)
    claims = rules.identity_claims(record)
    expected = [Claim("phone", phone)] if phone else []
    expected += [Claim("email", email)] if email else []
    assert claims == [*expected, Claim("pos", "posabit#c1#42")]
    # names never take part: renaming the shopper changes nothing about how it matches
    assert rules.identity_claims(record.model_copy(update={"first_name": "Zed", "last_name": "Other"})) == claims


@given(
    phone_owner=st.one_of(st.none(), st.sampled_from(["A", "B"])),
    email_owner=st.one_of(st.none(), st.sampled_from(["B", "C"])),
    pos_owner=st.one_of(st.none(), st.sampled_from(["C", "D"])),
    order=st.permutations([0, 1, 2]),
)
def test_match_priority_is_phone_then_email_then_pos(
    phone_owner: str | None, email_owner: str | None, pos_owner: str | None, order: list[int]
) -> None:
    claims = [Claim("phone", "+12065550143"), Claim("email", "ava@example.com"), Claim("pos", "posabit#c1#42")]
    owners = {c: o for c, o in zip(claims, (phone_owner, email_owner, pos_owner), strict=True) if o is not None}
    chosen = rules.choose_persona([claims[i] for i in order], owners)
    assert chosen == (phone_owner or email_owner or pos_owner)


def test_a_shopper_matching_nobody_gets_a_new_persona() -> None:
    claims = rules.identity_claims(shopper(phone="+12065550143"))
    assert rules.choose_persona(claims, {Claim("phone", "+12065550144"): "other"}) is None


# --- contact sync --------------------------------------------------------------------------------------------


def sync_settings(**fields: Any) -> IntegrationSettings:
    return IntegrationSettings(vendor=Vendor.POSABIT, **fields)


@pytest.mark.parametrize(
    ("settings", "edited_on", "state", "markets", "mode"),
    [
        (sync_settings(), date(2026, 3, 1), "WA", {"WA"}, "fill"),
        (
            sync_settings(sync_personas=True, sync_personas_enabled_on=date(2026, 3, 1)),
            date(2026, 3, 1),
            None,
            (),
            "overwrite",
        ),
        # edits before the day syncing was enabled are not applied retroactively
        (
            sync_settings(sync_personas=True, sync_personas_enabled_on=date(2026, 3, 2)),
            date(2026, 3, 1),
            None,
            (),
            "fill",
        ),
        (
            sync_settings(sync_personas=True, sync_personas_enabled_on=date(2026, 1, 1), sync_to_relevant_market=True),
            date(2026, 3, 1),
            "wa",
            {"WA"},
            "overwrite",
        ),
        (
            sync_settings(sync_personas=True, sync_personas_enabled_on=date(2026, 1, 1), sync_to_relevant_market=True),
            date(2026, 3, 1),
            "OR",
            {"WA"},
            "fill",
        ),
        # a contact with no state, or a credential with no market, is not "of the market"
        (
            sync_settings(sync_personas=True, sync_personas_enabled_on=date(2026, 1, 1), sync_to_relevant_market=True),
            date(2026, 3, 1),
            None,
            {"WA"},
            "fill",
        ),
        (
            sync_settings(sync_personas=True, sync_personas_enabled_on=date(2026, 1, 1), sync_to_relevant_market=True),
            date(2026, 3, 1),
            "WA",
            set(),
            "fill",
        ),
        (IntegrationSettings(vendor=Vendor.THSUITE), date(2026, 3, 1), "WA", {"WA"}, "fill"),
    ],
)
def test_sync_mode(settings: IntegrationSettings, edited_on: date, state: str | None, markets: Any, mode: str) -> None:
    assert rules.sync_mode(settings, edited_on, state, markets) == mode


@given(
    held=st.fixed_dictionaries({"first_name": names, "email": st.one_of(st.none(), emails)}),
    offered=st.fixed_dictionaries({"first_name": names, "email": st.one_of(st.none(), emails)}),
)
def test_fill_mode_only_fills_empty_fields(held: dict[str, Any], offered: dict[str, Any]) -> None:
    before = persona(**{k: (v.strip() or None) if isinstance(v, str) else v for k, v in held.items()})
    after = rules.merge_contact(before, shopper(**offered), "fill")
    for name in ("first_name", "email"):
        offered_value = rules.shopper_contact(shopper(**offered))[name]
        if before.contact(name) is not None:
            assert after.contact(name) == before.contact(name)
        else:
            assert after.contact(name) == offered_value
            if offered_value is not None:
                assert after.field_sources[name].pos_id == "42"


@given(edits=st.lists(st.tuples(st.integers(0, 10_000), emails), min_size=1, max_size=8, unique_by=lambda e: e[0]))
def test_overwrite_mode_keeps_the_newest_edit_whatever_the_arrival_order(edits: list[tuple[int, str]]) -> None:
    # Given edits of the email from several POS records, arriving in any order
    current = persona()
    for n, (minutes, email) in enumerate(edits):
        edit = shopper(pos_id=f"r{n}", email=email, source_updated_at=T0 + timedelta(minutes=minutes))
        current = rules.merge_contact(current, edit, "overwrite")
    # Then the persona holds the value of the newest edit: an older change never overwrites a newer one
    newest = max(edits)
    assert current.email == newest[1]
    assert current.field_sources["email"].source_updated_at == iso(T0 + timedelta(minutes=newest[0]))


def test_a_blank_in_the_pos_never_erases_a_persona_field() -> None:
    before = persona(email="ava@example.com", first_name="Ava")
    after = rules.merge_contact(before, shopper(email=None, first_name="  "), "overwrite")
    assert after == before


def test_apply_shopper_records_sources_and_ignores_stale_changes() -> None:
    first = rules.new_persona("t1", "p1", shopper(email="ava@example.com", first_name="Ava"), 3, NOW)
    assert first.sources == {"posabit"}
    assert first.source_records == {"posabit#c1#42"}
    assert first.version == 1
    # a replayed older version of the same POS record (lower version) changes no contact field
    old = shopper(email="old@example.com", first_name="Old", source_updated_at=T0 - timedelta(days=1))
    replayed = rules.apply_shopper(first, old, 2, "overwrite", NOW)
    assert (replayed.email, replayed.first_name) == ("ava@example.com", "Ava")
    assert replayed.source_versions["posabit#c1#42"].version == 3
    # a newer version of it, with sync on, overwrites
    newer = shopper(email="new@example.com", source_updated_at=T0 + timedelta(days=1))
    synced = rules.apply_shopper(first, newer, 4, "overwrite", NOW)
    assert synced.email == "new@example.com"
    assert synced.source_versions["posabit#c1#42"].version == 4
    # a second POS adds itself to "sourced from"
    flourish = shopper(vendor=Vendor.FLOURISH, credential_id="f1", pos_id="9", phone="+12065550143")
    both = rules.apply_shopper(synced, flourish, 1, "fill", NOW)
    assert both.sources == {"posabit", "flourish"}
    assert both.phone == "+12065550143"
    assert both.email == "new@example.com"


# --- stores ----------------------------------------------------------------------------------------------------


def test_a_location_mapping_wins_over_its_credential_mapping() -> None:
    mappings = {"c1": "store-a", "loc-9": "store-b"}
    assert stores.mapped_store(mappings, "c1", "loc-9") == "store-b"
    assert stores.mapped_store(mappings, "c1", "loc-1") == "store-a"
    assert stores.mapped_store(mappings, "c2", None) is None
    assert stores.mapped_store(mappings, "c2", "loc-1") is None


visits = st.lists(
    st.builds(
        Visit,
        store_id=st.sampled_from(["s1", "s2", "s3", "s4"]),
        count=st.integers(0, 5),
        last_at=st.integers(0, 50).map(lambda m: iso(T0 + timedelta(minutes=m))),
    ),
    max_size=6,
    unique_by=lambda v: v.store_id,
)


@given(visits=visits, data=st.data())
def test_favourite_store_is_the_most_visited_ties_to_the_most_recent(visits: list[Visit], data: st.DataObject) -> None:
    favourite = stores.favourite_store(visits)
    counted = [v for v in visits if v.count > 0]
    if not counted:
        assert favourite is None
        return
    chosen = next(v for v in counted if v.store_id == favourite)
    assert all(chosen.count >= v.count for v in counted)
    assert all(chosen.last_at >= v.last_at for v in counted if v.count == chosen.count)
    # the order visits are read in does not matter
    assert stores.favourite_store(data.draw(st.permutations(visits))) == favourite


def test_favourite_store_tie_goes_to_the_most_recent_visit() -> None:
    older = Visit("s1", 3, iso(T0))
    newer = Visit("s2", 3, iso(T0 + timedelta(hours=1)))
    assert stores.favourite_store([older, newer]) == "s2"
    assert stores.favourite_store([Visit("s1", 4, iso(T0)), newer]) == "s1"


def test_field_source_shape_is_what_the_cli_reads() -> None:
    merged = rules.merge_contact(persona(), shopper(first_name="Ava"), "fill")
    assert merged.field_sources["first_name"] == FieldSource("posabit", "c1", "42", iso(T0))
