"""The embedded default: moto in server mode and the POS simulators on loopback, driven through the real handlers."""

from __future__ import annotations

import importlib
import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.config import Config

from functions.core import aws, layout
from functions.core.credentials import credential_json, parse_credential
from functions.core.layout import PULL_FUNCTION, PULL_VENDORS, ResourceNames, Vendor
from functions.core.settings import IntegrationSettings
from functions.core.sources import clear_caches
from functions.core.store import ControlStore, RegisteredCredential
from possync.local.lambda_shim import HandlerRunner, sqs_event
from possync.local.provision import LOCAL_REGION, Resources, provision

SIMULATORS: dict[Vendor, tuple[str, str]] = {
    Vendor.POSABIT: ("simulators.posabit", "PosabitSimulator"),
    Vendor.FLOURISH: ("simulators.flourish", "FlourishSimulator"),
    Vendor.THSUITE: ("simulators.thsuite", "ThsuiteSimulator"),
    Vendor.PROFITEK: ("simulators.profitek", "ProfitekSimulator"),
    Vendor.AUPHAN: ("simulators.auphan", "AuphanSimulator"),
}

# How many seconds a record stays "too fresh to read" locally (the deployed default is 5 s).
LOCAL_SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class Scale:
    customers_per_store: int = 400
    sales_per_store: int = 800


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
    seconds: float = 0.0


