"""When a credential is due, stale or failing: the rules dispatch and `possync status` share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from functions.core import pull_health

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).isoformat()


def test_due_counts_from_the_later_of_the_last_enqueue_and_the_last_attempt() -> None:
    assert pull_health.is_due({}, 180, NOW)
    assert not pull_health.is_due({"last_enqueued_at": ago(minutes=170)}, 180, NOW)
    assert pull_health.is_due({"last_enqueued_at": ago(minutes=180)}, 180, NOW)
    # a manual pull 10 minutes ago postpones the scheduled one
    assert not pull_health.is_due({"last_enqueued_at": ago(hours=5), "last_attempt_at": ago(minutes=10)}, 180, NOW)


def test_a_tick_that_comes_a_little_early_still_finds_the_credential_due() -> None:
    assert pull_health.is_due({"last_enqueued_at": ago(minutes=179, seconds=30)}, 180, NOW)
    assert not pull_health.is_due({"last_enqueued_at": ago(minutes=178)}, 180, NOW)


def test_stale_after_twice_the_interval_since_the_last_success_or_the_first_dispatch() -> None:
    assert pull_health.stale_for({"last_success_at": ago(minutes=360)}, 180, NOW) is None
    assert pull_health.stale_for({"last_success_at": ago(minutes=361)}, 180, NOW) == timedelta(minutes=361)
    assert pull_health.stale_for({"first_enqueued_at": ago(minutes=31)}, 15, NOW) == timedelta(minutes=31)
    assert pull_health.stale_for({"last_outcome": "failed"}, 15, NOW) is None, "never dispatched: not yet"


def test_problems_name_failures_and_staleness_but_not_frozen_or_inactive_credentials() -> None:
    failing = {"last_outcome": "failed", "last_error": "boom", "last_success_at": ago(days=2)}
    assert pull_health.problems(failing, 180, NOW) == [
        "last pull failed: boom",
        "stale: no successful pull for 2d 0h, more than 2 x its 180-minute interval",
    ]
    assert pull_health.problems(failing, 180, NOW, frozen=True) == []
    assert pull_health.problems(failing, 180, NOW, active=False) == []
    assert pull_health.problems({"last_outcome": "unavailable", "last_success_at": ago(hours=1)}, 180, NOW) == []


def test_a_pos_that_never_answered_a_new_credential_needs_a_person_at_once() -> None:
    new = {"last_outcome": "unavailable", "last_error": "HTTP 404", "first_enqueued_at": ago(minutes=5)}
    assert pull_health.problems(new, 180, NOW) == ["never pulled successfully; last pull unavailable: HTTP 404"]
    offline = {"last_outcome": "offline", "first_enqueued_at": ago(minutes=5)}
    assert pull_health.problems(offline, 180, NOW) == [
        "never pulled successfully; last pull offline: no reason recorded"
    ]
    # once it has data, the same outcome is retried quietly until the data is stale
    assert pull_health.problems({**new, "last_success_at": ago(hours=1)}, 180, NOW) == []
    # a first pull still under way (continued in another job), or never dispatched, is not a problem
    assert pull_health.problems({"last_outcome": "continued", "first_enqueued_at": ago(minutes=5)}, 180, NOW) == []
    assert pull_health.problems({}, 180, NOW) == []
    assert pull_health.problems(new, 180, NOW, frozen=True) == []


def test_the_interval_of_a_status_falls_back_to_the_settings_default() -> None:
    assert pull_health.interval_of({"pull_interval_minutes": 30}) == 30
    assert pull_health.interval_of({}) == pull_health.DEFAULT_INTERVAL_MINUTES == 180
