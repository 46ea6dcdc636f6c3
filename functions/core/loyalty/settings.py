"""What the loyalty rules read of settings: the reader protocol, store-local dates, markets, and fail-safe reports."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from functions.core import metrics
from functions.core.errors import AwsServiceError, SettingsError
from functions.core.layout import ResourceNames, Vendor
from functions.core.notify import Notifier
from functions.core.observability import logger
from functions.core.settings import IntegrationSettings, TenantSettings
from functions.core.store import ControlStore, RegisteredCredential

MARKETS_CACHE_SECONDS = 300.0


class SettingsReader(Protocol):
    """functions.core.sources.SettingsSource, or a fake. Raises SettingsError for invalid settings (the message
    names the parameter) and an AwsServiceError (SettingsUnavailableError) when they cannot be read."""

    def integration(self, tenant: str, vendor: Vendor) -> IntegrationSettings: ...

    def tenant(self, tenant: str) -> TenantSettings: ...


def tenant_zone(settings: SettingsReader, tenant: str) -> ZoneInfo:
    """The tenant's time zone (tenant loyalty settings); an unknown zone is invalid settings."""
    zone = settings.tenant(tenant).timezone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        names: ResourceNames | None = getattr(settings, "names", None)
        where = names.tenant_settings_parameter(tenant) if names else "the tenant loyalty settings"
        raise SettingsError(f"invalid settings in parameter {where}: timezone: not a known IANA time zone") from None


def local_date(moment: datetime, settings: SettingsReader, tenant: str) -> date:
    """The date of `moment` in the tenant's time zone."""
    return moment.astimezone(tenant_zone(settings, tenant)).date()


def report_settings_problem(
    sink: Notifier, exc: SettingsError | AwsServiceError, tenant: str, vendor: Vendor, rule: str, records: int
) -> None:
    """Fail safe, visibly: invalid settings park the records until they are fixed (SettingsInvalid); settings that
    cannot be read fail the records, which are retried (SettingsUnreadable). The message names the parameter,
    never its value."""
    if isinstance(exc, SettingsError):
        logger.error(
            "settings invalid; rule skipped, records wait until the settings are fixed (fail safe)",
            rule=rule,
            error=str(exc),
            tenant=tenant,
            vendor=vendor.value,
            records=records,
        )
        sink.counts({metrics.SETTINGS_INVALID: records})
    else:
        logger.warning(
            "settings could not be read; records retried (fail safe)",
            rule=rule,
            error=str(exc),
            tenant=tenant,
            vendor=vendor.value,
            records=records,
        )
        sink.counts({metrics.SETTINGS_UNREADABLE: records})


Markets = Callable[[str, Vendor, str], frozenset[str]]


def credential_markets(entry: RegisteredCredential) -> frozenset[str]:
    """A registered credential's market (POSaBIT) or regions (Flourish), upper-cased."""
    markets: set[str] = set()
    for value in (entry.market, entry.attributes.get("market")):
        if isinstance(value, str) and value:
            markets.add(value.upper())
    regions = entry.attributes.get("regions") or ()
    markets.update(r.upper() for r in regions if isinstance(r, str) and r)
    return frozenset(markets)


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
        found = credential_markets(entry) if entry is not None else frozenset()
        self._cache[key] = (self.clock(), found)
        return found
