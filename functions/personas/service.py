"""Applies the persona rules to shopper records: race-free identity resolution and contact sync, via the repository."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from functions.core import aws, layout
from functions.core.errors import SettingsError
from functions.core.layout import ResourceNames, Vendor
from functions.core.models import Shopper
from functions.core.notify import Notifier
from functions.core.observability import logger
from functions.core.personas_store import Persona, PersonaConflictError, PersonaStore, iso
from functions.core.settings import SYNC_VENDORS
from functions.core.store import ControlStore
from functions.enroll.service import (
    MAX_ATTEMPTS,
    EnrollService,
    SettingsReader,
    local_date,
    report_invalid_settings,
)
from functions.personas import rules
from functions.personas.rules import SyncMode

MARKETS_CACHE_SECONDS = 300.0

Markets = Callable[[str, Vendor, str], frozenset[str]]


class CredentialMarkets:
    """A credential's market (POSaBIT) or regions (Flourish), from the control table's registry, cached briefly."""

    def __init__(
        self, control: ControlStore, ttl: float = MARKETS_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.control = control
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[str, Vendor, str], tuple[float, frozenset[str]]] = {}

    def __call__(self, tenant: str, vendor: Vendor, credential_id: str) -> frozenset[str]:
        key = (tenant, vendor, credential_id)
        held = self._cache.get(key)
        if held is not None and self.clock() - held[0] < self.ttl:
            return held[1]
        entry = self.control.get_credential(tenant, vendor, credential_id)
        markets: set[str] = set()
        if entry is not None:
            for value in (entry.market, entry.attributes.get("market")):
                if isinstance(value, str) and value:
                    markets.add(value.upper())
            regions = entry.attributes.get("regions") or ()
            markets.update(r.upper() for r in regions if isinstance(r, str) and r)
        found = frozenset(markets)
        self._cache[key] = (self.clock(), found)
        return found


def _same(before: Persona, after: Persona) -> bool:
    return replace(after, version=before.version, updated_at=before.updated_at) == before


class PersonaService:
    """Shopper records -> personas: match (phone, email, POS id), create race-free, sync contacts, record sources."""

    def __init__(
        self,
        *,
        store: PersonaStore,
        settings: SettingsReader,
        markets: Markets,
        notifier: Notifier,
        enroll: EnrollService | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.store = store
        self.settings = settings
        self.markets = markets
        self.notifier = notifier
        self.enroll = enroll
        self.now = now
        self.new_id = new_id
        self.sleep = sleep
        self.max_attempts = max_attempts

    @classmethod
    def from_env(cls) -> PersonaService:
        names = ResourceNames.from_env()
        enroll = EnrollService.from_env()
        control = ControlStore(aws.client("dynamodb"), os.environ.get(layout.ENV_CONTROL_TABLE, names.control_table))
        return cls(
            store=enroll.store,
            settings=enroll.settings,
            markets=CredentialMarkets(control),
            notifier=enroll.notifier,
            enroll=enroll,
        )

    def handle_shopper(self, shopper: Shopper, version: int) -> str:
        """Resolve the shopper to a persona, merge its contact details, then apply its parked sales."""
        mode = self._mode(shopper)
        outcome, persona_id = self._resolve(shopper, version, mode)
        if self.enroll is not None:
            self.enroll.apply_pending(
                shopper.tenant, shopper.vendor, shopper.credential_id, shopper.pos_id, persona_id=persona_id
            )
        return outcome

    def _mode(self, shopper: Shopper) -> SyncMode:
        """Overwrite or fill-only for this change; unreadable settings fail safe to fill-only."""
        if shopper.vendor not in SYNC_VENDORS:
            return "fill"
        try:
            integration = self.settings.integration(shopper.tenant, shopper.vendor)
            if not integration.sync_personas:
                return "fill"
            edited_on = local_date(shopper.source_updated_at, self.settings, shopper.tenant)
        except SettingsError as exc:
            report_invalid_settings(self.notifier, exc, shopper, "contact sync")
            return "fill"
        markets: frozenset[str] = frozenset()
        if integration.sync_to_relevant_market:
            markets = self.markets(shopper.tenant, shopper.vendor, shopper.credential_id)
        return rules.sync_mode(integration, edited_on, shopper.state, markets)

    def _resolve(self, shopper: Shopper, version: int, mode: SyncMode) -> tuple[str, str]:
        tenant = shopper.tenant
        claims = rules.identity_claims(shopper)
        pos_claim = claims[-1]
        for attempt in range(self.max_attempts):
            owners = self.store.claim_owners(tenant, claims)
            target = rules.choose_persona(claims, owners)
            now = iso(self.now())
            try:
                if target is None:
                    # One transaction: the profile and every claim, each only if absent. A racing creator for
                    # the same phone makes this fail; the retry then finds and joins the winner's persona.
                    persona = rules.new_persona(tenant, self.new_id(), shopper, version, now)
                    self.store.create_persona(persona, claims)
                    logger.info("persona created", tenant=tenant, persona=persona.persona_id, vendor=shopper.vendor)
                    return "created", persona.persona_id
                current = self.store.get_persona(tenant, target)
                if current is None:
                    raise PersonaConflictError(f"claim of persona {target} without a profile")
                updated = rules.apply_shopper(current, shopper, version, mode, now)
                free = [c for c in claims if c not in owners]
                # A POS record held by another persona moves to the one its phone or email now matches (that
                # persona keeps the record in its history: its data did come from there).
                holder = owners.get(pos_claim)
                moved = (pos_claim, holder) if holder is not None and holder != target else None
                if not free and moved is None and _same(current, updated):
                    return "unchanged", target
                self.store.save_persona(updated, current.version, free, moved)
                return ("moved" if moved else "updated"), target
            except PersonaConflictError:
                self.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
        raise PersonaConflictError(f"shopper kept conflicting after {self.max_attempts} attempts")
