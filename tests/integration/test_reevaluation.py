"""The re-evaluation job under moto, end to end through the real handlers: records stored as a pull stores them,
the records stream pumped to the real consumers, then a settings change, its job run by the real job handler from its
SQS queue. Pull first, then configure: what the admin changes reaches the data already stored, exactly once."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner, Result

from functions.core import layout, metrics, record_index, reevaluation
from functions.core.layout import Vendor
from functions.core.loyalty.codecs import ledger_from_item
from functions.core.loyalty.repository import PersonaStore
from functions.core.loyalty.values import Persona
from functions.core.models import CanonicalRecord
from functions.core.reevaluation import (
    ReevaluationRequests,
    RunStatus,
    RunStatuses,
    vendors_with_credentials,
)
from functions.core.sms.gateway import read_outbox
from functions.core.sms.service import ENV_NOW
from functions.core.sources import clear_caches
from functions.core.store import ControlStore, RecordStore, RegisteredCredential, WriteStats
from functions.core.streams import CONSUMERS
from functions.core.tenants import TenantRegistry
from functions.reevaluate import handler as reevaluate_handler
from possync.admin.context import AdminContext
from possync.admin.tenants import create_tenant
from possync.cli import app
from possync.local.lambda_shim import HandlerRunner, environment
from possync.local.provision import Resources
from possync.local.runtime import JobRecord, cold_start, run_reevaluations
from possync.local.stream_pump import LocalConsumer, StreamPump, StreamReader
from possync.target import Target
from tests.aws_faults import Faulty
from tests.aws_faults import metrics as emitted_metrics
from tests.integration.test_personas_service import PHONE, TENANT, balance, sale, shopper

pytestmark = pytest.mark.moto_store

ENROLL = {"age_gate_attested": True, "enroll_after": "2026-11-20"}


@dataclass
class Site:
    """One deployment under moto: the records table and its stream, the consumers and the re-evaluation job."""

    resources: Resources
    runner: HandlerRunner
    reader: StreamReader
    pump: StreamPump

    @property
    def ddb(self) -> Any:
        return boto3.client("dynamodb", region_name="us-east-1")

    # --- what the pulls and the admin do ---------------------------------------------------------------------
    def pull(self, *records: CanonicalRecord) -> None:
        """Store records as a pull does, then let the stream consumers see them (as their mappings would)."""
        RecordStore(self.ddb, self.resources.records_table).upsert_changed(records, "raw/page-1.json.gz")
        self.pump.feed(self.reader.read())
        stats = self.pump.drain()
        assert all(s.failed_invocations == s.partial_failures == s.dead_lettered == 0 for s in stats.values()), stats

    def integration(self, vendor: Vendor = Vendor.POSABIT, **settings: Any) -> None:
        name = self.resources.names.integration_settings_parameter(TENANT, vendor)
        value = json.dumps({"vendor": vendor.value, **settings}, default=str)
        boto3.client("ssm").put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
        clear_caches()

    def loyalty(self, raw: dict[str, Any] | str) -> None:
        name = self.resources.names.tenant_settings_parameter(TENANT)
        value = raw if isinstance(raw, str) else json.dumps(raw, default=str)
        boto3.client("ssm").put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
        clear_caches()

    def register(self, vendor: Vendor = Vendor.POSABIT, credential_id: str = "c1") -> None:
        ControlStore(self.ddb, self.resources.control_table).register_credential(
            RegisteredCredential(TENANT, vendor, credential_id, True, f"possync/{TENANT}/{vendor.value}/c1")
        )

    def requests(self) -> ReevaluationRequests:
        control = ControlStore(self.ddb, self.resources.control_table)
        return ReevaluationRequests(
            statuses=self.statuses,
            sqs=boto3.client("sqs"),
            queue_url=self.resources.reevaluation_queue_url,
            vendors_of=lambda tenant: vendors_with_credentials(control, tenant),
        )

    def request(self, vendor: Vendor = Vendor.POSABIT, trigger: str = "settings set (test)") -> None:
        self.requests().request(TENANT, vendor, trigger)

    def run_jobs(self, **options: Any) -> list[JobRecord]:
        return run_reevaluations(
            lambda s: boto3.client(s, region_name="us-east-1"), self.resources, self.runner, **options
        )

    def cli(self, *args: str) -> Result:
        """The possync CLI against this deployment (its tenant registered as `possync tenants add` does)."""
        ddb = self.ddb
        if not TenantRegistry(ddb, self.resources.control_table).get(TENANT):
            create_tenant(ddb, self.resources.control_table, TENANT, who="test")
        resources = self.resources
        target = Target(
            names=resources.names,
            records_table=resources.records_table,
            control_table=resources.control_table,
            archive_bucket=resources.archive_bucket,
            personas_table=resources.personas_table,
            reevaluation_queue_url=resources.reevaluation_queue_url,
            region="us-east-1",
        )
        return CliRunner().invoke(app, list(args), obj=AdminContext(target_override=target, actor_override="test"))

    # --- what there is to see --------------------------------------------------------------------------------
    @property
    def statuses(self) -> RunStatuses:
        return RunStatuses(self.ddb, self.resources.control_table)

    def status(self, vendor: Vendor = Vendor.POSABIT) -> RunStatus:
        return self.statuses.get(TENANT, vendor)

    @property
    def store(self) -> PersonaStore:
        return PersonaStore(self.ddb, self.resources.personas_table)

    def persona(self, pos_id: str, vendor: Vendor = Vendor.POSABIT) -> Persona:
        owner = self.store.pos_owner(TENANT, vendor, "c1", pos_id)
        assert owner is not None, f"{pos_id} has no persona"
        found = self.store.get_persona(TENANT, owner)
        assert found is not None
        return found

    def ledger(self, persona: Persona) -> dict[str, int]:
        """sale or import id -> points of the persona's ledger."""
        items = self.ddb.query(
            TableName=self.resources.personas_table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :ledger)",
            ExpressionAttributeValues={
                ":pk": {"S": layout.persona_pk(TENANT, persona.persona_id)},
                ":ledger": {"S": "LEDGER#"},
            },
            ConsistentRead=True,
        )["Items"]
        entries = [ledger_from_item(item) for item in items]
        return {entry.source_id: entry.points for entry in entries}

    def queued(self, queue: str = "queue") -> list[dict[str, Any]]:
        url = self.resources.reevaluation_queue_url if queue == "queue" else self.resources.reevaluation_dlq_url
        attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return [attributes]


