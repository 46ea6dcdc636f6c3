"""The Profitek store-name rule: set once, never changed."""

from __future__ import annotations

import pytest

from functions.core.errors import CredentialError
from functions.pull_onprem.profitek.store_name import StoreNameChangeError, check_store_name_change


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (None, "Evergreen Dispensary #1"),  # first time: setting it is the point
        ("Evergreen Dispensary #1", "Evergreen Dispensary #1"),
        ("Evergreen Dispensary #1", "  Evergreen Dispensary #1 "),  # re-entered with stray spaces
    ],
)
def test_setting_or_re_entering_the_name_is_allowed(old: str | None, new: str) -> None:
    check_store_name_change(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Evergreen Dispensary #1", "Evergreen Dispensary #2"),
        ("Evergreen Dispensary #1", "evergreen dispensary #1"),  # Profitek matches names exactly
        ("Evergreen Dispensary #1", ""),
    ],
)
def test_changing_the_name_is_refused_with_the_reason_and_the_way_forward(old: str, new: str) -> None:
    with pytest.raises(StoreNameChangeError) as caught:
        check_store_name_change(old, new)

    message = str(caught.value)
    assert isinstance(caught.value, CredentialError)
    assert "cannot be changed" in message
    assert "AuthKey" in message  # why: the key and the history belong to that store
    assert "add a new credential" in message  # what to do instead
    assert old not in message  # store names stay out of messages
