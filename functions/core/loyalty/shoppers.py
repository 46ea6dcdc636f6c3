"""Shopper changes -> personas, a batch at a time: race-free identity resolution and POS-to-persona contact sync."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from functions.core import ddb_batch
from functions.core.errors import AwsServiceError, SettingsError
from functions.core.layout import Vendor
from functions.core.loyalty import identity
from functions.core.loyalty.batch import BatchReport, Change, Engine, in_scopes
from functions.core.loyalty.identity import SyncMode
from functions.core.loyalty.repository import PersonaConflictError
from functions.core.loyalty.settings import Markets, tenant_zone
from functions.core.loyalty.values import Claim, Persona
from functions.core.models import Shopper
from functions.core.observability import logger
from functions.core.settings import SYNC_VENDORS, IntegrationSettings
from functions.core.streams import BatchFailures


def _same(before: Persona, after: Persona) -> bool:
    return replace(after, version=before.version, updated_at=before.updated_at) == before


class ShopperEngine(Engine):
    """Matches each shopper change to a persona (phone, email, then POS id) and merges its contact details.

    A batch reads every claim it needs and the profiles they point to in batched reads, then writes once per
    change that changes something: one transaction creating a persona with all its claims (each only if still
    free, so two records of one phone arriving at once make one persona), or one conditional update of the
    profile (plus the claims it gains). A lost race re-reads that change's claims and persona and decides again.
    """

    rule = "contact sync"

    def __init__(self, *, markets: Markets, new_id: Callable[[], str] = lambda: uuid.uuid4().hex, **kwargs: Any):
        super().__init__(**kwargs)
        self.markets = markets
        self.new_id = new_id

    def apply(self, changes: Sequence[Change], failures: BatchFailures) -> BatchReport:
        report = BatchReport()
        order = {change.item_id: index for index, change in enumerate(changes)}
        modes: dict[str, SyncMode] = {}
        ready: list[Change] = []
        for scope, group in in_scopes(c for c in changes if isinstance(c.record, Shopper)).items():
            tenant, vendor = scope
            try:
                integration, zone = self._sync_settings(tenant, vendor)
            except (SettingsError, AwsServiceError) as exc:
                self.settings_problem(exc, scope, group, failures, report)
                continue
            for change in group:
                try:
                    modes[change.item_id] = self._mode(change.record, integration, zone)  # type: ignore[arg-type]
                except AwsServiceError as exc:  # the credential's markets could not be read
                    logger.warning("shopper retried", error=str(exc), tenant=tenant, vendor=vendor.value)
                    failures.fail(change.item_id, change.key, "markets could not be read")
                    continue
                ready.append(change)
        ready.sort(key=lambda c: order[c.item_id])
        for tenant in dict.fromkeys(c.record.tenant for c in ready):
            self._resolve_tenant(tenant, [c for c in ready if c.record.tenant == tenant], modes, failures, report)
        return report

    def _sync_settings(self, tenant: str, vendor: Vendor) -> tuple[IntegrationSettings | None, ZoneInfo | None]:
        """What contact sync reads: nothing for POSes without sync, the zone only when sync is on."""
        if vendor not in SYNC_VENDORS:
            return None, None
        integration = self.settings.integration(tenant, vendor)
        zone = tenant_zone(self.settings, tenant) if integration.sync_personas else None
        return integration, zone

    def _mode(self, shopper: Shopper, integration: IntegrationSettings | None, zone: ZoneInfo | None) -> SyncMode:
        if integration is None or zone is None:
            return "fill"
        edited_on = shopper.source_updated_at.astimezone(zone).date()
        markets: frozenset[str] = frozenset()
        if integration.sync_to_relevant_market:
            markets = self.markets(shopper.tenant, shopper.vendor, shopper.credential_id)
        return identity.sync_mode(integration, edited_on, shopper.state, markets)

    def _resolve_tenant(
        self,
        tenant: str,
        changes: Sequence[Change],
        modes: dict[str, SyncMode],
        failures: BatchFailures,
        report: BatchReport,
    ) -> None:
        claims = {c.item_id: identity.identity_claims(c.record) for c in changes}  # type: ignore[arg-type]
        try:
            owners = self.store.claim_owners(tenant, {claim for cs in claims.values() for claim in cs})
            profiles = self.store.get_personas(tenant, set(owners.values()))
        except AwsServiceError as exc:
            logger.warning("shopper batch retried", error=str(exc), tenant=tenant)
            for change in changes:
                failures.fail(change.item_id, change.key, "personas could not be read")
            return
        for change in changes:
            if failures.blocked(change.key):
                failures.fail(change.item_id, change.key, "an earlier record of the same item failed")
                continue
            shopper: Shopper = change.record  # type: ignore[assignment]
            try:
                outcome = self._resolve(
                    shopper, change.version, modes[change.item_id], claims[change.item_id], owners, profiles
                )
            except (PersonaConflictError, AwsServiceError) as exc:
                logger.warning("shopper retried", error=str(exc), tenant=tenant, vendor=shopper.vendor.value)
                failures.fail(change.item_id, change.key, type(exc).__name__)
                continue
            report.outcomes[change.item_id] = outcome
            report.customers.add((tenant, (shopper.vendor, shopper.credential_id, shopper.pos_id)))

    def _resolve(
        self,
        shopper: Shopper,
        version: int,
        mode: SyncMode,
        claims: list[Claim],
        owners: dict[Claim, str],
        profiles: dict[str, Persona],
    ) -> str:
        """Apply one change, given what the batch knows (updated as it writes; re-read after a lost race)."""
        tenant = shopper.tenant
        pos_claim = claims[-1]
        for attempt in range(self.max_attempts):
            target = identity.choose_persona(claims, owners)
            now = self.stamp()
            try:
                if target is None:
                    # One transaction: the profile and every claim, each only if absent. A racing creator for
                    # the same phone makes this fail; the retry then finds and joins the winner's persona.
                    persona = identity.new_persona(tenant, self.new_id(), shopper, version, now)
                    self.store.create_persona(persona, claims)
                    owners.update(dict.fromkeys(claims, persona.persona_id))
                    profiles[persona.persona_id] = persona
                    logger.info("persona created", tenant=tenant, persona=persona.persona_id, vendor=shopper.vendor)
                    return "created"
                current = profiles.get(target) or self.store.get_persona(tenant, target)
                if current is None:
                    raise PersonaConflictError(f"claim of persona {target} without a profile")
                updated = identity.apply_shopper(current, shopper, version, mode, now)
                free = [c for c in claims if c not in owners]
                # A POS record held by another persona moves to the one its phone or email now matches (that
                # persona keeps the record in its history: its data did come from there).
                holder = owners.get(pos_claim)
                moved = (pos_claim, holder) if holder is not None and holder != target else None
                if not free and moved is None and _same(current, updated):
                    profiles[target] = current
                    return "unchanged"
                self.store.save_persona(updated, current, free, moved)
                owners.update(dict.fromkeys(free, target))
                owners[pos_claim] = target
                profiles[target] = updated
                return "moved" if moved else "updated"
            except PersonaConflictError:
                self.sleep(ddb_batch.backoff_delay(attempt))
                fresh = self.store.claim_owners(tenant, claims)
                stale = {owners.get(c) for c in claims} | set(fresh.values()) | {target}
                for claim in claims:
                    owners.pop(claim, None)
                owners.update(fresh)
                for persona_id in stale:
                    if persona_id is not None:
                        profiles.pop(persona_id, None)
        raise PersonaConflictError(f"shopper kept conflicting after {self.max_attempts} attempts")
