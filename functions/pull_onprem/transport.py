"""How an on-premises connector reaches its store: the hosted endpoint, or a checked custom IP:PORT over HTTP or TLS."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from functions.core.connector import ConnectorConfig
from functions.core.errors import StoreOfflineError, VendorUnavailableError
from functions.core.http import RetryPolicy, VendorHttp, tls_context
from functions.core.layout import Vendor
from functions.core.netguard import Resolver, Scheme, resolve_allowed
from functions.pull_onprem.tls import (
    PinnedCertificateMismatchError,
    PinnedSSLContext,
    StoreCertificateError,
    check_pin,
    pinned_ssl_context,
    system_ssl_context,
)

USER_AGENT = "possync/pull_onprem"

# A store PC that refuses this many connections in a row is treated as switched off: the pull stops at once
# and the next scheduled tick tries again, instead of spending the whole retry budget on a dark store.
CONNECT_ATTEMPTS_BEFORE_OFFLINE = 3


@dataclass(frozen=True)
class Endpoint:
    """Where the httpx client connects: a base URL holding a checked IP (never a name to re-resolve)."""

    base_url: str
    display: str  # how messages name it: the vendor's hosted endpoint, or the store server's IP:PORT as typed
    on_premises: bool  # a custom IP:PORT: refused connections mean the store PC is off, not that the vendor failed
    verify: ssl.SSLContext | bool = True
    host_header: str | None = None  # the name the admin typed, when the base URL holds the address it resolved to
    sni_hostname: str | None = None
    trust_env: bool = True  # proxies from the environment would re-resolve the name: never for a custom IP:PORT


def is_blank(custom_ip_port: str | None) -> bool:
    return custom_ip_port is None or not custom_ip_port.strip()


def choose_scheme(explicit: Scheme | None, port: int, pinned: bool) -> Scheme:
    """An explicit http:// or https:// prefix wins; otherwise TLS when a certificate is pinned or the port is 443.

    Store servers mostly answer plain HTTP on a port-forwarded high port (the vendors' own example is
    192.101.102.103:25565), so a bare IP:PORT means HTTP unless something says TLS.
    """
    if explicit is not None:
        return explicit
    return "https" if pinned or port == 443 else "http"


def endpoint_for(
    vendor: Vendor,
    custom_ip_port: str | None,
    pinned_cert_pem: str | None,
    config: ConnectorConfig,
    *,
    resolver: Resolver = socket.getaddrinfo,
    allow_loopback_for_tests: bool = False,
) -> Endpoint:
    """The endpoint of one credential; a custom IP:PORT is checked (and its name resolved) here, once per pull.

    A blank IP:PORT means the vendor's hosted endpoint, `config.base_url`: deployment configuration, not user
    input, so it is not checked (the local runtime points it at a simulator on loopback that way).
    `allow_loopback_for_tests` lets contract tests aim a custom IP:PORT at a simulator on 127.0.0.1; production
    code never sets it.
    """
    # The pin rules `possync credentials add` applies too, before it stores anything.
    pinned = check_pin(vendor, custom_ip_port, pinned_cert_pem) is not None
    if is_blank(custom_ip_port):
        return Endpoint(base_url=config.base_url, display=f"{vendor.value} hosted endpoint", on_premises=False)
    assert custom_ip_port is not None
    try:
        target = resolve_allowed(
            custom_ip_port,
            config.allow_private_hosts,
            resolver,
            allow_loopback_for_tests=allow_loopback_for_tests,
            private_networks=config.private_host_networks,
        )
    except VendorUnavailableError as exc:
        raise StoreOfflineError(f"{vendor.value} store server: {exc}") from None
    scheme = choose_scheme(target.scheme, target.port, pinned)
    verify: ssl.SSLContext | bool = True
    if scheme == "https":
        verify = pinned_ssl_context(pinned_cert_pem or "") if pinned else system_ssl_context()
    return Endpoint(
        base_url=target.base_url(scheme),
        display=f"{vendor.value} store server {target.display}",
        on_premises=True,
        verify=verify,
        host_header=target.host_header(scheme) if target.is_name else None,
        sni_hostname=target.host if target.is_name and scheme == "https" else None,
        trust_env=False,
    )


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class OnPremHttp(VendorHttp):
    """VendorHttp that tells a switched-off store PC apart from a failing server and never retries a bad certificate."""

    def __init__(
        self,
        client: httpx.Client,
        vendor: str,
        endpoint: Endpoint,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(client, vendor, policy, sleep)
        self.endpoint = endpoint
        self._connect_failures = 0
        self._last_failure: Literal["connect", "tls", "other"] | None = None
        self._last_error = ""
        self._tls_reason = ""

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        self._connect_failures = 0
        self._last_failure = None
        try:
            response = super().request(method, path, params=params, json=json)
        except VendorUnavailableError as exc:
            if isinstance(exc, StoreOfflineError):
                raise
            if self._last_failure == "connect" and self.endpoint.on_premises:
                raise self._offline(method, path) from None
            if self._last_failure == "tls":
                raise VendorUnavailableError(
                    f"the TLS handshake with {self.endpoint.display} failed ({self._tls_reason}) for {method} {path}; "
                    "if that server does not speak TLS on this port, write its IP:PORT with an http:// prefix"
                ) from None
            if self._hangs_up_on_plain_http():
                raise VendorUnavailableError(
                    f"{exc} ({self.endpoint.display} closed the connection without answering: if it expects TLS, "
                    "write its IP:PORT with https:// or pin its certificate)"
                ) from None
            raise
        return response

    def redirect_refused(self, status: int, method: str, path: str) -> VendorUnavailableError:
        return VendorUnavailableError(
            f"{self.endpoint.display} answered HTTP {status} (a redirect) to {method} {path}; "
            "redirects are not followed: check the IP:PORT and the scheme"
        )

    def _send_once(self, method: str, path: str, params: Mapping[str, Any] | None, json: Any) -> httpx.Response:
        try:
            response = super()._send_once(method, path, params, json)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            self._classify_connect_failure(exc, method, path)
            raise
        except Exception as exc:
            self._last_failure = "other"
            self._last_error = type(exc).__name__
            self._connect_failures = 0  # the server was reached: the next refusal starts a new count
            raise
        self._connect_failures = 0
        self._last_failure = None
        return response

    def _hangs_up_on_plain_http(self) -> bool:
        return (
            self.endpoint.on_premises
            and self.endpoint.base_url.startswith("http://")
            and self._last_failure == "other"
            and self._last_error in ("ReadError", "RemoteProtocolError")
        )

    def _classify_connect_failure(self, exc: httpx.TransportError, method: str, path: str) -> None:
        cause = _ssl_cause(exc)
        if isinstance(cause, ssl.SSLCertVerificationError):
            raise self._certificate_refused(cause) from None
        if cause is not None:
            self._last_failure = "tls"
            self._tls_reason = str(getattr(cause, "reason", None) or type(cause).__name__)
            return
        self._last_failure = "connect"
        self._connect_failures += 1
        if self.endpoint.on_premises and self._connect_failures >= min(
            CONNECT_ATTEMPTS_BEFORE_OFFLINE, self.policy.attempts
        ):
            raise self._offline(method, path) from None

    def _offline(self, method: str, path: str) -> StoreOfflineError:
        return StoreOfflineError(
            f"{self.endpoint.display} did not accept a connection for {method} {path} "
            f"({self._connect_failures or self.policy.attempts} attempts); the store PC may be switched off or "
            "offline: the next scheduled pull tries again"
        )

    def _certificate_refused(self, cause: ssl.SSLCertVerificationError) -> StoreCertificateError:
        if isinstance(cause, PinnedCertificateMismatchError):
            return StoreCertificateError(
                f"{self.endpoint.display} presented a certificate that is not the pinned one "
                f"(sha256 {cause.presented_sha256[:16]}...); if the store replaced its certificate, re-add the "
                "credential with the new one, otherwise find out who answers on that address"
            )
        detail = getattr(cause, "verify_message", None) or "verification failed"
        if isinstance(self.endpoint.verify, PinnedSSLContext):
            return StoreCertificateError(
                f"{self.endpoint.display} presented a certificate that the pinned certificate does not verify "
                f"({detail}); if the store replaced or renewed its certificate, re-add the credential with the new "
                "one, otherwise find out who answers on that address"
            )
        return StoreCertificateError(
            f"{self.endpoint.display} presented a certificate that was refused ({detail}); for a self-signed store "
            "server, pin its certificate in the credential (pinned_cert_pem)"
        )


def retry_policy(config: ConnectorConfig) -> RetryPolicy:
    return RetryPolicy(
        attempts=config.retry_attempts,
        wait_initial=config.retry_wait_initial,
        wait_max=config.retry_wait_max,
    )


def build_http(
    vendor: Vendor,
    endpoint: Endpoint,
    config: ConnectorConfig,
    auth_headers: Mapping[str, str],
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> OnPremHttp:
    """The httpx client (auth headers live only here) wrapped in the shared retry policy."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **auth_headers}
    if endpoint.host_header is not None:
        headers["Host"] = endpoint.host_header
    hooks: dict[str, list[Callable[..., Any]]] = {}
    if endpoint.sni_hostname is not None:
        sni = endpoint.sni_hostname

        def set_sni(request: httpx.Request) -> None:
            # The URL holds the checked IP; TLS still names (and, without a pin, verifies) the host typed.
            request.extensions["sni_hostname"] = sni

        hooks["request"] = [set_sni]
    client = httpx.Client(
        base_url=endpoint.base_url,
        headers=headers,
        timeout=httpx.Timeout(
            connect=config.connect_timeout,
            read=config.read_timeout,
            write=config.read_timeout,
            pool=config.connect_timeout,
        ),
        # `True` (the vendor's hosted endpoint, or a store answering plain HTTP) is the CA bundle httpx would load
        # again for each client, about 17 ms of CPU every pull: the process's one context instead (made at init).
        verify=tls_context() if endpoint.verify is True else endpoint.verify,
        trust_env=endpoint.trust_env,
        follow_redirects=False,
        event_hooks=hooks,
    )
    return OnPremHttp(client, vendor.value, endpoint, policy or retry_policy(config), sleep)