@pytest.fixture
def site(resources: Resources) -> Iterator[Site]:
    cold_start()
    runner = HandlerRunner()
    stream_arn = resources.records_stream_arn
    pump = StreamPump(
        runner,
        [
            LocalConsumer(
                function=name,
                spec=CONSUMERS[name],
                env=resources.lambda_env(name),
                failure_queue_url=resources.rules_dlq_urls[name],
            )
            for name in layout.RULE_FUNCTIONS
        ],
        boto3.client("sqs"),
        stream_arn,
    )
    yield Site(resources, runner, StreamReader(boto3.client("dynamodbstreams"), stream_arn), pump)
    cold_start()


def job_service(site: Site) -> reevaluation.ReevaluationService:
    """The handler's own service (built as on a cold start), to put a failing client in front of it."""
    with environment(site.resources.lambda_env(layout.REEVALUATION_FUNCTION)):
        return reevaluate_handler.service()


# --- the example: settings made after the data was pulled reach it --------------------------------------


def test_enroll_after_set_after_the_pull_enrolls_from_the_first_qualifying_sale_and_books_its_later_sales(
    site: Site,
) -> None:
    # Given a store pulled before loyalty was configured: a shopper with sales on 11-10, 11-21 and 11-26
    site.loyalty({"points_per_dollar": 1})
    site.pull(shopper("1", phone=PHONE))
    site.pull(
        sale("s-1110", "1", date(2026, 11, 10), 500),
        sale("s-1121", "1", date(2026, 11, 21), 1_000),
        sale("s-1126", "1", date(2026, 11, 26), 2_000),
    )
    before = site.persona("1")
    assert (before.member, before.points) == (False, 0)

    # When the admin sets enroll_after=2026-11-20 (age gate attested) and the change's job runs
    site.integration(**ENROLL)
    site.request()
    jobs = site.run_jobs()

    # Then the shopper is a member from the 11-21 sale (its store-local date), and both later sales earn points
    after = site.persona("1")
    assert [job.ok for job in jobs] == [True]
    assert (after.member, after.member_since_date, after.member_how) == (True, "2026-11-21", "enroll_after:posabit")
    assert site.ledger(after) == {"s-1110": 0, "s-1121": 10, "s-1126": 20}
    assert after.points == 30
    status = site.status()
    assert (status.state, status.phase, status.error) == ("done", "done", None)
    assert (status.counts.evaluated, status.counts.enrolled, status.counts.points) == (4, 1, 30)
    assert status.trigger == "settings set (test)" and status.shown_state(datetime.now(UTC)) == "done"


