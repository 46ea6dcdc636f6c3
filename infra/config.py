"""Deployment settings read from CDK context (cdk.json or `cdk deploy -c key=value`), validated once."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from annotated_types import Ge, Le
from constructs import Node

from functions.core.layout import DEFAULT_STAGE, Vendor, check_stage
from functions.core.netguard import IPNetwork, parse_private_networks
from functions.core.settings import IntegrationSettings
from infra.defaults import DEFAULT_DISPATCH_TICK_MINUTES

CONTEXT_STAGE = "stage"
CONTEXT_DISPATCH_TICK_MINUTES = "dispatch_tick_minutes"
CONTEXT_ALLOW_PRIVATE_HOSTS = "allow_private_hosts"
CONTEXT_ONPREM_VPC = "onprem_vpc"
CONTEXT_ALARM_EMAIL = "alarm_email"
CONTEXT_VENDOR_BASE_URLS = "vendor_base_urls"
# End User Messaging SMS: the phone number or pool the opt-in texts come from, and the configuration set that
# logs their delivery events. Without an origination identity the opt-in functions are deployed but send nothing.
CONTEXT_SMS_ORIGINATION_IDENTITY = "sms_origination_identity"
CONTEXT_SMS_CONFIGURATION_SET = "sms_configuration_set"
SMS_IDENTITY_EXAMPLE = "arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-1234567890abcdef0123456789abcdef"
_SMS_IDENTITY = re.compile(
    r"^arn:aws[a-z-]*:sms-voice:[a-z0-9-]+:\d{12}:(?:phone-number|pool|sender-id)/[A-Za-z0-9_/-]{1,128}$"
)
_SMS_CONFIGURATION_SET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# The deployment key's old name: it read like the per-integration setting of the same name, which it is not.
RENAMED_CONTEXT = {"pull_interval_minutes": CONTEXT_DISPATCH_TICK_MINUTES}

# A security group holds 60 egress rules by default; leave room for the HTTPS rule.
MAX_EGRESS_RULES = 59
ONPREM_VPC_EXAMPLE = (
    '{"vpc_id": "vpc-0a1b2c3d", "subnet_ids": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"], '
    '"private_cidrs": ["10.20.0.0/16"], "ports": [8080]}'
)
_VPC_ID = re.compile(r"^vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_SUBNET_ID = re.compile(r"^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


def _pull_interval_bounds() -> tuple[int, int]:
    """The per-integration pull_interval_minutes range, read from the settings model that enforces it."""
    metadata = IntegrationSettings.model_fields["pull_interval_minutes"].metadata
    low = next(m.ge for m in metadata if isinstance(m, Ge))
    high = next(m.le for m in metadata if isinstance(m, Le))
    return cast(int, low), cast(int, high)


# The tick is the fastest an integration can be pulled: no faster than the shortest interval an integration may
# set (a faster tick would only find nothing due), no slower than the longest (or that interval could not be met).
MIN_DISPATCH_TICK_MINUTES, MAX_DISPATCH_TICK_MINUTES = _pull_interval_bounds()


@dataclass(frozen=True)
class OnPremVpc:
    """Where pull_onprem runs when stores are reached over a VPN: existing subnets, and what it may call."""

    vpc_id: str
    subnet_ids: tuple[str, ...]
    # Store networks (reached through the VPC's routes to the VPN) and the ports their servers listen on.
    private_cidrs: tuple[IPNetwork, ...] = ()
    ports: tuple[int, ...] = ()
    # Ports of store servers on public addresses other than 443 (HTTPS to anywhere is always allowed).
    public_ports: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        key = CONTEXT_ONPREM_VPC
        if not _VPC_ID.fullmatch(self.vpc_id):
            raise ValueError(f"{key}.vpc_id must be a VPC id like vpc-0a1b2c3d, got {self.vpc_id!r}")
        if not self.subnet_ids:
            raise ValueError(f"{key}.subnet_ids must list the private subnets pull_onprem runs in (two AZs or more)")
        for subnet in self.subnet_ids:
            if not _SUBNET_ID.fullmatch(subnet):
                raise ValueError(f"{key}.subnet_ids: {subnet!r} is not a subnet id like subnet-0a1b2c3d")
        for cidr in self.private_cidrs:
            if cidr.version != 4:
                raise ValueError(
                    f"{key}.private_cidrs takes IPv4 ranges (store networks over a VPN are IPv4); got {cidr}"
                )
        if self.private_cidrs and not self.ports:
            raise ValueError(f"{key}.ports must list the store servers' ports (e.g. [8080]) for its private_cidrs")
        if self.ports and not self.private_cidrs:
            raise ValueError(f"{key}.ports applies to private_cidrs, and none are listed")
        rules = len(self.private_cidrs) * len(self.ports) + len(self.public_ports)
        if rules > MAX_EGRESS_RULES:
            raise ValueError(
                f"{key} needs {rules} security group egress rules (ranges x ports + public ports), more than "
                f"{MAX_EGRESS_RULES}: merge ranges or ports"
            )

    @classmethod
    def from_context(cls, value: Any) -> OnPremVpc | None:
        if value is None or value == "":
            return None
        key = CONTEXT_ONPREM_VPC
        value = _json_object(value, f"{key} must be a JSON object like {ONPREM_VPC_EXAMPLE}")
        known = {"vpc_id", "subnet_ids", "private_cidrs", "ports", "public_ports"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"{key}: unknown keys {unknown}; expected {sorted(known)}")
        if "vpc_id" not in value or "subnet_ids" not in value:
            raise ValueError(f"{key} needs vpc_id and subnet_ids, e.g. {ONPREM_VPC_EXAMPLE}")
        try:
            private_cidrs = parse_private_networks(_str_list(value.get("private_cidrs", []), "private_cidrs"))
        except ValueError as exc:
            raise ValueError(f"{key}.private_cidrs: {exc}") from None
        return cls(
            vpc_id=str(value["vpc_id"]),
            subnet_ids=tuple(_str_list(value["subnet_ids"], "subnet_ids")),
            private_cidrs=private_cidrs,
            ports=_ports(value.get("ports", []), "ports"),
            public_ports=_ports(value.get("public_ports", []), "public_ports"),
        )


@dataclass(frozen=True)
class DeployConfig:
    """What differs between deployments: the stage, the dispatch tick, what pulls may call, who hears alarms."""

    stage: str = DEFAULT_STAGE
    # How often each pull function's schedule dispatches: the fastest any integration is pulled. Each integration's
    # own pull_interval_minutes setting decides whether a tick enqueues it.
    dispatch_tick_minutes: int = DEFAULT_DISPATCH_TICK_MINUTES
    # Lets on-premises credentials name private addresses inside onprem_vpc.private_cidrs (stores over a VPN).
    allow_private_hosts: bool = False
    onprem_vpc: OnPremVpc | None = None
    # Subscribed to the alarm topic (SNS sends a confirmation mail first).
    alarm_email: str | None = None
    # Overrides of a vendor's hosted API base URL (a vendor sandbox for a staging stack).
    vendor_base_urls: Mapping[Vendor, str] = field(default_factory=dict)
    # The origination identity's ARN (the opt-in functions may send through it and nothing else).
    sms_origination_identity: str | None = None
    sms_configuration_set: str | None = None

    def __post_init__(self) -> None:
        check_stage(self.stage)
        if self.sms_origination_identity is not None and not _SMS_IDENTITY.fullmatch(self.sms_origination_identity):
            raise ValueError(
                f"{CONTEXT_SMS_ORIGINATION_IDENTITY} must be the ARN of an End User Messaging SMS phone number, "
                f"pool or sender id, like {SMS_IDENTITY_EXAMPLE}"
            )
        if self.sms_configuration_set is not None and not _SMS_CONFIGURATION_SET.fullmatch(self.sms_configuration_set):
            raise ValueError(f"{CONTEXT_SMS_CONFIGURATION_SET} must be a configuration set name (letters, digits, - _)")
        if not MIN_DISPATCH_TICK_MINUTES <= self.dispatch_tick_minutes <= MAX_DISPATCH_TICK_MINUTES:
            raise ValueError(
                f"{CONTEXT_DISPATCH_TICK_MINUTES} must be from {MIN_DISPATCH_TICK_MINUTES} to "
                f"{MAX_DISPATCH_TICK_MINUTES} (the range of the integrations' pull_interval_minutes), "
                f"got {self.dispatch_tick_minutes}"
            )
        if self.allow_private_hosts and self.onprem_vpc is None:
            raise ValueError(
                f"{CONTEXT_ALLOW_PRIVATE_HOSTS}=true needs {CONTEXT_ONPREM_VPC}: a Lambda outside a VPC cannot reach "
                f"a private address. Add -c {CONTEXT_ONPREM_VPC}='{ONPREM_VPC_EXAMPLE}' (private subnets with a NAT "
                "gateway and a route to the store network), or set allow_private_hosts=false"
            )
        if self.allow_private_hosts and self.onprem_vpc is not None and not self.onprem_vpc.private_cidrs:
            raise ValueError(
                f"{CONTEXT_ALLOW_PRIVATE_HOSTS}=true needs {CONTEXT_ONPREM_VPC}.private_cidrs: list the store "
                "network ranges pull_onprem may call (and their ports), e.g. "
                '"private_cidrs": ["10.20.0.0/16"], "ports": [8080]'
            )
        if not self.allow_private_hosts and self.onprem_vpc is not None and self.onprem_vpc.private_cidrs:
            raise ValueError(
                f"{CONTEXT_ONPREM_VPC}.private_cidrs are reachable only with {CONTEXT_ALLOW_PRIVATE_HOSTS}=true: "
                "set it, or remove private_cidrs and ports"
            )
        if self.alarm_email is not None and not _EMAIL.fullmatch(self.alarm_email):
            raise ValueError(f"{CONTEXT_ALARM_EMAIL} must be one e-mail address like ops@example.com")
        for vendor, url in self.vendor_base_urls.items():
            parts = urlsplit(url)
            if parts.scheme != "https" or not parts.hostname:
                raise ValueError(f"{CONTEXT_VENDOR_BASE_URLS}.{vendor.value} must be an https:// URL, got {url!r}")

    @property
    def private_host_cidrs(self) -> tuple[IPNetwork, ...]:
        """The private ranges pull_onprem may call: none unless private hosts are allowed."""
        if not self.allow_private_hosts or self.onprem_vpc is None:
            return ()
        return self.onprem_vpc.private_cidrs

    @classmethod
    def from_context(cls, node: Node) -> DeployConfig:
        for old, new in RENAMED_CONTEXT.items():
            if node.try_get_context(old) is not None:
                raise ValueError(
                    f"the CDK context key {old} is now {new}: the schedule's tick, the fastest any integration is "
                    f"pulled. Each integration's own interval is its {old} setting (`possync settings set "
                    f"--tenant T --vendor V {old}=60`). Rename the key in cdk.json or on the command line."
                )
        return cls(
            stage=_as_stage(node.try_get_context(CONTEXT_STAGE)),
            dispatch_tick_minutes=_as_int(
                node.try_get_context(CONTEXT_DISPATCH_TICK_MINUTES),
                CONTEXT_DISPATCH_TICK_MINUTES,
                DEFAULT_DISPATCH_TICK_MINUTES,
            ),
            allow_private_hosts=_as_bool(
                node.try_get_context(CONTEXT_ALLOW_PRIVATE_HOSTS), CONTEXT_ALLOW_PRIVATE_HOSTS
            ),
            onprem_vpc=OnPremVpc.from_context(node.try_get_context(CONTEXT_ONPREM_VPC)),
            alarm_email=_as_email(node.try_get_context(CONTEXT_ALARM_EMAIL)),
            vendor_base_urls=_as_vendor_urls(node.try_get_context(CONTEXT_VENDOR_BASE_URLS)),
            sms_origination_identity=_as_optional_text(node.try_get_context(CONTEXT_SMS_ORIGINATION_IDENTITY)),
            sms_configuration_set=_as_optional_text(node.try_get_context(CONTEXT_SMS_CONFIGURATION_SET)),
        )


# Values from cdk.json arrive typed; values from `-c key=value` arrive as strings.
def _json_object(value: Any, expected: str) -> Mapping[str, Any]:
    """An object from cdk.json, or the JSON text of one from the command line."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{expected}, got {value!r}") from None
    if not isinstance(value, Mapping):
        raise ValueError(f"{expected}, got {value!r}")
    return value


