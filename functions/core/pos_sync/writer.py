"""The POS writer seam of persona sync: look a contact up, create it once; how a create's answer is classified."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import httpx

from functions.core.errors import CredentialError, PossyncError, VendorUnavailableError
from functions.core.http import detached
from functions.core.layout import Vendor
from functions.core.pos_sync.rules import Contact


class PosRejectedError(PossyncError):
    """The POS refused the create for good (validation 4xx): retrying the same data cannot help. `fields` names the
    fields the POS complained about (names only: the values are personal data)."""

    def __init__(self, message: str, status: int, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.fields = fields


class PosDuplicateError(PosRejectedError):
    """The POS says the shopper exists already (409, or a uniqueness error): look it up and link it."""


class PosUncertainError(VendorUnavailableError):
    """The create was sent but its answer never came (timeout after sending, connection lost, 5xx): the customer
    may exist. It is looked up, never created a second time."""


class PosWriter(Protocol):
    """One credential's write access to a POS that allows it (POSaBIT, Flourish). THSuite, Profitek and Auphan
    have no implementation: their connectors are read-only."""

    vendor: Vendor

    def find(self, contact: Contact) -> list[str]:
        """The POS ids of customers whose phone or email is the contact's (searched before any create)."""
        ...

    def create(self, contact: Contact) -> str:
        """Create the customer (one request, never retried blindly); its new POS id."""
        ...

    def close(self) -> None: ...


# Transport errors raised before the request left: nothing reached the POS, so trying again later is safe.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def matched_ids(*searches: Iterable[Mapping[str, Any]]) -> list[str]:
    """The POS ids the searches (by phone, by email) found, each once, in the order found."""
    return list(dict.fromkeys(str(customer["id"]) for found in searches for customer in found))


def problem_fields(payload: Any) -> tuple[str, ...]:
    """The field names of a Rails-style `{"errors": {"field": [...]}}` or Flourish `{"errors": {"field": "..."}}`."""
    errors = payload.get("errors") if isinstance(payload, Mapping) else None
    if isinstance(errors, Mapping):
        return tuple(sorted(str(k) for k in errors))
    return ()


DUPLICATE_WORDS = ("unique", "already been taken", "already exists", "duplicate")


def is_duplicate(payload: Any) -> bool:
    """A validation answer that says the shopper exists (POSaBIT's "has already been taken", Flourish's "unique")."""
    errors = payload.get("errors") if isinstance(payload, Mapping) else None
    texts: list[str] = []
    if isinstance(errors, Mapping):
        for value in errors.values():
            texts.extend(str(v) for v in (value if isinstance(value, list) else [value]))
    if isinstance(payload, Mapping) and isinstance(payload.get("message"), str):
        texts.append(payload["message"])
    return any(word in text.lower() for text in texts for word in DUPLICATE_WORDS)


def send_create(client: httpx.Client, vendor: str, path: str, body: Any) -> tuple[httpx.Response, Any]:
    """POST a create exactly once; the response (2xx) and its JSON. Raises VendorUnavailableError when nothing was
    created (not sent, 429), PosUncertainError when it may have been (sent, no answer, 5xx), CredentialError on
    401/403, PosDuplicateError on 409 and PosRejectedError on any other 4xx. Messages never carry the body."""
    what = f"POST {path}"
    try:
        # detached: the response is freed by reference counting once dropped, not left to the cyclic collector
        response = detached(client.request("POST", path, json=body))
    except NOT_SENT as exc:
        raise VendorUnavailableError(f"{vendor} could not be reached for {what} ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise PosUncertainError(
            f"{vendor} could not be reached for an answer to {what} ({type(exc).__name__}): "
            "the customer may have been created"
        ) from None
    status = response.status_code
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    if status == 429:
        raise VendorUnavailableError(f"{vendor} answered HTTP 429 (rate limited) to {what}: nothing was created")
    if status >= 500:
        raise PosUncertainError(f"{vendor} answered HTTP {status} to {what}: the customer may have been created")
    if status in (401, 403):
        raise CredentialError(
            f"{vendor} refused the credential (HTTP {status}) for {what}; "
            "check the key with the POS and re-add it with `possync credentials add`"
        )
    if status == 409:
        raise PosDuplicateError(f"{vendor} answered HTTP 409 to {what}: the shopper exists", status)
    if status >= 400:
        fields = problem_fields(payload)
        named = f" (fields: {', '.join(fields)})" if fields else ""
        if is_duplicate(payload):
            message = f"{vendor} answered HTTP {status} to {what}: the shopper exists{named}"
            raise PosDuplicateError(message, status, fields)
        raise PosRejectedError(f"{vendor} rejected {what} with HTTP {status}{named}", status, fields)
    return response, payload
