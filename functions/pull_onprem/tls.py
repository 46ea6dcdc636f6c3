"""TLS to on-premises store servers: the system trust store, or exactly one pinned (often self-signed) certificate."""

from __future__ import annotations

import hashlib
import ssl

from functions.core.errors import CredentialError

PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


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


def pem_fingerprint(pem: str) -> str:
    """SHA-256 of the certificate's DER bytes, hex: what admins compare with `openssl x509 -fingerprint -sha256`."""
    text = pem.strip()
    if text.count(PEM_BEGIN) != 1:
        raise CredentialError(
            "the pinned certificate must be exactly one PEM certificate (-----BEGIN CERTIFICATE----- ... "
            "-----END CERTIFICATE-----); re-add the credential with the store server's own certificate"
        )
    try:
        der = ssl.PEM_cert_to_DER_cert(text)
    except ValueError:
        raise CredentialError(
            "the pinned certificate is not a readable PEM certificate; re-add the credential with the store "
            "server's certificate in PEM form"
        ) from None
    return hashlib.sha256(der).hexdigest()


def pinned_ssl_context(pem: str) -> PinnedSSLContext:
    """Trust exactly the pinned certificate.

    Hostname checking is off because store servers are addressed by IP and self-signed certificates rarely
    name that IP; the exact certificate comparison is stronger than a name check. Validity dates and the
    signature are still verified by OpenSSL (an expired pin is refused: the store must renew and re-pin).
    """
    fingerprint = pem_fingerprint(pem)
    context = PinnedSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    # The pin is a trust anchor even when it is not self-signed (a leaf issued by the store's own CA).
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    try:
        context.load_verify_locations(cadata=pem.strip())
    except ssl.SSLError:
        raise CredentialError(
            "the pinned certificate could not be loaded as an X.509 certificate; re-add the credential with the "
            "store server's certificate in PEM form"
        ) from None
    context.pinned_sha256 = fingerprint
    return context


def system_ssl_context() -> ssl.SSLContext:
    """Without a pin, TLS to a store server is verified against the operating system's trust store."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
