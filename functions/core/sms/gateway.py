"""The SMS provider behind a small gateway: End User Messaging SMS in AWS, an outbox file in the local runtime."""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, ReadTimeoutError

from functions.core.errors import AwsServiceError, PossyncError
from functions.core.sms.templates import Kind

ENV_GATEWAY = "POSSYNC_SMS_GATEWAY"  # "pinpoint" (deployed) or "outbox" (the local runtime)
ENV_ORIGINATION_IDENTITY = "POSSYNC_SMS_ORIGINATION_IDENTITY"
ENV_CONFIGURATION_SET = "POSSYNC_SMS_CONFIGURATION_SET"
ENV_OUTBOX = "POSSYNC_SMS_OUTBOX"
DEFAULT_OUTBOX = Path(".local") / "outbox.jsonl"
# A text the carrier cannot deliver within this long is dropped, so a delayed text cannot land in quiet hours.
TIME_TO_LIVE_SECONDS = 600
# Provider errors that mean the text was certainly not accepted and may be tried again later.
RETRYABLE = frozenset({"ThrottlingException", "InternalServerException", "ServiceQuotaExceededException"})


class SendRejectedError(PossyncError):
    """The provider refused the text (bad number, opted out at the carrier, identity not allowed): not sent."""


class SendUncertainError(PossyncError):
    """The request may have reached the provider (a timeout or a dropped connection after sending): it may have
    been sent. Never repeated; marked and reported."""


class SendUnavailableError(AwsServiceError):
    """The provider throttled or failed before accepting the text: certainly not sent, safe to try again."""


@dataclass(frozen=True)
class Outgoing:
    tenant: str
    to: str
    kind: Kind
    body: str


class SmsGateway(Protocol):
    def send(self, message: Outgoing, now: datetime) -> str:
        """Send one text; its provider message id. Raises SendRejectedError, SendUncertainError or
        SendUnavailableError."""
        ...


class EndUserMessagingGateway:
    """`pinpoint-sms-voice-v2` SendTextMessage from the configured origination identity and configuration set."""

    def __init__(self, client: Any, origination_identity: str, configuration_set: str | None) -> None:
        self.client = client
        self.origination_identity = origination_identity
        self.configuration_set = configuration_set

    def send(self, message: Outgoing, now: datetime) -> str:
        request: dict[str, Any] = {
            "DestinationPhoneNumber": message.to,
            "OriginationIdentity": self.origination_identity,
            "MessageBody": message.body,
            "MessageType": "TRANSACTIONAL" if message.kind is not Kind.OPTIN_REQUEST else "PROMOTIONAL",
            "TimeToLive": TIME_TO_LIVE_SECONDS,
            "Context": {"tenant": message.tenant, "kind": message.kind.value},
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            response = self.client.send_text_message(**request)
        except (ReadTimeoutError, ConnectionClosedError) as exc:
            raise SendUncertainError(f"SendTextMessage did not answer: {type(exc).__name__}") from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in RETRYABLE:
                raise SendUnavailableError(f"SendTextMessage failed: {code}") from exc
            raise SendRejectedError(f"SendTextMessage refused: {code}") from exc
        except BotoCoreError as exc:  # failed before the request was sent (no connection, bad endpoint)
            raise SendUnavailableError(f"SendTextMessage failed: {type(exc).__name__}") from exc
        message_id = response.get("MessageId")
        if not isinstance(message_id, str) or not message_id:
            raise SendUncertainError("SendTextMessage answered without a MessageId")
        return message_id


class OutboxGateway:
    """The local runtime's provider: each accepted text is one JSON line of the outbox file."""

    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, message: Outgoing, now: datetime) -> str:
        message_id = f"local-{uuid.uuid4().hex}"
        line = {
            "tenant": message.tenant,
            "to": message.to,
            "kind": message.kind.value,
            "sent_at": now.isoformat(),
            "body": message.body,
            "message_id": message_id,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
        return message_id


def read_outbox(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def outbox_path() -> Path:
    return Path(os.environ.get(ENV_OUTBOX) or DEFAULT_OUTBOX)


def gateway_from_env(client_factory: Any) -> SmsGateway | None:
    """The gateway the environment names: the outbox locally, End User Messaging SMS when deployed; None when the
    stack was deployed without an origination identity (no text is sent or recorded as requested then)."""
    if os.environ.get(ENV_GATEWAY) == "outbox":
        return OutboxGateway(outbox_path())
    identity = os.environ.get(ENV_ORIGINATION_IDENTITY)
    if not identity:
        return None
    return EndUserMessagingGateway(
        client_factory("pinpoint-sms-voice-v2"), identity, os.environ.get(ENV_CONFIGURATION_SET) or None
    )
