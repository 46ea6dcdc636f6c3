"""`credentials add --verify`: the credential checked against the POS (the simulator locally) before it is saved."""

from __future__ import annotations

import importlib
import re

from functions.core.connector import ConnectorConfig
from functions.core.credentials import Credential
from functions.core.errors import CredentialError, HostNotAllowedError, PossyncError, VendorUnavailableError
from functions.core.layout import Vendor
from possync.target import Target

# Each vendor's folder: its connector module (open_connector) and its hosted API's base URL.
_CONNECTORS: dict[Vendor, tuple[str, str]] = {
    Vendor.POSABIT: ("functions.pull_posabit.connector", "functions.pull_posabit.constants"),
    Vendor.FLOURISH: ("functions.pull_flourish.connector", "functions.pull_flourish.constants"),
    Vendor.THSUITE: ("functions.pull_thsuite.connector", "functions.pull_thsuite.constants"),
    Vendor.PROFITEK: ("functions.pull_onprem.connector", "functions.pull_onprem.connector"),
    Vendor.AUPHAN: ("functions.pull_onprem.connector", "functions.pull_onprem.connector"),
}


class VerificationFailedError(PossyncError):
    """The POS refused the credential, or could not be reached to ask; the message says which, never a secret."""


# The advice a pull's refusal carries for whoever reads `possync status` later: while it is being added, the
# command's own hint says what to do instead.
_READD_ADVICE = re.compile(r";[^;]*\bre-add it with `possync credentials add[^`]*`$")


def refusal(vendor: Vendor, exc: CredentialError) -> str:
    """What the POS said, once: `posabit refused the credential (HTTP 401) ...`, not `refused ...: ... refused`."""
    said = _READD_ADVICE.sub("", str(exc))
    prefix = f"{vendor.value} refused the credential"
    return said if said.startswith(prefix) else f"{prefix}: {said}"


def base_url(vendor: Vendor, target: Target) -> str:
    """Where the pull would call: the local runtime's simulator, else the vendor's hosted API."""
    if vendor.value in target.base_urls:
        return target.base_urls[vendor.value]
    constants = _CONNECTORS[vendor][1]
    loaded = importlib.import_module(constants)
    if hasattr(loaded, "DEFAULT_BASE_URLS"):
        return str(loaded.DEFAULT_BASE_URLS[vendor])
    return str(loaded.DEFAULT_BASE_URL)


def verify(credential: Credential, vendor: Vendor, tenant: str, credential_id: str, target: Target) -> str:
    """Open the vendor's connector and run its `prepare()` (it reads the store's info, as every pull does first);
    returns what the POS said about the store (its time zone), or VerificationFailedError."""
    open_connector = importlib.import_module(_CONNECTORS[vendor][0]).open_connector
    config = ConnectorConfig(
        base_url=base_url(vendor, target),
        allow_private_hosts=bool(target.private_host_networks),  # as the target's pulls
        private_host_networks=target.private_host_networks,
        read_timeout=15.0,
        retry_attempts=2,
        retry_wait_initial=0.2,
        retry_wait_max=1.0,
    )
    try:
        connector = open_connector(credential, config, tenant=tenant, credential_id=credential_id)
        try:
            context = connector.prepare()
        finally:
            connector.close()
    except CredentialError as exc:
        raise VerificationFailedError(refusal(vendor, exc)) from None
    except (VendorUnavailableError, HostNotAllowedError) as exc:
        raise VerificationFailedError(f"{vendor.value} could not be asked: {exc}") from None
    except PossyncError as exc:
        raise VerificationFailedError(f"{vendor.value} answered, but not as expected: {exc}") from None
    return f"store time zone {context.timezone}"
