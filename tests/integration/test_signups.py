"""The signup endpoint under moto: keys, validation, one persona and one event per signup, consent -> one opt-in."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.core.loyalty.values import Claim, Persona
from functions.core.signups.request import MAX_BODY_BYTES
from functions.core.sms.consent import Consent, State
from tests.integration.signup_world import (
    NUMBER,
    ORIGIN,
    OTHER_TENANT,
    TENANT,
    SignupWorld,
    make_signup_world,
    signup_body,
)

CONSENT_TEXT = "Yes, text me offers from Greenleaf. Msg & data rates may apply. Reply STOP to cancel."


@pytest.fixture
def world(resources: Any) -> SignupWorld:
    return make_signup_world(resources)


def body_of(response: Any) -> dict[str, Any]:
    return json.loads(json.dumps(response.body))


# --- authentication ------------------------------------------------------------------------------------------
def test_a_tenants_active_key_is_accepted(world: SignupWorld) -> None:
    response = world.post(signup_body())
    assert response.status == 201
    assert response.body is not None and response.body["persona"] == "created"


@pytest.mark.parametrize("key", [None, "", "pss_0123456789abcdef_" + "x" * 43, "not-a-key"])
def test_no_key_or_a_wrong_key_is_refused(world: SignupWorld, key: str | None) -> None:
    response = world.post(signup_body(), key=key)
    assert response.status == 401
    assert world.personas() == [] and world.events() == []


def test_another_tenants_key_is_refused(world: SignupWorld) -> None:
    _, other = world.keys.create(OTHER_TENANT)
    assert world.post(signup_body(), key=other).status == 401
    assert world.personas() == []
    # ... while it works for its own tenant
    assert world.post(signup_body(), key=other, tenant=OTHER_TENANT).status == 201


def test_a_revoked_key_is_refused(world: SignupWorld) -> None:
    stored, key = world.keys.create(TENANT)
    assert world.post(signup_body(), key=key).status == 201
    world.keys.revoke(TENANT, stored.key_id)
    assert world.post(signup_body(email="other@example.com", phone=None), key=key).status == 401
    assert len(world.personas()) == 1
    # the other key of the tenant still works
    assert world.post(signup_body(email="other@example.com", phone=None)).status == 201


def test_keys_are_stored_as_digests_and_listed_without_the_key(world: SignupWorld, resources: Any) -> None:
    import boto3

    items = boto3.client("dynamodb").scan(TableName=resources.control_table)["Items"]
    assert world.key not in json.dumps(items)
    listed = [k.as_dict() for k in world.keys.list(TENANT)]
    assert len(listed) == 1 and world.key not in json.dumps(listed)
    assert world.key.startswith(listed[0]["prefix"].rstrip("…"))


# --- validation ----------------------------------------------------------------------------------------------
def fields_of(response: Any) -> dict[str, str]:
    assert response.status == 400, response.body
    return {e["field"]: e["reason"] for e in response.body["errors"]}


def test_malformed_json_is_refused_with_the_body_named(world: SignupWorld) -> None:
    assert fields_of(world.post('{"first_name": "Ada",')) == {"body": "is not JSON: send a JSON object (UTF-8)"}
    assert "body" in fields_of(world.post("[1, 2]"))


def test_missing_consent_and_age_confirmation_are_named(world: SignupWorld) -> None:
    missing = fields_of(world.post(signup_body(age_confirmed=None)))
    assert missing == {"age_confirmed": "is required"}
    refused = fields_of(world.post(signup_body(age_confirmed=False)))
    assert "21 or older" in refused["age_confirmed"]
    no_text = fields_of(world.post(signup_body(marketing_consent=True)))
    assert "consent_text" in no_text
    assert fields_of(world.post(signup_body(marketing_consent="yes"))) == {"marketing_consent": "must be true or false"}
    assert world.personas() == []


def test_underage_is_refused(world: SignupWorld) -> None:
    assert fields_of(world.post(signup_body(birth_date="2010-01-01"))) == {
        "birth_date": "the shopper must be 21 or older"
    }
    # 21 today (the world's clock: 2026-07-01) is old enough
    assert world.post(signup_body(birth_date="2005-07-01")).status == 201


def test_errors_never_echo_the_values(world: SignupWorld) -> None:
    secret_phone, secret_mail = "+1 206 555 01X9", "ada-at-example"
    response = world.post(signup_body(phone=secret_phone, email=secret_mail, birth_date="31/12/1990", extra="zzz"))
    assert set(fields_of(response)) == {"phone", "email", "birth_date", "extra"}
    text = json.dumps(response.body)
    for value in (secret_phone, secret_mail, "31/12/1990", "zzz"):
        assert value not in text


def test_a_contact_is_required(world: SignupWorld) -> None:
    assert "phone" in fields_of(world.post(signup_body(phone=None, email=None)))


def test_an_oversized_body_is_refused_with_413(world: SignupWorld) -> None:
    response = world.post(signup_body(last_name="x" * (MAX_BODY_BYTES + 1)))
    assert response.status == 413
    assert world.personas() == []


def test_unicode_and_injection_strings_are_stored_verbatim_and_harmless(world: SignupWorld) -> None:
    first = "Zoë 山田 <script>alert('x')</script>"
    last = "O'Brien\"); DROP TABLE personas;-- ${jndi:ldap://x} {{7*7}}"
    store = "Ünïcödé 🌿 store #1 | $(rm -rf /)"
    response = world.post(signup_body(first_name=first, last_name=last, store=store))
    assert response.status == 201
    [persona] = world.personas()
    assert (persona.first_name, persona.last_name) == (first, last)
    [event] = world.events()
    assert event["store"]["S"] == store
    assert json.loads(event["content"]["S"])["first_name"] == first
    # the response names ids only: nothing the shopper typed goes back to the page
    assert first not in json.dumps(response.body) and last not in json.dumps(response.body)


def test_control_characters_are_refused(world: SignupWorld) -> None:
    assert "first_name" in fields_of(world.post(signup_body(first_name="Ada\nLovelace")))


# --- one persona, one event ----------------------------------------------------------------------------------
def test_the_same_signup_posted_twice_is_one_persona_and_one_event(world: SignupWorld) -> None:
    first = world.post(signup_body())
    again = world.post(signup_body(email="ada@example.com", phone="+1 206-555-0123"))  # the same, normalized
    assert (first.status, again.status) == (201, 200)
    assert first.body is not None and again.body is not None
    assert again.body["duplicate"] is True
    assert again.body["persona_id"] == first.body["persona_id"] and again.body["signup_id"] == first.body["signup_id"]
    [persona] = world.personas()
    assert persona.sources == frozenset({"form"})
    assert (persona.phone, persona.email, persona.birth_date) == (NUMBER, "ada@example.com", "1990-04-01")
    assert len(world.events()) == 1


def test_an_idempotency_key_makes_a_retry_one_event(world: SignupWorld) -> None:
    headers = {"Idempotency-Key": "form-42"}
    assert world.post(signup_body(), headers=headers).status == 201
    assert world.post(signup_body(), headers=headers).status == 200
    # the same key for other content is refused: its phone and consent must not reach the first signup's persona
    reused = world.post(signup_body(last_name="Byron", phone="+1 206 555 0144"), headers=headers)
    assert fields_of(reused) == {
        "Idempotency-Key": "this Idempotency-Key was used for a different signup: send a new key"
    }
    assert len(world.events()) == 1 and world.personas()[0].last_name == "Lovelace"
    # a new key is a new signup (of the same person)
    assert world.post(signup_body(last_name="Byron"), headers={"Idempotency-Key": "form-43"}).status == 201
    assert len(world.events()) == 2


def test_a_double_post_racing_the_first_makes_one_persona_and_one_event(world: SignupWorld) -> None:
    # Given the second post lands between the first one's read of the claims and its create (a real race, made
    # deterministic: moto does not make transactions atomic across threads as DynamoDB does)
    store = world.service.personas
    create = store.create_persona
    statuses: list[int] = []
    raced: list[bool] = []

    def racing_create(persona: Persona, claims: Sequence[Claim]) -> None:
        if not raced:
            raced.append(True)
            statuses.append(world.post(signup_body()).status)  # the other post wins the race
        create(persona, claims)

    store.create_persona = racing_create  # type: ignore[method-assign]
    # When the first post goes on: its create loses (the claims are taken), it reads again, finds the winner's
    # persona and the winner's event
    statuses.append(world.post(signup_body()).status)
    # Then one persona, one event: the winner got 201, the loser 200
    assert statuses == [201, 200]
    assert len(world.personas()) == 1 and len(world.events()) == 1


def test_a_second_signup_of_the_same_person_matches_their_persona(world: SignupWorld) -> None:
    world.post(signup_body())
    response = world.post(signup_body(store="uptown"))  # another event, the same person (phone, email)
    assert response.status == 201 and response.body is not None and response.body["persona"] == "matched"
    assert len(world.personas()) == 1 and len(world.events()) == 2


def test_a_signup_matches_a_pos_persona_by_phone_and_fills_only_empty_fields(world: SignupWorld) -> None:
    # Given a persona from POSaBIT holding the phone
    pos = Persona(TENANT, "pos-1", first_name="Adeline", phone=NUMBER, sources=frozenset({"posabit"}), created_at="x")
    world.optin.personas.create_persona(pos, [Claim("phone", NUMBER)])
    # When the same person signs up with another email
    response = world.post(signup_body(email="ada@new.example"))
    # Then it is that persona: "form" among its sources, the POS's name kept, the empty email filled
    assert response.body is not None and response.body["persona_id"] == "pos-1"
    [persona] = world.personas()
    assert persona.sources == frozenset({"posabit", "form"})
    assert (persona.first_name, persona.email) == ("Adeline", "ada@new.example")
    assert world.optin.personas.claim_owners(TENANT, [Claim("email", "ada@new.example")]) == {
        Claim("email", "ada@new.example"): "pos-1"
    }


# --- consent -> the SMS double opt-in ---------------------------------------------------------------------------
def consenting(**overrides: Any) -> dict[str, Any]:
    return signup_body(marketing_consent=True, consent_text=CONSENT_TEXT, **overrides)


def run_deferrals(world: SignupWorld) -> list[str]:
    """The opt-in deferral handler's service on every queued deferral due by now (as SQS would deliver them)."""
    optin = world.optin.service()
    outcomes: list[str] = []
    while True:
        due = [d for d in world.optin.deferrals.queued if d.not_before <= world.optin.clock()]
        if not due:
            return outcomes
        for deferred in due:
            world.optin.deferrals.queued.remove(deferred)
            outcomes.append(optin.deferred(deferred))


