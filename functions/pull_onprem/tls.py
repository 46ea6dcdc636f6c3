"""TLS to on-premises store servers: the system trust store, or exactly one pinned (often self-signed) certificate."""

from __future__ import annotations

import functools
import hashlib
import ssl
from dataclasses import dataclass

from functions.core.errors import CredentialError
from functions.core.layout import Vendor
from functions.core.netguard import parse_target

PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
PEM_END = "-----END CERTIFICATE-----"


class StoreCertificateError(CredentialError):
    """The store server's certificate was refused: not the pinned one, or not valid for the system trust store.

    Not retried: the same certificate would be refused again. It fails this credential's pull until an admin
    re-pins the certificate (the store replaced it) or finds out who answers on that address.
    """


class PinnedCertificateMismatchError(ssl.SSLCertVerificationError):
    """Raised inside the TLS handshake, before a byte of the request (and its key header) is sent."""

    def __init__(self, presented_sha256: str) -> None:
        super().__init__("the server's certificate is not the pinned certificate")
        self.verify_code = 0
        self.verify_message = "certificate does not match the pinned certificate"
        self.presented_sha256 = presented_sha256


class PinnedSSLSocket(ssl.SSLSocket):
    """Completes OpenSSL's verification with an exact comparison of the peer certificate against the pin."""

    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        pinned = getattr(self.context, "pinned_sha256", None)
        if pinned is None:
            return
        der = self.getpeercert(binary_form=True)
        presented = hashlib.sha256(der).hexdigest() if der else ""
        if presented != pinned:
            raise PinnedCertificateMismatchError(presented)


class PinnedSSLContext(ssl.SSLContext):
    """An SSLContext whose only trust anchor is the pinned certificate; sockets check the exact certificate too."""

    sslsocket_class = PinnedSSLSocket
    pinned_sha256: str


_LOAD_FAILED = (
    "the pinned certificate could not be loaded as an X.509 certificate ({why}); pin the store server's own "
    "certificate in PEM form, e.g. the output of `openssl s_client -connect IP:PORT </dev/null | openssl x509`"
)


@dataclass(frozen=True)
class PinnedCertificate:
    """A pin that parsed: its DER bytes and the SHA-256 admins compare with `openssl x509 -fingerprint -sha256`."""

    der: bytes
    sha256: str

    @property
    def fingerprint(self) -> str:
        """The SHA-256 in openssl's colon-separated upper-case form."""
        return ":".join(self.sha256[i : i + 2] for i in range(0, len(self.sha256), 2)).upper()


def _der_fits_one_sequence(der: bytes) -> bool:
    """An X.509 certificate is one DER SEQUENCE whose length covers every byte (nothing before, nothing after)."""
    if len(der) < 2 or der[0] != 0x30:
        return False
    first = der[1]
    if first < 0x80:
        return 2 + first == len(der)
    size = first & 0x7F
    if size == 0 or size > 4 or len(der) < 2 + size:
        return False
    return 2 + size + int.from_bytes(der[2 : 2 + size], "big") == len(der)


def parse_pinned_certificate(pem: str) -> PinnedCertificate:
    """Read a pin for real: exactly one PEM certificate, no private key, DER that OpenSSL loads as X.509.

    The messages never quote the text: a pasted file may hold a private key.
    """
    text = pem.strip()
    if "PRIVATE KEY" in text:
        raise CredentialError(
            "the pinned certificate file also holds a private key; pin only the certificate (the "
            "-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE----- block) and keep the key on the store server"
        )
    if text.count(PEM_BEGIN) != 1 or text.count(PEM_END) != 1:
        raise CredentialError(
            "the pinned certificate must be exactly one PEM certificate (-----BEGIN CERTIFICATE----- ... "
            "-----END CERTIFICATE-----); re-add the credential with the store server's own certificate"
        )
    try:
        der = ssl.PEM_cert_to_DER_cert(text)
    except ValueError:
        raise CredentialError(
            "the pinned certificate is not a readable PEM certificate (text outside its BEGIN/END lines, or a "
            "damaged base64 body); re-add the credential with the store server's certificate in PEM form"
        ) from None
    if not _der_fits_one_sequence(der):
        raise CredentialError(_LOAD_FAILED.format(why="its body is not one DER certificate")) from None
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cadata=der)
    except (ssl.SSLError, ValueError):
        raise CredentialError(_LOAD_FAILED.format(why="OpenSSL does not read it as X.509")) from None
    if probe.cert_store_stats()["x509"] != 1:  # x509 counts every certificate, CA or not
        raise CredentialError(_LOAD_FAILED.format(why="it does not hold exactly one certificate"))
    return PinnedCertificate(der=der, sha256=hashlib.sha256(der).hexdigest())


def pem_fingerprint(pem: str) -> str:
    """SHA-256 of the certificate's DER bytes, hex: what admins compare with `openssl x509 -fingerprint -sha256`."""
    return parse_pinned_certificate(pem).sha256


def is_pinned(pinned_cert_pem: str | None) -> bool:
    return pinned_cert_pem is not None and bool(pinned_cert_pem.strip())


def check_pin(vendor: Vendor, custom_ip_port: str | None, pinned_cert_pem: str | None) -> PinnedCertificate | None:
    """The pin rules, applied by `possync credentials add` before anything is stored and by every pull.

    A pin applies to an on-premises store server only, so it needs a custom IP:PORT, and it means TLS, so the
    IP:PORT may not say http://. The certificate itself must parse (`parse_pinned_certificate`). None: no pin.
    """
    if not is_pinned(pinned_cert_pem):
        return None
    assert pinned_cert_pem is not None
    if custom_ip_port is None or not custom_ip_port.strip():
        raise CredentialError(
            f"the {vendor.value} credential pins a certificate but has no custom IP:PORT; a pin applies only to "
            "an on-premises store server, so add its IP:PORT or remove the pin"
        )
    if parse_target(custom_ip_port).scheme == "http":
        raise CredentialError(
            f"the {vendor.value} credential pins a certificate but its IP:PORT says http://; "
            "remove the http:// prefix (a pinned certificate means TLS) or remove the pin"
        )
    return parse_pinned_certificate(pinned_cert_pem)


def pinned_ssl_context(pem: str) -> PinnedSSLContext:
    """Trust exactly the pinned certificate.

    Hostname checking is off because store servers are addressed by IP and self-signed certificates rarely
    name that IP; the exact certificate comparison is stronger than a name check. Validity dates and the
    signature are still verified by OpenSSL (an expired pin is refused: the store must renew and re-pin).
    """
    pin = parse_pinned_certificate(pem)
    context = PinnedSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    # The pin is a trust anchor even when it is not self-signed (a leaf issued by the store's own CA).
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    try:
        context.load_verify_locations(cadata=pin.der)
    except ssl.SSLError:
        raise CredentialError(_LOAD_FAILED.format(why="OpenSSL does not read it as X.509")) from None
    context.pinned_sha256 = pin.sha256
    return context


@functools.cache
def system_ssl_context() -> ssl.SSLContext:
    """Without a pin, TLS to a store server is verified against the operating system's trust store: one context per
    process (the trust store stays the same between invocations; loading it is milliseconds of CPU a pull)."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
