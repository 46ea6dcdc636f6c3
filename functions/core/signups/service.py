"""A form signup applied: the persona it creates or matches, its one event, and the opt-in request its consent asks.

Exactly once, however often the same signup is posted: the persona is found by its identity claims (phone, then
email: the rule POS shopper records follow), so a second post matches the first one's persona; the event is one
conditional write keyed by the signup's idempotency id, with the form's consent evidence in the same transaction;
the opt-in request is the opt-in flow's own durable intent (one per number and persona, ever), sent by the opt-in
deferral handler within the recipient's daytime hours, or deferred until then.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from botocore.exceptions import ClientError

from functions.core import aws, ddb_batch, layout
from functions.core.errors import AwsServiceError, PossyncError
from functions.core.layout import FORM_SOURCE, ResourceNames
from functions.core.loyalty import identity
from functions.core.loyalty.repository import CANCELLED, PersonaConflictError, PersonaStore
from functions.core.loyalty.settings import SettingsReader
from functions.core.loyalty.values import Claim, Persona, iso
from functions.core.observability import logger
from functions.core.signups.keys import SignupKeys
from functions.core.signups.request import SignupRequest
from functions.core.sms import rules as sms_rules
from functions.core.sms.consent import Consent, Evidence
from functions.core.sms.consent import State as ConsentState
from functions.core.sms.deferral import ENV_DEFERRAL_QUEUE_URL, Deferrals, Deferred, SqsDeferrals
from functions.core.sms.quiet import recipient_zones
from functions.core.sms.store import ConsentStore, evidence_item
from functions.core.sms.templates import Kind
from functions.core.sources import SettingsSource
from functions.core.store import call_table

MAX_ATTEMPTS = 5
CONTACT_OF_SIGNUP = ("first_name", "last_name", "email", "phone", "birth_date")


class IdempotencyKeyReusedError(PossyncError):
    """An Idempotency-Key already used for a different signup: refused (400), nothing written."""


class SignupConflictError(AwsServiceError):
    """The signup's persona kept changing under it: the client retries (the same signup, so nothing twice)."""


@dataclass(frozen=True)
class Accepted:
    """What a signup did: `duplicate` when this signup was accepted before (nothing new was written)."""

    signup_id: str
    persona_id: str
    persona: str  # "created" or "matched"
    duplicate: bool
    # "requested" (this post asked), "already" (asked or answered before), "not_asked" (no consent or no mobile)
    optin: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "signup_id": self.signup_id,
            "persona_id": self.persona_id,
            "persona": self.persona,
            "duplicate": self.duplicate,
            "optin": self.optin,
        }


def signup_contact(request: SignupRequest) -> dict[str, str | None]:
    return {
        "first_name": request.first_name,
        "last_name": request.last_name,
        "email": request.email,
        "phone": request.phone,
        "birth_date": request.birth_date.isoformat(),
    }


def apply_signup(persona: Persona, request: SignupRequest, now: str) -> Persona:
    """A signup fills only the persona's empty contact fields (what the POS holds stays: with "sync personas" the
    POS is the source of truth) and adds `form` to its sources."""
    values = {k: v for k, v in signup_contact(request).items() if v is not None and persona.contact(k) is None}
    if not values and FORM_SOURCE in persona.sources:
        return persona
    merged = persona.with_contact(values) if values else persona
    return replace(merged, sources=merged.sources | {FORM_SOURCE}, version=persona.version + 1, updated_at=now)


