"""Where an on-premises connector connects: hosted endpoint or checked IP:PORT, the scheme rule, TLS contexts."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from functions.core.connector import ConnectorConfig
from functions.core.errors import CredentialError, HostNotAllowedError, StoreOfflineError, VendorUnavailableError
from functions.core.http import RetryPolicy
from functions.core.layout import Vendor
from functions.pull_onprem.tls import (
    PinnedSSLContext,
    StoreCertificateError,
    check_pin,
    pem_fingerprint,
    pinned_ssl_context,
)
from functions.pull_onprem.transport import Endpoint, OnPremHttp, build_http, choose_scheme, endpoint_for
from simulators.profitek import self_signed_identity

CONFIG = ConnectorConfig(base_url="https://api.profitek.example")
PEM = self_signed_identity().cert_pem


def resolver(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
    if host == "store.example.com":
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]
    if host == "flaky.example.com":
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize(
    ("explicit", "port", "pinned", "expected"),
    [
        (None, 25565, False, "http"),  # the vendors' own example: plain HTTP on a forwarded port
        (None, 443, False, "https"),
        (None, 8443, True, "https"),  # a pin means TLS
        ("http", 443, False, "http"),  # an explicit prefix wins
        ("https", 8080, False, "https"),
    ],
)
def test_scheme_rule(explicit: Any, port: int, pinned: bool, expected: str) -> None:
    assert choose_scheme(explicit, port, pinned) == expected


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_ip_port_uses_the_hosted_endpoint_unchecked(blank: str | None) -> None:
    endpoint = endpoint_for(Vendor.PROFITEK, blank, None, ConnectorConfig(base_url="http://127.0.0.1:9"))

    assert endpoint.base_url == "http://127.0.0.1:9"  # deployment config, not user input: not checked
    assert endpoint.on_premises is False
    assert endpoint.host_header is None


def test_a_pin_without_a_custom_ip_port_is_refused() -> None:
    with pytest.raises(CredentialError, match="add its IP:PORT or remove the pin"):
        endpoint_for(Vendor.AUPHAN, None, PEM, CONFIG)


def test_an_ip_port_connects_to_the_address_over_plain_http() -> None:
    endpoint = endpoint_for(Vendor.AUPHAN, "93.184.215.14:25565", None, CONFIG, resolver=resolver)

    assert endpoint.base_url == "http://93.184.215.14:25565"
    assert (endpoint.on_premises, endpoint.trust_env, endpoint.host_header) == (True, False, None)
    assert endpoint.display == "auphan store server 93.184.215.14:25565"


def test_a_name_connects_to_its_checked_address_with_the_name_in_host_and_sni() -> None:
    endpoint = endpoint_for(Vendor.PROFITEK, "https://store.example.com:8443", None, CONFIG, resolver=resolver)

    assert endpoint.base_url == "https://93.184.215.14:8443"
    assert endpoint.host_header == "store.example.com:8443"
    assert endpoint.sni_hostname == "store.example.com"
    assert isinstance(endpoint.verify, ssl.SSLContext)
    assert endpoint.verify.check_hostname is True  # no pin: the system trust store checks the name
    assert not isinstance(endpoint.verify, PinnedSSLContext)


def test_a_pinned_certificate_gives_a_context_that_trusts_only_it() -> None:
    endpoint = endpoint_for(Vendor.PROFITEK, "93.184.215.14:8443", PEM, CONFIG, resolver=resolver)

    assert endpoint.base_url.startswith("https://")
    context = endpoint.verify
    assert isinstance(context, PinnedSSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is False  # addressed by IP: the exact certificate comparison replaces it
    assert context.pinned_sha256 == pem_fingerprint(PEM)
    assert context.cert_store_stats()["x509_ca"] + context.cert_store_stats()["x509"] == 1


def test_a_pin_with_an_explicit_http_prefix_is_contradictory() -> None:
    with pytest.raises(CredentialError, match="remove the http:// prefix"):
        endpoint_for(Vendor.PROFITEK, "http://93.184.215.14:8080", PEM, CONFIG, resolver=resolver)


@pytest.mark.parametrize(
    ("pem", "match"),
    [
        ("not a certificate", "exactly one PEM certificate"),
        (PEM + PEM, "exactly one PEM certificate"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "could not be loaded"),
    ],
)
def test_an_unusable_pin_is_a_credential_error(pem: str, match: str) -> None:
    with pytest.raises(CredentialError, match=match):
        pinned_ssl_context(pem)


def test_a_forbidden_address_is_refused_at_open_time() -> None:
    with pytest.raises(HostNotAllowedError):
        endpoint_for(Vendor.PROFITEK, "169.254.169.254:80", None, CONFIG, resolver=resolver)


def test_private_addresses_follow_the_deployment_setting() -> None:
    with pytest.raises(HostNotAllowedError):
        endpoint_for(Vendor.PROFITEK, "10.0.0.8:8080", None, CONFIG, resolver=resolver)
    allowed = ConnectorConfig(base_url=CONFIG.base_url, allow_private_hosts=True)
    assert endpoint_for(Vendor.PROFITEK, "10.0.0.8:8080", None, allowed).base_url == "http://10.0.0.8:8080"


def test_a_temporary_dns_failure_means_the_store_is_offline_for_now() -> None:
    with pytest.raises(StoreOfflineError, match="temporary DNS failure"):
        endpoint_for(Vendor.AUPHAN, "flaky.example.com:8080", None, CONFIG, resolver=resolver)


def test_loopback_needs_the_test_only_escape_hatch() -> None:
    with pytest.raises(HostNotAllowedError):
        endpoint_for(Vendor.AUPHAN, "127.0.0.1:8080", None, CONFIG)
    endpoint = endpoint_for(Vendor.AUPHAN, "127.0.0.1:8080", None, CONFIG, allow_loopback_for_tests=True)
    assert endpoint.base_url == "http://127.0.0.1:8080"


# --- OnPremHttp: how failures are told apart (no network: httpx.MockTransport) ---------------------------------------

FAST = RetryPolicy(attempts=5, timeout=5.0, wait_initial=0.001, wait_max=0.002, wait_jitter=0.0)


def onprem_http(handler: Callable[[httpx.Request], httpx.Response], *, on_premises: bool = True) -> OnPremHttp:
    endpoint = Endpoint(
        base_url="http://93.184.215.14:8080", display="profitek store server x", on_premises=on_premises
    )
    client = httpx.Client(base_url=endpoint.base_url, transport=httpx.MockTransport(handler))
    return OnPremHttp(client, "profitek", endpoint, FAST, sleep=lambda _: None)


def test_refused_connections_on_premises_mean_offline_after_three_attempts() -> None:
    calls: list[int] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with pytest.raises(StoreOfflineError, match="switched off"):
        onprem_http(refuse).get("/info")
    assert len(calls) == 3  # stops early instead of spending all 5 attempts on a dark store


def test_connect_timeouts_count_as_offline_too() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out")

    with pytest.raises(StoreOfflineError):
        onprem_http(hang).get("/info")


def test_the_hosted_endpoint_refusing_is_unavailable_after_all_attempts() -> None:
    calls: list[int] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused")

    with pytest.raises(VendorUnavailableError) as caught:
        onprem_http(refuse, on_premises=False).get("/info")
    assert not isinstance(caught.value, StoreOfflineError)
    assert len(calls) == 5


def test_a_store_that_answers_between_refusals_is_not_offline() -> None:
    answers = iter(["refuse", "refuse", "ok"])

    def flaky(request: httpx.Request) -> httpx.Response:
        if next(answers) == "refuse":
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json={"ok": True})

    assert onprem_http(flaky).get("/info").json() == {"ok": True}


def test_a_refused_certificate_is_not_retried() -> None:
    calls: list[int] = []

    def bad_certificate(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("handshake") from ssl.SSLCertVerificationError(1, "certificate verify failed")

    with pytest.raises(StoreCertificateError):
        onprem_http(bad_certificate).get("/info")
    assert len(calls) == 1


def test_a_redirect_is_never_followed() -> None:
    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})

    with pytest.raises(VendorUnavailableError, match="redirects are not followed"):
        onprem_http(redirect).get("/info")


def test_a_failing_server_is_unavailable_not_offline() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    with pytest.raises(VendorUnavailableError) as caught:
        onprem_http(broken).get("/info")
    assert not isinstance(caught.value, StoreOfflineError)


def test_build_http_puts_the_name_in_host_and_the_key_only_on_the_client() -> None:
    endpoint = endpoint_for(Vendor.PROFITEK, "store.example.com:8080", None, CONFIG, resolver=resolver)
    http = build_http(Vendor.PROFITEK, endpoint, CONFIG, {"AuthKey": "secret-key-123"})

    assert str(http.client.base_url) == "http://93.184.215.14:8080"
    assert http.client.headers["Host"] == "store.example.com:8080"
    assert http.client.headers["AuthKey"] == "secret-key-123"
    assert http.client.follow_redirects is False
    http.client.close()


# --- check_pin: the one set of pin rules, applied by `possync credentials add` and by every pull ----------------


def _pem_body(der: bytes) -> str:
    import base64

    lines = base64.encodebytes(der).decode().strip()
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


IDENTITY = self_signed_identity()
REAL_DER = ssl.PEM_cert_to_DER_cert(IDENTITY.cert_pem)
BAD_PINS = {
    "only the BEGIN line": ("-----BEGIN CERTIFICATE-----\n", "exactly one PEM certificate"),
    "BEGIN and END around nothing": ("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", "could not be"),
    "base64 that is not DER": (_pem_body(b"hello, this is not a certificate"), "could not be loaded"),
    "a DER prefix cut short": (_pem_body(REAL_DER[:-20]), "could not be loaded"),
    "trailing bytes after the certificate": (_pem_body(REAL_DER + b"\x00\x01"), "could not be loaded"),
    "a well-formed SEQUENCE that is no certificate": (_pem_body(b"\x30\x03\x02\x01\x01"), "could not be loaded"),
    "two certificates": (IDENTITY.cert_pem + IDENTITY.cert_pem, "exactly one PEM certificate"),
    "a certificate with its private key": (IDENTITY.cert_pem + IDENTITY.key_pem, "also holds a private key"),
}


@pytest.mark.parametrize(("pem", "match"), BAD_PINS.values(), ids=BAD_PINS.keys())
def test_check_pin_parses_the_certificate_for_real(pem: str, match: str) -> None:
    with pytest.raises(CredentialError, match=match) as caught:
        check_pin(Vendor.AUPHAN, "93.184.215.14:8443", pem)

    message = str(caught.value)
    # It never quotes what it read: a pasted file may hold a private key.
    assert IDENTITY.key_pem.splitlines()[1] not in message and IDENTITY.cert_pem.splitlines()[1] not in message


@pytest.mark.parametrize(("pem", "match"), BAD_PINS.values(), ids=BAD_PINS.keys())
def test_the_pull_refuses_the_same_pins_with_the_same_message(pem: str, match: str) -> None:
    with pytest.raises(CredentialError) as at_add:
        check_pin(Vendor.PROFITEK, "93.184.215.14:8443", pem)
    with pytest.raises(CredentialError) as at_pull:
        endpoint_for(Vendor.PROFITEK, "93.184.215.14:8443", pem, CONFIG, resolver=resolver)

    assert str(at_pull.value) == str(at_add.value)


@pytest.mark.parametrize("address", [None, "", "  "])
def test_check_pin_needs_a_custom_ip_port(address: str | None) -> None:
    with pytest.raises(CredentialError, match="has no custom IP:PORT"):
        check_pin(Vendor.PROFITEK, address, PEM)


def test_check_pin_refuses_an_explicit_http_prefix() -> None:
    with pytest.raises(CredentialError, match="says http://"):
        check_pin(Vendor.PROFITEK, "http://93.184.215.14:8080", PEM)


def test_check_pin_returns_the_fingerprint_of_a_good_pin_and_none_without_one() -> None:
    pin = check_pin(Vendor.AUPHAN, "93.184.215.14:8443", PEM)

    assert pin is not None and pin.sha256 == pem_fingerprint(PEM)
    assert pin.fingerprint.count(":") == 31 and pin.fingerprint.replace(":", "").lower() == pin.sha256
    assert check_pin(Vendor.AUPHAN, "93.184.215.14:8443", None) is None
    assert check_pin(Vendor.AUPHAN, None, "  ") is None  # a blank pin is no pin
