"""The embedded default: moto in server mode and the POS simulators on loopback, driven through the real handlers."""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import boto3
from botocore.config import Config

from functions.core import aws, layout, pull_health, record_index, reevaluation
from functions.core.credentials import credential_json, parse_credential
from functions.core.layout import (
    PULL_FUNCTION,
    PULL_VENDORS,
    REEVALUATION_FUNCTION,
    RULE_FUNCTIONS,
    ResourceNames,
    Vendor,
)
from functions.core.netguard import PRIVATE_RANGES
from functions.core.settings import SYNC_VENDORS, IntegrationSettings, TenantSettings
from functions.core.sms.service import ENV_NOW
from functions.core.sources import clear_caches
from functions.core.store import ControlStore
from functions.core.streams import CONSUMERS, PERSONA_CONSUMERS
from possync.admin.credentials import integrator_secret_name, registry_entry
from possync.admin.tenants import create_tenant
from possync.local.lambda_shim import HandlerRunner, sqs_event
from possync.local.provision import LOCAL_REGION, Resources, provision
from possync.local.sms import LocalSms, cold_start_sms
from possync.local.stream_pump import (
    ConsumerStats,
    DeadLetters,
    LocalConsumer,
    StreamPump,
    StreamReader,
    peek_dead_letters,
)
from possync.target import running_pid, user_state_file

SIMULATORS: dict[Vendor, tuple[str, str]] = {
    Vendor.POSABIT: ("simulators.posabit", "PosabitSimulator"),
    Vendor.FLOURISH: ("simulators.flourish", "FlourishSimulator"),
    Vendor.THSUITE: ("simulators.thsuite", "ThsuiteSimulator"),
    Vendor.PROFITEK: ("simulators.profitek", "ProfitekSimulator"),
    Vendor.AUPHAN: ("simulators.auphan", "AuphanSimulator"),
}

# How many seconds a record stays "too fresh to read" locally (the deployed default is 5 s).
LOCAL_SETTLE_SECONDS = 1.0
# Demo tenants enroll shoppers of their first integration with a sale in the last 30 days.
DEMO_ENROLL_AFTER_DAYS = 30
DEMO_POINTS_PER_DOLLAR = 1
# Who the audit log says created the demo tenants.
LOCAL_ACTOR = "local:possync-runtime"


class RuntimeBusyError(RuntimeError):
    """Another local runtime is running where this one would start; the message names it and how to stop it."""


@dataclass(frozen=True)
class Scale:
    """How much data each simulated store holds. The default keeps `make demo` to a few minutes on a laptop: the
    local stand-in for DynamoDB (moto) answers a request in milliseconds, and the rules make several per sale."""

    customers_per_store: int = 60
    sales_per_store: int = 120


DEMO_SCALE = Scale()


@dataclass(frozen=True)
class TenantPlan:
    """Which vendors a demo tenant uses and how many of each simulator's stores it owns."""

    tenant: str
    stores: dict[Vendor, int]


DEFAULT_PLAN = (
    TenantPlan("greenleaf", {Vendor.POSABIT: 2, Vendor.FLOURISH: 1, Vendor.THSUITE: 1}),
    TenantPlan("high-desert", {Vendor.POSABIT: 1, Vendor.FLOURISH: 1, Vendor.PROFITEK: 2, Vendor.AUPHAN: 2}),
    TenantPlan("riverbend", {Vendor.THSUITE: 2, Vendor.AUPHAN: 1, Vendor.PROFITEK: 1}),
)


@dataclass
class JobRecord:
    function: str
    ok: bool
    body: dict[str, Any]


@dataclass
class TickReport:
    label: str
    jobs: list[JobRecord] = field(default_factory=list)
    written: Counter[tuple[str, str]] = field(default_factory=Counter)  # (vendor, kind) -> stream records
    rules: dict[str, ConsumerStats] = field(default_factory=dict)  # stream consumer -> what it was handed
    reevaluations: list[JobRecord] = field(default_factory=list)  # re-evaluation messages handled after the rules
    deferred_sent: int = 0  # deferred opt-in requests whose time came, handled after the rules
    seconds: float = 0.0
    rules_seconds: float = 0.0