class SignupService:
    def __init__(
        self,
        *,
        keys: SignupKeys,
        personas: PersonaStore,
        consents: ConsentStore,
        settings: SettingsReader,
        deferrals: Deferrals,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.keys = keys
        self.personas = personas
        self.consents = consents
        self.settings = settings
        self.deferrals = deferrals
        self.now = now
        self.new_id = new_id
        self.sleep = sleep

    @classmethod
    def from_env(cls) -> SignupService:
        names = ResourceNames.from_env()
        ddb = aws.client("dynamodb")
        personas_table = os.environ.get(layout.ENV_PERSONAS_TABLE, names.personas_table)
        return cls(
            keys=SignupKeys(ddb, os.environ.get(layout.ENV_CONTROL_TABLE, names.control_table)),
            personas=PersonaStore(ddb, personas_table),
            consents=ConsentStore(ddb, personas_table),
            settings=SettingsSource(names),
            deferrals=SqsDeferrals(aws.client("sqs"), os.environ[ENV_DEFERRAL_QUEUE_URL]),
        )

    def today(self) -> date:
        return self.now().astimezone(UTC).date()

    # --- the signup ----------------------------------------------------------------------------------------
    def accept(self, tenant: str, request: SignupRequest, signup_id: str) -> Accepted:
        """Apply one signup (authenticated and valid). AwsServiceError: nothing is lost, the client retries."""
        seen = self._event(tenant, signup_id)
        if seen is not None:
            self._same_signup(seen, request)
            optin = self._optin(tenant, seen["persona_id"], request, signup_id)
            logger.info("signup posted again; nothing new", tenant=tenant, signup=signup_id)
            return Accepted(signup_id, seen["persona_id"], seen.get("persona", "matched"), True, optin)
        persona, outcome = self._resolve(tenant, request)
        if not self._record_event(tenant, signup_id, persona.persona_id, outcome, request):
            seen = self._event(tenant, signup_id) or {"persona_id": persona.persona_id}
            self._same_signup(seen, request)
            optin = self._optin(tenant, seen["persona_id"], request, signup_id)
            return Accepted(signup_id, seen["persona_id"], seen.get("persona", outcome), True, optin)
        optin = self._optin(tenant, persona.persona_id, request, signup_id)
        logger.info("signup accepted", tenant=tenant, signup=signup_id, persona=persona.persona_id, outcome=outcome)
        return Accepted(signup_id, persona.persona_id, outcome, False, optin)

    @staticmethod
    def _same_signup(seen: dict[str, str], request: SignupRequest) -> None:
        """A repeat is the same signup: a client that reuses its Idempotency-Key for other content is refused (its
        contact or consent would otherwise be applied to the first signup's persona)."""
        recorded = seen.get("content")
        if recorded is not None and json.loads(recorded) != request.content():
            raise IdempotencyKeyReusedError("this Idempotency-Key was used for a different signup: send a new key")

    def _resolve(self, tenant: str, request: SignupRequest) -> tuple[Persona, str]:
        """The persona holding the signup's phone, else its email (identity.choose_persona), else a new one; each
        write conditional, so a racing signup or POS record for the same person ends in one persona."""
        claims = identity.contact_claims(request.phone, request.email)
        for attempt in range(MAX_ATTEMPTS):
            now = iso(self.now())
            try:
                owners = self.personas.claim_owners(tenant, claims)
                target = identity.choose_persona(claims, owners)
                if target is None:
                    blank = Persona(tenant=tenant, persona_id=self.new_id(), created_at=now, updated_at=now)
                    persona = apply_signup(blank, request, now)
                    self.personas.create_persona(persona, claims)
                    return persona, "created"
                current = self.personas.get_persona(tenant, target)
                if current is None:
                    raise PersonaConflictError("a claim of a persona without a profile")
                updated = apply_signup(current, request, now)
                free: list[Claim] = [c for c in claims if c not in owners]
                if updated is not current or free:
                    self.personas.save_persona(updated, current, free)
                return updated, "matched"
            except PersonaConflictError:
                self.sleep(ddb_batch.backoff_delay(attempt))
        raise SignupConflictError(f"the signup's persona kept changing after {MAX_ATTEMPTS} attempts; retry")

    # --- the event -----------------------------------------------------------------------------------------
    def _event_key(self, tenant: str, signup_id: str) -> dict[str, Any]:
        return {"pk": {"S": layout.signup_event_pk(tenant, signup_id)}, "sk": {"S": layout.SIGNUP_EVENT_SK}}

    def _event(self, tenant: str, signup_id: str) -> dict[str, str] | None:
        table = self.personas.table
        item = call_table(
            self.personas.ddb,
            table,
            "get_item",
            TableName=table,
            Key=self._event_key(tenant, signup_id),
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        return {name: str(value["S"]) for name, value in item.items() if "S" in value}

    def _record_event(self, tenant: str, signup_id: str, persona_id: str, outcome: str, request: SignupRequest) -> bool:
        """The signup's one event (and, with marketing consent, its consent evidence: the form's text and time),
        written only if absent. False: the same signup was recorded meanwhile (a concurrent double post)."""
        at = iso(self.now())
        table = self.personas.table
        event = {
            **self._event_key(tenant, signup_id),
            "tenant": {"S": tenant},
            "signup_id": {"S": signup_id},
            "persona_id": {"S": persona_id},
            "persona": {"S": outcome},
            "received_at": {"S": at},
            "store": {"S": request.store},
            "marketing_consent": {"BOOL": request.marketing_consent},
            "content": {"S": json.dumps(request.content(), ensure_ascii=False, sort_keys=True)},
        }
        absent = "attribute_not_exists(pk)"
        actions: list[dict[str, Any]] = [{"Put": {"TableName": table, "Item": event, "ConditionExpression": absent}}]
        if request.marketing_consent and request.phone is not None:
            evidence = self._consent_evidence(tenant, signup_id, persona_id, request, at)
            actions.append(
                {"Put": {"TableName": table, "Item": evidence_item(evidence), "ConditionExpression": absent}}
            )
        op = "put_item" if len(actions) == 1 else "transact_write_items"
        kwargs = actions[0]["Put"] if len(actions) == 1 else {"TransactItems": actions}
        try:
            call_table(self.personas.ddb, table, op, passthrough=CANCELLED, **kwargs)
        except ClientError:
            return False
        return True

    @staticmethod
    def _consent_evidence(tenant: str, signup_id: str, persona_id: str, request: SignupRequest, at: str) -> Evidence:
        assert request.phone is not None and request.consent_text is not None  # checked by the request model
        details = {
            "persona_id": persona_id,
            "signup_id": signup_id,
            "consent_text": request.consent_text,
            "consented_at": at,
            "store": request.store,
        }
        return Evidence(tenant, request.phone, "form_consent", at, FORM_SOURCE, details)

    # --- the opt-in request --------------------------------------------------------------------------------
    def _optin(self, tenant: str, persona_id: str, request: SignupRequest, signup_id: str) -> str:
        """Marketing consent on the form asks for the SMS double opt-in: the opt-in flow's durable intent (absent for
        this number and this persona, ever), then a deferral message due now; the opt-in deferral handler sends it
        when the recipient's daytime allows (or defers it again). A repeat finds the intent and asks nothing new
        (a request still only intended is queued again: the handler's conditional claim sends it once)."""
        number = request.phone
        if not request.marketing_consent or number is None or not sms_rules.textable(number):
            return "not_asked"
        existing = self.consents.consent(tenant, number)
        if existing is None:
            templates = self.settings.tenant(tenant).sms_texts()
            now = self.now()
            text = templates.render(Kind.OPTIN_REQUEST)
            zones = recipient_zones(state=None, store_zone=None, number=number)
            consent = Consent(
                tenant=tenant,
                number=number,
                state=ConsentState.INTENT,
                source="optin",
                persona_id=persona_id,
                template_version=templates.version,
                request_text=text,
                zones=zones,
                requested_at=iso(now),
            )
            details = {
                "persona_id": persona_id,
                "template_version": templates.version,
                "text": text,
                "signup": signup_id,
                "zones": ",".join(zones),
            }
            evidence = Evidence(tenant, number, "requested", iso(now), FORM_SOURCE, details)
            if not self.consents.record_intent(consent, evidence):
                return "already"
            self.deferrals.defer(Deferred(tenant, number, self.now()), self.now())
            return "requested"
        if existing.persona_id == persona_id and existing.state is ConsentState.INTENT:
            # recorded, and perhaps never queued (the first post failed after the intent): queued again
            self.deferrals.defer(Deferred(tenant, number, self.now()), self.now())
        return "already"
