"""Deployment settings read from CDK context (cdk.json or `cdk synth -c key=value`), validated once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from constructs import Node

from functions.core.layout import Vendor

CONTEXT_PULL_INTERVAL_MINUTES = "pull_interval_minutes"
CONTEXT_ALLOW_PRIVATE_HOSTS = "allow_private_hosts"
CONTEXT_VENDOR_BASE_URLS = "vendor_base_urls"

DEFAULT_PULL_INTERVAL_MINUTES = 180
MIN_PULL_INTERVAL_MINUTES = 15


@dataclass(frozen=True)
class DeployConfig:
    """What differs between deployments: how often to pull, and which addresses pulls may call."""

    pull_interval_minutes: int = DEFAULT_PULL_INTERVAL_MINUTES
    # Lets on-premises credentials name private (RFC 1918) addresses, for stores reached over a VPN.
    allow_private_hosts: bool = False
    # Overrides of a vendor's hosted API base URL (a vendor sandbox for a staging stack).
    vendor_base_urls: Mapping[Vendor, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pull_interval_minutes < MIN_PULL_INTERVAL_MINUTES:
            raise ValueError(
                f"{CONTEXT_PULL_INTERVAL_MINUTES} must be at least {MIN_PULL_INTERVAL_MINUTES}, "
                f"got {self.pull_interval_minutes}"
            )
        for vendor, url in self.vendor_base_urls.items():
            parts = urlsplit(url)
            if parts.scheme != "https" or not parts.hostname:
                raise ValueError(f"{CONTEXT_VENDOR_BASE_URLS}.{vendor.value} must be an https:// URL, got {url!r}")

    @classmethod
    def from_context(cls, node: Node) -> DeployConfig:
        return cls(
            pull_interval_minutes=_as_int(
                node.try_get_context(CONTEXT_PULL_INTERVAL_MINUTES),
                CONTEXT_PULL_INTERVAL_MINUTES,
                DEFAULT_PULL_INTERVAL_MINUTES,
            ),
            allow_private_hosts=_as_bool(
                node.try_get_context(CONTEXT_ALLOW_PRIVATE_HOSTS), CONTEXT_ALLOW_PRIVATE_HOSTS
            ),
            vendor_base_urls=_as_vendor_urls(node.try_get_context(CONTEXT_VENDOR_BASE_URLS)),
        )


# Values from cdk.json arrive typed; values from `-c key=value` arrive as strings.
def _as_int(value: Any, key: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{key} must be a whole number of minutes, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{key} must be a whole number of minutes, got {value!r}") from None


def _as_bool(value: Any, key: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise ValueError(f"{key} must be true or false, got {value!r}")


def _as_vendor_urls(value: Any) -> dict[Vendor, str]:
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{CONTEXT_VENDOR_BASE_URLS} must be a JSON object, got {value!r}") from None
    if not isinstance(value, Mapping):
        raise ValueError(f"{CONTEXT_VENDOR_BASE_URLS} must map vendor names to URLs, got {value!r}")
    known = {vendor.value for vendor in Vendor}
    urls: dict[Vendor, str] = {}
    for name, url in value.items():
        if name not in known:
            raise ValueError(f"{CONTEXT_VENDOR_BASE_URLS}: unknown vendor {name!r}; expected one of {sorted(known)}")
        urls[Vendor(name)] = str(url)
    return urls
