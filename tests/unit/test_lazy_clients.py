"""A pull's service builds the mirror check's clients only when the check calls them (most pulls never do)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.core import aws
from functions.core.layout import Vendor
from functions.core.pull_runtime import PullService
from functions.pull_thsuite.connector import open_connector


def test_the_mirror_checks_clients_are_built_at_their_first_call(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POSSYNC_ARCHIVE_BUCKET": "raw",
        "POSSYNC_JOB_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
    }.items():
        monkeypatch.setenv(name, value)
    built: list[str] = []

    class Events:
        def put_events(self, **_: Any) -> dict[str, Any]:
            return {"FailedEntryCount": 0}

    def client(service: str) -> Any:
        built.append(service)
        return Events()

    monkeypatch.setattr(aws, "client", client)
    monkeypatch.setattr(aws, "trusted_client", lambda service: object())

    service = PullService.from_env(open_connector, {Vendor.THSUITE: "https://thsuite.example"})
    assert "events" not in built and "dynamodb" not in built

    assert service.mirrors is not None
    assert service.mirrors.events.put_events(Entries=[]) == {"FailedEntryCount": 0}
    assert "events" in built
