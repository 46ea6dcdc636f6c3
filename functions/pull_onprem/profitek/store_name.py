"""The Profitek store-name rule: once a credential has a store name, it never changes."""

from __future__ import annotations

from functions.core.errors import CredentialError


class StoreNameChangeError(CredentialError):
    """An edit tried to change the store name of an existing Profitek credential."""


def check_store_name_change(old: str | None, new: str) -> None:
    """Allow setting a store name once (old is None) or re-entering the same one; refuse any other change.

    Profitek binds the AuthKey to the store name, and every record pulled so far (ids, checkpoints, the store
    mapping) belongs to that store. Renaming would point the credential at another store's data, or at none,
    while keeping the old store's history under it. Names are compared exactly (surrounding spaces aside):
    Profitek matches them as typed.
    """
    if old is None:
        return
    if old.strip() == new.strip():
        return
    raise StoreNameChangeError(
        "the Profitek store name of an existing credential cannot be changed: Profitek ties the AuthKey, and every "
        "record and checkpoint pulled so far, to that store name, so a new name would mix another store's data "
        "into this credential's history. To connect a different store, add a new credential with its own store "
        "name and AuthKey (and remove this one if the store is gone)"
    )
