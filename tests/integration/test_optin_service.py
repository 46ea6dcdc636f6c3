"""The opt-in consumer, deferral and reply rules under moto: one text per persona whatever is redelivered, quiet
hours, the 24 h cap, STOP racing a deferral, every keyword, unknown numbers, POS consent flags."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest

from functions.core import metrics
from functions.core.errors import SettingsError, SettingsUnavailableError
from functions.core.layout import Vendor
from functions.core.settings import IntegrationSettings
from functions.core.sms.consent import State
from functions.core.sms.gateway import SendRejectedError, SendUnavailableError, SendUncertainError
from functions.core.sms.store import number_pk
from functions.core.store import RecordStore
from functions.core.streams import BatchFailures, RecordChange, StreamChange
from functions.optin import reply as reply_handler
from possync.admin.impact import count
from tests.integration.optin_world import NUMBER, TENANT, World, make_world

LA = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def world(resources: Any) -> World:
    return make_world(resources)


def _batch(*records: Any) -> list[StreamChange]:
    return [
        StreamChange(str(i), f"{r.kind.value}#{r.pos_id}", RecordChange(r.kind, 1, r)) for i, r in enumerate(records)
    ]


def _state(world: World, number: str = NUMBER) -> State | None:
    consent = world.consents.consent(TENANT, number)
    return consent.state if consent else None


def test_a_sale_after_the_date_sends_one_request_ever(world: World) -> None:
    # Given a persona with a valid mobile number and two sales after sms_optin_after
    world.shopper()
    service = world.service()
    batch = _batch(world.sale("o1"), world.sale("o2"))
    # When the batch is processed, redelivered, and another sale comes a day later
    failures = BatchFailures()
    assert service.batch(batch, failures) == {"sent": 1, "already_requested": 1}
    assert service.batch(batch, BatchFailures()) == {"already_requested": 2}
    world.clock.advance(days=1)
    service.batch(_batch(world.sale("o3")), BatchFailures())
    # Then exactly one text went out, with the required wording
    assert world.gateway.kinds() == ["optin_request"] and len(failures) == 0
    body = world.gateway.sent[0].body
    assert body.startswith("Greenleaf: ") and "Reply YES to join" in body and "HELP for help" in body
    assert _state(world) is State.REQUESTED


def test_sales_that_do_not_qualify_send_nothing(resources: Any) -> None:
    world = make_world(resources)
    world.shopper()
    world.shopper("s2", phone="+11234567890", persona="p2")  # placeholder PII
    service = world.service()
    outcomes = service.batch(
        _batch(
            world.sale("o1", status="cancelled"),
            world.sale("o2", on=datetime(2025, 12, 31).date()),  # before the date
            world.sale("o3", customer="s2"),
        ),
        BatchFailures(),
    )
    assert outcomes == {"not_eligible": 2, "no_phone": 1}
    unset = make_world(resources, sms_optin_after=None)
    assert unset.service().batch(_batch(world.sale("o4")), BatchFailures()) == {"not_eligible": 1}
    assert world.gateway.sent == unset.gateway.sent == []


def test_the_same_batch_processed_in_parallel_sends_one_text(world: World) -> None:
    world.shopper()
    batch = _batch(world.sale("o1"), world.sale("o2"))
    services = [world.service() for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda s: s.batch(batch, BatchFailures()), services))
    assert world.gateway.kinds() == ["optin_request"]


def test_a_sale_before_its_persona_waits_for_the_shopper(world: World) -> None:
    # Given a sale whose shopper has no persona yet (its record is still on its way to the personas consumer)
    shopper = world.shopper(persona=None)
    service = world.service()
    assert service.batch(_batch(world.sale()), BatchFailures()) == {"waiting_for_persona": 1}
    assert world.gateway.sent == []
    # When the opt-in consumer sees the shopper record before the persona exists, the record is retried
    failures = BatchFailures()
    service.batch(_batch(shopper), failures)
    assert failures.reasons() == {"PersonaNotYetError": 1}
    # and once the persona exists, the waiting sale asks, once
    world.shopper()  # the personas consumer made the persona
    assert service.batch(_batch(shopper), BatchFailures()) == {"sent": 1}
    assert service.batch(_batch(shopper), BatchFailures()) == {"no_flag": 1}
    assert world.gateway.kinds() == ["optin_request"]


def test_provider_unavailable_before_the_call_leaves_the_intent_to_resume(world: World) -> None:
    # Given the provider throttles (the text was certainly not accepted)
    world.shopper()
    world.gateway.fail_with = SendUnavailableError("ThrottlingException")
    failures = BatchFailures()
    world.service().batch(_batch(world.sale()), failures)
    assert len(failures) == 1 and _state(world) is State.INTENT
    # When the record is redelivered and the provider answers
    world.gateway.fail_with = None
    world.service().batch(_batch(world.sale()), BatchFailures())
    # Then the intent is resumed: one text
    assert world.gateway.kinds() == ["optin_request"] and _state(world) is State.REQUESTED


def test_a_crash_between_intent_and_send_sends_once_on_redelivery(world: World, monkeypatch: Any) -> None:
    # Given the function dies right after recording the intent (before the provider call)
    world.shopper()
    service = world.service()
    monkeypatch.setattr(service, "deliver", lambda *a: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(RuntimeError):
        service.batch(_batch(world.sale()), BatchFailures())
    assert _state(world) is State.INTENT and world.gateway.attempts == 0
    # When the batch comes again: the provider was never called, so the request is sent, once
    world.service().batch(_batch(world.sale()), BatchFailures())
    world.service().batch(_batch(world.sale()), BatchFailures())
    assert world.gateway.kinds() == ["optin_request"]


def test_a_crash_during_the_provider_call_is_marked_uncertain_never_repeated(world: World) -> None:
    # Given the function dies during the provider call (the text may have gone out)
    world.shopper()
    world.gateway.fail_with = RuntimeError("Lambda timed out")
    with pytest.raises(RuntimeError):
        world.service().batch(_batch(world.sale()), BatchFailures())
    assert _state(world) is State.SENDING
    world.gateway.fail_with = None
    # When the record is redelivered soon, and again after the send could no longer be in progress
    assert world.service().batch(_batch(world.sale()), BatchFailures()) == {"already_requested": 1}
    world.clock.advance(minutes=11)
    assert world.service().batch(_batch(world.sale()), BatchFailures()) == {"uncertain": 1}
    # Then it was never sent again, and it is reported
    assert world.gateway.attempts == 1 and world.gateway.sent == []
    assert _state(world) is State.UNCERTAIN
    events = [e.event for e in world.consents.evidence(TENANT, NUMBER)]
    assert events == ["requested", "uncertain"]


def test_timeouts_and_refusals_are_marked_and_counted(resources: Any) -> None:
    for error, state, metric in (
        (SendUncertainError("ReadTimeoutError"), State.UNCERTAIN, metrics.SMS_SENDS_UNCERTAIN),
        (SendRejectedError("ValidationException"), State.FAILED, metrics.SMS_SENDS_FAILED),
    ):
        world = make_world(resources)
        number = "+12065550100" if state is State.UNCERTAIN else "+12065550101"
        world.shopper(pos_id=state.value, phone=number, persona=state.value)
        world.gateway.fail_with = error
        service = world.service()
        outcomes = service.batch(_batch(world.sale(customer=state.value)), BatchFailures())
        service.count(outcomes)
        service.batch(_batch(world.sale(customer=state.value)), BatchFailures())
        assert _state(world, number) is state and world.gateway.attempts == 1
        assert world.notifier.totals[metric] == 1


def test_quiet_hours_defer_until_the_window_opens_across_dst(world: World) -> None:
    # Given a sale at 21:00 in Los Angeles the evening before daylight saving starts
    world.shopper()
    world.clock.now = datetime(2026, 3, 7, 21, 0, tzinfo=LA)
    service = world.service()
    assert service.batch(_batch(world.sale(on=datetime(2026, 3, 7).date())), BatchFailures()) == {"deferred": 1}
    # Then nothing is sent; it is queued for 8:00 PDT, which is 15:00 UTC (not 16:00 as the night before)
    [deferred] = world.deferrals.queued
    assert deferred.not_before.astimezone(UTC) == datetime(2026, 3, 8, 15, 0, tzinfo=UTC)
    assert world.gateway.sent == [] and _state(world) is State.DEFERRED
    # When the queue delivers it early (a 15-minute hop), it waits again; at 8:00 it is sent once
    world.clock.now = datetime(2026, 3, 8, 7, 59, tzinfo=LA)
    assert service.deferred(deferred) == "waiting"
    world.clock.now = datetime(2026, 3, 8, 8, 0, tzinfo=LA)
    assert service.deferred(deferred) == "sent"
    assert service.deferred(deferred) == "cancelled"  # a duplicate delivery sends nothing
    assert world.gateway.kinds() == ["optin_request"]


def test_the_strictest_zone_wins(world: World) -> None:
    # A Seattle number, a shopper in New York: 18:00 in Seattle is 21:00 in New York
    world.shopper(state="NY")
    world.clock.now = datetime(2026, 7, 1, 18, 0, tzinfo=LA)
    assert world.service().batch(_batch(world.sale()), BatchFailures()) == {"deferred": 1}
    [deferred] = world.deferrals.queued
    assert deferred.not_before == datetime(2026, 7, 2, 8, 0, tzinfo=LA)  # when Seattle opens, New York is open


def test_stop_racing_a_deferred_request_cancels_it(world: World) -> None:
    world.shopper()
    world.clock.now = datetime(2026, 7, 1, 22, 0, tzinfo=LA)
    service = world.service()
    service.batch(_batch(world.sale()), BatchFailures())
    [deferred] = world.deferrals.queued
    # When STOP arrives while the request waits, then the window opens
    assert service.reply(NUMBER, "stop", "in-1") == "opted_out"
    world.clock.now = datetime(2026, 7, 2, 8, 0, tzinfo=LA)
    assert service.deferred(deferred) == "cancelled"
    # Then the request is never sent; the opt-out is acknowledged once
    assert world.gateway.kinds() == ["stop_ack"]
    assert _state(world) is State.OPTED_OUT
    events = [e.event for e in world.consents.evidence(TENANT, NUMBER)]
    assert events[:2] == ["requested", "deferred"] and {"replied", "opted_out", "cancelled"} <= set(events)


def test_replies_yes_stop_help_and_other(world: World) -> None:
    world.shopper()
    service = world.service()
    service.batch(_batch(world.sale()), BatchFailures())
    assert service.reply(NUMBER, "what is this?", "in-1") == "help"  # anything else: the help text, once
    assert service.reply(NUMBER, "huh", "in-2") == "ignored"
    assert service.reply(NUMBER, " Yes! ", "in-3") == "confirmed"
    assert _state(world) is State.CONFIRMED
    world.clock.advance(days=1)  # a new 24 h window
    assert service.reply(NUMBER, "YES", "in-4") == "ignored"  # confirmed once
    assert service.reply(NUMBER, "HELP", "in-5") == "help"
    assert service.reply(NUMBER, "Opt Out", "in-6") == "opted_out"
    assert service.reply(NUMBER, "STOP", "in-7") == "opted_out"  # acknowledged once
    assert service.reply(NUMBER, "START", "in-8") == "ignored"  # an opt-out is for good
    assert world.gateway.kinds() == ["optin_request", "help", "confirmation", "help", "stop_ack"]
    assert _state(world) is State.OPTED_OUT
    # And the evidence is complete: the request's text and version, the provider ids, the raw replies
    evidence = world.consents.evidence(TENANT, NUMBER)
    requested = next(e for e in evidence if e.event == "requested")
    assert requested.details["template_version"] == 1 and "Reply YES" in requested.details["text"]
    sent = [e.details["message_id"] for e in evidence if e.event == "sent"]
    assert sent == ["msg-1", "msg-2", "msg-3", "msg-4", "msg-5"]
    assert [e.details["body"] for e in evidence if e.event == "replied"][:3] == ["what is this?", "huh", " Yes! "]
    consent = world.consents.consent(TENANT, NUMBER)
    assert consent is not None and consent.confirmed_at and consent.opted_out_at and consent.message_ids == ("msg-1",)


def test_at_most_three_texts_per_number_in_24_hours(world: World) -> None:
    world.shopper()
    service = world.service()
    service.batch(_batch(world.sale()), BatchFailures())
    service.reply(NUMBER, "HELP", "in-1")
    service.reply(NUMBER, "YES", "in-2")
    service.reply(NUMBER, "HELP", "in-3")  # a fourth text in 24 h: not sent
    assert world.gateway.kinds() == ["optin_request", "help", "confirmation"]
    assert world.consents.texts_in_window(NUMBER, world.clock()) == 3
    world.clock.advance(hours=24, seconds=1)
    service.reply(NUMBER, "HELP", "in-4")
    assert world.gateway.kinds()[-1] == "help"


def test_a_request_over_the_cap_is_deferred_not_dropped(world: World) -> None:
    # Given the number had three texts (another tenant's) in the last 24 hours
    for minutes in (0, 10, 20):
        world.consents.reserve_text(NUMBER, world.clock.now.replace(minute=minutes) - timedelta(hours=2))
    world.shopper()
    service = world.service()
    assert service.batch(_batch(world.sale()), BatchFailures()) == {"deferred": 1}
    [deferred] = world.deferrals.queued
    assert deferred.not_before > world.clock.now and world.gateway.sent == []
    world.clock.now = deferred.not_before
    assert service.deferred(deferred) == "sent"


def test_a_reply_from_an_unknown_number_changes_nothing(world: World) -> None:
    service = world.service()
    for body in ("YES", "STOP", "HELP", "hello"):
        assert service.reply("+12065550999", body, "in-x") == "unknown"
    items = boto3.client("dynamodb").query(
        TableName=world.resources.personas_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": number_pk("+12065550999")}},
    )["Items"]
    assert items == [] and world.gateway.sent == []


def test_pos_consent_flags_count(world: World) -> None:
    # Given a POSaBIT shopper who opted out at the POS, and one who signed the consent
    out = world.shopper("s1", sms_opt_out=True)
    opted_in = world.shopper("s2", phone="+12065550124", persona="p2", sms_opt_in=True)
    service = world.service()
    outcomes = service.batch(
        _batch(out, opted_in, world.shopper("s3", phone="+12065550125", persona="p3")), BatchFailures()
    )
    assert outcomes == {"pos_opted_out": 1, "pos_opted_in": 1, "no_flag": 1}
    # Then neither is ever asked; the third is
    outcomes = service.batch(
        _batch(world.sale("o1", customer="s1"), world.sale("o2", customer="s2"), world.sale("o3", customer="s3")),
        BatchFailures(),
    )
    assert outcomes == {"answered": 2, "sent": 1}
    assert _state(world) is State.OPTED_OUT and _state(world, "+12065550124") is State.CONFIRMED
    consent = world.consents.consent(TENANT, "+12065550124")
    assert consent is not None and consent.source == "pos:posabit"
    assert [e.details.get("pos_field") for e in world.consents.evidence(TENANT, NUMBER)] == ["sms_opt_out"]


def test_a_pos_opt_out_is_honoured_even_before_the_consumer_saw_the_shopper(world: World) -> None:
    world.shopper(sms_opt_out=True)  # stored, but its stream record not processed yet
    assert world.service().batch(_batch(world.sale()), BatchFailures()) == {"pos_opted_out": 1}
    assert world.gateway.sent == []


def test_a_pos_opt_out_cancels_a_deferred_request(world: World) -> None:
    world.shopper()
    world.clock.now = datetime(2026, 7, 1, 22, 0, tzinfo=LA)
    service = world.service()
    service.batch(_batch(world.sale()), BatchFailures())
    service.batch(_batch(world.shopper(persona=None, sms_opt_out=True)), BatchFailures())
    world.clock.now = datetime(2026, 7, 2, 9, 0, tzinfo=LA)
    assert service.deferred(world.deferrals.queued[0]) == "cancelled"
    assert world.gateway.sent == []


def _sns(message: Any) -> dict[str, Any]:
    return {"EventSource": "aws:sns", "Sns": {"Message": message if isinstance(message, str) else json.dumps(message)}}


def test_malformed_sns_messages_are_rejected_without_crashing_the_batch(
    world: World, monkeypatch: Any, caplog: Any
) -> None:
    world.shopper()
    service = world.service()
    service.batch(_batch(world.sale()), BatchFailures())
    monkeypatch.setattr(reply_handler, "service", lambda: service)
    good = {
        "originationNumber": NUMBER,
        "destinationNumber": "+18885550100",
        "messageKeyword": "KEYWORD_123",
        "messageBody": "YES",
        "inboundMessageId": "in-1",
        "previousPublishedMessageId": "msg-1",
    }
    event = {
        "Records": [
            _sns("not json"),
            _sns(["a list"]),
            _sns({"originationNumber": NUMBER}),
            _sns({**good, "originationNumber": "12"}),
            {"Sns": {}},
            "garbage",
            _sns(good),
        ]
    }
    result = reply_handler.handler(event, _context())
    assert result == {"processed": 7}
    assert world.gateway.kinds() == ["optin_request", "confirmation"]
    assert service.notifier.totals.get(metrics.SMS_REPLIES_MALFORMED) == 6  # type: ignore[attr-defined]
    assert NUMBER not in caplog.text


def _context() -> Any:
    class Context:
        function_name = "possync-optin-reply"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:possync-optin-reply"
        aws_request_id = "req-1"

    return Context()


def test_the_dry_run_count_matches_what_the_consumer_sends(world: World) -> None:
    # Given stored sales of five personas: two fresh, one opted out at the POS, one already asked, one placeholder
    ddb = boto3.client("dynamodb")
    shoppers = [
        world.shopper("s1"),
        world.shopper("s2", phone="+12065550124", persona="p2"),
        world.shopper("s3", phone="+12065550125", persona="p3", sms_opt_out=True),
        world.shopper("s4", phone="+12065550126", persona="p4"),
        world.shopper("s5", phone="+11234567890", persona="p5"),
    ]
    sales = [world.sale(f"o{i}", customer=f"s{i}") for i in range(1, 6)]
    RecordStore(ddb, world.resources.records_table).upsert_changed([*shoppers, *sales], "raw/test")
    service = world.service()
    service.batch(_batch(shoppers[2]), BatchFailures())  # the POS opt-out reaches the consumer
    service.batch(_batch(sales[3]), BatchFailures())  # p4 was asked already
    asked_before = len(world.gateway.sent)
    # When the admin previews the setting, then the consumer applies the same sales
    settings = IntegrationSettings(
        vendor=sales[0].vendor, sms_optin_after=world.settings.integrations[sales[0].vendor].sms_optin_after
    )
    impact = count(
        ddb, world.resources.records_table, world.resources.personas_table, TENANT, settings, enroll=False, text=True
    )
    service.batch(_batch(*sales), BatchFailures())
    # Then the preview counted exactly the texts that went out
    assert impact.would_text == len(world.gateway.sent) - asked_before == 2
    assert (impact.text_answered, impact.text_no_phone) == (2, 1)


def test_the_deferral_handler_fails_unreadable_messages_and_sends_due_ones(world: World, monkeypatch: Any) -> None:
    from functions.optin import deferred as deferred_handler

    world.shopper()
    world.clock.now = datetime(2026, 7, 1, 22, 0, tzinfo=LA)
    service = world.service()
    service.batch(_batch(world.sale()), BatchFailures())
    [due] = world.deferrals.queued
    world.clock.now = datetime(2026, 7, 2, 8, 0, tzinfo=LA)
    monkeypatch.setattr(deferred_handler, "service", lambda: service)
    event = {
        "Records": [
            {"messageId": "m1", "body": "not json"},
            {"messageId": "m2", "body": json.dumps({"tenant": "t1", "number": NUMBER, "not_before": "2026-07-02"})},
            {"messageId": "m3", "body": due.body()},
        ]
    }
    # Then the due one is sent, and the two it cannot read are failed (SQS redelivers them, then dead-letters them
    # where an alarm sees them), never dropped: each is a request that would otherwise never be texted
    assert deferred_handler.handler(event, _context()) == {
        "batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]
    }
    assert world.gateway.kinds() == ["optin_request"]


def test_invalid_settings_leave_the_sale_waiting_for_the_reevaluation_and_unreadable_ones_retry_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a persona with a qualifying sale, arriving while the settings are invalid
    world.shopper()
    service = world.service()
    sale = world.sale("o1")
    valid = world.settings.integration

    def invalid(tenant: str, vendor: Vendor) -> IntegrationSettings:
        raise SettingsError("integration settings of t1/posabit: sms_optin_after: not a date")

    monkeypatch.setattr(world.settings, "integration", invalid)
    failures = BatchFailures()
    # Then nothing is sent, the record is acknowledged (it waits for valid settings: the flag makes the job that their
    # fix requests run over the stored sales), and SettingsInvalid is counted
    assert service.batch(_batch(sale), failures) == {"waiting_for_settings": 1}
    assert len(failures) == 0 and world.gateway.sent == []
    assert world.personas.waiting_flag(TENANT, Vendor.POSABIT) is not None
    assert world.notifier.totals[metrics.SETTINGS_INVALID] == 1

    # When the settings cannot be read at all: the record fails and is retried, never acknowledged
    def unreadable(tenant: str, vendor: Vendor) -> IntegrationSettings:
        raise SettingsUnavailableError("integration settings of t1/posabit could not be read (ThrottlingException)")

    monkeypatch.setattr(world.settings, "integration", unreadable)
    failures = BatchFailures()
    assert service.batch(_batch(sale), failures) == {}
    assert "0" in failures and world.gateway.sent == []

    # When the settings are valid again, the re-evaluation runs the stored sale through the same code: one request,
    # and a second run (or the stream alongside) sends nothing more
    monkeypatch.setattr(world.settings, "integration", valid)
    first = service.reapply([(sale, 1), (world.records.records[(TENANT, "posabit", "c1", "s1")], 1)])
    assert (first.outcomes["sent"], first.failed) == (1, 0)
    again = service.reapply([(sale, 1)])
    assert again.outcomes == {"already_requested": 1} and again.failed == 0
    assert service.batch(_batch(sale), BatchFailures()) == {"already_requested": 1}
    assert world.gateway.kinds() == ["optin_request"]


def test_a_shopper_parked_for_invalid_settings_leaves_its_waiting_sale_to_the_reevaluation(world: World) -> None:
    # Given a sale waiting for its shopper's persona, and the personas consumer parked that shopper (its settings
    # were invalid): the persona appears only when the settings are fixed, so retrying would end in the DLQ
    shopper = world.shopper(persona=None)
    service = world.service()
    assert service.batch(_batch(world.sale()), BatchFailures()) == {"waiting_for_persona": 1}
    world.personas.park_waiting(shopper, 1, "2026-07-01T19:00:00+00:00")
    # When the opt-in consumer sees the shopper record: acknowledged, nothing sent, the waiting sale kept
    failures = BatchFailures()
    assert service.batch(_batch(shopper), failures) == {"waiting_for_persona": 1}
    assert len(failures) == 0 and world.gateway.sent == []
    assert world.consents.waiting_sale(TENANT, "posabit", "c1", "s1") is not None
    # When the settings are fixed, the job's shopper phase makes the persona, then runs the opt-in over the shopper
    world.shopper()
    first = service.reapply([(shopper, 1)])
    assert (first.outcomes["sent"], first.failed) == (1, 0)
    assert world.consents.waiting_sale(TENANT, "posabit", "c1", "s1") is None
    assert world.gateway.kinds() == ["optin_request"]
