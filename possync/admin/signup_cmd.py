"""`possync personas signup`: post one form signup to the endpoint, as a retailer's web form would."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer

from functions.core.signups.endpoint import API_KEY_HEADER, IDEMPOTENCY_HEADER, ROUTE_PATH
from possync.admin.context import TenantOption, admin
from possync.admin.render import console, fail, guarded
from possync.admin.tenants import command_line, known_tenant

TIMEOUT_SECONDS = 15.0


@guarded
def signup_command(
    ctx: typer.Context,
    tenant: TenantOption,
    first_name: Annotated[str, typer.Option("--first-name", help="The shopper's first name.")],
    birth_date: Annotated[str, typer.Option("--birth-date", help="YYYY-MM-DD (21 or older).")],
    store: Annotated[str, typer.Option("--store", help="The retail store the form belongs to.")],
    last_name: Annotated[str | None, typer.Option("--last-name", help="The shopper's last name.")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="Mobile number (phone and/or email).")] = None,
    email: Annotated[str | None, typer.Option("--email", help="Email address (phone and/or email).")] = None,
    age_confirmed: Annotated[
        bool, typer.Option("--age-confirmed", help="The shopper confirmed being 21 or older (required).")
    ] = False,
    marketing_consent: Annotated[
        bool, typer.Option("--marketing-consent", help="The shopper agreed to marketing texts (asks the SMS opt-in).")
    ] = False,
    consent_text: Annotated[
        str | None, typer.Option("--consent-text", help="The consent wording the form showed (with consent).")
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="The endpoint's base URL (default: the stack's SignupsUrl output).")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", envvar="POSSYNC_SIGNUP_KEY", help="A signup key of the tenant (--local: the demo key)."),
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Makes a retry of this post the same signup.")
    ] = None,
) -> None:
    """Post one form signup to the signup endpoint (as the tenant's web form would) and print what it did: the
    persona it created or matched, or each field to fix.

    Example: possync --local personas signup --tenant greenleaf --first-name Ada --phone +12065550188
    --birth-date 1990-04-01 --store downtown --age-confirmed
    """
    context = admin(ctx)
    tenant = known_tenant(context, tenant)
    route = ROUTE_PATH.replace("{tenant}", tenant)
    target = context.target()
    base = (url or target.signups_url).rstrip("/").removesuffix(route)
    if not base:
        fail("this target serves no signup endpoint", "restart `possync local serve` (it starts one), or pass --url")
    endpoint = base + route
    demo = target.signup_demo if url is None else None
    api_key = key or (demo[1] if demo is not None and demo[0] == tenant else None)
    if not api_key:
        fail(
            f"no signup key for {tenant}",
            f"pass --key (make one: `{command_line(context, f'signup-keys create --tenant {tenant}')}`)",
        )
    body: dict[str, Any] = {
        "first_name": first_name,
        "last_name": last_name,
        "phone": phone,
        "email": email,
        "birth_date": birth_date,
        "store": store,
        "age_confirmed": age_confirmed,
        "marketing_consent": marketing_consent,
        "consent_text": consent_text,
    }
    headers = {API_KEY_HEADER: api_key, "content-type": "application/json"}
    if idempotency_key:
        headers[IDEMPOTENCY_HEADER] = idempotency_key
    try:
        response = httpx.post(
            endpoint,
            content=json.dumps({k: v for k, v in body.items() if v is not None}),
            headers=headers,
            timeout=TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        fail(f"the signup endpoint did not answer ({type(exc).__name__})", "is `possync local serve` running?")
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code in (200, 201):
        what = "the same signup again (nothing new)" if answer.get("duplicate") else f"persona {answer.get('persona')}"
        console().print(
            f"Signup {answer.get('signup_id')}: {what}; persona {answer.get('persona_id')}; "
            f"SMS opt-in: {answer.get('optin')}",
            markup=False,
        )
        return
    problems = "; ".join(f"{e.get('field')}: {e.get('reason')}" for e in answer.get("errors", []))
    fail(f"HTTP {response.status_code}: {answer.get('message', 'refused')}" + (f" ({problems})" if problems else ""))
