"""The signup endpoint under moto, beside the opt-in world's fakes (settings, SMS provider, deferral queue)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from functions.core import layout
from functions.core.loyalty.values import Persona
from functions.core.signups.endpoint import HttpResponse, SignupEndpoint
from functions.core.signups.keys import SignupKeys
from functions.core.signups.service import SignupService
from functions.core.sms.store import ConsentStore
from tests.integration.optin_world import NUMBER, TENANT, World, make_world

OTHER_TENANT = "t2"
ORIGIN = "https://shop.example.com"


def signup_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "(206) 555-0123",
        "email": "Ada@Example.com",
        "birth_date": "1990-04-01",
        "store": "downtown",
        "age_confirmed": True,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def http_event(
    tenant: str,
    body: str | bytes | dict[str, Any] | None,
    *,
    key: str | None = None,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    text = json.dumps(body) if isinstance(body, dict) else body
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    all_headers = {"content-type": "application/json", **(headers or {})}
    if key is not None:
        all_headers["x-api-key"] = key
    return {
        "version": "2.0",
        "routeKey": f"{method} /tenants/{{tenant}}/signups",
        "rawPath": f"/tenants/{tenant}/signups",
        "headers": all_headers,
        "pathParameters": {"tenant": tenant},
        "requestContext": {"http": {"method": method, "path": f"/tenants/{tenant}/signups"}},
        "body": text,
        "isBase64Encoded": False,
    }


@dataclass
class SignupWorld:
    optin: World
    keys: SignupKeys
    service: SignupService
    endpoint: SignupEndpoint
    key: str  # an active key of TENANT

    def post(self, body: Any, *, key: str | None = "default", tenant: str = TENANT, **options: Any) -> HttpResponse:
        response, _ = self.endpoint.handle(
            http_event(tenant, body, key=self.key if key == "default" else key, **options)
        )
        return response

    def personas(self, tenant: str = TENANT) -> list[Persona]:
        return self.optin.personas.list_personas(tenant)

    def events(self, tenant: str = TENANT) -> list[dict[str, Any]]:
        items = boto3.client("dynamodb").scan(TableName=self.optin.resources.personas_table)["Items"]
        prefix = layout.signup_event_pk(tenant, "")
        return [i for i in items if i["pk"]["S"].startswith(prefix)]

    def consents(self) -> ConsentStore:
        return self.optin.consents


def make_signup_world(resources: Any) -> SignupWorld:
    optin = make_world(resources)
    ddb = boto3.client("dynamodb")
    keys = SignupKeys(ddb, resources.control_table)
    service = SignupService(
        keys=keys,
        personas=optin.personas,
        consents=optin.consents,
        settings=optin.settings,
        deferrals=optin.deferrals,
        now=optin.clock,
        sleep=lambda _: None,
    )
    _, key = keys.create(TENANT, created_by="tests")
    keys.set_origins(TENANT, [ORIGIN])
    return SignupWorld(optin, keys, service, SignupEndpoint(lambda: service), key)


__all__ = ["NUMBER", "ORIGIN", "OTHER_TENANT", "TENANT", "http_event", "make_signup_world", "signup_body"]
