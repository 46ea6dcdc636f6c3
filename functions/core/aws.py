"""Lazily built, cached boto3 clients; AWS_ENDPOINT_URL (set by the local runtime) points them at moto.

Every client comes from a fresh boto3 session (so a reset picks up changed credentials and endpoints) that
shares one botocore data loader: the service models, endpoint rules and partitions are parsed from their JSON
once per process, not once per session. On Lambda that is one parse per cold start either way; in the local
runtime and the tests, which reset clients between jobs and cases, it saves most of the cost of a client.
"""

from __future__ import annotations

import functools
import os
import platform
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config

from functions.core import ddb_lean, ddb_wire, s3_lean

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
# For requests the code builds itself from checked values (record and control items, archive puts): botocore's
# client-side parameter validation walks every attribute of every item and was most of a pull's CPU. AWS still
# validates each request; a malformed one fails as loudly (a ClientError the adapters turn into StoreError).
# Its User-Agent is fixed too: botocore otherwise rebuilds and sanitizes the full header twice per request (about a
# sixth of a small request's CPU); a supplied one is used as given.
_TRUSTED_CONFIG = _CONFIG.merge(
    Config(
        parameter_validation=False,
        user_agent=f"possync Boto3/{boto3.__version__} Python/{platform.python_version()}",
    )
)


@functools.cache
def _loader() -> botocore.loaders.Loader:
    return botocore.loaders.create_loader()


def load_models(*services: str) -> None:
    """Parse these services' models and endpoint rules into the shared loader now, under the keys botocore's client
    creation looks them up by. A Lambda calls it at import (its init phase, once per container), so its first
    invocation builds clients from models already parsed (about 150 ms of CPU for a pull's six services)."""
    loader = _loader()
    for service in services:
        loader.load_service_model(service, "service-2", api_version=None)
        loader.load_service_model(service, "endpoint-rule-set-1", api_version=None)
    for data in ("endpoints", "partitions", "sdk-default-configuration"):
        loader.load_data(data)


def session() -> boto3.session.Session:
    """A new boto3 session whose botocore session reads models through the shared loader."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _loader())
    return boto3.session.Session(botocore_session=core)


@functools.cache
def client(service: str) -> Any:
    return session().client(service, config=_CONFIG, region_name=os.environ.get("AWS_REGION"))


@functools.cache
def trusted_client(service: str) -> Any:
    """A client without client-side parameter validation, for requests built by our own adapters only (never with
    input from outside: settings, CLI arguments and anything a person typed go through `client`)."""
    built = session().client(service, config=_TRUSTED_CONFIG, region_name=os.environ.get("AWS_REGION"))
    # DynamoDB's parameters are its wire form: serialized with one json.dumps instead of botocore's walk of every
    # attribute (functions.core.ddb_wire); its hot idempotent requests skip botocore's per-request pipeline
    # (functions.core.ddb_lean) and fall back to it for anything but a clean answer. S3's PutObject of an archived
    # page does the same (functions.core.s3_lean).
    if service == "dynamodb":
        return ddb_lean.use_lean_path(ddb_wire.use_wire_form(built))
    return s3_lean.use_lean_path(built) if service == "s3" else built


class LazyClient:
    """`client(service)`, built at its first use: a pull's reward mirror check builds its EventBridge client (about
    10 ms of CPU) only when it raises or clears a notice, which most pulls never do. (Its DynamoDB client is used by
    every complete pull, since every vendor has a discounts stream: a pull handler's import builds that one,
    functions.core.pull_runtime.warm_up.) Every use goes to the cached client, so what tests patch or observe on it
    applies."""

    def __init__(self, service: str) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(client(self._service), name)


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints and credentials between cases)."""
    client.cache_clear()
    trusted_client.cache_clear()
