"""Domain errors: adapters translate botocore and httpx failures into these (raise ... from exc)."""

from __future__ import annotations


class PossyncError(Exception):
    """Base class; messages are safe to log: they never carry secrets or personal data."""


class SettingsError(PossyncError):
    """A setting is missing, unreadable or invalid; rules fail safe."""


class CredentialError(PossyncError):
    """A credential is missing, malformed or rejected by the POS; fails that credential's pull only."""


class HostNotAllowedError(PossyncError):
    """A custom IP:PORT points somewhere our Lambdas must never call."""


class VendorUnavailableError(PossyncError):
    """The POS did not answer usefully after bounded retries (5xx, 429, timeouts, refused connections)."""


class StoreOfflineError(VendorUnavailableError):
    """An on-premises store server did not accept connections (its PC is off or offline): retried next tick."""


class MalformedPageError(PossyncError):
    """A page could not be parsed at all (not JSON, or not the documented envelope)."""


class LeaseHeldError(PossyncError):
    """Another pull of the same credential holds the lease."""


class FrozenIntegrationError(PossyncError):
    """'Use last backup' is on: no calls to this POS."""


class AwsServiceError(PossyncError):
    """An AWS service (DynamoDB, S3, SQS, SSM, Secrets Manager) failed or stayed throttled past bounded retries.

    Transient by nature: the unit of work (a pull job, a stream record) is retried whole and nothing is lost.
    """


class SettingsUnavailableError(AwsServiceError):
    """Settings could not be read (SSM throttled or down): not invalid, so the work waits and is retried."""