class LocalRuntime:
    """Start with `with LocalRuntime(...) as rt:`; everything listens on 127.0.0.1 and stops on exit."""

    def __init__(
        self,
        plan: tuple[TenantPlan, ...] = DEFAULT_PLAN,
        scale: Scale | None = None,
        seed: int = 7,
        workdir: Path = Path(".local"),
        vendors: tuple[Vendor, ...] | None = None,
    ) -> None:
        self.scale = scale or Scale()
        self.seed = seed
        self.workdir = workdir
        wanted = set(vendors or tuple(Vendor))
        self.plan = tuple(TenantPlan(p.tenant, {v: n for v, n in p.stores.items() if v in wanted}) for p in plan)
        self.vendors = tuple(v for v in Vendor if any(v in p.stores for p in self.plan))
        self.simulators: dict[Vendor, Any] = {}
        self.resources: Resources | None = None
        self.assignments: dict[tuple[str, Vendor], list[str]] = {}  # (tenant, vendor) -> simulator store ids
        self.credential_ids: dict[tuple[Vendor, str], tuple[str, str]] = {}  # (vendor, store) -> (tenant, cred)
        self._moto: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._stream_iterators: dict[str, str] = {}
        self.log_path = workdir / "lambda.log"
        self._log: TextIO | None = None
        self.runner: HandlerRunner | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.workdir.mkdir(parents=True, exist_ok=True)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
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
        self.resources = provision(self.client)
        self._log = self.log_path.open("w", encoding="utf-8")
        self.runner = HandlerRunner(self._log)
        self.state_file.write_text(json.dumps(self.state(), indent=2))

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
        if self._log is not None:
            self._log.close()
        if self.state_file.exists():
            self.state_file.unlink()

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
            "archive_bucket": self.resources.archive_bucket,
            "queue_urls": self.resources.queue_urls,
        }

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
    def register_tenants(self) -> None:
        """Give each tenant its stores: a credential in Secrets Manager, the registry entry, settings in SSM."""
        assert self.resources is not None
        names = self.resources.names
        control = ControlStore(self.client("dynamodb"), self.resources.control_table)
        secrets, ssm = self.client("secretsmanager"), self.client("ssm")
        free = {v: list(sim.stores) for v, sim in self.simulators.items()}
        for plan in self.plan:
            for vendor, count in plan.stores.items():
                stores = [free[vendor].pop(0) for _ in range(count)]
                self.assignments[(plan.tenant, vendor)] = stores
                for store in stores:
                    credential_id = f"{vendor.value}-{store}".lower().replace("_", "-")
                    credential = parse_credential(self.simulators[vendor].credential_for(store), vendor, credential_id)
                    secret_name = names.credential_secret(plan.tenant, vendor, credential_id)
                    secrets.create_secret(Name=secret_name, SecretString=credential_json(credential))
                    control.register_credential(
                        RegisteredCredential(
                            tenant=plan.tenant,
                            vendor=vendor,
                            credential_id=credential_id,
                            active=True,
                            secret_name=secret_name,
                            label=str(credential.public_fields().get("store_name") or store),
                        )
                    )
                    self.credential_ids[(vendor, store)] = (plan.tenant, credential_id)
                settings = IntegrationSettings(vendor=vendor, age_gate_attested=True)
                ssm.put_parameter(
                    Name=names.integration_settings_parameter(plan.tenant, vendor),
                    Value=settings.model_dump_json(),
                    Type="String",
                    Overwrite=True,
                )
        self._prime_stream()

    # --- the schedule ----------------------------------------------------------------------------
    def tick(self, label: str, on_job: Callable[[JobRecord], None] | None = None) -> TickReport:
        """What one EventBridge Scheduler tick does: each pull function dispatches, then consumes its queue."""
        assert self.resources is not None
        assert self.runner is not None
        started = time.monotonic()
        report = TickReport(label, jobs=run_tick(self.client, self.resources, self.runner, self.functions, on_job))
        report.written = self._stream_changes()
        report.seconds = time.monotonic() - started
        return report

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
    def _prime_stream(self) -> None:
        assert self.resources is not None
        streams = self.client("dynamodbstreams")
        arn = self.resources.records_stream_arn
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            self._stream_iterators[shard["ShardId"]] = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
            )["ShardIterator"]

    def stream_records(self) -> Iterator[dict[str, Any]]:
        """New records on the DynamoDB stream since the last call (what the stream consumers would receive)."""
        assert self.resources is not None
        streams = self.client("dynamodbstreams")
        arn = self.resources.records_stream_arn
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            iterator = (
                self._stream_iterators.get(shard_id)
                or streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")[
                    "ShardIterator"
                ]
            )
            while iterator:
                response = streams.get_records(ShardIterator=iterator, Limit=1000)
                records = response["Records"]
                yield from records
                iterator = response.get("NextShardIterator")
                if not records:
                    break
            self._stream_iterators[shard_id] = iterator

    def _stream_changes(self) -> Counter[tuple[str, str]]:
        written: Counter[tuple[str, str]] = Counter()
        for record in self.stream_records():
            image = record["dynamodb"].get("NewImage", {})
            written[(image.get("vendor", {}).get("S", "?"), image.get("kind", {}).get("S", "?"))] += 1
        return written

    # --- what is stored --------------------------------------------------------------------------
    def stored_counts(self) -> dict[str, Counter[str]]:
        """vendor -> kind -> records in the records table."""
        assert self.resources is not None
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        paginator = self.client("dynamodb").get_paginator("scan")
        for page in paginator.paginate(TableName=self.resources.records_table, ProjectionExpression="vendor, kind"):
            for item in page["Items"]:
                counts[item["vendor"]["S"]][item["kind"]["S"]] += 1
        return counts

    def archived_pages(self) -> Counter[str]:
        assert self.resources is not None
        pages: Counter[str] = Counter()
        paginator = self.client("s3").get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.resources.archive_bucket, Prefix=layout.ARCHIVE_ROOT):
            for obj in page.get("Contents", []):
                vendor = obj["Key"].split("/")[2].removeprefix("vendor=")
                pages[vendor] += 1
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
            rows.append(
                {"tenant": tenant, "vendor": vendor.value, "store": store, "credential": credential_id, **status}
            )
        return rows

    def simulator_ids(self, vendor: Vendor, stream: layout.Stream) -> set[tuple[str, str]]:
        return set(self.simulators[vendor].all_ids(stream))

    def pull_function(self, vendor: Vendor) -> str:
        return PULL_FUNCTION[vendor]


def drain(sqs: Any, url: str) -> Iterator[dict[str, Any]]:
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return
        yield from messages


def run_tick(
    clients: Callable[[str], Any],
    resources: Resources,
    runner: HandlerRunner,
    functions: list[str],
    on_job: Callable[[JobRecord], None] | None = None,
    timeout_seconds: float = 900.0,
) -> list[JobRecord]:
    """Each pull function gets the schedule's {"action": "dispatch"}, then its queue is consumed job by job."""
    sqs = clients("sqs")
    jobs: list[JobRecord] = []
    for function in functions:
        env = resources.lambda_env(function)
        runner.invoke(function, dict(layout.DISPATCH_EVENT), env)
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
