"""Domain errors: adapters translate botocore and httpx failures into these (raise ... from exc)."""

from __future__ import annotations

import traceback
from pathlib import PurePath

from botocore.exceptions import BotoCoreError, ClientError


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


def describe_failure(exc: BaseException) -> str:
    """A reason safe for a status field, a log line and an exception message.

    Our own errors' messages never carry secrets or personal data; anything else is named by its type and where it
    was raised, never by its message (which might quote a record or a credential).
    """
    if isinstance(exc, PossyncError):
        return str(exc)
    if isinstance(exc, ClientError | BotoCoreError):
        return f"AWS call failed ({aws_error_code(exc)}) at {failure_site(exc)}"
    return f"unexpected {type(exc).__name__} at {failure_site(exc)}"


def failure_site(exc: BaseException) -> str:
    """Where an exception was raised: functions/<path>:<line> in <function>."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown place"
    frame = frames[-1]
    parts = PurePath(frame.filename).parts
    path = "/".join(parts[parts.index("functions") :]) if "functions" in parts else PurePath(frame.filename).name
    return f"{path}:{frame.lineno} in {frame.name}"


def is_aws_failure(exc: BaseException) -> bool:
    return isinstance(exc, AwsServiceError | ClientError | BotoCoreError)


def aws_error_code(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__