def emitted(site: Site, name: str) -> list[float]:
    """Values of one metric the handlers emitted (their stdout went to the runner's log, as to CloudWatch)."""
    return [m.value for m in emitted_metrics(site.runner.log.getvalue()) if m.name == name and not m.dimensions]


def pulled_store(site: Site) -> None:
    """A pulled store, nothing configured but the points rate: two shoppers, their sales and a POSaBIT balance."""
    site.loyalty({"points_per_dollar": 1})
    site.pull(shopper("1", phone=PHONE), shopper("2", email="bo@example.com"))
    site.pull(
        sale("a1", "1", date(2026, 11, 21), 1_000),
        sale("a2", "1", date(2026, 11, 26), 2_000),
        sale("b1", "2", date(2026, 11, 22), 4_000),
        sale("b0", "2", date(2026, 11, 2), 300),
        balance("bal-2", "2", 75, date(2026, 11, 1)),
    )


# --- exactly once: twice, retried, and beside the stream ---------------------------------------------------------


def test_a_second_run_and_the_stream_redelivering_the_same_records_book_nothing_twice(site: Site) -> None:
    pulled_store(site)
    site.integration(**ENROLL, loyalty_points_imported_on="2026-11-01")
    site.request()
    site.run_jobs()
    first = {pos: (site.persona(pos).points, site.ledger(site.persona(pos))) for pos in ("1", "2")}
    assert first == {"1": (30, {"a1": 10, "a2": 20}), "2": (75 + 40, {"b0": 0, "b1": 40, "bal-2": 75})}

    # When the same change is requested again: the settings are those of the last run, so nothing runs
    site.request(trigger="the same change, again")
    site.run_jobs()
    assert site.status().counts.evaluated == 7 and site.status().shown_state(datetime.now(UTC)) == "done"
    # When a change that moves nothing (the brand name) runs a whole second re-evaluation, and the stream
    # delivers every record again meanwhile
    site.loyalty({"points_per_dollar": 1, "brand_name": "Greenleaf"})
    site.request(trigger="tenant settings")
    site.pump.feed(site.reader.read())
    site.run_jobs()
    RecordStore(site.ddb, site.resources.records_table)  # the stream replays: the consumers see old versions again
    # Then every sale and the balance are still booked once, at the same points
    assert {pos: (site.persona(pos).points, site.ledger(site.persona(pos))) for pos in ("1", "2")} == first
    second = site.status()
    assert (second.state, second.counts.evaluated, second.counts.enrolled, second.counts.points) == ("done", 7, 0, 0)
    assert second.trigger == "tenant settings"


