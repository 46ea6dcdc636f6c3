"""Canonical models, settings and credentials: what they accept, what they refuse, what they never reveal."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from functions.core.credentials import credential_json, parse_credential
from functions.core.errors import CredentialError, SettingsError
from functions.core.layout import Stream, Vendor, archive_key, check_id
from functions.core.models import Product, Sale, Shopper, dollars_to_cents, normalize_email, normalize_phone
from functions.core.settings import (
    IntegrationSettings,
    check_mapping_key,
    check_store_id,
    parse_integration_settings,
    parse_tenant_settings,
)

BASE = {"tenant": "t1", "vendor": Vendor.POSABIT, "credential_id": "c1", "pos_id": "42"}


def test_timestamps_become_utc_and_naive_ones_are_refused() -> None:
    pacific = timezone(timedelta(hours=-8))
    shopper = Shopper(**BASE, source_updated_at=datetime(2026, 1, 1, 4, 0, tzinfo=pacific))
    assert shopper.source_updated_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert shopper.source_updated_at.tzinfo == UTC
    with pytest.raises(ValidationError, match="no timezone"):
        Shopper(**BASE, source_updated_at=datetime(2026, 1, 1, 4, 0))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(206) 555-0143", "+12065550143"),
        ("206.867.5309", "+12068675309"),
        ("+1 425 555 0199", "+14255550199"),
        ("1234567890", None),  # placeholder typed to get past a required field
        ("0000000000", None),
        ("", None),
        ("n/a", None),
        (None, None),
    ],
)
def test_phones_are_e164_and_placeholders_never_match(raw: str | None, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


def test_emails_are_lower_cased_and_placeholders_are_kept_but_not_matchable() -> None:
    assert normalize_email("  Ava.Kim@Example.COM ") == "ava.kim@example.com"
    shopper = Shopper(**BASE, source_updated_at=datetime.now(UTC), email="TEST@test.com")
    assert shopper.email == "test@test.com"
    assert shopper.matchable_email is None


def test_phone_field_refuses_anything_but_e164() -> None:
    with pytest.raises(ValidationError):
        Shopper(**BASE, source_updated_at=datetime.now(UTC), phone="206-555-0143")


@given(st.decimals(min_value=-100000, max_value=100000, places=2))
def test_dollars_to_cents_is_exact(amount: object) -> None:
    assert dollars_to_cents(amount) == int(amount * 100)  # type: ignore[operator]
    assert dollars_to_cents(str(amount)) == int(amount * 100)  # type: ignore[operator]


def test_content_hash_changes_with_content_only() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    a = Product(**BASE, source_updated_at=t, name="Blue Dream")
    assert a.content_hash() == Product(**BASE, source_updated_at=t, name="Blue Dream").content_hash()
    assert a.content_hash() != Product(**BASE, source_updated_at=t, name="Blue Dream 3.5g").content_hash()


def test_sale_requires_integer_cents() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    sale = dict(
        BASE,
        ordered_at=t,
        source_updated_at=t,
        local_date=date(2025, 12, 31),
        timezone="America/Los_Angeles",
        status="completed",
        subtotal_cents=1000,
        total_cents=1100,
    )
    assert Sale(**sale).net_cents == 1100
    with pytest.raises(ValidationError):
        Sale(**{**sale, "total_cents": 11.5})


def test_settings_validate_vendor_specific_switches() -> None:
    assert IntegrationSettings(vendor=Vendor.POSABIT, sync_personas=True, sync_personas_enabled_on=date(2026, 1, 1))
    with pytest.raises(ValidationError, match="not offered for thsuite"):
        IntegrationSettings(vendor=Vendor.THSUITE, sync_personas=True, sync_personas_enabled_on=date(2026, 1, 1))
    with pytest.raises(ValidationError, match="only offered for posabit"):
        IntegrationSettings(vendor=Vendor.FLOURISH, loyalty_points_imported_on=date(2026, 1, 1))
    with pytest.raises(ValidationError, match="age_gate_attested"):
        IntegrationSettings(vendor=Vendor.AUPHAN, enroll_after=date(2026, 1, 1))
    with pytest.raises(ValidationError):
        IntegrationSettings(vendor=Vendor.POSABIT, surprise=True)  # type: ignore[call-arg]


def test_invalid_settings_name_the_parameter_not_the_value() -> None:
    with pytest.raises(SettingsError) as info:
        parse_integration_settings('{"enroll_after": "someday-secret"}', Vendor.POSABIT, "/possync/tenants/t1/x")
    assert "/possync/tenants/t1/x" in str(info.value)
    assert "someday-secret" not in str(info.value)
    with pytest.raises(SettingsError, match="not valid JSON"):
        parse_integration_settings("{", Vendor.POSABIT, "/p")
    with pytest.raises(SettingsError, match="vendor is flourish"):
        parse_integration_settings('{"vendor": "flourish"}', Vendor.POSABIT, "/p")
    with pytest.raises(SettingsError):
        parse_tenant_settings('{"points_per_dollar": -1}', "/p")


def test_credentials_validate_per_vendor_and_never_render_secrets() -> None:
    raw = {
        "vendor": "posabit",
        "store_name": "Downtown",
        "integrator_token": "integrator-1",
        "venue_token": "venue-XYZ-1",
    }
    credential = parse_credential(raw, Vendor.POSABIT, "downtown")
    assert "venue-XYZ-1" not in repr(credential) and "venue-XYZ-1" not in str(credential.public_fields())
    assert json.loads(credential_json(credential))["venue_token"] == "venue-XYZ-1"  # only where it is stored
    with pytest.raises(CredentialError) as info:
        parse_credential({**raw, "venue_token": "short"}, Vendor.POSABIT, "downtown")
    assert "venue_token" in str(info.value) and "short" not in str(info.value)
    with pytest.raises(CredentialError, match="is for posabit, not flourish"):
        parse_credential(raw, Vendor.FLOURISH, "downtown")


def test_archive_keys_are_deterministic_and_partitioned() -> None:
    key = archive_key("t1", Vendor.FLOURISH, "c1", Stream.SALES, date(2026, 11, 23), "20261123T120000Z-abc", 7)
    assert key == (
        "raw/tenant=t1/vendor=flourish/credential=c1/stream=sales/date=2026-11-23/run=20261123T120000Z-abc/"
        "page-000007.json.gz"
    )


@pytest.mark.parametrize("bad", ["", "UPPER", "a/b", "a#b", "-lead", "x" * 64, "a b"])
def test_ids_used_in_keys_are_restricted(bad: str) -> None:
    with pytest.raises(ValueError, match="not valid"):
        check_id(bad, "tenant")


# --- store ids: one validator in the settings model, so every path (CLI, SSM edited by hand) applies it ---------

BAD_STORE_IDS = {"empty": "", "hash": "down#town", "control": "down\x07town", "padded": " downtown", "long": "s" * 101}
BAD_MAPPING_KEYS = {"empty": "", "control": "loc\x00", "newline": "loc\n1", "padded": "loc-1 ", "long": "k" * 101}


@pytest.mark.parametrize("store", BAD_STORE_IDS.values(), ids=BAD_STORE_IDS.keys())
def test_a_hand_edited_store_mapping_with_a_bad_store_id_is_invalid_settings(store: str) -> None:
    raw = json.dumps({"vendor": "posabit", "store_mappings": {"loc-1": store}})

    with pytest.raises(SettingsError, match="a store id") as caught:
        parse_integration_settings(raw, Vendor.POSABIT, "/possync/tenants/t1/integrations/posabit")

    assert "/possync/tenants/t1/integrations/posabit" in str(caught.value)
    assert all(ch.isprintable() for ch in str(caught.value))


@pytest.mark.parametrize("key", BAD_MAPPING_KEYS.values(), ids=BAD_MAPPING_KEYS.keys())
def test_a_hand_edited_store_mapping_with_a_bad_credential_or_location_id_is_invalid_settings(key: str) -> None:
    raw = json.dumps({"vendor": "flourish", "store_mappings": {key: "downtown"}})

    with pytest.raises(SettingsError, match="credential or location id") as caught:
        parse_integration_settings(raw, Vendor.FLOURISH, "/p")

    assert all(ch.isprintable() for ch in str(caught.value))  # a control character is escaped, not logged raw


def test_good_store_mappings_pass_and_a_location_id_may_hold_a_hash() -> None:
    mappings = {"store-12": "downtown", "Front Room #2": "uptown", "42": "North Side (WA)"}

    settings = IntegrationSettings(vendor=Vendor.THSUITE, store_mappings=mappings)

    assert settings.store_mappings == mappings
    assert check_store_id("North Side (WA)") == "North Side (WA)"
    assert check_mapping_key("Front Room #2") == "Front Room #2"
