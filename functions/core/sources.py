"""Reads settings from SSM Parameter Store and credentials from Secrets Manager (Powertools Parameters, cached)."""

from __future__ import annotations

import re
import time
from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from aws_lambda_powertools.utilities.parameters.secrets import SecretsProvider
from aws_lambda_powertools.utilities.parameters.ssm import SSMProvider

from functions.core import aws
from functions.core.credentials import Credential, parse_credential
from functions.core.errors import AwsServiceError, CredentialError, SettingsUnavailableError
from functions.core.layout import ResourceNames, Vendor
from functions.core.settings import (
    IntegrationSettings,
    TenantSettings,
    parse_integration_settings,
    parse_tenant_settings,
)

_ERROR_CODE = re.compile(r"An error occurred \((\w+)\)")

# A settings change takes effect within a minute: that is how long a warm Lambda may keep a value cached.
SETTINGS_MAX_AGE_SECONDS = 60
SECRET_MAX_AGE_SECONDS = 300

# Settings parameters found absent, until when (time.monotonic()) that answer is kept: Powertools caches only values,
# so without this every batch of every consumer asked SSM again for each POS a tenant has no settings for (most of
# them), enough at scale to be throttled. An absent parameter is the defaults; it is kept as long as a value would be.
_ABSENT: dict[str, float] = {}


def _use_shared_clients() -> None:
    """Let Powertools' default providers (whose caches `max_age` governs) use our cached clients.

    Left to itself Powertools builds each provider's client from a new boto3 session, which parses the service
    models again after every `clear_caches()`; ours share one loader (functions.core.aws).
    """
    if "ssm" not in DEFAULT_PROVIDERS:
        DEFAULT_PROVIDERS["ssm"] = SSMProvider(boto3_client=aws.client("ssm"))
    if "secrets" not in DEFAULT_PROVIDERS:
        DEFAULT_PROVIDERS["secrets"] = SecretsProvider(boto3_client=aws.client("secretsmanager"))


def _missing(exc: GetParameterError) -> bool:
    text = str(exc)
    return "ParameterNotFound" in text or "ResourceNotFoundException" in text


def _deleted(exc: GetParameterError) -> bool:
    """A secret scheduled for deletion reads as an InvalidRequestException: for a pull it no longer exists."""
    text = str(exc)
    return "InvalidRequestException" in text and "deletion" in text


def _error_code(exc: GetParameterError) -> str:
    """The AWS error code Powertools kept in its message (e.g. ThrottlingException), never the message itself."""
    match = _ERROR_CODE.search(str(exc))
    return match.group(1) if match else "the request failed"


class SettingsSource:
    def __init__(self, names: ResourceNames, max_age: int = SETTINGS_MAX_AGE_SECONDS) -> None:
        self.names = names
        self.max_age = max_age

    def integration(self, tenant: str, vendor: Vendor) -> IntegrationSettings:
        """A tenant's settings for one POS; an absent parameter means the defaults (nothing switched on)."""
        name = self.names.integration_settings_parameter(tenant, vendor)
        raw = self._read(name)
        return IntegrationSettings(vendor=vendor) if raw is None else parse_integration_settings(raw, vendor, name)

    def tenant(self, tenant: str) -> TenantSettings:
        name = self.names.tenant_settings_parameter(tenant)
        raw = self._read(name)
        return TenantSettings() if raw is None else parse_tenant_settings(raw, name)

    def _read(self, name: str) -> Any:
        """The parameter's value (cached up to `max_age` seconds), or None when it does not exist (also cached)."""
        if self.max_age > 0 and _ABSENT.get(name, 0.0) > time.monotonic():  # max_age=0: always asked, as values
            return None
        _use_shared_clients()
        try:
            raw = parameters.get_parameter(name, max_age=self.max_age)
        except GetParameterError as exc:
            if _missing(exc):
                if self.max_age > 0:
                    _ABSENT[name] = time.monotonic() + self.max_age
                return None
            raise SettingsUnavailableError(f"could not read settings parameter {name}; retried later") from exc
        _ABSENT.pop(name, None)
        return raw


class CredentialSource:
    def __init__(self, names: ResourceNames, max_age: int = SECRET_MAX_AGE_SECONDS) -> None:
        self.names = names
        self.max_age = max_age

    def get(self, tenant: str, vendor: Vendor, credential_id: str) -> Credential:
        name = self.names.credential_secret(tenant, vendor, credential_id)
        _use_shared_clients()
        try:
            raw = parameters.get_secret(name, max_age=self.max_age)
        except GetParameterError as exc:
            if _missing(exc) or _deleted(exc):
                raise CredentialError(
                    f"credential {credential_id} for {vendor.value} does not exist in Secrets Manager ({name}); "
                    f"add it with `possync credentials add {vendor.value}`"
                ) from None
            # Throttled, unreachable or refused: not the credential's fault, so the job is retried whole.
            raise AwsServiceError(
                f"Secrets Manager could not be read for credential {credential_id} of {vendor.value} "
                f"({_error_code(exc)}); the pull is retried"
            ) from None
        if not isinstance(raw, str | bytes):
            raise CredentialError(f"credential {credential_id} for {vendor.value} is not a JSON string secret")
        return parse_credential(raw, vendor, credential_id)


def clear_caches() -> None:
    """Drop cached parameters and secrets (tests; the CLI after a change it made itself)."""
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    _ABSENT.clear()
