"""The POS writers persona sync may open: POSaBIT and Flourish only (THSuite, Profitek and Auphan are read-only)."""

from __future__ import annotations

import os
from collections.abc import Callable

from functions.core.connector import ConnectorConfig
from functions.core.credentials import Credential
from functions.core.errors import CredentialError
from functions.core.layout import Vendor, base_url_env
from functions.core.pos_sync.writer import PosWriter
from functions.pull_flourish import writer as flourish
from functions.pull_flourish.constants import DEFAULT_BASE_URL as FLOURISH_URL
from functions.pull_posabit import writer as posabit
from functions.pull_posabit.constants import DEFAULT_BASE_URL as POSABIT_URL

OpenVendorWriter = Callable[[Credential, ConnectorConfig], PosWriter]
WRITABLE: dict[Vendor, tuple[OpenVendorWriter, str]] = {
    Vendor.POSABIT: (posabit.open_writer, POSABIT_URL),
    Vendor.FLOURISH: (flourish.open_writer, FLOURISH_URL),
}


def open_writer(vendor: Vendor, credential: Credential) -> PosWriter:
    """The writer for one credential of a writable POS; any other vendor is refused (nothing can write to it)."""
    if vendor not in WRITABLE:
        raise CredentialError(f"{vendor.value} is read-only: possync never writes to it")
    opener, default_url = WRITABLE[vendor]
    return opener(credential, ConnectorConfig(base_url=os.environ.get(base_url_env(vendor), default_url)))
