"""Signups Lambda: POST /tenants/{tenant}/signups behind the HTTP API."""