def test_pages_interleaved_with_the_stream_book_each_sale_once_at_its_newest_version(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    pulled_store(site)
    site.integration(**ENROLL)
    site.request()
    # Given a run that reads one record per page and has time for one page per invocation (a continuation each)
    monkeypatch.setattr(reevaluation, "PAGE_SIZE", 1)
    short = {"timeout_seconds": reevaluation.TIME_BUDGET_SECONDS - 1, "max_messages": 1}
    for _ in range(4):  # two shoppers, two sales
        [job] = site.run_jobs(**short)
        assert job.ok
    assert site.status().phase == "sale" and site.status().continuations == 4
    # When, between its pages, the POS refunds a sale the run has already applied and records a new one
    site.pull(
        sale("a1", "1", date(2026, 11, 21), 1_000, status="partially_refunded", refunded=400, minutes=90),
        sale("a3", "1", date(2026, 11, 28), 500),
    )
    while site.run_jobs(**short):
        pass
    # Then each sale is booked once, at its newest version, whichever path applied it last
    persona = site.persona("1")
    assert site.ledger(persona) == {"a1": 6, "a2": 20, "a3": 5}
    assert persona.points == 31 and persona.member_since_date == "2026-11-21"
    status = site.status()
    assert status.state == "done" and status.counts.evaluated == 2 + 6  # the run read the new sale too
    assert status.continuations >= 7


def test_shoppers_on_later_pages_are_resolved_before_any_sale_is_applied(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given sales stored while their shoppers' personas were missing (a persona table restored empty, say)
    site.loyalty({"points_per_dollar": 1})
    site.integration(**ENROLL)
    records = [shopper(str(n), email=f"p{n}@example.com") for n in range(5)]
    records += [sale(f"s{n}", str(n), date(2026, 11, 21 + n), 1_000) for n in range(5)]
    RecordStore(site.ddb, site.resources.records_table).upsert_changed(records, "raw/page-1.json.gz")
    site.reader.skip_to_latest()  # the stream never delivered them
    monkeypatch.setattr(reevaluation, "PAGE_SIZE", 2)
    # When the job runs in pages of two, one page per invocation
    site.request()
    invocations = 0
    while site.run_jobs(timeout_seconds=1, max_messages=1):
        invocations += 1
    # Then all five shoppers became personas before the sales were applied: every sale enrolled its shopper
    assert invocations == 3 + 3 + 1 + 1  # shopper pages, sale pages, the balance phase, the parked records
    for n in range(5):
        persona = site.persona(str(n))
        assert (persona.member_since_date, persona.points) == (f"2026-11-{21 + n}", 10)
    assert site.store.pending_markers(TENANT, {(Vendor.POSABIT, "c1", str(n)) for n in range(5)}) == set()


def test_a_failed_page_is_retried_from_where_the_run_stood_and_books_nothing_twice(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reevaluation, "RETRY_BACKOFF_SECONDS", (1, 1, 1))  # seconds, so the test can wait it out
    pulled_store(site)
    site.integration(**ENROLL)
    site.request()
    service = job_service(site)
    # Given DynamoDB throttling the index query of the sales (past its retries), once
    real = service.records.ddb
    service.records.ddb = Faulty(real, "query", after=1, times=1)
    [attempt] = site.run_jobs()

    # Then the attempt failed, is shown as retrying with the reason, and the message waits out its backoff
    assert not attempt.ok
    status = site.status()
    assert (status.state, status.phase) == ("retrying", "sale")
    assert status.error is not None and "ThrottlingException" in status.error and "attempt 1 of 4" in status.error
    assert status.shown_state(datetime.now(UTC)) == "retrying"
    assert "retried in about 1 s" in status.error
    assert site.run_jobs() == [] and hidden(site) == 1  # hidden for its backoff
    assert emitted(site, metrics.AWS_CALLS_FAILED) == [1.0] and emitted(site, metrics.REEVALUATIONS_FAILED) == []

    # When SQS hands it out again (the backoff over), the run goes on from the sales and finishes
    time.sleep(1.2)
    [retry] = site.run_jobs()
    assert retry.ok
    status = site.status()
    assert (status.state, status.error, status.counts.evaluated) == ("done", None, 7)
    assert site.persona("1").points == 30 and site.ledger(site.persona("2")) == {"b0": 0, "b1": 40}


class _DiesMidPage(RecordStore):
    """A pull that wrote its page index item and two of the records, then died (the Lambda timed out)."""

    def _batch_write(self, items: list[dict[str, Any]], stats: WriteStats) -> None:
        if any(record_index.is_page_index(item["pk"]["S"]) for item in items):
            super()._batch_write(items, stats)
            return
        super()._batch_write(items[:2], stats)
        raise TimeoutError("Lambda timed out")


def test_sales_listed_twice_after_a_pull_died_mid_page_are_evaluated_once_in_pages_that_resume_inside_the_index(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given pages of 2 records (cursors inside page index items, saved between pages), and sales whose first pull
    # died after two of them were written: its retry lists the other two in a second page index item
    monkeypatch.setattr(reevaluation, "PAGE_SIZE", 2)
    site.loyalty({"points_per_dollar": 1})
    site.pull(shopper("1", phone=PHONE), shopper("2", email="bo@example.com"))
    sales = (
        sale("a1", "1", date(2026, 11, 21), 1_000),
        sale("a2", "1", date(2026, 11, 26), 2_000),
        sale("b1", "2", date(2026, 11, 22), 4_000),
        sale("b0", "2", date(2026, 11, 2), 300),
    )
    with pytest.raises(TimeoutError):
        _DiesMidPage(site.ddb, site.resources.records_table).upsert_changed(sales, "raw/page-1.json.gz")
    site.pull(*sales)

    # When enroll_after is set and its job runs
    site.integration(**ENROLL)
    site.request()
    [job] = site.run_jobs()

    # Then every record was evaluated once, and each sale booked once
    assert job.ok
    status = site.status()
    assert (status.state, status.error, status.counts.evaluated) == ("done", None, 2 + 4)
    assert site.ledger(site.persona("1")) == {"a1": 10, "a2": 20} and site.persona("1").points == 30
    assert site.ledger(site.persona("2")) == {"b0": 0, "b1": 40} and site.persona("2").points == 40


def hidden(site: Site) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=site.resources.reevaluation_queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


# --- records parked for invalid settings (issue 7), and settings invalid when the job starts ----------------------


def test_a_sale_parked_while_the_tenant_settings_were_invalid_is_booked_once_when_they_are_fixed(site: Site) -> None:
    # Given a configured store whose job has run: its settings are those of the last run
    site.register()
    site.loyalty({"points_per_dollar": 1})
    site.integration(**ENROLL)
    site.pull(shopper("1", phone=PHONE), sale("s1", "1", date(2026, 11, 21), 1_000))
    site.requests().request_tenant(TENANT, "settings set (test)")
    site.run_jobs()
    assert site.status().state == "done" and site.persona("1").points == 10
    # When the tenant's loyalty settings are briefly invalid while a sale arrives
    site.loyalty('{"points_per_dollar": "lots"}')
    site.pull(sale("s2", "1", date(2026, 11, 23), 2_000))
    assert site.persona("1").points == 10 and site.store.count_waiting(TENANT, Vendor.POSABIT) == 1
    assert emitted(site, metrics.RECORDS_WAITING)[-1] == 1.0
    # ... and are then fixed with the CLI, back to exactly what they were (the change's job runs: records wait)
    fixed = site.cli("settings", "set", "--tenant", TENANT, "points_per_dollar=1")
    assert fixed.exit_code == 0, fixed.output
    assert "Re-evaluation of the stored posabit records of t1 queued" in " ".join(fixed.output.split())
    [job] = site.run_jobs()

    # Then the parked sale is booked, once, and nothing waits any more
    persona = site.persona("1")
    assert job.ok and site.ledger(persona) == {"s1": 10, "s2": 20} and persona.points == 30
    assert site.store.count_waiting(TENANT, Vendor.POSABIT) == 0
    assert emitted(site, metrics.RECORDS_WAITING)[-1] == 0.0
    status = site.status()
    assert (status.state, status.counts.waiting_applied, status.counts.still_waiting) == ("done", 1, 0)
    # and the stream delivering the sale again (its retry, say) changes nothing
    site.pump.feed(site.reader.read())
    site.pull(sale("s2", "1", date(2026, 11, 23), 2_000))
    assert site.persona("1").points == 30


def test_a_job_whose_settings_are_invalid_fails_visibly_and_parks_nothing(site: Site) -> None:
    pulled_store(site)
    site.integration(**ENROLL)
    site.loyalty({"points_per_dollar": 1, "timezone": "Mars/Olympus_Mons"})
    site.request()
    [job] = site.run_jobs()

    status = site.status()
    assert job.ok  # nothing a retry could fix: the message is done
    assert status.state == "failed" and status.error is not None
    assert "timezone" in status.error and "nothing was re-evaluated" in status.error
    assert site.store.count_waiting(TENANT, Vendor.POSABIT) == 0 and site.persona("1").member is False
    assert emitted(site, metrics.REEVALUATIONS_FAILED) == [1.0]
    # When the settings are fixed, the change runs the job again, and it succeeds
    site.loyalty({"points_per_dollar": 1})
    site.request()
    site.run_jobs()
    assert site.status().state == "done" and site.persona("1").member is True


def test_the_last_failed_attempt_records_the_run_as_failed_and_counts_it(site: Site) -> None:
    pulled_store(site)
    site.integration(**ENROLL)
    service = job_service(site)
    service.records.ddb = Faulty(service.records.ddb, "query")  # DynamoDB never answers the index query
    body = reevaluation.ReevaluationJob(tenant=TENANT, vendor=Vendor.POSABIT, trigger="test").model_dump_json()

    for attempt in range(1, reevaluation.MAX_RECEIVES + 1):
        message = reevaluation.QueueMessage(body, "message-1", receive_count=attempt)
        with pytest.raises(reevaluation.RunFailedError):
            service.handle(message, lambda: 300.0)
        state = site.status().state
        assert state == ("failed" if attempt == reevaluation.MAX_RECEIVES else "retrying"), attempt

    status = site.status()
    assert status.error is not None and "gave up after 4 attempts" in status.error
    assert "possync reevaluate --tenant t1 --vendor posabit" in status.error
    assert status.lease_until is None and status.shown_state(datetime.now(UTC)) == "failed"


# --- coalescing ----------------------------------------------------------------------------------------------------


def test_changes_made_while_a_run_is_under_way_run_once_after_it(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reevaluation, "PAGE_SIZE", 1)
    monkeypatch.setattr(reevaluation, "RECHECK_DELAY_SECONDS", 0)  # looks again at once (2 minutes in AWS)
    pulled_store(site)
    site.integration(**ENROLL)
    site.request()
    short = {"timeout_seconds": 1, "max_messages": 1}
    site.run_jobs(**short)  # the run has done one page and continues
    assert site.status().state == "running"
    # When three more changes are made while it runs: one asks for nothing new, two for new settings
    site.request(trigger="the same settings again")
    site.integration(**ENROLL, loyalty_points_imported_on="2026-11-01")
    site.request(trigger="points import 1")
    site.request(trigger="points import 2")
    assert site.status().shown_state(datetime.now(UTC)) == "running" and site.status().queued_behind
    while site.run_jobs(**short):
        pass
    # Then the first run finished, and one more ran after it, from the new settings (the others it covered)
    status = site.status()
    assert logged(site, "re-evaluation started") == 2
    answered = ("re-evaluation covered by the running one", "re-evaluation not needed: settings as of the last run")
    assert sum(logged(site, message) for message in answered) == 2
    assert status.state == "done" and status.trigger in {
        "the same settings again",
        "points import 1",
        "points import 2",
    }
    assert status.requests == status.handled_requests == 4 and status.shown_state(datetime.now(UTC)) == "done"
    assert site.ledger(site.persona("2"))["bal-2"] == 75  # imported once (by whichever run read the new setting)


def logged(site: Site, message: str) -> int:
    """How many log lines the handlers wrote with this message."""
    return sum(1 for line in site.runner.log.getvalue().splitlines() if f'"message":"{message}"' in line)


# --- an edit made outside the CLI: EventBridge's "Parameter Store Change" event, delivered through the queue -----

FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"


def ssm_change(name: str, operation: str = "Update") -> dict[str, Any]:
    """The event EventBridge puts on the job queue for an edit in Parameter Store (the AWS sample's shape)."""
    event = json.loads((FIXTURES / "ssm_parameter_store_change.json").read_text())
    event["detail"].update(name=name, operation=operation)
    event["resources"] = [f"arn:aws:ssm:us-east-1:123456789012:parameter/{name.lstrip('/')}"]
    return event


def put_event(site: Site, event: dict[str, Any]) -> None:
    boto3.client("sqs").send_message(QueueUrl=site.resources.reevaluation_queue_url, MessageBody=json.dumps(event))


def test_an_integration_settings_edit_in_the_console_runs_that_integrations_job(site: Site) -> None:
    pulled_store(site)
    site.integration(**ENROLL)  # edited in the console: no CLI, only the event
    names = site.resources.names
    put_event(site, ssm_change(names.integration_settings_parameter(TENANT, Vendor.POSABIT)))

    jobs = site.run_jobs()

    assert [job.ok for job in jobs] == [True, True]  # the event, then the job it requested
    status = site.status()
    assert status.state == "done" and status.trigger == f"SSM Update of /{names.prefix}/tenants/t1/integrations/posabit"
    assert site.persona("1").member_since_date == "2026-11-21"


def test_a_tenant_settings_edit_runs_one_job_per_pos_the_tenant_has_credentials_for(site: Site) -> None:
    site.register(Vendor.POSABIT)
    site.register(Vendor.FLOURISH)
    site.loyalty({"points_per_dollar": 2})
    # EventBridge may name the parameter without its leading "/": read the same
    put_event(site, ssm_change(site.resources.names.tenant_settings_parameter(TENANT).lstrip("/"), "Create"))

    site.run_jobs()

    assert {s.vendor: s.state for s in site.statuses.of_tenant(TENANT)} == {
        Vendor.POSABIT: "done",
        Vendor.FLOURISH: "done",
    }


@pytest.mark.parametrize(
    "name",
    [
        "/possync/tenants/t1/integrations/square",  # no such POS
        "/possync/tenants/t1/credentials",  # not settings
        "/possync-dev/tenants/t1/loyalty",  # another stage's
        "/possync/tenants/T1!/loyalty",  # not a tenant id
    ],
)
def test_other_parameter_changes_request_nothing(site: Site, name: str) -> None:
    site.register()
    put_event(site, ssm_change(name))

    [job] = site.run_jobs()

    assert job.ok and site.statuses.of_tenant(TENANT) == []


def test_a_message_that_can_never_be_a_job_goes_to_the_dead_letter_queue_at_once(site: Site) -> None:
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=site.resources.reevaluation_queue_url, MessageBody='{"tenant": "../etc", "vendor": "x"}')

    [job] = site.run_jobs()

    assert job.ok  # acknowledged: not retried
    [dead] = sqs.receive_message(
        QueueUrl=site.resources.reevaluation_dlq_url, MessageAttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]
    assert dead["Body"] == '{"tenant": "../etc", "vendor": "x"}'
    assert "not a valid re-evaluation job" in dead["MessageAttributes"]["rejected_reason"]["StringValue"]


# --- the SMS opt-in: sms_optin_after set after the pull, settings fixed after a sale -----------------------------

# Noon in Washington (the test numbers' area code 206 and the sales' store zone): inside the texting window.
DAYTIME = "2026-11-30T12:00:00-08:00"
OTHER_PHONE = "+12065550177"


@pytest.fixture
def texting(site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    """The site with the opt-in texting through the local outbox (in tmp_path) as if at DAYTIME."""
    monkeypatch.chdir(tmp_path)  # the outbox path the consumers and the job are given is relative
    monkeypatch.setenv(ENV_NOW, DAYTIME)
    return site


def requests_texted(site: Site) -> list[dict[str, Any]]:
    return [line for line in read_outbox(Path(site.resources.sms_outbox)) if line["kind"] == "optin_request"]


def predicted_texts(site: Site, *assignments: str) -> int:
    result = site.cli("settings", "set", "--tenant", TENANT, "--vendor", "posabit", *assignments, "--dry-run")
    assert result.exit_code == 0, result.output
    found = re.search(r"Would text: (\d+) persona", " ".join(result.output.split()))
    assert found is not None, result.output
    return int(found.group(1))


def test_sms_optin_after_set_after_the_pull_asks_the_stored_sales_personas_once_as_the_dry_run_predicts(
    texting: Site,
) -> None:
    site = texting
    # Given a pulled store, SMS not configured: two shoppers with a mobile and a sale on or after 11-20, one with
    # only an earlier sale, one without a phone
    site.loyalty({"points_per_dollar": 1, "brand_name": "Greenleaf"})
    site.pull(
        shopper("1", phone=PHONE),
        shopper("2", phone=OTHER_PHONE),
        shopper("3", phone="+12065550188"),
        shopper("4", email="no-phone@example.com"),
    )
    site.pull(
        sale("a1", "1", date(2026, 11, 21), 1_000),
        sale("a2", "1", date(2026, 11, 26), 2_000),
        sale("b1", "2", date(2026, 11, 22), 4_000),
        sale("c1", "3", date(2026, 11, 2), 300),
        sale("d1", "4", date(2026, 11, 23), 500),
    )
    assert requests_texted(site) == []

    # When the admin previews sms_optin_after=2026-11-20, applies it, and the change's job runs
    would_text = predicted_texts(site, "sms_optin_after=2026-11-20")
    change = ("settings", "set", "--tenant", TENANT, "--vendor", "posabit", "sms_optin_after=2026-11-20")
    applied = site.cli(*change, "--yes")
    assert applied.exit_code == 0 and "queued" in applied.output, applied.output
    assert [job.ok for job in site.run_jobs()] == [True]

    # Then exactly the predicted personas got one opt-in request each, through the opt-in's own templates
    sent = requests_texted(site)
    assert len(sent) == would_text == 2
    assert sorted(line["to"] for line in sent) == sorted([PHONE, OTHER_PHONE])
    assert all(line["body"].startswith("Greenleaf: ") and line["sent_at"].startswith("2026-11-30T12:") for line in sent)
    status = site.status()
    assert (status.state, status.counts.texts_sent, status.counts.texts_deferred) == ("done", 2, 0)

    # When the stream delivers every record again and a forced second run goes over the same records
    site.pump.feed(site.reader.read())
    site.pump.drain()
    site.requests().request(TENANT, Vendor.POSABIT, "again", force=True)
    assert [job.ok for job in site.run_jobs()] == [True]
    # Then nothing more was sent: one request per number, ever
    assert len(requests_texted(site)) == 2
    assert site.status().counts.texts_sent == 0


def test_a_sale_that_came_while_the_settings_were_invalid_is_asked_once_they_are_fixed(texting: Site) -> None:
    site = texting
    # Given SMS configured, a shopper pulled and a first run done with those settings
    tenant_settings = {"points_per_dollar": 1, "brand_name": "Greenleaf"}
    site.loyalty(tenant_settings)
    site.integration(sms_optin_after="2026-11-20")
    site.pull(shopper("1", phone=PHONE))
    site.request()
    assert [job.ok for job in site.run_jobs()] == [True]
    # When the tenant settings are invalid while a qualifying sale arrives
    site.loyalty('{"points_per_dollar": 1, "brand_name": "Greenleaf", "sms_template_version": 0}')
    site.pull(sale("a1", "1", date(2026, 11, 21), 1_000))
    # Then nothing is sent, and the opt-in consumer says the sale waits for valid settings
    assert requests_texted(site) == []
    assert "opt-in waits for valid settings" in site.runner.log.getvalue()
    assert emitted(site, metrics.SETTINGS_INVALID)
    # When the settings are fixed (back to what the first run saw) and the change's job runs
    site.loyalty(tenant_settings)
    site.request(trigger="tenant settings fixed")
    assert [job.ok for job in site.run_jobs()] == [True]
    # Then the persona got exactly one request; a second run sends nothing more
    assert [line["to"] for line in requests_texted(site)] == [PHONE]
    site.requests().request(TENANT, Vendor.POSABIT, "again", force=True)
    site.run_jobs()
    assert len(requests_texted(site)) == 1
