"""Inbound texts as End User Messaging two-way SMS publishes them to SNS (the documented JSON), validated."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.core.errors import PossyncError
from functions.core.models import normalize_phone


class InboundError(PossyncError):
    """An SNS record that is not an inbound text: the message says what was wrong, never the content."""


class InboundText(BaseModel):
    """The fields possync reads of the two-way SMS message (others, like `previousPublishedMessageId`, are kept out)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    origination_number: str = Field(alias="originationNumber", min_length=2, max_length=20)
    destination_number: str = Field(alias="destinationNumber", min_length=2, max_length=20)
    message_body: str = Field(alias="messageBody", max_length=1600)
    inbound_message_id: str = Field(alias="inboundMessageId", min_length=1, max_length=200)


class Inbound(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: str  # the shopper's number, E.164
    body: str
    inbound_id: str


def parse_message(message: str) -> Inbound:
    try:
        data = json.loads(message)
    except (json.JSONDecodeError, TypeError):
        raise InboundError("the SNS message is not JSON") from None
    if not isinstance(data, Mapping):
        raise InboundError("the SNS message is not a JSON object")
    try:
        text = InboundText.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(sorted({".".join(map(str, e["loc"])) for e in exc.errors()}))
        raise InboundError(f"the SNS message is not an inbound SMS (fields: {fields})") from None
    number = normalize_phone(text.origination_number, "US")
    if number is None or not text.origination_number.startswith("+"):
        raise InboundError("the inbound SMS's originationNumber is not an E.164 number")
    return Inbound(number=number, body=text.message_body, inbound_id=text.inbound_message_id)


def parse_sns_record(record: Any) -> Inbound:
    if not isinstance(record, Mapping):
        raise InboundError("the event record is not an object")
    sns = record.get("Sns")
    if not isinstance(sns, Mapping) or not isinstance(sns.get("Message"), str):
        raise InboundError("the event record carries no SNS message")
    return parse_message(sns["Message"])