@dataclass
class PersonaSummary:
    """What the rules made of the pulled records, read back from the personas and control tables."""

    personas: Counter[str] = field(default_factory=Counter)  # tenant -> personas
    sourced_from: Counter[str] = field(default_factory=Counter)  # vendor -> personas sourced from it
    members: Counter[tuple[str, str]] = field(default_factory=Counter)  # (tenant, member_how) -> members
    points: Counter[str] = field(default_factory=Counter)  # tenant -> points balance of its personas
    without_sources: int = 0  # personas whose "sourced from" is empty (never expected)
    unmapped: list[tuple[str, str]] = field(default_factory=list)  # (tenant, "vendor#credential#location")

    @property
    def total_personas(self) -> int:
        return sum(self.personas.values())

    @property
    def total_members(self) -> int:
        return sum(self.members.values())

    @property
    def total_points(self) -> int:
        return sum(self.points.values())


class LocalRuntime:
    """Start with `with LocalRuntime(...) as rt:`; everything listens on 127.0.0.1 and stops on exit."""

    def __init__(
        self,
        plan: tuple[TenantPlan, ...] = DEFAULT_PLAN,
        scale: Scale | None = None,
        seed: int = 7,
        workdir: Path = Path(".local"),
        vendors: tuple[Vendor, ...] | None = None,
        rules: bool = True,
        publish: bool = False,
        now: datetime | None = None,
        allow_private_hosts: bool = False,
    ) -> None:
        """`rules=False` pulls without pumping the records stream to the stream consumers (pull-only runs);
        `publish=True` (`possync local serve`) also writes the state to the user's state path, so `possync --local`
        finds this runtime from any directory; `now` makes the SMS opt-in run as if the runtime started at that
        instant (quiet hours, outbox times); `allow_private_hosts` lets the on-premises pull call any private
        address, as a deployment with allow_private_hosts and onprem_vpc calls the ranges it lists."""
        self.now = now
        self.allow_private_hosts = allow_private_hosts
        self.sms: LocalSms | None = None
        self.scale = scale or Scale()
        self.seed = seed
        # Absolute, so the paths this runtime publishes (its outbox) mean the same from any directory.
        self.workdir = workdir.resolve()
        wanted = set(vendors or tuple(Vendor))
        self.plan = tuple(TenantPlan(p.tenant, {v: n for v, n in p.stores.items() if v in wanted}) for p in plan)
        self.vendors = tuple(v for v in Vendor if any(v in p.stores for p in self.plan))
        self.simulators: dict[Vendor, Any] = {}
        self.resources: Resources | None = None
        self.assignments: dict[tuple[str, Vendor], list[str]] = {}  # (tenant, vendor) -> simulator store ids
        self.credential_ids: dict[tuple[Vendor, str], tuple[str, str]] = {}  # (vendor, store) -> (tenant, cred)
        self.enroll_integrations: set[tuple[str, Vendor]] = set()  # (tenant, vendor) with enroll_after set
        self.unmapped_credentials: set[tuple[str, Vendor, str]] = set()  # left out of the store mappings
        self.rules = rules
        self.publish = publish
        self._moto: Any = None
        self._saved_env: dict[str, str | None] = {}
        self.log_path = workdir / "lambda.log"
        self._log: TextIO | None = None
        self.runner: HandlerRunner | None = None
        self.reader: StreamReader | None = None
        self.pump: StreamPump | None = None
        self.extra_state: dict[str, Any] = {}  # what a service started later adds (the local signup endpoint)
        # The personas table's stream and its one consumer (persona -> POS sync), pumped after the records stream.
        self.persona_reader: StreamReader | None = None
        self.persona_pump: StreamPump | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """RuntimeBusyError, before anything is started or reset, if a running runtime owns this workdir (or, to
        publish, the user's state file); a state file left by a runtime that died is replaced."""
        self._refuse_if_taken()
        from possync.local import moto_fixes
        from possync.local.moto_http import KeptAliveMotoServer

        moto_fixes.install()
        # moto's HTTP server logs every request it answers; the demo's output is the summary, not thousands of those.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

        self.workdir.mkdir(parents=True, exist_ok=True)
        # Kept-alive connections, as AWS keeps them (werkzeug's server behind ThreadedMotoServer closes every one).
        self._moto = KeptAliveMotoServer("127.0.0.1", 0)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        # moto keeps its state per process: start from empty even if an earlier runtime ran in this process.
        urllib.request.urlopen(
            urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST"), timeout=10
        ).close()
        env = {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            "POWERTOOLS_SERVICE_NAME": "possync-local",
            "POWERTOOLS_METRICS_NAMESPACE": ResourceNames().metrics_namespace,
            "POWERTOOLS_TRACE_DISABLED": "true",
            layout.ENV_SETTLE_SECONDS: str(LOCAL_SETTLE_SECONDS),
            # The opt-in's clock: the real one, or `--now` and the time since the runtime started.
            ENV_NOW: self.now.isoformat() if self.now is not None else "",
        }
        for vendor in self.vendors:
            module, cls = SIMULATORS[vendor]
            simulator = getattr(importlib.import_module(module), cls)(**self._simulator_args(vendor))
            simulator.start()
            self.simulators[vendor] = simulator
            env[layout.base_url_env(vendor)] = simulator.url
        self._saved_env = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        aws.reset_clients()
        clear_caches()
        cold_start()
        cold_start_sms()
        self.resources = provision(self.client)
        if Vendor.POSABIT in self.simulators:
            # possync's own POSaBIT integrator token, as `possync credentials integrator-token posabit` sets it.
            self.client("secretsmanager").create_secret(
                Name=integrator_secret_name(self.resources.names, Vendor.POSABIT),
                SecretString=self.simulators[Vendor.POSABIT].integrator_token,
            )
        self.resources.sms_outbox = str(self.workdir / "outbox.jsonl")
        if self.allow_private_hosts:
            self.resources.private_host_cidrs = tuple(str(network) for network in PRIVATE_RANGES)
        self._log = self.log_path.open("w", encoding="utf-8")
        self.runner = HandlerRunner(self._log)
        self.sms = LocalSms(self.client, self.resources, self.runner)
        self.sms.reset_outbox()
        # One reader of the records stream: the tick counts what it reads and hands the same records to the pump.
        self.reader = StreamReader(self.client("dynamodbstreams"), self.resources.records_stream_arn)
        if self.rules:
            self.pump = StreamPump(
                self.runner,
                [
                    LocalConsumer(
                        function=name,
                        spec=CONSUMERS[name],
                        env=self.resources.lambda_env(name),
                        failure_queue_url=self.resources.rules_dlq_urls[name],
                    )
                    for name in RULE_FUNCTIONS  # personas first: shoppers usually reach it before their sales
                ],
                self.client("sqs"),
                self.resources.records_stream_arn,
            )
            self.persona_reader = StreamReader(self.client("dynamodbstreams"), self.resources.personas_stream_arn)
            self.persona_pump = StreamPump(
                self.runner,
                [
                    LocalConsumer(
                        function=name,
                        spec=spec,
                        env=self.resources.lambda_env(name),
                        failure_queue_url=self.resources.rules_dlq_urls[name],
                    )
                    for name, spec in PERSONA_CONSUMERS.items()
                ],
                self.client("sqs"),
                self.resources.personas_stream_arn,
            )
        self.state_file.write_text(json.dumps(self.state(), indent=2))
        if self.publish:
            published = user_state_file()
            published.parent.mkdir(parents=True, exist_ok=True)
            published.write_text(json.dumps(self.state(), indent=2))

    def stop(self) -> None:
        for simulator in self.simulators.values():
            simulator.stop()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        aws.reset_clients()
        clear_caches()
        cold_start()
        cold_start_sms()
        if self._log is not None:
            self._log.close()
        _remove_if_ours(self.state_file)
        if self.publish:
            _remove_if_ours(user_state_file())

    def _refuse_if_taken(self) -> None:
        owner = running_pid(self.state_file)
        if owner is not None:
            raise RuntimeBusyError(
                f"a local runtime (process {owner}) is already running in {self.workdir}: stop it (Ctrl-C in its "
                f"terminal, or `kill {owner}`) or run this from another directory; if process {owner} is not "
                f"possync, delete {self.state_file}"
            )
        published = user_state_file()
        owner = running_pid(published) if self.publish else None
        if owner is not None:
            try:
                where = str(json.loads(published.read_text()).get("workdir") or "another directory")
            except (OSError, ValueError, AttributeError):
                where = "another directory"
            raise RuntimeBusyError(
                f"a local runtime (process {owner}, in {where}) is already serving `possync --local`: stop it "
                f"(Ctrl-C in its terminal, or `kill {owner}`) before starting another; if process {owner} is not "
                f"possync, delete {published}"
            )

    @property
    def state_file(self) -> Path:
        return self.workdir / "runtime.json"

    def state(self) -> dict[str, Any]:
        """What the CLI needs to talk to this runtime (`possync --local ...` while it runs)."""
        assert self.resources is not None
        return {
            "endpoint_url": os.environ["AWS_ENDPOINT_URL"],
            "region": LOCAL_REGION,
            "prefix": self.resources.names.prefix,
            "records_table": self.resources.records_table,
            "control_table": self.resources.control_table,
            "personas_table": self.resources.personas_table,
            "archive_bucket": self.resources.archive_bucket,
            "queue_urls": self.resources.queue_urls,
            "rules_dlq_urls": self.resources.rules_dlq_urls,
            "reevaluation_queue_url": self.resources.reevaluation_queue_url,
            "base_urls": {vendor.value: simulator.url for vendor, simulator in self.simulators.items()},
            "pid": os.getpid(),
            "workdir": str(self.workdir),
            "sms_outbox": self.resources.sms_outbox,
            "sms_deferral_queue_url": self.resources.sms_deferral_queue_url,
            # What `credentials add` checks a custom IP:PORT against, as a stack's PrivateHostCidrs output.
            "private_host_cidrs": list(self.resources.private_host_cidrs),
            **self.extra_state,
        }

    def add_state(self, **values: Any) -> None:
        """Publish more of this runtime's state (the CLI reads it from the state files)."""
        self.extra_state.update(values)
        self.state_file.write_text(json.dumps(self.state(), indent=2))
        if self.publish:
            user_state_file().write_text(json.dumps(self.state(), indent=2))

    def _simulator_args(self, vendor: Vendor) -> dict[str, Any]:
        stores = sum(p.stores.get(vendor, 0) for p in self.plan)
        return {
            "seed": self.seed + list(Vendor).index(vendor),
            "store_count": stores,
            "customers_per_store": self.scale.customers_per_store,
            "sales_per_store": self.scale.sales_per_store,
        }

    @staticmethod
    def client(service: str) -> Any:
        return boto3.client(
            service,
            region_name=LOCAL_REGION,
            endpoint_url=os.environ["AWS_ENDPOINT_URL"],
            config=Config(retries={"mode": "standard", "max_attempts": 3}),
        )

    # --- tenants ---------------------------------------------------------------------------------
    def register_tenants(self, configure_loyalty: bool = True) -> None:
        """Give each tenant its stores: a credential in Secrets Manager, the registry entry, settings in SSM.

        The settings make the rules visible: every integration has the age gate attested; each tenant's first
        integration enrolls shoppers with a sale in the last 30 days; every credential is mapped to a retail
        store except, in tenants with several, the last one (so the demo raises unmapped-store notices).
        `configure_loyalty=False` leaves every setting at its default (nothing switched on, nothing mapped), as for
        a store that is pulled first and configured afterwards.
        """
        assert self.resources is not None
        assert self.reader is not None
        names = self.resources.names
        control = ControlStore(self.client("dynamodb"), self.resources.control_table)
        secrets, ssm = self.client("secretsmanager"), self.client("ssm")
        free = {v: list(sim.stores) for v, sim in self.simulators.items()}
        enroll_after = datetime.now(UTC).date() - timedelta(days=DEMO_ENROLL_AFTER_DAYS)
        sync_from = datetime.now(ZoneInfo(TenantSettings().timezone)).date()
        for plan in self.plan:
            # The same path as `possync tenants add`: the tenant item and its audit entry.
            create_tenant(self.client("dynamodb"), self.resources.control_table, plan.tenant, who=LOCAL_ACTOR)
            registered: list[tuple[Vendor, str]] = []
            for vendor, count in plan.stores.items():
                stores = [free[vendor].pop(0) for _ in range(count)]
                self.assignments[(plan.tenant, vendor)] = stores
                for store in stores:
                    credential_id = f"{vendor.value}-{store}".lower().replace("_", "-")
                    credential = parse_credential(self.simulators[vendor].credential_for(store), vendor, credential_id)
                    secret_name = names.credential_secret(plan.tenant, vendor, credential_id)
                    secrets.create_secret(Name=secret_name, SecretString=credential_json(credential))
                    # The registry entry the CLI's `credentials add` writes: public fields (market, regions) too.
                    label = str(credential.public_fields().get("store_name") or store)
                    control.register_credential(
                        registry_entry(plan.tenant, credential_id, credential, secret_name, label, active=True)
                    )
                    self.credential_ids[(vendor, store)] = (plan.tenant, credential_id)
                    registered.append((vendor, credential_id))
            if not configure_loyalty:
                self.unmapped_credentials.update((plan.tenant, v, c) for v, c in registered)
                continue
            if len(registered) > 1:
                vendor, credential_id = registered[-1]
                self.unmapped_credentials.add((plan.tenant, vendor, credential_id))
            for index, vendor in enumerate(plan.stores):
                mappings = {
                    credential_id: f"{plan.tenant}-store-{number}"
                    for number, (v, credential_id) in enumerate(registered, start=1)
                    if v == vendor and (plan.tenant, v, credential_id) not in self.unmapped_credentials
                }
                enrolls = index == 0
                if enrolls:
                    self.enroll_integrations.add((plan.tenant, vendor))
                settings = IntegrationSettings(
                    vendor=vendor,
                    age_gate_attested=True,
                    enroll_after=enroll_after if enrolls else None,
                    sms_optin_after=enroll_after if enrolls else None,
                    store_mappings=mappings,
                    # POSaBIT and Flourish sync personas from today: form signups become customers in the POS
                    sync_personas=vendor in SYNC_VENDORS,
                    sync_personas_enabled_on=sync_from if vendor in SYNC_VENDORS else None,
                )
                self._put_setting(ssm, names.integration_settings_parameter(plan.tenant, vendor), settings)
            # The brand the opt-in texts name (greenleaf -> Greenleaf).
            brand = plan.tenant.replace("-", " ").title()
            tenant_settings = TenantSettings(points_per_dollar=DEMO_POINTS_PER_DOLLAR, brand_name=brand)
            self._put_setting(ssm, names.tenant_settings_parameter(plan.tenant), tenant_settings)
        self.reader.skip_to_latest()
        if self.persona_reader is not None:
            self.persona_reader.skip_to_latest()

    @staticmethod
    def _put_setting(ssm: Any, name: str, settings: IntegrationSettings | TenantSettings) -> None:
        ssm.put_parameter(Name=name, Value=settings.model_dump_json(), Type="String", Overwrite=True)

    # --- the schedule ----------------------------------------------------------------------------
    def tick(
        self,
        label: str,
        on_job: Callable[[JobRecord], None] | None = None,
        on_stream: Callable[[dict[str, int]], None] | None = None,
        on_batch: Callable[[str, int], None] | None = None,
        pull_now: bool = False,
        dispatch: bool = True,
    ) -> TickReport:
        """One EventBridge Scheduler tick: each pull function dispatches the credentials that are due (or, with
        `pull_now`, every active credential), then consumes its queue; then the records it wrote reach the stream
        consumers, as their event source mappings would deliver them.

        `on_stream` hears how many records each consumer is about to be handed, `on_batch` each batch done.
        `dispatch=False` only consumes the jobs already queued (`possync --local pull` enqueues them).
        """
        assert self.resources is not None
        assert self.runner is not None
        started = time.monotonic()
        jobs = run_tick(
            self.client, self.resources, self.runner, self.functions, on_job, pull_now=pull_now, dispatch=dispatch
        )
        report = TickReport(label, jobs=jobs)
        report.written = _count_written(self.stream_records())
        if self.pump is not None:
            rules_started = time.monotonic()
            if on_stream is not None:
                on_stream(self.pump.pending())
            report.rules = self.pump.drain(on_batch)
            report.reevaluations = self.reevaluate()
            report.rules.update(self.drain_persona_stream(on_batch))
            if self.sms is not None:
                report.deferred_sent = self.sms.deliver_deferred()
            report.rules_seconds = time.monotonic() - rules_started
        report.seconds = time.monotonic() - started
        return report

    def reevaluate(self, on_job: Callable[[JobRecord], None] | None = None) -> list[JobRecord]:
        """Run the re-evaluation jobs queued now (by `possync --local settings set` or `stores map`) through the real
        handler, as its event source mapping would: one message per invocation, until the queue shows none."""
        assert self.resources is not None
        assert self.runner is not None
        if not self.rules:
            return []
        return run_reevaluations(self.client, self.resources, self.runner, on_job)

    @property
    def functions(self) -> list[str]:
        return [f for f, vendors in PULL_VENDORS.items() if any(v in self.vendors for v in vendors)]

    def queued_jobs(self) -> int:
        assert self.resources is not None
        sqs = self.client("sqs")
        total = 0
        for function in self.functions:
            attrs = sqs.get_queue_attributes(
                QueueUrl=self.resources.queue_urls[function], AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            total += int(attrs["ApproximateNumberOfMessages"])
        return total

    # --- the records stream ----------------------------------------------------------------------
    def stream_records(self) -> list[dict[str, Any]]:
        """New records on the DynamoDB stream since the last read, in the Lambda event shape.

        The runtime has one reader: what it returns is also queued for the stream consumers (`tick` drains it).
        """
        assert self.reader is not None
        records = self.reader.read()
        if self.pump is not None:
            self.pump.feed(records)
        return [item.record for item in records]

    def drain_rules(self, on_batch: Callable[[str, int], None] | None = None) -> dict[str, ConsumerStats]:
        """Deliver what the stream holds to the consumers now (tests; `tick` does this after the pulls)."""
        if self.pump is None:
            return {}
        self.stream_records()
        return self.pump.drain(on_batch)

    def drain_persona_stream(self, on_batch: Callable[[str, int], None] | None = None) -> dict[str, ConsumerStats]:
        """Deliver the personas table's new stream records to persona -> POS sync (after the records stream's
        consumers, whose persona writes are among them)."""
        if self.persona_pump is None or self.persona_reader is None:
            return {}
        self.persona_pump.feed(self.persona_reader.read())
        return self.persona_pump.drain(on_batch)

    # --- what the rules made ---------------------------------------------------------------------
    def persona_summary(self) -> PersonaSummary:
        """Personas, their sources, members and points (personas table) and unmapped-store notices (control)."""
        assert self.resources is not None
        summary = PersonaSummary()
        ddb = self.client("dynamodb")
        for page in ddb.get_paginator("scan").paginate(
            TableName=self.resources.personas_table,
            FilterExpression="sk = :profile",
            ExpressionAttributeValues={":profile": {"S": layout.PERSONA_PROFILE_SK}},
        ):
            for item in page["Items"]:
                tenant = item["pk"]["S"].split("#")[1]
                summary.personas[tenant] += 1
                sources = _strings(item.get("sources"))
                summary.sourced_from.update(sources)
                summary.without_sources += not sources
                if item.get("member", {}).get("BOOL"):
                    summary.members[(tenant, item.get("member_how", {}).get("S", "?"))] += 1
                summary.points[tenant] += int(float(item.get("points", {}).get("N", "0")))
        for tenant in sorted({t for t, _ in self.assignments}):
            for page in ddb.get_paginator("query").paginate(
                TableName=self.resources.control_table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": layout.control_unmapped_pk(tenant)}},
            ):
                summary.unmapped.extend((tenant, item["sk"]["S"]) for item in page["Items"])
        return summary

    def rule_failures(self) -> dict[str, DeadLetters]:
        """Each consumer's failure queue: descriptions of record batches that used up their retries."""
        assert self.resources is not None
        sqs = self.client("sqs")
        return {name: peek_dead_letters(sqs, url) for name, url in self.resources.rules_dlq_urls.items()}

    # --- what is stored --------------------------------------------------------------------------
    def stored_counts(self) -> dict[str, Counter[str]]:
        """vendor -> kind -> records in the records table."""
        assert self.resources is not None
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        paginator = self.client("dynamodb").get_paginator("scan")
        for page in paginator.paginate(TableName=self.resources.records_table, ProjectionExpression="pk, vendor, kind"):
            for item in page["Items"]:
                if not record_index.is_page_index(item["pk"]["S"]):  # an index entry, not a record
                    counts[item["vendor"]["S"]][item["kind"]["S"]] += 1
        return counts

    def archived_pages(self) -> Counter[str]:
        assert self.resources is not None
        pages: Counter[str] = Counter()
        paginator = self.client("s3").get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.resources.archive_bucket, Prefix=layout.ARCHIVE_ROOT):
            for obj in page.get("Contents", []):
                archived = layout.parse_archive_key(obj["Key"])
                if archived is not None:
                    pages[archived.vendor.value] += 1
        return pages

    def quarantined(self) -> Counter[str]:
        assert self.resources is not None
        control = ControlStore(self.client("dynamodb"), self.resources.control_table)
        out: Counter[str] = Counter()
        for (vendor, _store), (tenant, credential_id) in self.credential_ids.items():
            out[vendor.value] += len(control.list_quarantine(tenant, vendor, credential_id))
        return out

    def statuses(self) -> list[dict[str, Any]]:
        assert self.resources is not None
        control = ControlStore(self.client("dynamodb"), self.resources.control_table)
        rows = []
        for (vendor, store), (tenant, credential_id) in sorted(self.credential_ids.items()):
            status = control.get_status(tenant, vendor, credential_id)
            problems = pull_health.problems(status, pull_health.interval_of(status), datetime.now(UTC))
            rows.append(
                {
                    "tenant": tenant,
                    "vendor": vendor.value,
                    "store": store,
                    "credential": credential_id,
                    **status,
                    "problems": problems,
                }
            )
        return rows

    def simulator_ids(self, vendor: Vendor, stream: layout.Stream) -> set[tuple[str, str]]:
        return set(self.simulators[vendor].all_ids(stream))

    def pull_function(self, vendor: Vendor) -> str:
        return PULL_FUNCTION[vendor]


