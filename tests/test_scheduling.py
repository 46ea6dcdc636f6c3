"""How tests/conftest.py lays the collected tests out for xdist: shared expensive fixtures stay on one worker, the
slow kinds start first."""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.conftest import shared_fixture_keys, start_order


@pytest.fixture(scope="module")
def shared_probe() -> object:
    """A module-scoped fixture two tests of this module share, so the check below always has a group to look at."""
    return object()


def group_of(test: pytest.Item) -> str | None:
    names = sorted(str(mark.args[0]) for mark in test.iter_markers("xdist_group"))
    return "_".join(names) or None


def test_tests_sharing_a_module_or_session_fixture_are_in_one_group(
    request: pytest.FixtureRequest, shared_probe: object
) -> None:
    groups: dict[str, set[str | None]] = defaultdict(set)
    for test in request.session.items:
        for key in shared_fixture_keys(test):
            groups[key].add(group_of(test))

    assert any(key.endswith(":shared_probe") for key in groups)
    assert {key: names for key, names in groups.items() if len(names) != 1 or None in names} == {}


def test_the_slow_kinds_are_collected_first(request: pytest.FixtureRequest, shared_probe: object) -> None:
    order = [start_order(test) for test in request.session.items]

    assert order == sorted(order)
