"""Signup rules without AWS: key format and digest, origins, request validation, the idempotency id, the persona
merge."""

from __future__ import annotations

import json
from datetime import date

import pytest

from functions.core.loyalty.values import Persona
from functions.core.signups.endpoint import HttpRequest, cors_headers
from functions.core.signups.keys import (
    SignupKey,
    SignupKeyError,
    check_origin,
    digest_of,
    key_id_of,
    key_matches,
    new_key,
)
from functions.core.signups.request import SignupRequestError, age_on, parse_signup, signup_id
from functions.core.signups.service import apply_signup

TODAY = date(2026, 7, 1)


def body(**overrides: object) -> bytes:
    data: dict[str, object] = {
        "first_name": "Ada",
        "phone": "206-555-0123",
        "birth_date": "1990-04-01",
        "store": "downtown",
        "age_confirmed": True,
    }
    data.update(overrides)
    return json.dumps({k: v for k, v in data.items() if v is not None}).encode()


def test_keys_are_random_and_carry_their_id() -> None:
    (id1, key1), (id2, key2) = new_key(), new_key()
    assert id1 != id2 and key1 != key2
    assert key_id_of(key1) == id1 and key_id_of("pss_nothex_x") is None
    stored = SignupKey("t1", id1, digest_of(key1), "2026-01-01")
    assert key_matches(stored, key1) and not key_matches(stored, key2)
    assert key1 not in repr(stored) and digest_of(key1) != key1
    revoked = SignupKey("t1", id1, digest_of(key1), "2026-01-01", revoked_at="2026-02-01")
    assert not key_matches(revoked, key1)


@pytest.mark.parametrize("origin", ["*", "null", "https://*.x.com", "ftp://x.com", "https://x.com/p", "http://x.com"])
def test_origins_refuse_wildcards_paths_and_plain_http(origin: str) -> None:
    with pytest.raises(SignupKeyError):
        check_origin(origin)


def test_origins_are_normalized() -> None:
    assert check_origin("https://Shop.Example.com/") == "https://shop.example.com"
    assert check_origin("http://localhost:8000") == "http://localhost:8000"


def test_cors_headers_only_for_an_allowed_origin() -> None:
    allowed = ("https://shop.example.com",)
    assert cors_headers("https://shop.example.com", allowed, preflight=False)["access-control-allow-origin"] == (
        "https://shop.example.com"
    )
    assert cors_headers("https://evil.example", allowed, preflight=True) == {}
    assert cors_headers(None, allowed, preflight=True) == {}


def test_a_valid_signup_is_normalized() -> None:
    request = parse_signup(body(email=" Ada@Example.COM "), TODAY)
    assert (request.phone, request.email, request.marketing_consent) == ("+12065550123", "ada@example.com", False)


def test_age_is_counted_by_birthday() -> None:
    assert age_on(date(2005, 7, 2), TODAY) == 20 and age_on(date(2005, 7, 1), TODAY) == 21
    with pytest.raises(SignupRequestError) as refused:
        parse_signup(body(birth_date="2005-07-02"), TODAY)
    assert refused.value.problems[0].field == "birth_date"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"phone": "12", "email": None}, "phone"),
        ({"phone": "1234567890"}, "phone"),  # a placeholder number never identifies anyone
        ({"email": "test@test.com"}, "email"),
        ({"store": "  "}, "store"),
        ({"first_name": "x" * 101}, "first_name"),
        ({"age_confirmed": "true"}, "age_confirmed"),
        ({"birth_date": "2030-01-01"}, "birth_date"),
    ],
)
def test_each_bad_field_is_named(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(SignupRequestError) as refused:
        parse_signup(body(**overrides), TODAY)
    assert field in {p.field for p in refused.value.problems}


def test_the_idempotency_id_follows_the_normalized_content_or_the_clients_key() -> None:
    one = parse_signup(body(phone="(206) 555-0123"), TODAY)
    same = parse_signup(body(phone="+1 206 555 0123"), TODAY)
    other = parse_signup(body(store="uptown"), TODAY)
    assert signup_id("t1", one) == signup_id("t1", same) != signup_id("t1", other)
    assert signup_id("t1", one) != signup_id("t2", one)
    assert signup_id("t1", one, "k-1") == signup_id("t1", other, "k-1") != signup_id("t1", one, "k-2")


def test_a_signup_fills_only_empty_fields_and_adds_the_form_source() -> None:
    request = parse_signup(body(first_name="Ada", last_name="Lovelace"), TODAY)
    pos = Persona("t1", "p1", first_name="Adeline", sources=frozenset({"posabit"}), version=3)
    merged = apply_signup(pos, request, "2026-07-01T00:00:00+00:00")
    assert (merged.first_name, merged.last_name, merged.phone) == ("Adeline", "Lovelace", "+12065550123")
    assert merged.sources == frozenset({"posabit", "form"}) and merged.version == 4
    assert apply_signup(merged, request, "later") is merged  # nothing new: no write


def test_a_base64_body_is_decoded() -> None:
    import base64

    event = {
        "requestContext": {"http": {"method": "POST"}},
        "pathParameters": {"tenant": "t1"},
        "headers": {"X-Api-Key": "k"},
        "body": base64.b64encode(b'{"a": 1}').decode(),
        "isBase64Encoded": True,
    }
    request = HttpRequest.from_event(event)
    assert (request.method, request.tenant, request.headers["x-api-key"], request.body) == (
        "POST",
        "t1",
        "k",
        b'{"a": 1}',
    )
