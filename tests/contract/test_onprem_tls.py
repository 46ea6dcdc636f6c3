"""TLS to store servers: the pinned certificate is accepted, anything else is refused before a request is sent."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("cryptography")  # certificates are generated at test time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from functions.core.connector import Connector, ConnectorConfig, Window
from functions.core.credentials import parse_credential
from functions.core.errors import CredentialError, StoreOfflineError, VendorUnavailableError
from functions.core.http import RetryPolicy
from functions.core.layout import Stream, Vendor
from functions.pull_onprem.connector import open_connector
from functions.pull_onprem.tls import StoreCertificateError
from simulators.auphan import AuphanSimulator
from simulators.profitek import OnPremSimulator, ProfitekSimulator, TlsIdentity, self_signed_identity

FAST = RetryPolicy(attempts=3, timeout=10.0, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0)
IDENTITY = self_signed_identity()
SIMULATORS: dict[Vendor, type[ProfitekSimulator] | type[AuphanSimulator]] = {
    Vendor.PROFITEK: ProfitekSimulator,
    Vendor.AUPHAN: AuphanSimulator,
}


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def ca_and_leaf() -> tuple[str, TlsIdentity]:
    """A store's private CA and a server certificate it issued."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Store Root CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=5))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "store-pc")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=5))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem(ca), TlsIdentity(cert_pem=pem(leaf), key_pem=key_pem)


@pytest.fixture(params=[Vendor.PROFITEK, Vendor.AUPHAN], ids=lambda v: v.value)
def vendor(request: pytest.FixtureRequest) -> Vendor:
    return request.param  # type: ignore[no-any-return]


def serve(vendor: Vendor, tls: TlsIdentity) -> OnPremSimulator:
    simulator = SIMULATORS[vendor](seed=4, store_count=1, customers_per_store=30, sales_per_store=60, tls=tls)
    simulator.start()
    return simulator


@pytest.fixture
def sim(vendor: Vendor) -> Iterator[Any]:
    simulator = serve(vendor, IDENTITY)
    yield simulator
    simulator.stop()


def connect(sim: Any, vendor: Vendor, *, resolver: Any = socket.getaddrinfo, **overrides: Any) -> Connector:
    raw = {**sim.credential_for(sim.stores[0], via_ip_port=True), **overrides}
    raw = {k: v for k, v in raw.items() if v is not None}
    return open_connector(
        parse_credential(raw, vendor, "cred-1"),
        ConnectorConfig(base_url="https://hosted.invalid", connect_timeout=1.0, read_timeout=2.0),
        tenant="t1",
        credential_id="cred-1",
        policy=FAST,
        allow_loopback_for_tests=True,
        resolver=resolver,
    )


def test_the_pinned_self_signed_certificate_is_accepted(sim: Any, vendor: Vendor) -> None:
    connector = connect(sim, vendor)
    assert sim.url.startswith("https://")

    ctx = connector.prepare()
    pages = list(connector.pages(Stream.CUSTOMERS, Window(None, datetime.now(UTC)), None))

    assert ctx.timezone == "America/Los_Angeles"
    assert sum(len(page.items) for page in pages) == 30
    connector.close()


def test_another_certificate_is_refused_before_any_request_is_sent(sim: Any, vendor: Vendor) -> None:
    connector = connect(sim, vendor, pinned_cert_pem=self_signed_identity().cert_pem)
    before = len(sim.request_log)

    with pytest.raises(StoreCertificateError) as caught:
        connector.prepare()

    assert isinstance(caught.value, CredentialError)  # fails the credential, not retried as an outage
    assert "pinned certificate does not verify" in str(caught.value)
    assert len(sim.request_log) == before  # the handshake failed: the key header never left
    connector.close()


def test_a_leaf_issued_by_a_pinned_ca_is_refused_because_the_pin_is_exact(vendor: Vendor) -> None:
    ca_pem, leaf = ca_and_leaf()
    sim = serve(vendor, leaf)
    try:
        pinned_leaf = connect(sim, vendor, pinned_cert_pem=leaf.cert_pem)
        assert pinned_leaf.prepare().timezone  # the leaf itself, issued by a CA, can be pinned
        pinned_leaf.close()

        pinned_ca = connect(sim, vendor, pinned_cert_pem=ca_pem)
        with pytest.raises(StoreCertificateError, match="not the pinned one"):
            pinned_ca.prepare()
        pinned_ca.close()
    finally:
        sim.stop()


def test_an_expired_pinned_certificate_is_refused_with_the_reason(vendor: Vendor) -> None:
    expired = self_signed_identity(expired=True)
    sim = serve(vendor, expired)
    try:
        connector = connect(sim, vendor)
        with pytest.raises(StoreCertificateError, match="expired"):
            connector.prepare()
        connector.close()
    finally:
        sim.stop()


def test_without_a_pin_a_self_signed_server_is_refused_by_the_system_trust_store(sim: Any, vendor: Vendor) -> None:
    connector = connect(sim, vendor, pinned_cert_pem=None, custom_ip_port=f"https://{sim.ip_port}")

    with pytest.raises(StoreCertificateError, match="pin its certificate"):
        connector.prepare()
    connector.close()


def test_plain_http_to_a_tls_server_says_what_to_change(sim: Any, vendor: Vendor) -> None:
    connector = connect(sim, vendor, pinned_cert_pem=None)

    with pytest.raises(VendorUnavailableError, match="expects TLS") as caught:
        connector.prepare()

    assert not isinstance(caught.value, StoreOfflineError)
    connector.close()


def test_a_name_over_pinned_tls_connects_to_the_checked_address(sim: Any, vendor: Vendor) -> None:
    port = sim.ip_port.rsplit(":", 1)[1]

    def resolver(host: str, p: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p))]

    connector = connect(sim, vendor, custom_ip_port=f"store-pc.example.test:{port}", resolver=resolver)

    assert connector.prepare().timezone
    assert sim.last_host_header == f"store-pc.example.test:{port}"
    connector.close()


def test_a_tls_store_that_is_switched_off_is_offline(sim: Any, vendor: Vendor) -> None:
    connector = connect(sim, vendor)
    sim.power_off()

    with pytest.raises(StoreOfflineError):
        connector.prepare()

    sim.power_on()
    assert connector.prepare().timezone
    connector.close()
