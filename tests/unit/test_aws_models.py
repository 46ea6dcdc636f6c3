"""The pull's AWS service models are parsed at import (Lambda's init phase), so its first clients read no model file."""

from __future__ import annotations

from typing import Any

import pytest

from functions.core import aws, pull_runtime


def test_clients_of_the_pull_services_read_no_model_file_after_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    loader = aws._loader()
    read: list[str] = []
    original = loader.file_loader.load_file

    def load_file(path: str) -> Any:
        read.append(path)
        return original(path)

    monkeypatch.setattr(loader, "_cache", {})  # as in a new process: nothing parsed yet
    aws.load_models(*pull_runtime.PULL_AWS_SERVICES)  # what importing functions.core.pull_runtime does
    monkeypatch.setattr(loader.file_loader, "load_file", load_file)
    session = aws.session()
    for service in pull_runtime.PULL_AWS_SERVICES:
        session.client(service, region_name="us-east-1")
    assert read == []
    # A service the pull does not use is parsed when its client is first built, as before (the spy sees it).
    session.client("kinesis", region_name="us-east-1")
    assert any("kinesis" in path for path in read)
