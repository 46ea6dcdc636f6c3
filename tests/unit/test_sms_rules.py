"""SMS opt-in rules: reply keywords, quiet hours across zones and DST, template length checks, reply decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from functions.core.layout import Vendor
from functions.core.models import Shopper
from functions.core.settings import TenantSettings
from functions.core.sms import rules
from functions.core.sms.consent import Consent, State
from functions.core.sms.keywords import Reply, classify
from functions.core.sms.quiet import area_code_zones, next_window, recipient_zones, within_window
from functions.core.sms.templates import Kind, TemplateError, check_templates, measure

LA, NY, CHI, HON = "America/Los_Angeles", "America/New_York", "America/Chicago", "Pacific/Honolulu"


@pytest.mark.parametrize("body", ["YES", "yes", " Yes ", "y", "Y!", "start", "START."])
def test_confirm_keywords(body: str) -> None:
    assert classify(body) is Reply.CONFIRM


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        " Stop! ",
        "STOPALL",
        "unsubscribe",
        "CANCEL",
        "end",
        "QUIT",
        "revoke",
        "OPT OUT",
        "opt-out",
        "OptOut",
        "  opt   out  ",
        "STOP.",
    ],
)
def test_stop_keywords(body: str) -> None:
    assert classify(body) is Reply.STOP


@pytest.mark.parametrize("body", ["HELP", "help?", " Help "])
def test_help_keyword(body: str) -> None:
    assert classify(body) is Reply.HELP


@pytest.mark.parametrize("body", ["stop it", "yes please", "what is this", "", "🙂", "HELPME", "no"])
def test_other_texts_are_not_keywords(body: str) -> None:
    assert classify(body) is Reply.OTHER


def test_quiet_hours_are_local_clock_time_in_every_zone() -> None:
    # 19:30 in Los Angeles is 22:30 in New York: a number that may be in either is not texted
    moment = datetime(2026, 7, 1, 19, 30, tzinfo=ZoneInfo(LA))
    assert within_window(moment, [LA])
    assert not within_window(moment, [LA, NY])
    assert not within_window(datetime(2026, 7, 1, 7, 59, tzinfo=ZoneInfo(LA)), [LA])
    assert within_window(datetime(2026, 7, 1, 8, 0, tzinfo=ZoneInfo(LA)), [LA])
    assert not within_window(datetime(2026, 7, 1, 20, 0, tzinfo=ZoneInfo(LA)), [LA])
    assert not within_window(moment, [])  # no zone known: never texted


def test_next_window_is_the_strictest_zones_opening() -> None:
    # 21:00 Chicago: New York and Chicago both closed; Chicago opens at 8:00 Chicago, the later of the two
    moment = datetime(2026, 7, 1, 21, 0, tzinfo=ZoneInfo(CHI))
    opens = next_window(moment, [NY, CHI])
    assert opens == datetime(2026, 7, 2, 8, 0, tzinfo=ZoneInfo(CHI))
    assert next_window(datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo(NY)), [NY]) == datetime(
        2026, 7, 1, 12, 0, tzinfo=ZoneInfo(NY)
    )


def test_next_window_is_daylight_saving_correct() -> None:
    # The night DST starts (8 March 2026, US): 8:00 local is 15:00 UTC, not 16:00 as the evening before
    evening = datetime(2026, 3, 7, 21, 0, tzinfo=ZoneInfo(LA))
    opens = next_window(evening, [LA])
    assert opens is not None and opens.astimezone(UTC) == datetime(2026, 3, 8, 15, 0, tzinfo=UTC)
    # and the night it ends (1 November 2026): 8:00 local is 16:00 UTC
    opens = next_window(datetime(2026, 10, 31, 22, 0, tzinfo=ZoneInfo(LA)), [LA])
    assert opens is not None and opens.astimezone(UTC) == datetime(2026, 11, 1, 16, 0, tzinfo=UTC)
    # 7:30 local just after the change is still quiet, though 7:30 + one hour of the old offset would not be
    assert not within_window(datetime(2026, 3, 8, 14, 30, tzinfo=UTC), [LA])


def test_zones_with_no_shared_window() -> None:
    # Honolulu and New York share a window (13:00-14:00 ET in winter); a zone exactly 12 h away shares none
    assert next_window(datetime(2026, 1, 5, 6, 0, tzinfo=UTC), [HON, NY]) is not None
    assert next_window(datetime(2026, 1, 5, 6, 0, tzinfo=UTC), [NY, "Asia/Bangkok"]) is None


def test_recipient_zones_use_address_store_and_area_code() -> None:
    # A Miami number (305), a shopper in California, a store in Colorado: all three count
    assert area_code_zones("+13055550123") == (NY,)
    zones = recipient_zones(state="ca", store_zone="America/Denver", number="+13055550123")
    assert zones == (LA, "America/Denver", NY)
    assert recipient_zones(state=None, store_zone=None, number="+12065550123") == (LA,)
    assert recipient_zones(state="ZZ", store_zone="Not/AZone", number="+12065550123") == (LA,)


def test_segments_gsm7_and_ucs2() -> None:
    assert measure("a" * 160) == measure("a" * 160)
    assert measure("a" * 160).segments == 1 and measure("a" * 161).segments == 2
    assert measure("{" * 80).units == 160  # extension characters take two septets
    assert measure("a" * 70 + "é").encoding == "GSM-7"  # é is in the GSM-7 alphabet
    emoji = measure("a" * 69 + "🙂")
    assert emoji.encoding == "UCS-2" and emoji.units == 71 and emoji.segments == 2
    assert measure("\u2019" * 70).segments == 1 and measure("\u2019" * 71).segments == 2  # curly quote


def test_template_checks_name_the_problem() -> None:
    check_templates("Greenleaf", "loyalty texts", {})
    with pytest.raises(TemplateError, match="optin_request must contain 'Reply STOP to cancel, HELP for help'"):
        check_templates("Greenleaf", "x", {"optin_request": "{brand}: Reply YES. Msg & data rates may apply."})
    long = "{brand} " + "deals " * 90 + "Reply YES. Msg & data rates may apply. Reply STOP to cancel, HELP for help."
    with pytest.raises(TemplateError, match=r"optin_request is \d+ GSM-7 characters, \d segments; at most 3"):
        check_templates("Greenleaf", "x", {"optin_request": long})
    emoji = (
        "{brand} 🌿 " + "deals " * 40 + "Reply YES. Msg & data rates may apply. Reply STOP to cancel, HELP for help."
    )
    with pytest.raises(TemplateError, match=r"UCS-2.*emoji, curly quotes"):
        check_templates("Greenleaf", "x", {"optin_request": emoji})
    with pytest.raises(TemplateError, match="placeholders"):
        check_templates("Greenleaf", "x", {"help": "{brand} {name} STOP Msg & data rates may apply"})
    with pytest.raises(TemplateError, match="unknown SMS template"):
        check_templates("Greenleaf", "x", {"welcome": "hi"})


def test_tenant_settings_check_templates_when_set() -> None:
    settings = TenantSettings(brand_name="Greenleaf", sms_template_version=2)
    texts = settings.sms_texts()
    assert texts.version == 2 and texts.render(Kind.OPTIN_REQUEST).startswith("Greenleaf: ")
    for phrase in ("Reply YES to join", "Msg & data rates may apply", "Reply STOP to cancel, HELP for help"):
        assert phrase in texts.render(Kind.OPTIN_REQUEST)
    with pytest.raises(ValidationError, match=r"SMS template confirmation must contain"):
        TenantSettings(brand_name="Greenleaf", sms_templates={"confirmation": "You're in"})
    with pytest.raises(ValidationError, match="segments"):
        TenantSettings(
            brand_name="Greenleaf",
            sms_program="x" * 120,
            sms_templates={"help": "{brand} {program} {program} {program} {program} STOP Msg & data rates may apply"},
        )


def _consent(state: State, answered: frozenset[str] = frozenset()) -> Consent:
    return Consent("t1", "+12065550123", state, "optin", "p1", replies_answered=answered)


def test_stop_opts_out_for_good_and_is_acknowledged_once() -> None:
    for state in State:
        decision = rules.answer(_consent(state), Reply.STOP)
        assert decision.outcome == "opted_out" and decision.answer is Kind.STOP_ACK
        assert decision.state is (None if state is State.OPTED_OUT else State.OPTED_OUT)
    again = rules.answer(_consent(State.OPTED_OUT, frozenset({"stop"})), Reply.STOP)
    assert again.answer is None and again.state is None
    for reply in (Reply.CONFIRM, Reply.HELP, Reply.OTHER):
        assert rules.answer(_consent(State.OPTED_OUT), reply).answer is None


def test_yes_confirms_a_request_that_went_out_once() -> None:
    decision = rules.answer(_consent(State.REQUESTED), Reply.CONFIRM)
    assert (decision.state, decision.answer) == (State.CONFIRMED, Kind.CONFIRMATION)
    again = rules.answer(_consent(State.CONFIRMED, frozenset({"confirmation"})), Reply.CONFIRM)
    assert again.answer is None and again.state is None
    assert rules.answer(_consent(State.DEFERRED), Reply.CONFIRM).state is None  # nothing was asked yet


def test_help_always_other_text_once() -> None:
    assert rules.answer(_consent(State.CONFIRMED), Reply.HELP).answer is Kind.HELP
    assert rules.answer(_consent(State.REQUESTED), Reply.OTHER).answer is Kind.HELP
    assert rules.answer(_consent(State.REQUESTED, frozenset({"other"})), Reply.OTHER).answer is None
    assert rules.answer(_consent(State.CONFIRMED), Reply.OTHER).answer is None


def _shopper(**flags: bool | None) -> Shopper:
    return Shopper(
        tenant="t1",
        vendor=Vendor.POSABIT,
        credential_id="c1",
        pos_id="s1",
        source_updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        phone="+12065550123",
        **flags,
    )


def test_pos_consent_flags() -> None:
    assert rules.pos_consent([_shopper()]) is None
    assert rules.pos_consent([_shopper(sms_opt_out=True)]) == (State.OPTED_OUT, "pos:posabit", "sms_opt_out")
    assert rules.pos_consent([_shopper(sms_opt_in=True)]) == (State.CONFIRMED, "pos:posabit", "sms_opt_in")
    # an opt-out on any record wins over a consent on another
    both = [_shopper(sms_opt_in=True), _shopper(sms_opt_out=True)]
    assert rules.pos_consent(both) == (State.OPTED_OUT, "pos:posabit", "sms_opt_out")
    assert not rules.pos_overrides(State.OPTED_OUT, State.CONFIRMED)
    assert rules.pos_overrides(State.CONFIRMED, State.OPTED_OUT)
    assert rules.pos_overrides(State.DEFERRED, State.CONFIRMED)


def test_placeholder_and_invalid_numbers_are_never_texted() -> None:
    assert rules.textable("+12065550123")
    assert not rules.textable("+11234567890") and not rules.textable(None) and not rules.textable("2065550123")


def test_flourish_consent_flags_reach_the_shopper() -> None:
    from functions.core.connector import MappingContext
    from functions.pull_flourish.mapping import map_customer

    ctx = MappingContext(tenant="t1", vendor=Vendor.FLOURISH, credential_id="c1", timezone="America/Los_Angeles")
    base = {"id": "9", "phone": "206-555-0123", "last_updated_timestamp": "2026-06-01T10:00:00.000Z"}
    out = map_customer({**base, "opt_out_sms": True}, ctx)
    signed = map_customer({**base, "sms_opt_in": True}, ctx)
    silent = map_customer(base, ctx)
    assert (out.sms_opt_out, signed.sms_opt_in, silent.sms_opt_in, silent.sms_opt_out) == (True, True, None, None)
    assert rules.pos_consent([out]) == (State.OPTED_OUT, "pos:flourish", "sms_opt_out")
    assert rules.pos_consent([signed]) == (State.CONFIRMED, "pos:flourish", "sms_opt_in")
