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
