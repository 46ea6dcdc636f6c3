"""Persona -> POS sync rules (pure), the create-answer classification, and the read-only vendors' connectors."""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from functions.core.errors import CredentialError, VendorUnavailableError
from functions.core.layout import FORM_SOURCE, Vendor
from functions.core.loyalty.codecs import persona_item
from functions.core.loyalty.values import Persona
from functions.core.pos_sync import rules
from functions.core.pos_sync.service import persona_changes
from functions.core.pos_sync.writer import (
    PosDuplicateError,
    PosRejectedError,
    PosUncertainError,
    send_create,
)
from functions.core.settings import IntegrationSettings
from functions.core.streams import BatchFailures
from functions.pos_sync.writers import open_writer
from functions.pull_flourish.writer import new_customer as flourish_body
from functions.pull_posabit.writer import new_customer as posabit_body

LA = ZoneInfo("America/Los_Angeles")
ON = date(2026, 3, 1)
ROOT = Path(__file__).parents[2]


def persona(**fields: Any) -> Persona:
    values: dict[str, Any] = {
        "first_name": "Rosa",
        "last_name": "Diaz",
        "phone": "+14585550101",
        "email": "rosa@example.com",
        "birth_date": "1988-02-03",
        "sources": frozenset({FORM_SOURCE}),
        "created_at": "2026-03-02T18:00:00.000000+00:00",
        **fields,
    }
    return Persona("t1", "p1", **values)


def settings(vendor: Vendor = Vendor.POSABIT, **fields: Any) -> IntegrationSettings:
    values: dict[str, Any] = {"sync_personas": True, "sync_personas_enabled_on": ON, **fields}
    return IntegrationSettings(vendor=vendor, **values)


def decide(p: Persona, s: IntegrationSettings, markets: tuple[str, ...] = (), state: str | None = None) -> Any:
    return rules.decide(p, s, "c1", LA, markets, state)


def test_a_form_persona_created_on_or_after_the_day_is_synced() -> None:
    decision = decide(persona(), settings())
    assert isinstance(decision, rules.Sync)
    assert decision.contact.phone_digits == "4585550101" and decision.contact.email == "rosa@example.com"
    # created 2026-03-01 at 07:30 UTC = the evening of Feb 28th in Los Angeles: before the day, not retroactive
    early = decide(persona(created_at="2026-03-01T07:30:00+00:00"), settings())
    assert isinstance(early, rules.Skip) and "not retroactive" in early.reason and early.record


@pytest.mark.parametrize(
    ("changes", "expected", "recorded"),
    [
        ({"sources": frozenset({"posabit"})}, "not a form signup", False),
        ({"source_records": frozenset({"posabit#c1#77"})}, "already a posabit customer", False),
        ({"phone": None, "email": None}, "no phone or email", True),
        ({"phone": "1234567890", "email": "test@test.com"}, "no phone or email", True),  # placeholders
        ({"first_name": " "}, "no first name", True),
        ({"favourite_store": "uptown"}, "which another credential serves", False),
    ],
)
def test_personas_that_are_not_synced_say_why(changes: dict[str, Any], expected: str, recorded: bool) -> None:
    decision = decide(persona(**changes), settings(store_mappings={"c2": "uptown"}))
    assert isinstance(decision, rules.Skip) and expected in decision.reason and decision.record is recorded


def test_a_customer_of_the_credential_names_its_pos_id_only_where_a_sync_record_may_wait() -> None:
    records = frozenset({"posabit#c1#77", "posabit#c1#5", "posabit#c2#1", "flourish#c1#9"})
    since = decide(persona(source_records=records), settings())
    assert isinstance(since, rules.Skip) and not since.record and since.pos_id == "5"  # the lowest of this credential
    # created before syncing began: no sync record can exist, so none is read
    before = decide(persona(source_records=records, created_at="2026-02-01T18:00:00+00:00"), settings())
    assert isinstance(before, rules.Skip) and before.pos_id is None
    other = rules.decide(persona(source_records=frozenset({"posabit#c2#1"})), settings(), "c1", LA, ())
    assert isinstance(other, rules.Sync)  # a customer of another credential is still synced to this one


def test_sync_personas_off_or_a_read_only_vendor_syncs_nothing() -> None:
    assert isinstance(decide(persona(), IntegrationSettings(vendor=Vendor.POSABIT)), rules.Skip)
    thsuite = IntegrationSettings(vendor=Vendor.THSUITE)
    assert "read-only" in decide(persona(), thsuite).reason


