"""The opt-in rules as plain functions: who may be asked, what the POS's consent flags mean, what a reply does."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from functions.core.loyalty.points import ENROLLING_STATUSES
from functions.core.models import Sale, Shopper, normalize_phone
from functions.core.sms.consent import ANSWERABLE, SENDABLE, Consent, State
from functions.core.sms.keywords import Reply
from functions.core.sms.templates import Kind


def textable(phone: str | None) -> bool:
    """An E.164 number that parses as valid and is not a placeholder: the only kind possync ever texts."""
    return bool(phone) and normalize_phone(phone) == phone


def sale_qualifies(sale: Sale, sms_optin_after: date | None) -> bool:
    """A completed sale on or after the integration's opt-in date (the store-local date) asks for an opt-in."""
    return sms_optin_after is not None and sale.status in ENROLLING_STATUSES and sale.local_date >= sms_optin_after


def pos_consent(shoppers: Iterable[Shopper]) -> tuple[State, str, str] | None:
    """The consent the POS records of a shopper: (state, source, field). An opt-out on any of its records wins
    over a consent on another; None when no record says anything."""
    opted_in: tuple[State, str, str] | None = None
    for shopper in shoppers:
        if shopper.sms_opt_out:
            return State.OPTED_OUT, f"pos:{shopper.vendor.value}", "sms_opt_out"
        if shopper.sms_opt_in and opted_in is None:
            opted_in = (State.CONFIRMED, f"pos:{shopper.vendor.value}", "sms_opt_in")
    return opted_in


def pos_overrides(current: State, recorded: State) -> bool:
    """A POS opt-out ends any consent but an opt-out; a POS opt-in replaces only a request not yet answered
    (it never revives an opt-out, which is for good)."""
    if current is State.OPTED_OUT:
        return False
    if recorded is State.OPTED_OUT:
        return True
    return current in SENDABLE or current in ANSWERABLE or current is State.FAILED


@dataclass(frozen=True)
class Decision:
    outcome: str
    state: State | None = None  # the consent's new state, if it changes
    answer: Kind | None = None  # the text sent in answer, if any
    once_key: str | None = None  # an answer sent at most once per consent


def answer(consent: Consent, reply: Reply) -> Decision:
    """What a reply does to one consent. STOP opts out at once and for good (a deferred request is cancelled),
    acknowledged once; YES/Y/START confirm a request that went out (one confirmation); HELP gets the help text;
    anything else from a number with a request outstanding gets the help text once. An opted-out number gets
    nothing back but the one acknowledgement."""
    state = consent.state
    if reply is Reply.STOP:
        ack = None if "stop" in consent.replies_answered else Kind.STOP_ACK
        changed = None if state is State.OPTED_OUT else State.OPTED_OUT
        return Decision("opted_out", changed, ack, "stop" if ack else None)
    if state is State.OPTED_OUT:
        return Decision("ignored")
    if reply is Reply.CONFIRM:
        if state in ANSWERABLE or (state is State.CONFIRMED and "confirmation" not in consent.replies_answered):
            ack = None if "confirmation" in consent.replies_answered else Kind.CONFIRMATION
            return Decision("confirmed", State.CONFIRMED if state is not State.CONFIRMED else None, ack, "confirmation")
        return Decision("ignored")
    if reply is Reply.HELP:
        return Decision("help", None, Kind.HELP)
    if state in ANSWERABLE and "other" not in consent.replies_answered:
        return Decision("help", None, Kind.HELP, "other")
    return Decision("ignored")
