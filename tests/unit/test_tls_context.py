"""The cloud POS clients verify TLS with one context per process (functions.core.http.tls_context)."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from functions.core.connector import ConnectorConfig
from functions.core.credentials import FlourishCredential, PosabitCredential, ThsuiteCredential, parse_credential
from functions.core.http import RetryPolicy, tls_context
from functions.core.layout import Vendor
from functions.pull_flourish.client import FlourishClient
from functions.pull_posabit.client import PosabitClient
from functions.pull_thsuite.client import build_http_client


def _ssl_context(client: httpx.Client) -> Any:
    return client._transport._pool._ssl_context  # type: ignore[attr-defined]


def test_the_context_verifies_certificates_and_hostnames_and_is_made_once() -> None:
    context = tls_context()
    assert context is tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.cert_store_stats()["x509_ca"] > 0  # a CA bundle is loaded


def test_every_cloud_vendor_client_verifies_with_the_shared_context() -> None:
    config = ConnectorConfig(base_url="https://pos.example.invalid")
    posabit = PosabitClient(
        PosabitCredential(store_name="S", integrator_token="integrator-1", venue_token="venue-22", market="WA"), config
    )
    flourish_credential = parse_credential(
        {"vendor": "flourish", "username": "aiq-integration", "key": "k" * 24}, Vendor.FLOURISH, "c1"
    )
    assert isinstance(flourish_credential, FlourishCredential)
    flourish = FlourishClient(
        flourish_credential, "https://pos.example.invalid", timeout=httpx.Timeout(1.0), policy=RetryPolicy()
    )
    thsuite = build_http_client(
        ThsuiteCredential.model_validate({"integration_token": "ths_unit_0123456789abcdef", "store_name": "S"}), config
    )
    clients = [posabit._client, flourish._client, thsuite]
    try:
        assert all(_ssl_context(client) is tls_context() for client in clients)
    finally:
        for client in clients:
            client.close()


def test_on_prem_clients_verify_with_a_context_made_once_per_process() -> None:
    """The hosted endpoint and a store answering plain HTTP take the shared context (httpx loaded the CA bundle again
    for each, about 17 ms of CPU every pull); an unpinned TLS store the operating system's trust store, loaded once;
    a pinned store a context of its own that trusts the pin only."""
    from functions.pull_onprem.tls import PinnedSSLContext, system_ssl_context
    from functions.pull_onprem.transport import build_http, endpoint_for

    config = ConnectorConfig(base_url="https://auphan.example.invalid")
    hosted = endpoint_for(Vendor.AUPHAN, None, None, config)
    plain = endpoint_for(Vendor.AUPHAN, "127.0.0.1:8080", None, config, allow_loopback_for_tests=True)
    tls = [
        endpoint_for(Vendor.PROFITEK, "https://127.0.0.1:8443", None, config, allow_loopback_for_tests=True)
        for _ in "ab"
    ]
    assert (hosted.verify, plain.verify) == (True, True) and plain.base_url.startswith("http://")
    assert tls[0].verify is tls[1].verify is system_ssl_context()
    assert system_ssl_context().verify_mode == ssl.CERT_REQUIRED
    assert system_ssl_context().minimum_version == ssl.TLSVersion.TLSv1_2
    clients = [build_http(Vendor.AUPHAN, endpoint, config, {}).client for endpoint in (hosted, plain, *tls)]
    try:
        contexts = [_ssl_context(client) for client in clients]
        assert contexts[0] is contexts[1] is tls_context()
        assert contexts[2] is contexts[3] is system_ssl_context()
        assert not isinstance(contexts[2], PinnedSSLContext)
    finally:
        for client in clients:
            client.close()