def _as_stage(value: Any) -> str:
    if value is None:
        return DEFAULT_STAGE
    if not isinstance(value, str):
        raise ValueError(f"{CONTEXT_STAGE} must be a name like dev or prod, got {value!r}")
    return check_stage(value)


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


def _as_email(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{CONTEXT_ALARM_EMAIL} must be one e-mail address like ops@example.com, got {value!r}")
    return value.strip()


def _as_optional_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value).strip()


def _str_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{CONTEXT_ONPREM_VPC}.{name} must be a list of strings, got {value!r}")
    return value


def _ports(value: Any, name: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{CONTEXT_ONPREM_VPC}.{name} must be a list of port numbers, got {value!r}")
    for port in value:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"{CONTEXT_ONPREM_VPC}.{name}: {port!r} is not a port number from 1 to 65535")
    return tuple(dict.fromkeys(value))


def _as_vendor_urls(value: Any) -> dict[Vendor, str]:
    if value is None:
        return {}
    value = _json_object(value, f"{CONTEXT_VENDOR_BASE_URLS} must be a JSON object mapping vendor names to URLs")
    known = {vendor.value for vendor in Vendor}
    urls: dict[Vendor, str] = {}
    for name, url in value.items():
        if name not in known:
            raise ValueError(f"{CONTEXT_VENDOR_BASE_URLS}: unknown vendor {name!r}; expected one of {sorted(known)}")
        urls[Vendor(name)] = str(url)
    return urls
