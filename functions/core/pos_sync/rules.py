"""Persona -> POS sync rules as pure functions: which persona is synced to which credential, and what is sent."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from functions.core.layout import FORM_SOURCE, Vendor
from functions.core.loyalty.identity import in_market, is_placeholder_phone
from functions.core.loyalty.values import Persona
from functions.core.models import is_placeholder_email
from functions.core.settings import SYNC_VENDORS, IntegrationSettings

# What a sync record says happened for one persona and one credential. Terminal states are never redone: a
# created or matched customer is linked; a rejection needs a person. An uncertain create is only ever looked up.
SyncState = Literal["claimed", "creating", "created", "matched", "uncertain", "rejected", "skipped", "retrying"]
TERMINAL_STATES: frozenset[str] = frozenset({"created", "matched", "rejected"})
# States a pull can settle: when the persona turns out to be a customer of the credential (the pull brought the POS
# customer back into it), a create whose answer was lost, one waiting to retry, or an abandoned claim is linked.
SETTLED_BY_PULL: frozenset[str] = frozenset({"uncertain", "retrying", "claimed", "creating"})
# A create in flight longer than this was left by an invocation that stopped (timeout, crash): it is uncertain.
CLAIM_LEASE_SECONDS = 300


@dataclass(frozen=True)
class Contact:
    """What persona sync sends a POS and looks it up by (placeholders and blanks dropped)."""

    first_name: str | None
    last_name: str | None
    phone: str | None  # E.164
    email: str | None  # lower-cased
    birth_date: date | None
    state: str | None

    @property
    def phone_digits(self) -> str | None:
        """The 10-digit national number of a North American phone (what POSaBIT and Flourish store)."""
        if not self.phone:
            return None
        digits = "".join(ch for ch in self.phone if ch.isdigit())
        return digits[-10:] if len(digits) >= 10 else None


@dataclass(frozen=True)
class Skip:
    """The persona is not synced to this credential, and why (what `possync personas show` prints)."""

    reason: str
    record: bool = True  # worth a sync record (False: nothing to say, e.g. already a customer there)
    # Already a customer there: the POS id of that customer record, when a sync record may be waiting on it (the
    # persona was created since syncing began), so that an unsettled sync record is linked to it.
    pos_id: str | None = None


@dataclass(frozen=True)
class Sync:
    """Look the contact up in the POS, and create it there when nobody matches."""

    contact: Contact


Decision = Skip | Sync


def contact_of(persona: Persona, state: str | None) -> Contact:
    def text(value: str | None) -> str | None:
        return value.strip() or None if value else None

    phone = None if is_placeholder_phone(persona.phone) else text(persona.phone)
    email = text(persona.email)
    if email is not None and is_placeholder_email(email):
        email = None
    birth = date.fromisoformat(persona.birth_date) if persona.birth_date else None
    return Contact(
        text(persona.first_name),
        text(persona.last_name),
        phone,
        email.lower() if email else None,
        birth,
        text(state).upper() if text(state) else None,  # type: ignore[union-attr]
    )


def created_on(persona: Persona, zone: ZoneInfo) -> date | None:
    """The tenant-local day a persona was created (None when the profile carries no creation time)."""
    if not persona.created_at:
        return None
    return datetime.fromisoformat(persona.created_at).astimezone(zone).date()


def profile_in(persona: Persona, vendor: Vendor, credential_id: str) -> str | None:
    """The POS id of the persona's customer record of this credential (pulled from it, or linked by a sync; the
    lowest, if several), or None when it has none."""
    prefix = f"{vendor.value}#{credential_id}#"
    found = sorted(record[len(prefix) :] for record in persona.source_records if record.startswith(prefix))
    return found[0] if found else None


def decide(
    persona: Persona,
    settings: IntegrationSettings,
    credential_id: str,
    zone: ZoneInfo,
    markets: Iterable[str],
    state: str | None = None,
) -> Decision:
    """A form persona is synced to a POSaBIT or Flourish credential when the integration syncs personas, the persona
    was created on or after the day syncing began (never retroactively), it is in the credential's market/state
    when "sync to relevant market" is on, it has no customer record of that credential yet, the credential serves
    its store (when its store is mapped to some of this POS's credentials), and the POS can take it: a phone or
    email to look it up by, and for Flourish a date of birth."""
    vendor = settings.vendor
    if vendor not in SYNC_VENDORS:
        return Skip(f"{vendor.value} is read-only: possync never writes to it", record=False)
    if not settings.sync_personas or settings.sync_personas_enabled_on is None:
        return Skip(f"sync personas is off for {vendor.value}", record=False)
    if FORM_SOURCE not in persona.sources:
        return Skip("not a form signup: only form signups are created in the POS", record=False)
    pos_id = profile_in(persona, vendor, credential_id)
    if pos_id is not None:
        day = created_on(persona, zone)
        waiting = day is not None and day >= settings.sync_personas_enabled_on  # only then can a sync record exist
        reason = f"already a {vendor.value} customer of this credential"
        return Skip(reason, record=False, pos_id=pos_id if waiting else None)
    serving = {key for key, store in settings.store_mappings.items() if store == persona.favourite_store}
    if persona.favourite_store and serving and credential_id not in serving:
        return Skip(f"signed up at store {persona.favourite_store}, which another credential serves", record=False)
    day = created_on(persona, zone)
    if day is None or day < settings.sync_personas_enabled_on:
        return Skip(
            f"created before sync personas began on {settings.sync_personas_enabled_on.isoformat()} (not retroactive)"
        )
    contact = contact_of(persona, state)
    # A signup at a store this credential serves (its mapping) is in the credential's market by definition; otherwise
    # the contact's recorded state must be one the credential syncs.
    if settings.sync_to_relevant_market and credential_id not in serving:
        wanted = sorted({m.strip().upper() for m in markets if m and m.strip()})
        if not wanted:
            return Skip("sync to relevant market is on but the credential has no market/regions")
        if not in_market(contact.state, wanted):
            where = contact.state or "no state"
            return Skip(f"outside the credential's market ({where}; the credential syncs {', '.join(wanted)})")
    if contact.phone_digits is None and contact.email is None:
        return Skip("no phone or email to look the shopper up by")
    if not contact.first_name:
        return Skip("no first name: the POS requires one")
    if vendor is Vendor.FLOURISH:
        if contact.birth_date is None:
            return Skip("no date of birth: Flourish requires one to create a customer")
        if contact.email is None or not contact.last_name:
            return Skip("Flourish requires an email and a last name to create a customer")
    return Sync(contact)


def take_over(state: str, claimed_at: str, now: datetime) -> Literal["free", "held", "uncertain"]:
    """Whether an unfinished sync record may be worked on. Until "creating" is written nothing but a search has
    reached the POS, so such a record is free (its claim is taken over conditionally: of two invocations one
    wins). A fresh "creating" is held by the invocation sending the create; a stale one (that invocation stopped),
    like "uncertain", may only be looked up, never created again."""
    if state == "uncertain":
        return "uncertain"
    if state != "creating":
        return "free"
    age = (now - datetime.fromisoformat(claimed_at)).total_seconds() if claimed_at else CLAIM_LEASE_SECONDS
    return "held" if age < CLAIM_LEASE_SECONDS else "uncertain"
