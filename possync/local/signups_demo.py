"""`make demo`'s form signups: a few posted through the local signup endpoint, as a retailer's web form would."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from functions.core.loyalty.repository import PersonaStore
from possync.local.signup_server import start_signups

CONSENT_TEXT = "Yes, text me offers. Msg & data rates may apply. Reply STOP to cancel, HELP for help."


@dataclass(frozen=True)
class PostedSignup:
    label: str
    status: int
    persona: str  # created / matched / the error
    optin: str


def demo_signups(known_phone: str | None) -> list[tuple[str, dict[str, Any]]]:
    """A new shopper who consents to texts, the same form double-clicked, an email-only signup without consent,
    and (when the tenant has one) a shopper the POS already knows, by phone."""
    new = {
        "first_name": "Zoë",
        "last_name": "Fernández",
        "phone": "+12065550188",
        "birth_date": "1991-05-17",
        "store": "downtown",
        "age_confirmed": True,
        "marketing_consent": True,
        "consent_text": CONSENT_TEXT,
    }
    posts = [
        ("new shopper, consents to texts", new),
        ("the same form, double-clicked", new),
        (
            "email only, no consent",
            {
                "first_name": "Kai",
                "email": "kai@example.com",
                "birth_date": "1988-11-02",
                "store": "downtown",
                "age_confirmed": True,
            },
        ),
        (
            "under 21 (refused)",
            {
                "first_name": "Sam",
                "email": "sam@example.com",
                "birth_date": "2012-01-01",
                "store": "downtown",
                "age_confirmed": True,
            },
        ),
    ]
    if known_phone:
        known = {
            "first_name": "Pat",
            "phone": known_phone,
            "birth_date": "1980-01-01",
            "store": "downtown",
            "age_confirmed": True,
        }
        posts.append(("a shopper the POS already knows", known))
    return posts


def post_demo_signups(rt: Any) -> list[PostedSignup]:
    """Start the local signup endpoint and post the demo signups to it over HTTP with the demo key."""
    server = start_signups(rt, created_by="make demo")
    tenant, key = rt.extra_state["signup_demo_tenant"], rt.extra_state["signup_demo_key"]
    store = PersonaStore(rt.client("dynamodb"), rt.resources.personas_table)
    known = next((p.phone for p in store.list_personas(tenant, limit=50) if p.phone), None)
    results: list[PostedSignup] = []
    try:
        with httpx.Client(timeout=30) as client:
            for label, body in demo_signups(known):
                response = client.post(
                    server.signups_url(tenant),
                    content=json.dumps(body),
                    headers={"content-type": "application/json", "x-api-key": key},
                )
                answer = response.json()
                if response.status_code in (200, 201):
                    persona = "same signup: nothing new" if answer["duplicate"] else f"persona {answer['persona']}"
                    results.append(PostedSignup(label, response.status_code, persona, answer["optin"]))
                else:
                    reasons = "; ".join(f"{e['field']}: {e['reason']}" for e in answer.get("errors", []))
                    results.append(PostedSignup(label, response.status_code, reasons or answer["message"], "-"))
    finally:
        server.stop()
    return results


def show_signups(console: Console, tenant: str, results: list[PostedSignup]) -> None:
    table = Table(title=f"Form signups posted to the local endpoint ({tenant})", box=box.SIMPLE_HEAD)
    for column in ("form post", "HTTP", "persona", "SMS opt-in"):
        table.add_column(column)
    for result in results:
        table.add_row(escape(result.label), str(result.status), escape(result.persona), escape(result.optin))
    console.print(table)