def test_form_consent_sends_exactly_one_optin_request(world: SignupWorld) -> None:
    response = world.post(consenting())
    assert response.body is not None and response.body["optin"] == "requested"
    again = world.post(consenting())  # a double click
    assert again.body is not None and again.body["optin"] == "already"
    world.post(consenting(store="uptown"))  # a second signup of the same person
    assert run_deferrals(world).count("sent") == 1
    assert world.optin.gateway.kinds() == ["optin_request"]
    # later signups ask nothing new
    world.post(consenting(store="airport"))
    assert run_deferrals(world) == []
    assert world.optin.gateway.kinds() == ["optin_request"]
    evidence = world.consents().evidence(TENANT, NUMBER)
    form = [e for e in evidence if e.event == "form_consent"]
    assert len(form) == 3  # one per signup event: the double click added none
    assert form[0].details["consent_text"] == CONSENT_TEXT and form[0].source == "form"
    assert [e.event for e in evidence if e.event in {"requested", "sent"}] == ["requested", "sent"]


def test_form_consent_in_quiet_hours_is_deferred_to_the_morning(world: SignupWorld) -> None:
    world.optin.clock.now = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # 03:00 in Seattle
    world.post(consenting())
    assert run_deferrals(world) == ["deferred"]
    assert world.optin.gateway.sent == []
    world.post(consenting())  # posted again while deferred: no second request
    assert run_deferrals(world) == []
    world.optin.clock.now = datetime(2026, 7, 1, 15, 1, tzinfo=UTC)  # 08:01
    assert run_deferrals(world).count("sent") == 1
    assert world.optin.gateway.kinds() == ["optin_request"]


