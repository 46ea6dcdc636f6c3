"""Persona -> Flourish: look a contact up by phone and by email, create it as a customer (a date of birth needed)."""

from __future__ import annotations

from typing import Any

import httpx

from functions.core.connector import ConnectorConfig
from functions.core.credentials import Credential, FlourishCredential
from functions.core.errors import CredentialError
from functions.core.http import RetryPolicy
from functions.core.layout import Vendor
from functions.core.pos_sync.rules import Contact
from functions.core.pos_sync.writer import matched_ids
from functions.pull_flourish.client import FlourishClient


def new_customer(contact: Contact) -> dict[str, Any]:
    """The create body: email, first_name, last_name and dob are required by Flourish."""
    if contact.birth_date is None:
        raise ValueError("flourish requires a date of birth (dob) to create a customer")
    body: dict[str, Any] = {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "email": contact.email,
        "dob": contact.birth_date.isoformat(),
    }
    digits = contact.phone_digits
    if digits:
        body["phone"] = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    if contact.state:
        body["state"] = contact.state
    return body


class FlourishWriter:
    vendor = Vendor.FLOURISH

    def __init__(self, client: FlourishClient) -> None:
        self.client = client

    def find(self, contact: Contact) -> list[str]:
        by_phone = self.client.find_customers(phone=contact.phone_digits) if contact.phone_digits else []
        by_email = self.client.find_customers(email=contact.email) if contact.email else []
        return matched_ids(by_phone, by_email)

    def create(self, contact: Contact) -> str:
        return str(self.client.create_customer(new_customer(contact))["id"])

    def close(self) -> None:
        self.client.close()


def open_writer(credential: Credential, config: ConnectorConfig, policy: RetryPolicy | None = None) -> FlourishWriter:
    if not isinstance(credential, FlourishCredential):
        raise CredentialError(f"a {credential.vendor.value} credential cannot open a flourish writer")
    timeout = httpx.Timeout(connect=config.connect_timeout, read=config.read_timeout, write=10.0, pool=5.0)
    policy = policy or RetryPolicy(
        attempts=config.retry_attempts,
        wait_initial=config.retry_wait_initial,
        wait_max=config.retry_wait_max,
        wait_jitter=config.retry_wait_initial,
    )
    return FlourishWriter(FlourishClient(credential, config.base_url, timeout=timeout, policy=policy))
