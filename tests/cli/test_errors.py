"""Errors that teach: the rule and an example, a "did you mean", one spelling, no pydantic wording."""

from __future__ import annotations

import pytest

from possync.admin.problems import DATE_HINT, explain
from tests.cli.conftest import Invoke


def test_pydantic_wording_becomes_the_rule() -> None:
    assert explain({"type": "date_from_datetime_parsing", "msg": "Input should be a valid date"}) == DATE_HINT
    assert explain({"type": "value_error", "msg": "Value error, enroll_after needs age_gate_attested"}) == (
        "enroll_after needs age_gate_attested"
    )
    assert explain({"type": "string_too_short", "msg": "x", "ctx": {"min_length": 8}}) == (
        "must be at least 8 characters long"
    )


def test_a_bad_date_says_use_yyyy_mm_dd_without_a_value_error_prefix(cli: Invoke) -> None:
    result = cli("settings", "set", "-t", "t1", "-v", "posabit", "age_gate_attested=true", "enroll_after=11/01/2026")

    assert result.exit_code == 1
    assert "use YYYY-MM-DD" in result.output
    assert "Value error" not in result.output and "Input should be" not in result.output
    assert result.output.startswith("Error: ")


def test_an_unknown_key_gets_did_you_mean_and_the_list_omits_keys_set_refuses(cli: Invoke) -> None:
    posabit = cli("settings", "set", "-t", "t1", "-v", "posabit", "enrol_after=2026-05-01")
    thsuite = cli("settings", "set", "-t", "t1", "-v", "thsuite", "sms_optin_afer=2026-05-01")

    assert posabit.exit_code == 1 and "did you mean enroll_after?" in posabit.output
    hint = " ".join(thsuite.output.split())
    assert "did you mean sms_optin_after?" in hint
    assert "sync_personas_enabled_on" not in hint  # set refuses it (it is set for you)
    assert "sync_personas" not in hint and "loyalty_points_imported_on" not in hint  # not offered for THSuite
    assert "store_mappings.<credential-or-location>" in hint


def test_a_tenant_key_given_with_a_vendor_says_to_drop_the_vendor(cli: Invoke) -> None:
    result = cli("settings", "set", "-t", "t1", "-v", "posabit", "points_per_dollar=2")

    assert result.exit_code == 1 and "tenant-wide setting: use no --vendor" in " ".join(result.output.split())


@pytest.mark.parametrize("vendor", ["posabit", "thsuite"])
def test_a_short_secret_states_the_rule(cli: Invoke, vendor: str) -> None:
    args = {
        "posabit": ["--store-name", "Downtown", "--integrator-token-env", "A", "--venue-token-env", "B"],
        "thsuite": ["--store-name", "Downtown", "--integration-token-env", "A"],
    }[vendor]
    env = {"A": "short", "B": "long-enough-token"}

    result = cli("credentials", "add", vendor, "-t", "t1", "--id", "c1", *args, env=env)

    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "must be at least 8 characters long" in text and "nothing was stored" in text
    assert "'short'" not in text and ": short" not in text  # the secret itself is never echoed
    assert "re-add it with" not in text  # no circular hint
