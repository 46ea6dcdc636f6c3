"""Naming a failure safely: for a status field, a log line, an exception message (never a secret or a record)."""

from __future__ import annotations

import traceback
from pathlib import PurePath

from botocore.exceptions import BotoCoreError, ClientError

from functions.core.errors import AwsServiceError, PossyncError


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
