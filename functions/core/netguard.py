"""Guards a user-supplied IP:PORT: strict parsing, one DNS resolution, and a check of every address it yields."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from functions.core.errors import HostNotAllowedError, VendorUnavailableError

Scheme = Literal["http", "https"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[..., Iterable[tuple[Any, ...]]]

MAX_INPUT_LENGTH = 300  # a 253-character name, brackets, a port and a scheme fit comfortably
DEFAULT_PORTS: dict[Scheme, int] = {"http": 80, "https": 443}
EXAMPLE = "192.101.102.103:25565"  # the Profitek card's own example: public, not a reserved range

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_PORT = re.compile(r"^[0-9]{1,5}$")

# Categories of addresses; only "public" is reachable by default, "private" when the deployment allows it.
Category = Literal[
    "public",
    "private",
    "loopback",
    "link-local",
    "unspecified",
    "multicast",
    "broadcast",
    "reserved",
    "special-purpose",
    "ipv4-mapped",
]

_V4_RANGES: tuple[tuple[str, Category], ...] = (
    ("0.0.0.0/8", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("100.64.0.0/10", "private"),  # carrier-grade NAT (RFC 6598): behind a provider's NAT, like RFC 1918
    ("192.0.0.0/24", "special-purpose"),
    ("192.0.2.0/24", "special-purpose"),
    ("198.18.0.0/15", "special-purpose"),
    ("198.51.100.0/24", "special-purpose"),
    ("203.0.113.0/24", "special-purpose"),
    ("192.88.99.0/24", "special-purpose"),
)
_V4_TABLE = tuple((ipaddress.IPv4Network(net), category) for net, category in _V4_RANGES)

# IPv6 ranges that embed an IPv4 address are unwrapped first (see classify); these are the rest.
_V6_RANGES: tuple[tuple[str, Category], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "reserved"),  # deprecated site-local
    ("ff00::/8", "multicast"),
    ("fc00::/7", "private"),  # unique local addresses
    ("::/96", "reserved"),  # deprecated IPv4-compatible addresses
    ("64:ff9b:1::/48", "special-purpose"),  # local-use NAT64: the embedded IPv4 may be anything
    ("100::/64", "special-purpose"),  # discard-only
    ("2001::/32", "special-purpose"),  # Teredo tunnels
    ("2001:db8::/32", "special-purpose"),  # documentation
    ("3fff::/20", "special-purpose"),  # documentation (RFC 9637)
    ("2001::/23", "special-purpose"),  # IETF protocol assignments
)
_V6_TABLE = tuple((ipaddress.IPv6Network(net), category) for net, category in _V6_RANGES)
_V6_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_V6_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V6_6TO4 = ipaddress.IPv6Network("2002::/16")
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")

_BAD_PORT = f"has a port that is not a number from 1 to 65535 (digits only); write it like {EXAMPLE}"
_WHAT_NEXT = f"enter the store server's public IP:PORT (e.g. {EXAMPLE}) as port-forwarded on the store's router"

# Noun phrases, so a message can say "X is <phrase>" or "X resolves to 1.2.3.4, <phrase>".
_REASONS: dict[Category, str] = {
    "loopback": "a loopback address (it points back at the machine running possync, not at a store server)",
    "link-local": "a link-local address (the range of the cloud instance metadata service)",
    "unspecified": "the unspecified address (it names no server)",
    "multicast": "a multicast address (it names a group, not one server)",
    "broadcast": "a broadcast address (it names no single server)",
    "reserved": "an address in a reserved range, not routable on the internet",
    "special-purpose": "an address in a special-purpose range (documentation, benchmarking, tunnelling, protocols)",
    "ipv4-mapped": "an IPv4-mapped IPv6 address (write the IPv4 address itself instead)",
    "private": (
        "a private network address (possync calls one only when it is deployed with the CDK context "
        "allow_private_hosts=true and the store's range in onprem_vpc.private_cidrs, e.g. "
        "`cdk deploy -c allow_private_hosts=true -c onprem_vpc='{...}'`: see the README's on-premises stores section)"
    ),
}
# The switch that widens the reachable private ranges, named in refusals of a private address outside them.
_ADD_RANGE = (
    "add the store's range to the CDK context onprem_vpc.private_cidrs and redeploy "
    "(`cdk deploy -c onprem_vpc='{...}'`), or enter an address inside those ranges"
)


@dataclass(frozen=True)
class ParsedTarget:
    """What the user typed, split and checked for form: nothing is resolved yet."""

    host: str  # lower-case name, dotted-quad IPv4 or IPv6 without brackets
    port: int
    scheme: Scheme | None  # an explicit http:// or https:// prefix, else None

    @property
    def ip_literal(self) -> IPAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


@dataclass(frozen=True)
class ResolvedTarget:
    """A checked destination: connect to `ip` (never re-resolve `host`); send `host` as the Host header."""

    host: str
    port: int
    ip: str
    scheme: Scheme | None
    addresses: tuple[str, ...]  # everything the name resolved to; every one passed the check
    is_name: bool

    @property
    def url_host(self) -> str:
        return f"[{self.ip}]" if ":" in self.ip else self.ip

    def base_url(self, scheme: Scheme) -> str:
        return f"{scheme}://{self.url_host}:{self.port}"

    def host_header(self, scheme: Scheme) -> str:
        """The Host header a server expects when it is addressed by name (its default port left out)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if DEFAULT_PORTS[scheme] == self.port else f"{host}:{self.port}"

    @property
    def display(self) -> str:
        """How the target is named in messages: what the user typed, not the address it resolved to."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _reject(shown: str, reason: str) -> HostNotAllowedError:
    return HostNotAllowedError(f"custom IP:PORT {shown} {reason}")


def _shown(text: str) -> str:
    """The input quoted for a message: user info (it may hold a password) masked, cut short so a hostile value
    cannot flood a log line."""
    if "@" in text:
        text = "***@" + text.rsplit("@", 1)[1]
    return repr(text if len(text) <= 80 else text[:77] + "...")


def parse_target(text: str) -> ParsedTarget:
    """Split `[scheme://]host:port` strictly; anything unusual is refused rather than guessed at."""
    if not isinstance(text, str):
        raise HostNotAllowedError(f"custom IP:PORT must be text like {EXAMPLE}")
    if len(text) > MAX_INPUT_LENGTH:
        raise HostNotAllowedError(
            f"custom IP:PORT is {len(text)} characters long (at most {MAX_INPUT_LENGTH}); enter just IP:PORT, "
            f"e.g. {EXAMPLE}"
        )
    shown = _shown(text)
    if not text:
        raise _reject(shown, "is empty; leave the field blank to use the vendor's hosted endpoint")
    if any(ch.isspace() for ch in text):
        raise _reject(shown, "contains whitespace; remove the spaces and line breaks")
    if not text.isascii() or not text.isprintable():
        raise _reject(shown, "contains non-ASCII or control characters; write an IP address or an ASCII host name")

    scheme: Scheme | None = None
    rest = text
    if "://" in text:
        prefix, rest = text.split("://", 1)
        lowered = prefix.lower()
        if lowered not in DEFAULT_PORTS:
            raise _reject(shown, "has a scheme other than http:// or https://; write IP:PORT, e.g. " + EXAMPLE)
        scheme = "https" if lowered == "https" else "http"
    if "\\" in rest or "%" in rest:
        raise _reject(shown, "contains '\\' or '%' (escapes and IPv6 zone ids are not accepted); enter only IP:PORT")
    for char, what in (("@", "user info (name@ or name:password@)"), ("?", "a query"), ("#", "a fragment")):
        if char in rest:
            raise _reject(shown, f"contains {what}; enter only IP:PORT, e.g. {EXAMPLE}")
    if rest.endswith("/") and rest.count("/") == 1:
        rest = rest[:-1]
    if "/" in rest:
        raise _reject(shown, f"contains a path; enter only IP:PORT, e.g. {EXAMPLE}")

    host, port_text = _split_authority(rest, shown)
    port = _parse_port(port_text, scheme, shown)
    return ParsedTarget(host=_check_host_form(host, shown), port=port, scheme=scheme)


def _split_authority(authority: str, shown: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise _reject(shown, "opens '[' without closing ']'; write IPv6 as [2001:db8::10]:8080")
        host, tail = authority[1:end], authority[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _reject(shown, "has brackets around something that is not an IPv6 address") from None
        if tail and not tail.startswith(":"):
            raise _reject(shown, "has text after the ']'; write IPv6 as [2001:db8::10]:8080")
        return host, tail[1:] if tail else None
    if authority.count(":") > 1:
        raise _reject(shown, "looks like an IPv6 address without brackets; write it as [2001:db8::10]:8080")
    host, sep, port = authority.partition(":")
    return host, port if sep else None


def _parse_port(port_text: str | None, scheme: Scheme | None, shown: str) -> int:
    if port_text is None:
        if scheme is None:
            raise _reject(shown, f"has no port; add the store server's port, e.g. {EXAMPLE}")
        return DEFAULT_PORTS[scheme]
    if not _PORT.fullmatch(port_text):
        raise _reject(shown, _BAD_PORT)
    if len(port_text) > 1 and port_text.startswith("0"):
        # As with 0177.0.0.1, a leading zero reads as octal to some parsers: refused rather than guessed at.
        raise _reject(shown, f"has a port with a leading zero; write it without, like {EXAMPLE}")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise _reject(shown, _BAD_PORT)
    return port


def _check_host_form(host: str, shown: str) -> str:
    if not host:
        raise _reject(shown, f"has no host; enter the store server's IP:PORT, e.g. {EXAMPLE}")
    if ":" in host:  # an IPv6 literal that came out of brackets, already parsed once
        return str(ipaddress.IPv6Address(host))
    host = host.lower()
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        # Only the four-part dotted decimal form is an address; 2130706433, 0x7f.0.0.1, 0177.0.0.1 and 127.1
        # all mean 127.0.0.1 to some resolvers, so they are refused instead of being interpreted.
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise _reject(
                shown,
                "is not a standard IPv4 address; write four decimal numbers without leading zeros, "
                f"e.g. {EXAMPLE.split(':')[0]}",
            ) from None
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _reject(shown, "is not a valid host name; use letters, digits, dashes and dots, or an IP address")
    if labels[-1] == "localhost":
        raise _reject(shown, f"is {_REASONS['loopback']}; {_WHAT_NEXT}")
    return host


def parse_host_port(text: str) -> tuple[str, int]:
    """The host (IPv6 without brackets) and port of a custom IP:PORT, or HostNotAllowedError saying why not."""
    target = parse_target(text)
    return target.host, target.port


def classify(address: IPAddress) -> tuple[Category, ipaddress.IPv4Address | None]:
    """The category of an address, and the IPv4 address it embeds when that decided the category."""
    if isinstance(address, ipaddress.IPv4Address):
        return _classify_v4(address), None
    address = ipaddress.IPv6Address(int(address))  # drop any %zone
    embedded: ipaddress.IPv4Address | None = None
    if address in _V6_MAPPED:
        embedded = address.ipv4_mapped
    elif address in _V6_NAT64:
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    elif address in _V6_6TO4:
        embedded = address.sixtofour
    if embedded is not None:
        category = _classify_v4(embedded)
        if address in _V6_MAPPED and category == "public":
            return "ipv4-mapped", embedded
        return category, embedded
    for network, category in _V6_TABLE:
        if address in network:
            return category, None
    return ("public" if address in _V6_GLOBAL_UNICAST else "reserved"), None


def _classify_v4(address: ipaddress.IPv4Address) -> Category:
    for network, category in _V4_TABLE:
        if address in network:
            return category
    return "public" if address.is_global else "reserved"


# The ranges this guard calls private: the only ones a deployment may open to on-premises pulls.
PRIVATE_RANGES: tuple[IPNetwork, ...] = (
    *(network for network, category in _V4_TABLE if category == "private"),
    *(network for network, category in _V6_TABLE if category == "private"),
)


def parse_private_networks(cidrs: str | Iterable[str]) -> tuple[IPNetwork, ...]:
    """The deployment's reachable private ranges, from a comma-separated string or a list of CIDRs.

    Each must lie inside a private range (loopback, link-local and the rest can never be opened); a typo is an
    error, never a silently wider or narrower range.
    """
    items = [c.strip() for c in cidrs.split(",")] if isinstance(cidrs, str) else [str(c).strip() for c in cidrs]
    networks: list[IPNetwork] = []
    for item in filter(None, items):
        try:
            network = ipaddress.ip_network(item, strict=True)
        except ValueError as exc:
            raise ValueError(f"{item!r} is not a CIDR range like 10.20.0.0/16 ({exc})") from None
        if not any(network.version == p.version and network.subnet_of(p) for p in PRIVATE_RANGES):  # type: ignore[arg-type]
            ranges = ", ".join(str(p) for p in PRIVATE_RANGES)
            raise ValueError(f"{item} is not inside a private range ({ranges}); only private store networks are listed")
        networks.append(network)
    return tuple(networks)


def check_address(
    address: IPAddress,
    *,
    allow_private: bool,
    allow_loopback_for_tests: bool = False,
    private_networks: Sequence[IPNetwork] | None = None,
) -> tuple[Category, str] | None:
    """None when the address may be called; else its category and a noun phrase saying why it may not.

    With `allow_private`, a private address is accepted only inside `private_networks` when they are given (the
    deployed Lambda passes exactly its configured ranges); None means any private range (the CLI's
    --allow-private, which cannot know the deployment's ranges).
    """
    category, embedded = classify(address)
    if category == "public":
        return None
    if category == "private" and allow_private:
        inside = embedded or address
        if private_networks is None or any(inside in network for network in private_networks):
            return None
        ranges = ", ".join(str(n) for n in private_networks) or "none are configured"
        return (
            category,
            f"a private network address outside the ranges this deployment reaches ({ranges}); {_ADD_RANGE}",
        )
    if category == "loopback" and allow_loopback_for_tests:
        return None
    phrase = _REASONS[category]
    if embedded is not None and category != "ipv4-mapped":
        phrase = f"an IPv6 address embedding IPv4 {embedded}, {phrase}"
    what_next = f"otherwise {_WHAT_NEXT}" if category == "private" else _WHAT_NEXT
    return category, f"{phrase}; {what_next}"


def resolve_allowed(
    text: str,
    allow_private: bool,
    resolver: Resolver = socket.getaddrinfo,
    *,
    allow_loopback_for_tests: bool = False,
    private_networks: Sequence[IPNetwork] | None = None,
) -> ResolvedTarget:
    """Parse a custom IP:PORT, resolve a name once and accept it only if every address it yields is allowed.

    Callers connect to the returned `ip` and never resolve the name again, so DNS cannot answer differently
    between this check and the connection (DNS rebinding). `allow_loopback_for_tests` exists for tests that
    point a custom IP:PORT at a simulator on 127.0.0.1; production code never sets it.
    """
    target = parse_target(text)
    shown = _shown(text)
    literal = target.ip_literal
    if literal is not None:
        refusal = check_address(
            literal,
            allow_private=allow_private,
            allow_loopback_for_tests=allow_loopback_for_tests,
            private_networks=private_networks,
        )
        if refusal is not None:
            raise _reject(shown, f"is {refusal[1]}")
        return ResolvedTarget(target.host, target.port, str(literal), target.scheme, (str(literal),), is_name=False)

    addresses = _resolve(target.host, target.port, resolver)
    if not addresses:
        raise _reject(shown, "resolves to no address; check the host name or enter the IP address")
    for address in addresses:
        refusal = check_address(
            address,
            allow_private=allow_private,
            allow_loopback_for_tests=allow_loopback_for_tests,
            private_networks=private_networks,
        )
        if refusal is not None:
            raise _reject(shown, f"resolves to {address}, {refusal[1]}")
    # IPv4 first: a Lambda outside a dual-stack VPC has no IPv6 egress, so an AAAA answer would look "offline".
    ordered = sorted(addresses, key=lambda a: a.version)
    ips = tuple(dict.fromkeys(str(a) for a in ordered))
    return ResolvedTarget(target.host, target.port, ips[0], target.scheme, ips, is_name=True)


def _resolve(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        infos = list(resolver(host, port, type=socket.SOCK_STREAM))
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise VendorUnavailableError(
                f"the name {_shown(host)} could not be resolved right now (temporary DNS failure); "
                "the next pull tries again"
            ) from None
        raise HostNotAllowedError(
            f"custom IP:PORT host {_shown(host)} does not resolve; check the name or enter the IP address"
        ) from None
    except OSError as exc:
        raise VendorUnavailableError(
            f"the name {_shown(host)} could not be resolved ({type(exc).__name__}); the next pull tries again"
        ) from None
    addresses: list[IPAddress] = []
    for info in infos:
        sockaddr = info[4]
        try:
            addresses.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
        except ValueError:
            raise HostNotAllowedError(
                f"custom IP:PORT host {_shown(host)} resolved to something that is not an IP address"
            ) from None
    return addresses