def test_the_market_filter_keeps_contacts_of_the_credentials_market() -> None:
    on = settings(sync_to_relevant_market=True)
    assert isinstance(decide(persona(), on, ("WA",), "wa"), rules.Sync)
    outside = decide(persona(), on, ("WA",), "OR")
    assert isinstance(outside, rules.Skip) and "outside the credential's market (OR" in outside.reason
    assert "no state" in decide(persona(), on, ("WA",), None).reason
    assert "has no market" in decide(persona(), on, (), "WA").reason
    assert isinstance(decide(persona(), settings(), (), "OR"), rules.Sync)  # filter off: any state


def test_a_signup_at_a_store_the_credential_serves_is_in_its_market_without_a_state() -> None:
    """The form records the store, not a state: a store mapped to this credential is the credential's market."""
    mapped = settings(sync_to_relevant_market=True, store_mappings={"c1": "downtown"})
    assert isinstance(decide(persona(favourite_store="downtown"), mapped, ("WA",), None), rules.Sync)
    unmapped = decide(persona(favourite_store="elsewhere"), mapped, ("WA",), None)
    assert isinstance(unmapped, rules.Skip) and "no state" in unmapped.reason


def test_flourish_needs_a_birth_date_an_email_and_a_last_name() -> None:
    flourish = settings(Vendor.FLOURISH)
    assert decide(persona(birth_date=None), flourish).reason == (
        "no date of birth: Flourish requires one to create a customer"
    )
    assert "email and a last name" in decide(persona(email=None), flourish).reason
    assert isinstance(decide(persona(birth_date=None), settings()), rules.Sync)  # POSaBIT does not need one


def test_a_create_in_flight_is_never_taken_over_as_free() -> None:
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    fresh = (now - timedelta(seconds=10)).isoformat()
    stale = (now - timedelta(seconds=rules.CLAIM_LEASE_SECONDS + 1)).isoformat()
    assert rules.take_over("claimed", fresh, now) == "free"  # only a search was sent: a conditional takeover
    assert rules.take_over("retrying", fresh, now) == "free"
    assert rules.take_over("creating", fresh, now) == "held"
    assert rules.take_over("creating", stale, now) == "uncertain"
    assert rules.take_over("uncertain", stale, now) == "uncertain"


def test_create_bodies_use_each_vendors_field_names() -> None:
    contact = decide(persona(), settings(), state="WA").contact
    assert posabit_body(contact).model_dump(exclude_none=True) == {
        "first_name": "Rosa", "last_name": "Diaz", "telephone": "4585550101", "email": "rosa@example.com",
        "birthday": date(1988, 2, 3), "state": "WA", "loyalty_member": True, "marketing_opt_in": False,
        "sms_opt_in": False,
    }  # fmt: skip
    assert flourish_body(contact) == {
        "first_name": "Rosa", "last_name": "Diaz", "email": "rosa@example.com", "dob": "1988-02-03",
        "phone": "(458) 555-0101", "state": "WA",
    }  # fmt: skip


# --- a create's answer -------------------------------------------------------------------------------------------


