"""Persona -> POSaBIT: look a contact up by telephone and by email, create it as a venue customer."""

from __future__ import annotations

from functions.core.connector import ConnectorConfig
from functions.core.credentials import Credential, PosabitCredential
from functions.core.errors import CredentialError
from functions.core.http import RetryPolicy
from functions.core.layout import Vendor
from functions.core.pos_sync.rules import Contact
from functions.core.pos_sync.writer import matched_ids
from functions.pull_posabit.client import NewCustomer, PosabitClient


def new_customer(contact: Contact) -> NewCustomer:
    """The create body: POSaBIT's own field names; a form signup is a loyalty member, consent is never assumed."""
    return NewCustomer(
        first_name=contact.first_name or "",
        last_name=contact.last_name or "",
        telephone=contact.phone_digits,
        email=contact.email,
        birthday=contact.birth_date,
        state=contact.state,
    )


class PosabitWriter:
    vendor = Vendor.POSABIT

    def __init__(self, client: PosabitClient) -> None:
        self.client = client

    def find(self, contact: Contact) -> list[str]:
        by_phone = self.client.find_customers(telephone=contact.phone_digits) if contact.phone_digits else []
        by_email = self.client.find_customers(email=contact.email) if contact.email else []
        return matched_ids(by_phone, by_email)

    def create(self, contact: Contact) -> str:
        return str(self.client.create_customer(new_customer(contact))["id"])

    def close(self) -> None:
        self.client.close()


def open_writer(credential: Credential, config: ConnectorConfig, policy: RetryPolicy | None = None) -> PosabitWriter:
    if not isinstance(credential, PosabitCredential):
        raise CredentialError(f"a {credential.vendor.value} credential cannot open a posabit writer")
    return PosabitWriter(PosabitClient(credential, config, policy=policy))
