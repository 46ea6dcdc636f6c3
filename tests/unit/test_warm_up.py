"""Pull handlers build their warm clients and TLS context at import (Lambda's init phase), not in the first event."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from functions.core import aws, pull_runtime
from tests.aws_faults import logs as logs_of

ROOT = Path(__file__).resolve().parents[2]


def _record(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    built: dict[str, list[str]] = {"client": [], "trusted": [], "tls": []}

    class Client:
        exceptions = object()

    def client(service: str) -> Any:
        built["client"].append(service)
        return Client()

    monkeypatch.setattr(aws, "client", client)
    monkeypatch.setattr(aws, "trusted_client", lambda service: built["trusted"].append(service))
    monkeypatch.setattr(pull_runtime, "tls_context", lambda: built["tls"].append("tls"))
    return built


def test_warm_up_builds_the_clients_and_the_vendor_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    built = _record(monkeypatch)
    pull_runtime.warm_up()
    assert built["client"] == ["ssm", "secretsmanager", "sqs", "dynamodb"]  # the mirror check's client among them
    assert built["trusted"] == ["dynamodb", "s3"] and built["tls"] == ["tls"]


def test_what_cannot_be_built_at_init_is_logged_and_left_to_its_first_use(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A part that fails at import would fail the handler's import (every invocation then fails before a job can
    record why); it is logged and built again where a job uses it, and the rest is still built."""
    built = _record(monkeypatch)

    def broken_bundle() -> None:
        raise FileNotFoundError(2, "No such file or directory")

    def client(service: str) -> Any:
        if service == "secretsmanager":
            raise RuntimeError("no model for secretsmanager")
        built["client"].append(service)
        return type("Client", (), {"exceptions": object()})()

    monkeypatch.setattr(pull_runtime, "tls_context", broken_bundle)
    monkeypatch.setattr(aws, "client", client)
    pull_runtime.warm_up()  # does not raise
    assert built["client"] == ["ssm", "sqs", "dynamodb"] and built["trusted"] == ["dynamodb", "s3"]
    warned = [line for line in logs_of(caplog) if line["message"].startswith("could not build this at init")]
    assert [(line["part"], line["error"].split(" at ")[0]) for line in warned] == [
        ("the vendors' TLS context", "unexpected FileNotFoundError"),
        ("the secretsmanager client", "unexpected RuntimeError"),
    ]
    assert not any("No such file" in line["error"] or "no model" in line["error"] for line in warned)


def test_warm_up_without_a_region_leaves_the_clients_to_their_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    built = _record(monkeypatch)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    pull_runtime.warm_up()  # a tool importing a handler outside AWS: no NoRegionError at import
    assert built == {"client": [], "trusted": [], "tls": ["tls"]}


def test_each_pull_handler_warms_up_at_import() -> None:
    """In a fresh interpreter, as Lambda's init phase imports a handler: each builds the clients and the shared TLS
    context (the on-prem one's hosted endpoints and plain-HTTP stores verify with it too; a pinned store has its
    own)."""
    script = """
from functions.core import aws, http
import functions.pull_onprem.handler
sizes = (aws.client, aws.trusted_client, http.tls_context)
print(*(cached.cache_info().currsize for cached in sizes))
for vendor in ("posabit", "flourish", "thsuite"):
    http.tls_context.cache_clear()
    __import__(f"functions.pull_{vendor}.handler")
    print(vendor, http.tls_context.cache_info().currsize)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")}
    env.update(AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:4] == ["4 2 1", "posabit 1", "flourish 1", "thsuite 1"]
