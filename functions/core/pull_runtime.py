"""What every pull Lambda does: fan scheduled ticks out to one job per credential, and run those jobs."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from functions.core import aws, layout
from functions.core.archive import S3Archive
from functions.core.connector import Connector, ConnectorConfig
from functions.core.credentials import Credential
from functions.core.engine import PullEngine, PullOptions, PullResult
from functions.core.errors import (
    CredentialError,
    HostNotAllowedError,
    LeaseHeldError,
    MalformedPageError,
    PossyncError,
    SettingsError,
    StoreOfflineError,
    VendorUnavailableError,
)
from functions.core.layout import ResourceNames, Stream, Vendor
from functions.core.netguard import IPNetwork, parse_private_networks
from functions.core.observability import NAMESPACE, logger
from functions.core.sources import CredentialSource, SettingsSource
from functions.core.store import ControlStore, RecordStore


class OpenConnector(Protocol):
    """What each vendor folder's `connector.open_connector` is."""

    def __call__(
        self, credential: Credential, config: ConnectorConfig, *, tenant: str, credential_id: str
    ) -> Connector: ...


SQS_BATCH_MAX = 10
# Each continuation stores at least one page, so a pull always advances; the cap stops a runaway chain
# (e.g. a POS that never reports a last page) from re-invoking the function forever.
MAX_CONTINUATIONS = 200


class PullJob(BaseModel):
    """One SQS message: pull one credential (all its streams, or the ones a continuation has left)."""

    model_config = ConfigDict(extra="forbid")

    tenant: str
    vendor: Vendor
    credential_id: str
    streams: list[Stream] | None = None
    reason: Literal["schedule", "continuation", "manual"] = "schedule"
    continuation: int = Field(default=0, ge=0)


@dataclass
class JobOutcome:
    job: PullJob
    status: Literal["ok", "continued", "frozen", "skipped", "failed", "unavailable", "offline"]
    detail: str = ""
    result: PullResult | None = None


@dataclass
class DispatchOutcome:
    enqueued: list[PullJob] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    inactive: list[str] = field(default_factory=list)
    invalid_settings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RuntimeConfig:
    """Deployment configuration the Lambdas read from their environment (set by the CDK app)."""

    names: ResourceNames
    records_table: str
    control_table: str
    archive_bucket: str
    queue_url: str
    allow_private_hosts: bool
    lookback: timedelta
    settle: timedelta
    read_timeout: float
    base_urls: dict[Vendor, str]
    # The only private ranges an on-premises pull may call when private hosts are allowed (the CDK app's
    # onprem_vpc.private_cidrs); empty: none.
    private_host_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_env(cls, default_base_urls: dict[Vendor, str]) -> RuntimeConfig:
        env = os.environ
        names = ResourceNames.from_env()
        return cls(
            names=names,
            records_table=env.get(layout.ENV_RECORDS_TABLE, names.records_table),
            control_table=env.get(layout.ENV_CONTROL_TABLE, names.control_table),
            archive_bucket=env[layout.ENV_ARCHIVE_BUCKET],
            queue_url=env[layout.ENV_JOB_QUEUE_URL],
            allow_private_hosts=env.get(layout.ENV_ALLOW_PRIVATE_HOSTS, "false").lower() == "true",
            private_host_networks=parse_private_networks(env.get(layout.ENV_PRIVATE_HOST_CIDRS, "")),
            lookback=timedelta(minutes=int(env.get(layout.ENV_LOOKBACK_MINUTES, "10"))),
            settle=timedelta(seconds=float(env.get(layout.ENV_SETTLE_SECONDS, "5"))),
            read_timeout=float(env.get(layout.ENV_HTTP_READ_TIMEOUT, "30")),
            base_urls={v: env.get(layout.base_url_env(v), url) for v, url in default_base_urls.items()},
        )


