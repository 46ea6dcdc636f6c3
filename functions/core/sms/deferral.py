"""Requests deferred for quiet hours or the send cap: an SQS delay queue, each message re-checked on delivery."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from functions.core.errors import AwsServiceError

ENV_DEFERRAL_QUEUE_URL = "POSSYNC_SMS_DEFERRAL_QUEUE_URL"
# SQS delays a message at most 15 minutes: a longer wait is a chain of hops, each re-checking the request.
MAX_DELAY_SECONDS = 900


class DeferralError(AwsServiceError):
    """The deferral could not be queued (the request stays as it is and its record is retried)."""


@dataclass(frozen=True)
class Deferred:
    """A request to send when `not_before` comes (and only if it is still wanted then)."""

    tenant: str
    number: str
    not_before: datetime

    def body(self) -> str:
        return json.dumps({"tenant": self.tenant, "number": self.number, "not_before": self.not_before.isoformat()})

    @classmethod
    def parse(cls, body: str) -> Deferred:
        """ValueError for a message this code did not write."""
        data = json.loads(body)
        if not isinstance(data, Mapping):
            raise ValueError("a deferral message is a JSON object")
        tenant, number, when = data.get("tenant"), data.get("number"), data.get("not_before")
        if not (isinstance(tenant, str) and isinstance(number, str) and isinstance(when, str)):
            raise ValueError("a deferral message names tenant, number and not_before")
        moment = datetime.fromisoformat(when)
        if moment.tzinfo is None:
            raise ValueError("a deferral message's not_before carries its offset")
        return cls(tenant, number, moment)


class Deferrals(Protocol):
    def defer(self, deferred: Deferred, now: datetime) -> None: ...


def delay_seconds(deferred: Deferred, now: datetime) -> int:
    return max(0, min(MAX_DELAY_SECONDS, int((deferred.not_before - now).total_seconds()) + 1))


class SqsDeferrals:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url

    def defer(self, deferred: Deferred, now: datetime) -> None:
        try:
            self.sqs.send_message(
                QueueUrl=self.queue_url, MessageBody=deferred.body(), DelaySeconds=delay_seconds(deferred, now)
            )
        except ClientError as exc:
            raise DeferralError(
                f"SendMessage to the deferral queue failed: {exc.response['Error'].get('Code')}"
            ) from exc
        except BotoCoreError as exc:
            raise DeferralError(f"SendMessage to the deferral queue failed: {type(exc).__name__}") from exc
