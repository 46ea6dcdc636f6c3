"""Lazily built, cached boto3 clients; AWS_ENDPOINT_URL (set by the local runtime) points them at moto."""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@functools.cache
def client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG, region_name=os.environ.get("AWS_REGION"))


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints and credentials between cases)."""
    client.cache_clear()
