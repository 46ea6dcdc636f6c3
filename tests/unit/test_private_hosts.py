"""Private on-premises hosts: reachable only inside the configured ranges; refusals name the real switch."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from functions.core import layout
from functions.core.connector import ConnectorConfig
from functions.core.errors import HostNotAllowedError
from functions.core.layout import Vendor
from functions.core.netguard import PRIVATE_RANGES, parse_private_networks, resolve_allowed
from functions.core.pull_runtime import RuntimeConfig
from functions.pull_onprem.transport import endpoint_for

CONFIGURED = parse_private_networks("10.20.0.0/16, 192.168.50.0/24")


def resolver(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
    answers = {"store.lan": "10.20.7.9", "other.lan": "10.30.0.5"}
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]


def test_ranges_are_parsed_from_a_comma_separated_string_or_a_list() -> None:
    assert (ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("192.168.50.0/24")) == CONFIGURED
    assert parse_private_networks(["10.20.0.0/16", "192.168.50.0/24"]) == CONFIGURED
    assert parse_private_networks("") == ()


@pytest.mark.parametrize(
    ("cidrs", "message"),
    [
        ("169.254.0.0/16", "not inside a private range"),  # the metadata range can never be opened
        ("127.0.0.0/8", "not inside a private range"),
        ("0.0.0.0/0", "not inside a private range"),
        ("10.0.0.0/7", "not inside a private range"),  # wider than 10/8
        ("8.8.8.0/24", "not inside a private range"),  # public addresses need no opening
        ("10.20.0.1/16", "not a CIDR range"),  # host bits set: a typo, not a range
        ("10.20.0.0/16,lan", "not a CIDR range"),
    ],
)
def test_anything_but_a_private_range_is_refused(cidrs: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_private_networks(cidrs)


def test_private_ranges_are_the_guards_own() -> None:
    assert {str(n) for n in PRIVATE_RANGES} == {
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
    }


def test_a_configured_range_is_reachable_and_an_unconfigured_private_address_is_not() -> None:
    # Given a deployment that allows private hosts in 10.20.0.0/16 and 192.168.50.0/24
    def check(text: str) -> str:
        return resolve_allowed(text, True, resolver, private_networks=CONFIGURED).ip

    # Then addresses (and names resolving) inside them are accepted
    assert check("10.20.3.4:8080") == "10.20.3.4"
    assert check("192.168.50.10:25565") == "192.168.50.10"
    assert check("store.lan:8080") == "10.20.7.9"

    # And every other private address is refused, naming the ranges and how to add one
    for text in ("10.30.0.5:8080", "192.168.1.20:8080", "172.16.0.1:443", "other.lan:8080"):
        with pytest.raises(HostNotAllowedError) as refused:
            check(text)
        message = str(refused.value)
        assert "outside the ranges this deployment reaches (10.20.0.0/16, 192.168.50.0/24)" in message
        assert "onprem_vpc.private_cidrs" in message and "cdk deploy -c onprem_vpc=" in message


def test_configured_ranges_never_open_what_is_not_private() -> None:
    for text in ("127.0.0.1:8080", "169.254.169.254:80", "0.0.0.0:80"):
        with pytest.raises(HostNotAllowedError):
            resolve_allowed(text, True, resolver, private_networks=(ipaddress.ip_network("10.0.0.0/8"),))


def test_no_configured_range_means_no_private_address() -> None:
    with pytest.raises(HostNotAllowedError, match="none are configured"):
        resolve_allowed("10.20.3.4:8080", True, resolver, private_networks=())


def test_the_refusal_names_the_cdk_context_switch_not_an_env_var() -> None:
    with pytest.raises(HostNotAllowedError) as refused:
        resolve_allowed("10.20.3.4:8080", False, resolver)

    message = str(refused.value)
    assert "private network address" in message  # the CLI recognises a private refusal by this phrase
    assert "allow_private_hosts=true" in message and "onprem_vpc.private_cidrs" in message
    assert "cdk deploy -c allow_private_hosts=true" in message
    assert "POSSYNC_" not in message


def test_the_pull_lambda_reads_its_ranges_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the environment the CDK app gives pull_onprem with onprem_vpc.private_cidrs set
    monkeypatch.setenv(layout.ENV_ARCHIVE_BUCKET, "bucket")
    monkeypatch.setenv(layout.ENV_JOB_QUEUE_URL, "https://sqs.invalid/q")
    monkeypatch.setenv(layout.ENV_ALLOW_PRIVATE_HOSTS, "true")
    monkeypatch.setenv(layout.ENV_PRIVATE_HOST_CIDRS, "10.20.0.0/16,192.168.50.0/24")

    config = RuntimeConfig.from_env({Vendor.PROFITEK: "https://api.profitek.invalid"})
    connector_config = ConnectorConfig(
        base_url=config.base_urls[Vendor.PROFITEK],
        allow_private_hosts=config.allow_private_hosts,
        private_host_networks=config.private_host_networks,
    )

    # Then the on-premises endpoint accepts exactly those ranges
    assert config.private_host_networks == CONFIGURED
    assert endpoint_for(Vendor.PROFITEK, "10.20.3.4:8080", None, connector_config).base_url == "http://10.20.3.4:8080"
    with pytest.raises(HostNotAllowedError, match="outside the ranges"):
        endpoint_for(Vendor.AUPHAN, "10.99.0.1:8080", None, connector_config)


def test_without_the_variable_a_pull_allowed_private_hosts_still_reaches_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(layout.ENV_ARCHIVE_BUCKET, "bucket")
    monkeypatch.setenv(layout.ENV_JOB_QUEUE_URL, "https://sqs.invalid/q")
    monkeypatch.setenv(layout.ENV_ALLOW_PRIVATE_HOSTS, "true")
    monkeypatch.delenv(layout.ENV_PRIVATE_HOST_CIDRS, raising=False)

    assert RuntimeConfig.from_env({}).private_host_networks == ()
