"""The re-evaluation job under moto, end to end through the real handlers: records stored as a pull stores them,
the records stream pumped to the real consumers, then a settings change, its job run by the real job handler from its
SQS queue. Pull first, then configure: what the admin changes reaches the data already stored, exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import boto3
import pytest

from functions.core import layout, metrics, reevaluation
from functions.core.layout import RecordKind, Vendor
from functions.core.loyalty.codecs import ledger_from_item
from functions.core.loyalty.repository import PersonaStore
from functions.core.loyalty.values import Persona
from functions.core.models import CanonicalRecord
from functions.core.reevaluation import (
    ReevaluationRequests,
    RunStatus,
    RunStatuses,
    settings_change_pattern,
    vendors_with_credentials,
)
from functions.core.sources import clear_caches
from functions.core.store import ControlStore, RecordStore, RegisteredCredential
from functions.core.streams import CONSUMERS
from functions.reevaluate import handler as reevaluate_handler
from possync.local.lambda_shim import HandlerRunner, environment
from possync.local.provision import Resources
from possync.local.runtime import JobRecord, cold_start, run_reevaluations
from possync.local.stream_pump import LocalConsumer, StreamPump, StreamReader
from tests.aws_faults import Faulty
from tests.aws_faults import metrics as emitted_metrics
from tests.integration.test_personas_service import PHONE, TENANT, balance, sale, shopper

pytestmark = pytest.mark.moto_store

FUNCTIONS = [*layout.RULE_FUNCTIONS, layout.REEVALUATION_FUNCTION]
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
    cold_start(FUNCTIONS)
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
    cold_start(FUNCTIONS)


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