class PullService:
    """Dispatch and job execution, with every AWS dependency passed in."""

    def __init__(
        self,
        *,
        config: RuntimeConfig,
        open_connector: OpenConnector,
        records: RecordStore,
        control: ControlStore,
        archive: S3Archive,
        settings: SettingsSource,
        credentials: CredentialSource,
        sqs: Any,
        options: PullOptions | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.open_connector = open_connector
        self.records = records
        self.control = control
        self.archive = archive
        self.settings = settings
        self.credentials = credentials
        self.sqs = sqs
        self.options = options or PullOptions(lookback=config.lookback, settle=config.settle)
        self.now = now

    @classmethod
    def from_env(cls, open_connector: OpenConnector, default_base_urls: dict[Vendor, str]) -> PullService:
        config = RuntimeConfig.from_env(default_base_urls)
        return cls(
            config=config,
            open_connector=open_connector,
            records=RecordStore(aws.client("dynamodb"), config.records_table),
            control=ControlStore(aws.client("dynamodb"), config.control_table),
            archive=S3Archive(aws.client("s3"), config.archive_bucket),
            settings=SettingsSource(config.names),
            credentials=CredentialSource(config.names),
            sqs=aws.client("sqs"),
        )

    # --- dispatch ------------------------------------------------------------------------------
    def dispatch(self, vendors: Iterable[Vendor]) -> DispatchOutcome:
        """One job per active credential whose integration is not frozen on 'use last backup'."""
        outcome = DispatchOutcome()
        for vendor in vendors:
            for entry in self.control.credentials(vendor):
                label = f"{entry.tenant}/{vendor.value}/{entry.credential_id}"
                if not entry.active:
                    outcome.inactive.append(label)
                    continue
                try:
                    frozen = self.settings.integration(entry.tenant, vendor).use_last_backup
                except SettingsError as exc:
                    # Unknown settings: do not call the POS (it may be meant to be frozen); say which parameter.
                    logger.error("settings unreadable; pull skipped", error=str(exc), tenant=entry.tenant)
                    outcome.invalid_settings.append(label)
                    continue
                if frozen:
                    outcome.frozen.append(label)
                    continue
                self._emit_freshness(entry.tenant, vendor, entry.credential_id)
                outcome.enqueued.append(PullJob(tenant=entry.tenant, vendor=vendor, credential_id=entry.credential_id))
        self.enqueue(outcome.enqueued)
        return outcome

    def enqueue(self, jobs: Sequence[PullJob]) -> None:
        for start in range(0, len(jobs), SQS_BATCH_MAX):
            batch = jobs[start : start + SQS_BATCH_MAX]
            entries = [{"Id": str(i), "MessageBody": job.model_dump_json()} for i, job in enumerate(batch)]
            try:
                response = self.sqs.send_message_batch(QueueUrl=self.config.queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                raise PossyncError(f"could not enqueue pull jobs: {type(exc).__name__}") from exc
            if response.get("Failed"):
                raise PossyncError(f"SQS refused {len(response['Failed'])} pull jobs; the next tick retries them")

    def _emit_freshness(self, tenant: str, vendor: Vendor, credential_id: str) -> None:
        last = self.control.get_status(tenant, vendor, credential_id).get("last_success_at")
        if not last:
            return
        age = (self.now() - datetime.fromisoformat(last)).total_seconds()
        with _credential_metrics(tenant, vendor, credential_id) as m:
            m.add_metric(name="SecondsSinceLastSuccessfulPull", unit=MetricUnit.Seconds, value=max(0.0, age))

    # --- jobs ----------------------------------------------------------------------------------
    def run_job(self, job: PullJob, remaining_seconds: Callable[[], float]) -> JobOutcome:
        vendor, tenant, cred = job.vendor, job.tenant, job.credential_id
        owner = uuid.uuid4().hex
        lease_seconds = int(min(remaining_seconds(), 3600)) + 60
        try:
            self.control.acquire_lease(tenant, vendor, cred, owner, lease_seconds)
        except LeaseHeldError:
            if job.reason == "continuation":
                raise  # SQS redelivers it once the running pull has let go
            logger.info("pull skipped: another pull of this credential is running", vendor=vendor, credential=cred)
            return JobOutcome(job, "skipped", "lease held")
        started = time.monotonic()
        try:
            outcome = self._run_leased(job, remaining_seconds)
        finally:
            self.control.release_lease(tenant, vendor, cred, owner)
        if outcome.status == "continued" and job.continuation >= MAX_CONTINUATIONS:
            detail = f"stopped after {MAX_CONTINUATIONS} continuations; the next scheduled pull resumes it"
            self._record_failure(job, "failed", detail)
            outcome = JobOutcome(job, "failed", detail, outcome.result)
        elif outcome.status == "continued" and outcome.result is not None:
            self.enqueue(
                [
                    job.model_copy(
                        update={
                            "streams": list(outcome.result.remaining_streams),
                            "reason": "continuation",
                            "continuation": job.continuation + 1,
                        }
                    )
                ]
            )
        self._emit_job_metrics(outcome, time.monotonic() - started)
        return outcome

    def _run_leased(self, job: PullJob, remaining_seconds: Callable[[], float]) -> JobOutcome:
        vendor, tenant, cred = job.vendor, job.tenant, job.credential_id
        try:
            if self.settings.integration(tenant, vendor).use_last_backup:
                return JobOutcome(job, "frozen", "use last backup is on: the POS is not called")
        except SettingsError as exc:
            self._record_failure(job, "failed", str(exc))
            return JobOutcome(job, "failed", str(exc))
        try:
            credential = self.credentials.get(tenant, vendor, cred)
            config = ConnectorConfig(
                base_url=self.config.base_urls[vendor],
                allow_private_hosts=self.config.allow_private_hosts,
                private_host_networks=self.config.private_host_networks,
                read_timeout=self.config.read_timeout,
            )
            connector = self.open_connector(credential, config, tenant=tenant, credential_id=cred)
        except (CredentialError, HostNotAllowedError) as exc:
            self._record_failure(job, "failed", str(exc))
            return JobOutcome(job, "failed", str(exc))
        except VendorUnavailableError as exc:  # e.g. a store PC whose name does not resolve right now
            down = _down_status(exc)
            self._record_failure(job, down, str(exc))
            return JobOutcome(job, down, str(exc))
        engine = PullEngine(
            records=self.records,
            control=self.control,
            archive=self.archive,
            options=self.options,
            now=self.now,
            remaining_seconds=remaining_seconds,
        )
        try:
            result = engine.run(tenant, cred, connector, job.streams)
        except CredentialError as exc:
            self._record_failure(job, "failed", str(exc))
            return JobOutcome(job, "failed", str(exc))
        except MalformedPageError as exc:
            # A page that stays unreadable after retries needs a person (or a mapping fix): say so in the status.
            self._record_failure(job, "failed", str(exc))
            return JobOutcome(job, "failed", str(exc))
        except VendorUnavailableError as exc:
            # Checkpoints hold everything stored so far; the next tick resumes. Not an alarm per attempt: a store PC
            # that is switched off is a normal condition ("offline"), a hosted POS failing is "unavailable".
            down = _down_status(exc)
            self._record_failure(job, down, str(exc))
            return JobOutcome(job, down, str(exc))
        finally:
            connector.close()
        status: Literal["ok", "continued"] = "continued" if result.continued else "ok"
        update: dict[str, Any] = {
            "last_outcome": status,
            "last_attempt_at": self.now().isoformat(),
            "last_error": None,
            "last_pages": result.pages,
            "last_records": result.records,
            "last_changed": result.changed,
            "last_quarantined": result.quarantined,
        }
        if not result.continued:
            update["last_success_at"] = self.now().isoformat()
        self.control.save_status(tenant, vendor, cred, update)
        logger.info(
            "pull finished",
            vendor=vendor.value,
            credential=cred,
            tenant=tenant,
            outcome=status,
            pages=result.pages,
            records=result.records,
            changed=result.changed,
            quarantined=result.quarantined,
        )
        return JobOutcome(job, status, result=result)

    def _record_failure(self, job: PullJob, status: str, error: str) -> None:
        # `error` is one of our domain errors' messages: they never carry secrets or personal data.
        logger.warning(
            "pull did not complete",
            vendor=job.vendor.value,
            credential=job.credential_id,
            tenant=job.tenant,
            outcome=status,
            error=error,
        )
        self.control.save_status(
            job.tenant,
            job.vendor,
            job.credential_id,
            {"last_outcome": status, "last_attempt_at": self.now().isoformat(), "last_error": error},
        )

    def _emit_job_metrics(self, outcome: JobOutcome, seconds: float) -> None:
        job = outcome.job
        with _credential_metrics(job.tenant, job.vendor, job.credential_id) as m:
            m.add_metric(name="PullDuration", unit=MetricUnit.Seconds, value=seconds)
            if outcome.status == "failed":
                m.add_metric(name="PullsFailed", unit=MetricUnit.Count, value=1)
            elif outcome.status == "unavailable":
                m.add_metric(name="PullsVendorUnavailable", unit=MetricUnit.Count, value=1)
            elif outcome.status == "offline":
                m.add_metric(name="StoresOffline", unit=MetricUnit.Count, value=1)
            result = outcome.result
            if result is not None:
                m.add_metric(name="PagesPulled", unit=MetricUnit.Count, value=result.pages)
                m.add_metric(name="RecordsPulled", unit=MetricUnit.Count, value=result.records)
                m.add_metric(name="RecordsChanged", unit=MetricUnit.Count, value=result.changed)
                m.add_metric(name="RecordsQuarantined", unit=MetricUnit.Count, value=result.quarantined)


def _down_status(exc: VendorUnavailableError) -> Literal["offline", "unavailable"]:
    return "offline" if isinstance(exc, StoreOfflineError) else "unavailable"


class _credential_metrics:  # noqa: N801 - used as a context manager, reads like a function
    """Metrics with vendor and credential dimensions, flushed as one EMF blob when the block ends."""

    def __init__(self, tenant: str, vendor: Vendor, credential_id: str) -> None:
        self.metrics = EphemeralMetrics(namespace=NAMESPACE)
        self.metrics.add_dimension(name="vendor", value=vendor.value)
        self.metrics.add_dimension(name="credential", value=f"{tenant}/{credential_id}")

    def __enter__(self) -> EphemeralMetrics:
        return self.metrics

    def __exit__(self, *exc: object) -> None:
        self.metrics.flush_metrics()


def handle_pull_event(
    event: dict[str, Any],
    context: Any,
    function: str,
    service_factory: Callable[[], PullService],
) -> dict[str, Any]:
    """Route a pull Lambda's event: a schedule tick fans out; SQS jobs are pulled with partial batch responses."""
    service = service_factory()
    if event.get("action") == layout.DISPATCH_EVENT["action"]:
        outcome = service.dispatch(layout.PULL_VENDORS[function])
        logger.info(
            "dispatched pull jobs",
            function=function,
            enqueued=len(outcome.enqueued),
            frozen=len(outcome.frozen),
            inactive=len(outcome.inactive),
            invalid_settings=len(outcome.invalid_settings),
        )
        return {"enqueued": len(outcome.enqueued), "frozen": outcome.frozen, "inactive": outcome.inactive}

    def remaining() -> float:
        return float(context.get_remaining_time_in_millis()) / 1000.0

    def process(record: SQSRecord) -> str:
        job = PullJob.model_validate(json.loads(record.body))
        if job.vendor not in layout.PULL_VENDORS[function]:
            raise PossyncError(f"{function} does not pull {job.vendor.value}")
        return service.run_job(job, remaining).status

    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(event=event, record_handler=process, processor=processor, context=context)
    return dict(response)