def answer(handler: Any) -> Any:
    sent: list[httpx.Request] = []

    def counting(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return handler(request)  # type: ignore[no-any-return]

    client = httpx.Client(base_url="http://pos.test", transport=httpx.MockTransport(counting))
    return client, sent


def respond(status: int, body: Any) -> Any:
    return lambda request: httpx.Response(status, json=body)


def raise_(exc: type[Exception]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)  # type: ignore[call-arg]

    return handler


@pytest.mark.parametrize(
    ("handler", "error", "text"),
    [
        (respond(422, {"errors": {"email": ["is invalid"]}}), PosRejectedError, "HTTP 422 (fields: email)"),
        (respond(400, {"errors": {"email": "unique"}}), PosDuplicateError, "the shopper exists"),
        (respond(422, {"errors": {"telephone": ["has already been taken"]}}), PosDuplicateError, "telephone"),
        (respond(409, {"error": "exists"}), PosDuplicateError, "HTTP 409"),
        (respond(429, {}), VendorUnavailableError, "nothing was created"),
        (respond(500, {}), PosUncertainError, "may have been created"),
        (respond(503, {}), PosUncertainError, "may have been created"),
        (respond(401, {}), CredentialError, "refused the credential"),
        (raise_(httpx.ReadTimeout), PosUncertainError, "ReadTimeout"),
        (raise_(httpx.RemoteProtocolError), PosUncertainError, "may have been created"),
        (raise_(httpx.ConnectError), VendorUnavailableError, "ConnectError"),
    ],
)
def test_each_create_answer_is_classified_and_sent_once(handler: Any, error: type[Exception], text: str) -> None:
    client, sent = answer(handler)
    with pytest.raises(error, match=r".*") as caught:
        send_create(client, "posabit", "/customers", {"customer": {"email": "rosa@example.com"}})
    assert text in str(caught.value)
    assert "rosa@example.com" not in str(caught.value)  # field names only, never values
    assert len(sent) == 1
    if error is VendorUnavailableError:
        assert not isinstance(caught.value, PosUncertainError)  # nothing created: safe to retry later


def test_a_created_answer_is_returned() -> None:
    client, _ = answer(respond(201, {"customer": {"id": 5}}))
    _, payload = send_create(client, "posabit", "/customers", {})
    assert json.dumps(payload) == '{"customer": {"id": 5}}'


# --- read-only vendors -------------------------------------------------------------------------------------------

WRITE_WORDS = ("create", "post", "put", "patch", "delete", "write", "update", "send")


def public_methods(folder: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                methods = [n.name for n in node.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
                found[f"{path.relative_to(ROOT)}:{node.name}"] = methods
    return found


@pytest.mark.parametrize("folder", ["pull_thsuite", "pull_onprem"])
def test_read_only_connectors_have_no_write_method_and_send_only_gets(folder: str) -> None:
    # THSuite, Profitek and Auphan: no class in their folders has a method that writes ...
    for where, methods in public_methods(ROOT / "functions" / folder).items():
        writes = [m for m in methods if m.split("_")[0] in WRITE_WORDS]
        assert not writes, f"{where} has {writes}"
    # ... and no request they build uses another HTTP method than GET
    source = "\n".join(p.read_text() for p in (ROOT / "functions" / folder).rglob("*.py"))
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert f'"{method}"' not in source and f".{method.lower()}(" not in source


@pytest.mark.parametrize("vendor", [Vendor.THSUITE, Vendor.PROFITEK, Vendor.AUPHAN])
def test_no_writer_opens_for_a_read_only_vendor(vendor: Vendor) -> None:
    with pytest.raises(CredentialError, match="read-only"):
        open_writer(vendor, None)  # type: ignore[arg-type]


PERSONAS_STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/possync-personas/stream/2026-01-01T00:00:00.000"


def _profile_record(p: Persona, sequence: str) -> dict[str, Any]:
    """The personas-table stream record Lambda delivers for a profile as the personas store writes it."""
    item = persona_item(p)
    return {
        "eventID": f"event-{sequence}",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1772474400,
            "Keys": {"pk": item["pk"], "sk": item["sk"]},
            "NewImage": item,
            "SequenceNumber": sequence,
            "SizeBytes": len(json.dumps(item)),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": PERSONAS_STREAM_ARN,
    }


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("field_sources", {"S": "[]"}),  # JSON, but not an object
        ("source_versions", {"S": '["x"]'}),
        ("consent", {"M": {"sms": "opted_in"}}),  # a map entry that is no DynamoDB value
    ],
)
def test_a_damaged_profile_fails_alone_and_the_others_of_the_batch_go_on(attribute: str, value: Any) -> None:
    # Given a batch of three form profiles, the middle one damaged
    first, damaged, last = (
        _profile_record(Persona("t1", persona_id, sources=frozenset({FORM_SOURCE})), sequence)
        for persona_id, sequence in (("p1", "100"), ("p2", "200"), ("p3", "300"))
    )
    damaged["dynamodb"]["NewImage"][attribute] = value
    failures = BatchFailures()
    # When the consumer reads it
    changes = persona_changes({"Records": [first, damaged, last]}, failures)
    # Then only the damaged one is a batch item failure, with a reason; the others are synced
    assert [c.persona.persona_id for c in changes] == ["p1", "p3"]
    assert failures.response() == {"batchItemFailures": [{"itemIdentifier": "200"}]}
    assert failures.reasons() == {"the stream record is not a persona profile": 1}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"birth_date": "04/05/1990"}, "birth_date"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"birth_date": "1990-13-45", "created_at": "2026-03-02 noon"}, "created_at and birth_date"),
    ],
)
def test_a_profile_with_an_unreadable_date_fails_alone_without_showing_the_date(
    fields: dict[str, str], named: str
) -> None:
    # Given a batch of three form profiles, the middle one with a date the sync rules cannot read
    first, damaged, last = (
        _profile_record(replace(persona(**(fields if persona_id == "p2" else {})), persona_id=persona_id), sequence)
        for persona_id, sequence in (("p1", "100"), ("p2", "200"), ("p3", "300"))
    )
    failures = BatchFailures()
    # When the consumer reads it
    changes = persona_changes({"Records": [first, damaged, last]}, failures)
    # Then only that record fails (no exception fails the whole batch), and the reason names the field, not its value
    assert [c.persona.persona_id for c in changes] == ["p1", "p3"]
    assert failures.response() == {"batchItemFailures": [{"itemIdentifier": "200"}]}
    [reason] = failures.reasons()
    assert reason == f"the persona profile's {named} is not an ISO 8601 date"
    assert not any(value in reason for value in fields.values())
