"""SMS consent of one number with one tenant: its state machine, and the append-only evidence of how it got there."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class State(StrEnum):
    """Where a number stands with a tenant.

    INTENT: the request is recorded and the provider has not been called; DEFERRED: waiting for the quiet hours
    (or the 24 h cap) to end; SENDING: the provider call is under way; REQUESTED: the provider accepted it;
    UNCERTAIN: the call timed out or crashed after it began (never repeated, reported); FAILED: the provider refused
    it; CONFIRMED: the shopper replied YES (or the POS recorded consent); OPTED_OUT: STOP (or the POS opt-out), for
    good.
    """

    INTENT = "intent"
    DEFERRED = "deferred"
    SENDING = "sending"
    REQUESTED = "requested"
    UNCERTAIN = "uncertain"
    FAILED = "failed"
    CONFIRMED = "confirmed"
    OPTED_OUT = "opted_out"


# A request that may still be sent: the provider was certainly not called for it yet.
SENDABLE = frozenset({State.INTENT, State.DEFERRED})
# A request the shopper may answer (it went out, or may have).
ANSWERABLE = frozenset({State.REQUESTED, State.UNCERTAIN, State.SENDING})
# What a persona's consent reads as on `personas list`.
CONSENT_LABELS: Mapping[State, str] = {
    State.INTENT: "pending",
    State.DEFERRED: "deferred",
    State.SENDING: "pending",
    State.REQUESTED: "requested",
    State.UNCERTAIN: "uncertain",
    State.FAILED: "failed",
    State.CONFIRMED: "opted_in",
    State.OPTED_OUT: "opted_out",
}


@dataclass(frozen=True)
class Consent:
    """One number's consent with one tenant (the current state; its history is the evidence)."""

    tenant: str
    number: str
    state: State
    source: str  # "optin" (our request) or "pos:<vendor>" (consent the POS recorded)
    persona_id: str | None = None
    template_version: int | None = None
    request_text: str | None = None
    zones: tuple[str, ...] = ()
    requested_at: str | None = None
    deferred_until: str | None = None
    sent_at: str | None = None
    sending_since: str | None = None  # when the provider call was claimed (a SENDING request older is stale)
    replied_at: str | None = None
    confirmed_at: str | None = None
    opted_out_at: str | None = None
    message_ids: tuple[str, ...] = ()
    replies_answered: frozenset[str] = frozenset()  # reply kinds already answered once (help, confirmation, stop)
    version: int = 0

    @property
    def label(self) -> str:
        return CONSENT_LABELS[self.state]

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "number": self.number,
            "state": self.state.value,
            "consent": self.label,
            "source": self.source,
            "persona_id": self.persona_id,
            "template_version": self.template_version,
            "request_text": self.request_text,
            "zones": list(self.zones),
            "requested_at": self.requested_at,
            "deferred_until": self.deferred_until,
            "sent_at": self.sent_at,
            "replied_at": self.replied_at,
            "confirmed_at": self.confirmed_at,
            "opted_out_at": self.opted_out_at,
            "message_ids": list(self.message_ids),
        }


@dataclass(frozen=True)
class Evidence:
    """One event in a number's consent history: requested, deferred, sent, uncertain, failed, replied, confirmed,
    opted_out, cancelled, or a text sent in answer. Never changed once written."""

    tenant: str
    number: str
    event: str
    at: str
    source: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"event": self.event, "at": self.at, "source": self.source, "number": self.number, **self.details}
