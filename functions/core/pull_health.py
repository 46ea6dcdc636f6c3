"""When a credential is due for a pull, when its data is stale, and what makes it unhealthy: one set of rules for
the dispatch, `possync status` and the `CredentialsStale` metric."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from functions.core.settings import IntegrationSettings

DEFAULT_INTERVAL_MINUTES: int = IntegrationSettings.model_fields["pull_interval_minutes"].default
# Data older than this many intervals is stale: one missed pull is noise, two are a problem.
STALE_AFTER_INTERVALS = 2
# Schedule ticks are not exactly periodic: a credential is due this much before its interval is up, so a 180-minute
# interval on a 15-minute tick pulls every 180 minutes, not every 195.
DUE_SLACK = timedelta(minutes=1)
# Last outcomes that need a person (or a fix); "unavailable" and "offline" are retried and show up as staleness.
FAILING_OUTCOMES = frozenset({"failed", "contract_mismatch"})
# ... except for a credential that has never been pulled successfully: it has no data yet, and a POS that has never
# answered it is more likely told the wrong store (a store name or venue it answers 404 for, an address nothing
# listens on) than briefly down, so it needs a person at once rather than after twice its interval.
FIRST_PULL_FAILING_OUTCOMES = frozenset({"unavailable", "offline"})


def _at(status: Mapping[str, Any], key: str) -> datetime | None:
    value = status.get(key)
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def interval_of(status: Mapping[str, Any]) -> int:
    """The interval the last dispatch found in the settings (for when the settings cannot be read now)."""
    value = status.get("pull_interval_minutes")
    return value if isinstance(value, int) and value > 0 else DEFAULT_INTERVAL_MINUTES


def last_pulled(status: Mapping[str, Any]) -> datetime | None:
    """When the credential's last pull was enqueued or attempted, whichever is later."""
    times = [t for t in (_at(status, "last_enqueued_at"), _at(status, "last_attempt_at")) if t is not None]
    return max(times) if times else None


def is_due(status: Mapping[str, Any], interval_minutes: int, now: datetime) -> bool:
    """A scheduled pull is due when its interval has passed since its last pull was enqueued or attempted.

    Counting from the enqueue (not the last success) means a failing store is retried once per interval, not at
    every tick.
    """
    last = last_pulled(status)
    return last is None or now - last >= timedelta(minutes=interval_minutes) - DUE_SLACK


def seconds_since_success(status: Mapping[str, Any], now: datetime) -> float | None:
    last = _at(status, "last_success_at")
    return None if last is None else max(0.0, (now - last).total_seconds())


def stale_for(status: Mapping[str, Any], interval_minutes: int, now: datetime) -> timedelta | None:
    """How old the credential's data is when that is more than twice its interval; None while it is fresh.

    A credential that never succeeded counts from its first dispatch; one never dispatched is not stale yet.
    """
    reference = _at(status, "last_success_at") or _at(status, "first_enqueued_at")
    if reference is None:
        return None
    age = now - reference
    return age if age > STALE_AFTER_INTERVALS * timedelta(minutes=interval_minutes) else None


def problems(
    status: Mapping[str, Any], interval_minutes: int, now: datetime, *, active: bool = True, frozen: bool = False
) -> list[str]:
    """Why a credential is unhealthy (empty when it is not): a failed or mismatched last pull, a POS that did not
    answer a credential never pulled successfully, or stale data.

    Inactive and frozen ("use last backup") credentials are not pulled on purpose, so they are never unhealthy.
    """
    if not active or frozen:
        return []
    found: list[str] = []
    outcome = status.get("last_outcome")
    reason = status.get("last_error") or "no reason recorded"
    if outcome in FAILING_OUTCOMES:
        found.append(f"last pull {outcome.replace('_', ' ')}: {reason}")
    elif outcome in FIRST_PULL_FAILING_OUTCOMES and _at(status, "last_success_at") is None:
        found.append(f"never pulled successfully; last pull {outcome}: {reason}")
    stale = stale_for(status, interval_minutes, now)
    if stale is not None:
        found.append(
            f"stale: no successful pull for {_duration(stale)}, more than {STALE_AFTER_INTERVALS} x its "
            f"{interval_minutes}-minute interval"
        )
    return found


def _duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"
