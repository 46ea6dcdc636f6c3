"""The SMS gateway: End User Messaging SMS SendTextMessage (botocore Stubber; moto lacks the API) and the outbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from functions.core.sms.gateway import (
    TIME_TO_LIVE_SECONDS,
    EndUserMessagingGateway,
    OutboxGateway,
    Outgoing,
    SendRejectedError,
    SendUnavailableError,
    SendUncertainError,
    gateway_from_env,
    read_outbox,
)
from functions.core.sms.service import ENV_NOW, runtime_clock
from functions.core.sms.templates import Kind

IDENTITY = "arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 7, 1, 19, 0, tzinfo=UTC)
TEXT = Outgoing("t1", "+12065550123", Kind.OPTIN_REQUEST, "Greenleaf: join? Reply YES to join.")


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "pinpoint-sms-voice-v2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_send_text_message_names_the_identity_the_configuration_set_and_a_short_ttl(client: Any) -> None:
    with Stubber(client) as stub:
        stub.add_response(
            "send_text_message",
            {"MessageId": "m-1"},
            {
                "DestinationPhoneNumber": "+12065550123",
                "OriginationIdentity": IDENTITY,
                "MessageBody": TEXT.body,
                "MessageType": "PROMOTIONAL",
                "TimeToLive": TIME_TO_LIVE_SECONDS,
                "ConfigurationSetName": "possync-prod-sms",
                "Context": {"tenant": "t1", "kind": "optin_request"},
            },
        )
        assert EndUserMessagingGateway(client, IDENTITY, "possync-prod-sms").send(TEXT, NOW) == "m-1"
        stub.assert_no_pending_responses()
    assert TIME_TO_LIVE_SECONDS <= 900, "a delayed text must not land in quiet hours"


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("ThrottlingException", SendUnavailableError),
        ("InternalServerException", SendUnavailableError),
        ("ValidationException", SendRejectedError),
        ("AccessDeniedException", SendRejectedError),
        ("ConflictException", SendRejectedError),
    ],
)
def test_provider_errors_become_domain_errors(client: Any, code: str, error: type[Exception]) -> None:
    with Stubber(client) as stub:
        stub.add_client_error("send_text_message", service_error_code=code, service_message="no")
        with pytest.raises(error) as raised:
            EndUserMessagingGateway(client, IDENTITY, None).send(TEXT, NOW)
    assert "+1206" not in str(raised.value) and "Greenleaf" not in str(raised.value)


class _Failing:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def send_text_message(self, **_: Any) -> Any:
        raise self.exc


def test_a_timeout_after_sending_is_uncertain_a_refused_connection_is_not() -> None:
    with pytest.raises(SendUncertainError):
        EndUserMessagingGateway(_Failing(ReadTimeoutError(endpoint_url="https://sms")), IDENTITY, None).send(TEXT, NOW)
    with pytest.raises(SendUnavailableError):
        EndUserMessagingGateway(_Failing(EndpointConnectionError(endpoint_url="https://sms")), IDENTITY, None).send(
            TEXT, NOW
        )


def test_outbox_writes_one_json_line_per_text(tmp_path: Path) -> None:
    outbox = OutboxGateway(tmp_path / "deep" / "outbox.jsonl")
    message_id = outbox.send(TEXT, NOW)
    [line] = read_outbox(tmp_path / "deep" / "outbox.jsonl")
    assert line == {
        "tenant": "t1",
        "to": "+12065550123",
        "kind": "optin_request",
        "sent_at": "2026-07-01T19:00:00+00:00",
        "body": TEXT.body,
        "message_id": message_id,
    }
    assert json.loads((tmp_path / "deep" / "outbox.jsonl").read_text().splitlines()[0])["kind"] == "optin_request"


def test_gateway_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("POSSYNC_SMS_GATEWAY", raising=False)
    monkeypatch.delenv("POSSYNC_SMS_ORIGINATION_IDENTITY", raising=False)
    assert gateway_from_env(lambda _: None) is None  # no identity deployed: nothing is sent
    monkeypatch.setenv("POSSYNC_SMS_ORIGINATION_IDENTITY", IDENTITY)
    assert isinstance(gateway_from_env(lambda _: object()), EndUserMessagingGateway)
    monkeypatch.setenv("POSSYNC_SMS_GATEWAY", "outbox")
    monkeypatch.setenv("POSSYNC_SMS_OUTBOX", str(tmp_path / "o.jsonl"))
    assert isinstance(gateway_from_env(lambda _: None), OutboxGateway)


def test_the_local_runtime_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_NOW, "2026-03-08T21:30:00-08:00")
    moment = runtime_clock()()
    assert datetime.fromisoformat("2026-03-08T21:30:00-08:00") <= moment
    assert (moment - datetime.fromisoformat("2026-03-08T21:30:00-08:00")).total_seconds() < 5
    monkeypatch.setenv(ENV_NOW, "2026-03-08T21:30:00")
    with pytest.raises(ValueError, match="offset"):
        runtime_clock()
    monkeypatch.delenv(ENV_NOW)
    assert abs((runtime_clock()() - datetime.now(UTC)).total_seconds()) < 5
