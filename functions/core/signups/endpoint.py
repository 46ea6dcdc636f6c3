"""The signup endpoint over HTTP: an API Gateway HTTP API (payload 2.0) event in, a status, headers and body out.

Status codes: 201 a new signup, 200 the same signup posted again (nothing new), 204 a CORS preflight, 400 a
field at fault (each named with its reason, never its value), 401 no key or a key not valid for the tenant
(mistyped, revoked, another tenant's), 405 another method, 413 a body over MAX_BODY_BYTES, 503 an AWS failure
(nothing was lost: retry the same request). CORS headers only for an origin the tenant allows.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from functions.core.errors import AwsServiceError
from functions.core.layout import check_id
from functions.core.observability import logger
from functions.core.signups.request import (
    MAX_BODY_BYTES,
    FieldProblem,
    SignupRequestError,
    check_idempotency_key,
    parse_signup,
    signup_id,
)
from functions.core.signups.service import IdempotencyKeyReusedError, SignupService

FUNCTION = "signups"  # the Lambda (functions/signups/handler.py) the CDK app, the local server and the CLI name
API_KEY_HEADER = "x-api-key"
IDEMPOTENCY_HEADER = "idempotency-key"
ROUTE_PATH = "/tenants/{tenant}/signups"
ALLOWED_HEADERS = "content-type, x-api-key, idempotency-key"
PREFLIGHT_MAX_AGE_SECONDS = 600
RETRY_AFTER_SECONDS = 2


@dataclass(frozen=True)
class HttpRequest:
    """What the handler reads of an API Gateway v2 event (header names lower-cased)."""

    method: str
    tenant: str
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> HttpRequest:
        context = event.get("requestContext") or {}
        method = str((context.get("http") or {}).get("method") or "").upper()
        tenant = str((event.get("pathParameters") or {}).get("tenant") or "")
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        raw = event.get("body") or ""
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(str(raw), validate=True)
            except (binascii.Error, ValueError):
                body = b"\xff"  # undecodable: refused as not JSON
        else:
            body = str(raw).encode("utf-8")
        return cls(method, tenant, headers, body)


@dataclass
class HttpResponse:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def as_event(self) -> dict[str, Any]:
        headers = dict(self.headers)
        result: dict[str, Any] = {"statusCode": self.status, "headers": headers}
        if self.body is not None:
            headers["content-type"] = "application/json"
            result["body"] = json.dumps(self.body, ensure_ascii=False)
        return result


def error(status: int, code: str, message: str, problems: list[FieldProblem] | None = None) -> HttpResponse:
    body: dict[str, Any] = {"error": code, "message": message}
    if problems is not None:
        body["errors"] = [p.as_dict() for p in problems]
    return HttpResponse(status, body)


def cors_headers(origin: str | None, allowed: tuple[str, ...], preflight: bool) -> dict[str, str]:
    """CORS headers for an origin the tenant allows; none at all for any other (the browser then refuses)."""
    if not origin or origin.rstrip("/").lower() not in allowed:
        return {}
    headers = {"access-control-allow-origin": origin.rstrip("/"), "vary": "Origin"}
    if preflight:
        headers |= {
            "access-control-allow-methods": "POST, OPTIONS",
            "access-control-allow-headers": ALLOWED_HEADERS,
            "access-control-max-age": str(PREFLIGHT_MAX_AGE_SECONDS),
        }
    return headers


class SignupEndpoint:
    """One HTTP request to POST /tenants/{tenant}/signups (or its OPTIONS preflight)."""

    def __init__(self, service: Callable[[], SignupService]) -> None:
        self.service = service

    def handle(self, event: Mapping[str, Any]) -> tuple[HttpResponse, str]:
        """The response, and the outcome the metrics count (created, duplicate, rejected, unauthorized, ...)."""
        request = HttpRequest.from_event(event)
        try:
            check_id(request.tenant, "tenant")
        except ValueError:
            return error(404, "not_found", "no such tenant: the path is /tenants/{tenant}/signups"), "not_found"
        service = self.service()
        try:
            allowed = service.keys.origins(request.tenant) if "origin" in request.headers else ()
            cors = cors_headers(request.headers.get("origin"), allowed, preflight=request.method == "OPTIONS")
            response, outcome = self._respond(service, request)
        except AwsServiceError as exc:
            logger.warning("signup not applied; the client retries", error=str(exc), tenant=request.tenant)
            response = error(503, "unavailable", "the signup could not be stored just now; retry the same request")
            response.headers["retry-after"] = str(RETRY_AFTER_SECONDS)
            return response, "failed"
        response.headers |= cors
        return response, outcome

    def _respond(self, service: SignupService, request: HttpRequest) -> tuple[HttpResponse, str]:
        if request.method == "OPTIONS":
            return HttpResponse(204), "preflight"
        if request.method != "POST":
            response = error(405, "method_not_allowed", "POST a signup (JSON) to this path")
            response.headers["allow"] = "POST, OPTIONS"
            return response, "rejected"
        if len(request.body) > MAX_BODY_BYTES:
            message = f"the body is larger than {MAX_BODY_BYTES} bytes: send only the signup's fields"
            return error(413, "too_large", message), "rejected"
        key = request.headers.get(API_KEY_HEADER)
        if not key:
            message = f"send the tenant's signup API key in the {API_KEY_HEADER} header (possync signup-keys create)"
            return error(401, "unauthorized", message), "unauthorized"
        if not service.keys.authenticate(request.tenant, key):
            message = "the API key is not valid for this tenant (mistyped, revoked or another tenant's key)"
            return error(401, "unauthorized", message), "unauthorized"
        try:
            signup = parse_signup(request.body, service.today())
            idempotency = request.headers.get(IDEMPOTENCY_HEADER)
            key_given = check_idempotency_key(idempotency) if idempotency is not None else None
        except SignupRequestError as exc:
            logger.info("signup refused", tenant=request.tenant, fields=[p.field for p in exc.problems])
            return error(400, "invalid_request", "the signup has fields to fix", exc.problems), "rejected"
        try:
            accepted = service.accept(request.tenant, signup, signup_id(request.tenant, signup, key_given))
        except IdempotencyKeyReusedError as exc:
            problem = FieldProblem("Idempotency-Key", str(exc))
            return error(400, "invalid_request", "the signup has fields to fix", [problem]), "rejected"
        status = 200 if accepted.duplicate else 201
        return HttpResponse(status, accepted.as_dict()), "duplicate" if accepted.duplicate else "created"