def _remove_if_ours(state_file: Path) -> None:
    """Remove a state file if this process wrote it: another runtime may have written it since (after this one's
    was found stale), and it must stay findable."""
    try:
        if json.loads(state_file.read_text()).get("pid") == os.getpid():
            state_file.unlink()
    except (OSError, ValueError, AttributeError):
        return


def cold_start() -> None:
    """Forget what warm handlers cached (services built once per execution environment hold clients bound to
    an endpoint): a new runtime gets new execution environments, as a new deployment would. Every loaded handler
    module (`functions.<function>.handler`), so a function added later cannot keep a dead runtime's clients."""
    for name, module in list(sys.modules.items()):
        if module is None or not (name.startswith("functions.") and name.endswith(".handler")):
            continue
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


def _count_written(records: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    written: Counter[tuple[str, str]] = Counter()
    for record in records:
        image = record["dynamodb"].get("NewImage", {})
        if record_index.is_page_index(image.get("pk", {}).get("S", "")):
            continue  # the records index's entry for a page of new records, not a record
        written[(image.get("vendor", {}).get("S", "?"), image.get("kind", {}).get("S", "?"))] += 1
    return written


def _strings(value: dict[str, Any] | None) -> list[str]:
    """A string set (SS) or list of strings (L) attribute as a list."""
    if not value:
        return []
    if "SS" in value:
        return list(value["SS"])
    if "L" in value:
        return [v["S"] for v in value["L"] if "S" in v]
    return [value["S"]] if "S" in value else []


def drain(sqs: Any, url: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Receive until the queue shows nothing (or `limit` messages were received)."""
    received = 0
    while limit is None or received < limit:
        wanted = 10 if limit is None else min(10, limit - received)
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=wanted, WaitTimeSeconds=0, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return
        received += len(messages)
        yield from messages


def run_tick(
    clients: Callable[[str], Any],
    resources: Resources,
    runner: HandlerRunner,
    functions: list[str],
    on_job: Callable[[JobRecord], None] | None = None,
    timeout_seconds: float = 900.0,
    pull_now: bool = False,
    dispatch: bool = True,
) -> list[JobRecord]:
    """Each pull function gets the schedule's {"action": "dispatch"} (only credentials whose pull interval has
    passed are enqueued), or with `pull_now` the manual dispatch (every active credential, now); then its queue is
    consumed job by job. `dispatch=False` consumes only what is queued already."""
    sqs = clients("sqs")
    jobs: list[JobRecord] = []
    event = layout.DISPATCH_NOW_EVENT if pull_now else layout.DISPATCH_EVENT
    for function in functions:
        env = resources.lambda_env(function)
        if dispatch:
            runner.invoke(function, dict(event), env)
        url = resources.queue_urls[function]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for message in drain(sqs, url):
            # Batch size 1, as the event source mapping is configured: one credential per invocation.
            try:
                response = runner.invoke(function, sqs_event([message], arn), env, timeout_seconds)
            except Exception as exc:  # noqa: BLE001 - as in Lambda: the invocation failed, the message stays queued
                runner.log.write(f"invocation of {function} failed: {type(exc).__name__}: {exc}\n")
                ok = False
            else:
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
                ok = message["MessageId"] not in failed
            if ok:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            job = JobRecord(function, ok, json.loads(message["Body"]))
            jobs.append(job)
            if on_job is not None:
                on_job(job)
    return jobs


def run_reevaluations(
    clients: Callable[[str], Any],
    resources: Resources,
    runner: HandlerRunner,
    on_job: Callable[[JobRecord], None] | None = None,
    timeout_seconds: float = float(reevaluation.FUNCTION_TIMEOUT_SECONDS),
    max_messages: int | None = None,
) -> list[JobRecord]:
    """Drain the re-evaluation queue through the real handler, one message per invocation (the event source
    mapping's batch size): jobs, their continuations and settings-change events. A failed message stays on the
    queue, hidden for its backoff, as in SQS; a message sent with a delay (a request waiting for a running job) is
    left for a later call."""
    sqs = clients("sqs")
    url = resources.reevaluation_queue_url
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    env = resources.lambda_env(REEVALUATION_FUNCTION)
    jobs: list[JobRecord] = []
    for message in drain(sqs, url, max_messages):
        try:
            response = runner.invoke(REEVALUATION_FUNCTION, sqs_event([message], arn), env, timeout_seconds)
        except Exception as exc:  # noqa: BLE001 - as in Lambda: the invocation failed, the message stays queued
            runner.log.write(f"invocation of {REEVALUATION_FUNCTION} failed: {type(exc).__name__}: {exc}\n")
            ok = False
        else:
            ok = message["MessageId"] not in {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        if ok:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        job = JobRecord(REEVALUATION_FUNCTION, ok, json.loads(message["Body"]))
        jobs.append(job)
        if on_job is not None:
            on_job(job)
    return jobs