def test_no_consent_no_request(world: SignupWorld) -> None:
    response = world.post(signup_body())
    assert response.body is not None and response.body["optin"] == "not_asked"
    assert world.optin.deferrals.queued == [] and world.consents().consent(TENANT, NUMBER) is None


def test_a_number_that_opted_out_is_never_asked_again(world: SignupWorld) -> None:
    world.consents().create(Consent(TENANT, NUMBER, State.OPTED_OUT, "sms", opted_out_at="2026-01-01"))
    response = world.post(consenting())
    assert response.body is not None and response.body["optin"] == "already"
    assert run_deferrals(world) == [] and world.optin.gateway.sent == []


# --- CORS --------------------------------------------------------------------------------------------------------
def test_cors_headers_only_for_the_tenants_origins(world: SignupWorld) -> None:
    allowed = world.post(signup_body(), headers={"Origin": ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    other = world.post(signup_body(), headers={"Origin": "https://evil.example"})
    assert not any(h.startswith("access-control") for h in other.headers)
    preflight = world.post(None, key=None, method="OPTIONS", headers={"Origin": ORIGIN})
    assert preflight.status == 204
    assert "x-api-key" in preflight.headers["access-control-allow-headers"]
    refused = world.post(None, key=None, method="OPTIONS", headers={"Origin": "https://evil.example"})
    assert refused.status == 204 and "access-control-allow-origin" not in refused.headers
    assert "*" not in json.dumps(allowed.headers)


def test_a_deferral_queue_failure_is_a_503_and_the_retry_asks_once(world: SignupWorld) -> None:
    from functions.core.sms.deferral import DeferralError

    queue = world.optin.deferrals
    real = queue.defer

    def down(deferred: Any, now: datetime) -> None:
        raise DeferralError("SendMessage to the deferral queue failed: ServiceUnavailable")

    queue.defer = down  # type: ignore[method-assign]
    failed = world.post(consenting())
    assert failed.status == 503 and failed.headers["retry-after"]
    assert CONSENT_TEXT not in json.dumps(failed.body)
    queue.defer = real  # type: ignore[method-assign]
    retried = world.post(consenting())  # the client retries the same signup
    assert retried.status == 200 and len(world.personas()) == 1 and len(world.events()) == 1
    assert run_deferrals(world).count("sent") == 1
    assert world.optin.gateway.kinds() == ["optin_request"]
