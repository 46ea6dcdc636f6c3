"""The custom IP:PORT guard: a table of hostile values with the reason each is refused, names via a fake resolver."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from functions.core.errors import HostNotAllowedError, VendorUnavailableError
from functions.core.netguard import ResolvedTarget, parse_host_port, resolve_allowed


def fake_resolver(table: dict[str, list[str]]) -> Callable[..., list[tuple[Any, ...]]]:
    """getaddrinfo over a fixed table: no real DNS; unknown names fail like NXDOMAIN."""

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0))
            if ":" in ip
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in table[host]
        ]

    return resolve


NAMES = fake_resolver(
    {
        "store.example.com": ["93.184.215.14"],
        "dual.example.com": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", "93.184.215.14"],
        "v6only.example.com": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "rebind.example.com": ["93.184.215.14", "127.0.0.1"],
        "metadata.example.com": ["169.254.169.254"],
        "v6loop.example.com": ["::1"],
        "mapped.example.com": ["::ffff:10.0.0.5"],
        "lan.example.com": ["192.168.1.20"],
        "empty.example.com": [],
    }
)

LOOPBACK = "loopback address"
LINK_LOCAL = "link-local address"
PRIVATE = "private network address"
RESERVED = "reserved range"
SPECIAL = "special-purpose range"
NON_STANDARD = "not a standard IPv4 address"

HOSTILE: list[tuple[str, str]] = [
    # loopback in every spelling
    ("127.0.0.1:8080", LOOPBACK),
    ("127.10.20.30:80", LOOPBACK),
    ("[::1]:8080", LOOPBACK),
    ("[0:0:0:0:0:0:0:1]:8080", LOOPBACK),
    ("localhost:8080", LOOPBACK),
    ("api.localhost:8080", LOOPBACK),
    ("LOCALHOST:8080", LOOPBACK),
    ("[::ffff:127.0.0.1]:8080", LOOPBACK),
    ("[::ffff:7f00:1]:8080", LOOPBACK),
    ("[64:ff9b::7f00:1]:8080", LOOPBACK),  # NAT64
    ("[2002:7f00:1::]:8080", LOOPBACK),  # 6to4
    ("v6loop.example.com:8080", LOOPBACK),
    ("rebind.example.com:8080", LOOPBACK),  # one bad address among good ones is enough
    # numeric forms some resolvers read as 127.0.0.1
    ("2130706433:8080", NON_STANDARD),
    ("0x7f000001:8080", NON_STANDARD),
    ("0x7f.0.0.1:8080", NON_STANDARD),
    ("0177.0.0.1:8080", NON_STANDARD),
    ("127.1:8080", NON_STANDARD),
    ("127.0.1:8080", NON_STANDARD),
    ("1.2.3.4.5:8080", NON_STANDARD),
    ("256.1.1.1:8080", NON_STANDARD),
    # link-local and cloud metadata
    ("169.254.169.254:80", LINK_LOCAL),
    ("169.254.0.1:80", LINK_LOCAL),
    ("[fe80::1]:80", LINK_LOCAL),
    ("[febf::1]:80", LINK_LOCAL),
    ("[::ffff:169.254.169.254]:80", LINK_LOCAL),
    ("metadata.example.com:80", LINK_LOCAL),
    # unspecified, multicast, broadcast, reserved
    ("0.0.0.0:80", "unspecified address"),
    ("0.1.2.3:80", "unspecified address"),
    ("[::]:80", "unspecified address"),
    ("224.0.0.1:80", "multicast address"),
    ("239.255.255.250:1900", "multicast address"),
    ("[ff02::1]:80", "multicast address"),
    ("255.255.255.255:80", "broadcast address"),
    ("240.0.0.1:80", RESERVED),
    ("[fec0::1]:80", RESERVED),
    ("[::8.8.8.8]:80", RESERVED),  # deprecated IPv4-compatible
    ("[3fff::1]:80", SPECIAL),  # IPv6 documentation (RFC 9637)
    # special-purpose ranges
    ("192.0.2.10:80", SPECIAL),
    ("198.51.100.7:80", SPECIAL),
    ("203.0.113.9:80", SPECIAL),
    ("198.18.0.1:80", SPECIAL),
    ("[2001:db8::1]:80", SPECIAL),
    ("[2001::1]:80", SPECIAL),  # Teredo
    ("[64:ff9b:1::1]:80", SPECIAL),
    # private ranges (refused unless the deployment allows them)
    ("10.1.2.3:8080", PRIVATE),
    ("172.16.0.1:8080", PRIVATE),
    ("172.31.255.254:8080", PRIVATE),
    ("192.168.1.50:8080", PRIVATE),
    ("100.64.0.1:8080", PRIVATE),
    ("100.127.255.254:8080", PRIVATE),
    ("[fc00::1]:8080", PRIVATE),
    ("[fd12:3456::1]:8080", PRIVATE),
    ("[::ffff:10.0.0.5]:8080", PRIVATE),
    ("[2002:a00:1::]:8080", PRIVATE),
    ("lan.example.com:8080", PRIVATE),
    ("mapped.example.com:8080", PRIVATE),
    # ports
    ("93.184.215.14", "has no port"),
    ("93.184.215.14:", "not a number from 1 to 65535"),
    ("93.184.215.14:0", "not a number from 1 to 65535"),
    ("93.184.215.14:65536", "not a number from 1 to 65535"),
    ("93.184.215.14:99999999", "not a number from 1 to 65535"),
    ("93.184.215.14:-1", "not a number from 1 to 65535"),
    ("93.184.215.14:+80", "not a number from 1 to 65535"),
    ("93.184.215.14:8o", "not a number from 1 to 65535"),
    ("93.184.215.14:080", "leading zero"),
    ("93.184.215.14:00443", "leading zero"),
    ("93.184.215.14:00", "leading zero"),
    ("93.184.215.14:٨٠", "non-ASCII"),  # Arabic-Indic digits
    ("93.184.215.14:80:81", "IPv6 address without brackets"),
    # shapes that are not IP:PORT
    ("", "is empty"),
    ("ftp://93.184.215.14:21", "scheme other than http"),
    ("file:///etc/passwd", "scheme other than http"),
    ("gopher://93.184.215.14:70", "scheme other than http"),
    ("admin:secret@93.184.215.14:8080", "user info"),
    ("http://user@93.184.215.14:8080", "user info"),
    ("93.184.215.14:8080/api", "contains a path"),
    ("http://93.184.215.14:8080/a/b", "contains a path"),
    ("93.184.215.14:8080?x=1", "a query"),
    ("93.184.215.14:8080#frag", "a fragment"),
    ("93.184.215.14%2f:8080", "escapes"),
    ("[fe80::1%25eth0]:80", "escapes"),
    ("93.184.215.14\\@evil:80", "escapes"),
    (" 93.184.215.14:8080", "whitespace"),
    ("93.184.215.14 :8080", "whitespace"),
    ("93.184.215.14:8080\n", "whitespace"),
    ("93.184.215.14\t:8080", "whitespace"),
    ("93.184.215.14\x00:8080", "control characters"),
    ("störe.example.com:8080", "non-ASCII"),
    ("2001:db8::1:8080", "IPv6 address without brackets"),
    ("[2001:db8::1:8080", "without closing"),
    ("[93.184.215.14]:8080", "not an IPv6 address"),
    ("[2606:2800::1]x:8080", "text after the ']'"),
    (":8080", "has no host"),
    ("-bad-.example.com:8080", "not a valid host name"),
    ("under_score.example.com:8080", "not a valid host name"),
    ("trailing.dot.:8080", "not a valid host name"),
    ("a" * 64 + ".example.com:8080", "not a valid host name"),
    ("x" * 301, "at most 300"),
    ("nxdomain.example.com:8080", "does not resolve"),
    ("empty.example.com:8080", "resolves to no address"),
]


@pytest.mark.parametrize(("text", "reason"), HOSTILE, ids=[repr(t)[:40] for t, _ in HOSTILE])
def test_hostile_values_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(HostNotAllowedError) as caught:
        resolve_allowed(text, allow_private=False, resolver=NAMES)
    assert reason in str(caught.value)


@pytest.mark.parametrize(("text", "reason"), HOSTILE, ids=[repr(t)[:40] for t, _ in HOSTILE])
def test_every_refusal_says_what_to_do_next(text: str, reason: str) -> None:
    with pytest.raises(HostNotAllowedError) as caught:
        resolve_allowed(text, allow_private=False, resolver=NAMES)
    message = str(caught.value)
    assert any(hint in message for hint in ("enter", "write", "add", "remove", "leave", "check", "use")), message
    assert len(message) < 600  # a hostile value cannot flood a log line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("93.184.215.14:8080", ResolvedTarget("93.184.215.14", 8080, "93.184.215.14", None, ("93.184.215.14",), False)),
        (
            "HTTPS://93.184.215.14",
            ResolvedTarget("93.184.215.14", 443, "93.184.215.14", "https", ("93.184.215.14",), False),
        ),
        (
            "http://93.184.215.14/",
            ResolvedTarget("93.184.215.14", 80, "93.184.215.14", "http", ("93.184.215.14",), False),
        ),
        (
            "[2606:2800:21F:CB07::1]:25565",
            ResolvedTarget(
                "2606:2800:21f:cb07::1", 25565, "2606:2800:21f:cb07::1", None, ("2606:2800:21f:cb07::1",), False
            ),
        ),
        (
            "Store.Example.com:8443",
            ResolvedTarget("store.example.com", 8443, "93.184.215.14", None, ("93.184.215.14",), True),
        ),
        (
            "[2002:5db8:d70e::1]:80",
            ResolvedTarget("2002:5db8:d70e::1", 80, "2002:5db8:d70e::1", None, ("2002:5db8:d70e::1",), False),
        ),
        (
            "[64:ff9b::5db8:d70e]:80",
            ResolvedTarget("64:ff9b::5db8:d70e", 80, "64:ff9b::5db8:d70e", None, ("64:ff9b::5db8:d70e",), False),
        ),
        (
            "93.184.215.14:65535",
            ResolvedTarget("93.184.215.14", 65535, "93.184.215.14", None, ("93.184.215.14",), False),
        ),
        ("93.184.215.14:1", ResolvedTarget("93.184.215.14", 1, "93.184.215.14", None, ("93.184.215.14",), False)),
    ],
)
def test_public_addresses_are_accepted(text: str, expected: ResolvedTarget) -> None:
    assert resolve_allowed(text, allow_private=False, resolver=NAMES) == expected


def test_a_password_typed_as_user_info_never_reaches_the_message() -> None:
    with pytest.raises(HostNotAllowedError) as caught:
        resolve_allowed("http://admin:hunter2@93.184.215.14:8080", allow_private=False, resolver=NAMES)
    assert "hunter2" not in str(caught.value) and "admin" not in str(caught.value)
    assert "user info" in str(caught.value)


def test_a_name_is_resolved_once_and_every_address_is_kept() -> None:
    calls: list[str] = []

    def counting(host: str, port: int, *args: Any, **kwargs: Any) -> Iterable[tuple[Any, ...]]:
        calls.append(host)
        return NAMES(host, port)

    target = resolve_allowed("dual.example.com:8080", allow_private=False, resolver=counting)

    assert calls == ["dual.example.com"]
    assert target.ip == "93.184.215.14"  # IPv4 preferred even when DNS lists IPv6 first
    assert target.addresses == ("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    assert target.base_url("http") == "http://93.184.215.14:8080"
    assert target.host_header("http") == "dual.example.com:8080"


def test_an_ipv6_only_name_connects_over_ipv6() -> None:
    target = resolve_allowed("https://v6only.example.com", allow_private=False, resolver=NAMES)
    assert target.base_url("https") == "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443"
    assert target.host_header("https") == "v6only.example.com"


def test_an_ip_literal_is_never_resolved() -> None:
    def no_dns(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise AssertionError("an IP literal must not be resolved")

    assert resolve_allowed("93.184.215.14:8080", allow_private=False, resolver=no_dns).ip == "93.184.215.14"


def test_private_ranges_pass_when_the_deployment_allows_them() -> None:
    assert resolve_allowed("10.1.2.3:8080", allow_private=True, resolver=NAMES).ip == "10.1.2.3"
    assert resolve_allowed("lan.example.com:8080", allow_private=True, resolver=NAMES).ip == "192.168.1.20"
    assert resolve_allowed("[fd12::1]:8080", allow_private=True, resolver=NAMES).ip == "fd12::1"


@pytest.mark.parametrize("text", ["127.0.0.1:80", "169.254.169.254:80", "[fe80::1]:80", "0.0.0.0:80", "224.0.0.1:80"])
def test_allowing_private_ranges_never_opens_the_rest(text: str) -> None:
    with pytest.raises(HostNotAllowedError):
        resolve_allowed(text, allow_private=True, resolver=NAMES)


def test_the_loopback_escape_hatch_opens_loopback_only() -> None:
    assert resolve_allowed("127.0.0.1:8080", False, NAMES, allow_loopback_for_tests=True).ip == "127.0.0.1"
    assert resolve_allowed("[::1]:8080", False, NAMES, allow_loopback_for_tests=True).ip == "::1"
    for text in ("169.254.169.254:80", "10.0.0.1:80", "0.0.0.0:80"):
        with pytest.raises(HostNotAllowedError):
            resolve_allowed(text, False, NAMES, allow_loopback_for_tests=True)


def test_a_temporary_dns_failure_is_not_a_refusal() -> None:
    def flaky(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(VendorUnavailableError) as caught:
        resolve_allowed("store.example.com:8080", allow_private=False, resolver=flaky)
    assert not isinstance(caught.value, HostNotAllowedError)
    assert "temporary" in str(caught.value)


def test_the_resolver_is_asked_for_tcp_addresses() -> None:
    seen: dict[str, Any] = {}

    def spy(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        seen.update(kwargs, host=host, port=port)
        return NAMES("store.example.com", port)

    resolve_allowed("store.example.com:8080", allow_private=False, resolver=spy)
    assert seen == {"host": "store.example.com", "port": 8080, "type": socket.SOCK_STREAM}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.101.102.103:25565", ("192.101.102.103", 25565)),
        ("https://store.example.com", ("store.example.com", 443)),
        ("http://store.example.com", ("store.example.com", 80)),
        ("[2606:2800::1]:8080", ("2606:2800::1", 8080)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


def test_parse_host_port_refuses_without_resolving() -> None:
    with pytest.raises(HostNotAllowedError):
        parse_host_port("0x7f.0.0.1:80")


def test_host_header_and_url_of_ipv6() -> None:
    target = resolve_allowed("[2606:2800::1]:443", allow_private=False, resolver=NAMES)
    assert target.base_url("https") == "https://[2606:2800::1]:443"
    assert target.host_header("https") == "[2606:2800::1]"
    assert target.display == "[2606:2800::1]:443"
