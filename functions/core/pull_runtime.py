"""What every pull Lambda does: fan scheduled ticks out to one job per due credential, and run those jobs.

No failure is silent: every pull that does not complete, ours or AWS's, is recorded on the credential's status with
a reason and counted in a metric. A failure that a retry can fix (an AWS service throttled or down, a bug we did not
foresee) also fails the SQS message so that SQS retries it; the checkpoints keep what was already stored.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NoReturn, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from functions.core import aws, ddb_lean, heap, layout, pull_health
from functions.core.archive import S3Archive
from functions.core.connector import Connector, ConnectorConfig
from functions.core.credentials import Credential
from functions.core.engine import ContractMismatch, PullEngine, PullOptions, PullResult
from functions.core.errors import (
    AwsServiceError,
    CredentialError,
    HostNotAllowedError,
    LeaseHeldError,
    MalformedPageError,
    PossyncError,
    SettingsError,
    SettingsUnavailableError,
    StoreOfflineError,
    VendorUnavailableError,
)
from functions.core.failures import aws_error_code as _aws_code
from functions.core.failures import describe_failure
from functions.core.failures import failure_site as _where
from functions.core.failures import is_aws_failure as _is_aws
from functions.core.http import tls_context
from functions.core.lambda_events import sqs_records
from functions.core.layout import ResourceNames, Stream, Vendor
from functions.core.loyalty.catalogue import RewardCatalogue
from functions.core.metrics import (
    AWS_CALLS_FAILED,
    CREDENTIALS_STALE,
    LEAN_REQUESTS_RESENT,
    LEASE_RELEASE_FAILED,
    PAGES_PULLED,
    PULL_CONTRACT_MISMATCH,
    PULL_DURATION,
    PULL_JOBS_REJECTED,
    PULLS_FAILED,
    PULLS_VENDOR_UNAVAILABLE,
    RECORDS_CHANGED,
    RECORDS_PULLED,
    RECORDS_QUARANTINED,
    SECONDS_SINCE_LAST_SUCCESSFUL_PULL,
    STORES_OFFLINE,
)
from functions.core.netguard import IPNetwork, parse_private_networks
from functions.core.notify import AwsNotifier
from functions.core.observability import alarm_metrics, logger
from functions.core.reward_mirrors import StoreMirrorCheck, UnmirroredNotices
from functions.core.sources import CredentialSource, SettingsSource
from functions.core.store import ControlStore, RecordStore, RegisteredCredential


class OpenConnector(Protocol):
    """What each vendor folder's `connector.open_connector` is."""

    def __call__(
        self, credential: Credential, config: ConnectorConfig, *, tenant: str, credential_id: str
    ) -> Connector: ...


SQS_BATCH_MAX = 10
# Each continuation stores at least one page, so a pull always advances; the cap stops a runaway chain
# (e.g. a POS that never reports a last page) from re-invoking the function forever.
MAX_CONTINUATIONS = 200
# Longest rejection reason kept in a log line or a dead-letter message attribute.
REJECTION_REASON_MAX = 500

DispatchReason = Literal["schedule", "manual"]

# The AWS services a pull's clients speak (PullService.from_env; settings and secrets through Powertools). Their models
# are parsed when a pull handler is imported, in Lambda's init phase, not by the first invocation (functions.core.aws).
PULL_AWS_SERVICES = ("dynamodb", "s3", "sqs", "events", "ssm", "secretsmanager")
aws.load_models(*PULL_AWS_SERVICES)
# The clients every invocation uses, built by `warm_up`: settings, secrets, the job queue, and the reward mirror check's
# DynamoDB client (every vendor has a discounts stream, so each complete pull runs the check). The check's EventBridge
# client is built when first used: only a notice raised or cleared calls it.
WARM_CLIENTS = ("ssm", "secretsmanager", "sqs", "dynamodb")
WARM_TRUSTED_CLIENTS = ("dynamodb", "s3")


def warm_up() -> None:
    """Build now what a pull handler's first invocation would otherwise build and every later one reuses. A handler
    calls it at import: Lambda's init phase, once per container, before the first event (AWS's advice for SDK
    clients). Measured: the vendors' TLS context (certifi's CA bundle: every cloud POS client, and the on-prem
    vendors' hosted endpoints and stores answering plain HTTP; a store's pinned certificate gets a context of its own)
    about 17 ms of CPU, the settings, secrets, queue and mirror check's clients with their error classes about 30 ms,
    the engine's DynamoDB and S3 clients about 35 ms. Without a region (a tool importing a handler outside AWS) the
    clients are left to their first use, as before; what is built here is what that use would build (tests and the
    local runtime still reset them, `aws.reset_clients`).
    Nothing here may fail the import: a part that cannot be built is logged and left to its first use, which raises
    inside a job, where the failure is recorded in the credential's status and counted (an import error would leave
    every status as it was while each invocation failed before reaching a job)."""
    _warm("the vendors' TLS context", tls_context)
    if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        return
    for service in WARM_CLIENTS:
        # a client's error classes are built on first access: an absent settings parameter reads them
        _warm(f"the {service} client", lambda name: aws.client(name).exceptions, service)
    for service in WARM_TRUSTED_CLIENTS:
        _warm(f"the trusted {service} client", aws.trusted_client, service)


def _warm(what: str, build: Callable[..., object], *args: str) -> None:
    try:
        build(*args)
    except Exception as exc:  # noqa: BLE001 - built again at its first use, which reports the failure in a job
        logger.warning(
            "could not build this at init; the first pull that needs it builds it again and reports the failure",
            part=what,
            error=describe_failure(exc),
        )


class PullJob(BaseModel):
    """One SQS message: pull one credential (all its streams, or the ones a continuation has left)."""

    model_config = ConfigDict(extra="forbid")

    tenant: str
    vendor: Vendor
    credential_id: str
    streams: list[Stream] | None = None
    reason: Literal["schedule", "continuation", "manual"] = "schedule"
    continuation: int = Field(default=0, ge=0)

    @field_validator("tenant", "credential_id")
    @classmethod
    def _safe_id(cls, value: str, info: ValidationInfo) -> str:
        # Ids become DynamoDB keys and S3 key parts: checked before anything is written under them. The error
        # does not repeat the value (a garbled message could carry anything).
        try:
            return layout.check_id(value, info.field_name or "id")
        except ValueError:
            raise PydanticCustomError("invalid_id", "not a valid id: {rule}", {"rule": layout.ID_RULE}) from None


class PullJobRejectedError(PossyncError):
    """An SQS message that can never become a pull (not JSON, not a pull job, invalid ids, a vendor this function
    does not pull): retrying it cannot help, so it goes to the jobs dead-letter queue at once."""


class PullAttemptFailedError(PossyncError):
    """A pull failed in a way a retry can fix; it is recorded, and the SQS message fails so that SQS retries it."""


def parse_job(body: str, function: str) -> PullJob:
    """The pull job an SQS message carries, or PullJobRejectedError saying why it never can be (body not quoted)."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PullJobRejectedError("the message body is not JSON") from None
    try:
        job = PullJob.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise PullJobRejectedError(f"not a valid pull job: {problems}"[:REJECTION_REASON_MAX]) from None
    if job.vendor not in layout.PULL_VENDORS[function]:
        raise PullJobRejectedError(f"{function} does not pull {job.vendor.value}")
    return job


JobStatus = Literal[
    "ok", "continued", "contract_mismatch", "frozen", "skipped", "failed", "unavailable", "offline", "rejected"
]


@dataclass
class JobOutcome:
    job: PullJob
    status: JobStatus
    detail: str = ""
    result: PullResult | None = None
    mismatches: tuple[ContractMismatch, ...] = ()  # found by this job


@dataclass
class DispatchOutcome:
    enqueued: list[PullJob] = field(default_factory=list)
    not_due: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    inactive: list[str] = field(default_factory=list)
    invalid_settings: list[str] = field(default_factory=list)
    settings_unavailable: list[str] = field(default_factory=list)
    lease_held: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # credentials an AWS failure kept from being dispatched


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
    dead_letter_queue_url: str | None = None
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
            dead_letter_queue_url=env.get(layout.ENV_JOB_DLQ_URL) or None,
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
        mirrors: StoreMirrorCheck | None = None,
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
        self.mirrors = mirrors

    @classmethod
    def from_env(cls, open_connector: OpenConnector, default_base_urls: dict[Vendor, str]) -> PullService:
        config = RuntimeConfig.from_env(default_base_urls)
        # The mirror check's clients are built when it first calls them (its DynamoDB one already is when a pull handler
        # was imported: `warm_up`; EventBridge only when a notice is raised or cleared).
        dynamodb, events = aws.LazyClient("dynamodb"), aws.LazyClient("events")
        records = RecordStore(dynamodb, config.records_table)
        mirrors = StoreMirrorCheck(
            RewardCatalogue(dynamodb, config.control_table),
            records,
            UnmirroredNotices(dynamodb, config.control_table),
            events,
            AwsNotifier(events),
        )
        return cls(
            config=config,
            open_connector=open_connector,
            # The engine's own requests (items, checkpoints, raw pages) skip botocore's parameter validation.
            records=RecordStore(aws.trusted_client("dynamodb"), config.records_table),
            control=ControlStore(aws.trusted_client("dynamodb"), config.control_table),
            archive=S3Archive(aws.trusted_client("s3"), config.archive_bucket),
            settings=SettingsSource(config.names),
            credentials=CredentialSource(config.names),
            sqs=aws.client("sqs"),
            mirrors=mirrors,
        )

    # --- dispatch ------------------------------------------------------------------------------
    def dispatch(self, vendors: Iterable[Vendor], reason: DispatchReason = "schedule") -> DispatchOutcome:
        """One job per active credential that is due, unless its integration is frozen on 'use last backup' or
        another pull holds its lease; `reason="manual"` pulls every such credential now, whatever its interval.

        Every tick also measures freshness (`CredentialsStale`, `SecondsSinceLastSuccessfulPull`). A credential
        whose settings or status cannot be read is recorded and skipped; the others are dispatched regardless.
        """
        now = self.now()
        outcome = DispatchOutcome()
        due: list[tuple[PullJob, int, dict[str, Any]]] = []
        for vendor in vendors:
            try:
                registered = self.control.credentials(vendor)
            except AwsServiceError as exc:
                # Nothing to go on: the whole dispatch fails, Lambda retries it, then its dead-letter queue alarms.
                self._emit([(AWS_CALLS_FAILED, MetricUnit.Count, 1.0)])
                logger.error("credential registry unreadable; dispatch failed", vendor=vendor.value, error=str(exc))
                raise
            for entry in registered:
                try:
                    job = self._consider(entry, reason, now, outcome)
                except Exception as exc:  # noqa: BLE001 - one credential's failure must not stop the others
                    label = _label(entry.tenant, vendor, entry.credential_id)
                    outcome.errors.append(label)
                    self._aws_failure("dispatch could not consider credential", exc, entry.tenant, vendor, entry)
                    continue
                if job is not None:
                    due.append(job)
        self._emit([(CREDENTIALS_STALE, MetricUnit.Count, float(len(outcome.stale)))])
        failed = self._enqueue_recorded(due, now, outcome)
        if failed or outcome.errors:
            raise AwsServiceError(
                f"dispatch incomplete: {failed} jobs not enqueued, {len(outcome.errors)} credentials not considered "
                "(an AWS service failed; see the log); the dispatch is retried"
            )
        return outcome

    def _consider(
        self, entry: RegisteredCredential, reason: DispatchReason, now: datetime, outcome: DispatchOutcome
    ) -> tuple[PullJob, int, dict[str, Any]] | None:
        tenant, vendor, cred = entry.tenant, entry.vendor, entry.credential_id
        label = _label(tenant, vendor, cred)
        if not entry.active:
            outcome.inactive.append(label)
            return None
        status = self.control.get_status(tenant, vendor, cred)
        try:
            settings = self.settings.integration(tenant, vendor)
        except SettingsUnavailableError as exc:
            # SSM throttled or down: not this credential's fault; the next tick tries again.
            outcome.settings_unavailable.append(label)
            self._count_freshness(entry, status, pull_health.interval_of(status), now, outcome)
            self._emit([(AWS_CALLS_FAILED, MetricUnit.Count, 1.0)], tenant, vendor, cred)
            logger.warning(
                "settings unreadable; pull not dispatched", tenant=tenant, vendor=vendor.value, error=str(exc)
            )
            self._save_status(entry, {"dispatch_problem": {"at": now.isoformat(), "error": str(exc)}})
            return None
        except SettingsError as exc:
            # Unknown settings: do not call the POS (it may be meant to be frozen); say which parameter.
            outcome.invalid_settings.append(label)
            self._count_freshness(entry, status, pull_health.interval_of(status), now, outcome)
            self._emit([(PULLS_FAILED, MetricUnit.Count, 1.0)], tenant, vendor, cred)
            logger.error("settings invalid; pull skipped", tenant=tenant, vendor=vendor.value, error=str(exc))
            self._save_status(
                entry,
                {
                    "last_outcome": "failed",
                    "last_error": f"{exc}; the POS is not called until the settings are fixed",
                    "dispatch_problem": {"at": now.isoformat(), "error": str(exc)},
                },
            )
            return None
        if settings.use_last_backup:
            outcome.frozen.append(label)
            self._clear_dispatch_problem(entry, status)
            return None
        interval = settings.pull_interval_minutes
        self._count_freshness(entry, status, interval, now, outcome)
        if reason == "schedule" and not pull_health.is_due(status, interval, now):
            outcome.not_due.append(label)
            self._clear_dispatch_problem(entry, status)
            return None
        lease = self.control.get_lease(tenant, vendor, cred)
        if lease is not None:
            outcome.lease_held.append(label)
            skip = {"at": now.isoformat(), "by": "dispatch", **lease.describe()}
            logger.info("pull not dispatched: another pull holds the lease", tenant=tenant, vendor=vendor.value, **skip)
            self._save_status(entry, {"lease_skip": skip})
            return None
        return PullJob(tenant=tenant, vendor=vendor, credential_id=cred, reason=reason), interval, status

    def _count_freshness(
        self,
        entry: RegisteredCredential,
        status: dict[str, Any],
        interval: int,
        now: datetime,
        outcome: DispatchOutcome,
    ) -> None:
        if pull_health.stale_for(status, interval, now) is not None:
            outcome.stale.append(_label(entry.tenant, entry.vendor, entry.credential_id))
        age = pull_health.seconds_since_success(status, now)
        if age is not None:
            self._emit(
                [(SECONDS_SINCE_LAST_SUCCESSFUL_PULL, MetricUnit.Seconds, age)],
                entry.tenant,
                entry.vendor,
                entry.credential_id,
            )

    def _clear_dispatch_problem(self, entry: RegisteredCredential, status: dict[str, Any]) -> None:
        if status.get("dispatch_problem"):
            self._save_status(entry, {"dispatch_problem": None})

    def _save_status(self, entry: RegisteredCredential, update: dict[str, Any]) -> None:
        self.control.save_status(entry.tenant, entry.vendor, entry.credential_id, update)

    def _enqueue_recorded(
        self, due: Sequence[tuple[PullJob, int, dict[str, Any]]], now: datetime, outcome: DispatchOutcome
    ) -> int:
        """Enqueue the due jobs and stamp each enqueued credential's status; returns how many failed to enqueue."""
        refused = self._send_jobs([job for job, _, _ in due])
        for job, interval, status in due:
            label = _label(job.tenant, job.vendor, job.credential_id)
            if label in refused:
                continue
            outcome.enqueued.append(job)
            update: dict[str, Any] = {
                "last_enqueued_at": now.isoformat(),
                "pull_interval_minutes": interval,
                "dispatch_problem": None,
            }
            if not status.get("first_enqueued_at"):
                update["first_enqueued_at"] = now.isoformat()
            try:
                self.control.save_status(job.tenant, job.vendor, job.credential_id, update)
            except Exception as exc:  # noqa: BLE001 - the job is queued; a missing stamp only re-enqueues it
                outcome.errors.append(label)
                self._aws_failure("enqueued pull could not be stamped on the status", exc, job.tenant, job.vendor)
        return len(refused)

    def enqueue(self, jobs: Sequence[PullJob]) -> None:
        """Put jobs on the function's queue; AwsServiceError if SQS refused any."""
        refused = self._send_jobs(jobs)
        if refused:
            raise AwsServiceError(f"SQS refused {len(refused)} pull jobs; they are retried")

    def _send_jobs(self, jobs: Sequence[PullJob]) -> set[str]:
        """Send in batches of 10; returns the labels of the jobs SQS did not take (each failure logged and counted)."""
        refused: set[str] = set()
        for start in range(0, len(jobs), SQS_BATCH_MAX):
            batch = jobs[start : start + SQS_BATCH_MAX]
            entries = [{"Id": str(i), "MessageBody": job.model_dump_json()} for i, job in enumerate(batch)]
            try:
                response = self.sqs.send_message_batch(QueueUrl=self.config.queue_url, Entries=entries)
                failed = [batch[int(f["Id"])] for f in response.get("Failed", [])]
                problem = ", ".join(sorted({str(f.get("Code")) for f in response.get("Failed", [])}))
            except (ClientError, BotoCoreError) as exc:
                failed, problem = list(batch), _aws_code(exc)
            for job in failed:
                refused.add(_label(job.tenant, job.vendor, job.credential_id))
            if failed:
                self._emit([(AWS_CALLS_FAILED, MetricUnit.Count, 1.0)])
                logger.error("SQS did not take pull jobs", jobs=len(failed), error=problem)
        return refused

    # --- jobs ----------------------------------------------------------------------------------
    def run_job(self, job: PullJob, remaining_seconds: Callable[[], float], holder: str = "") -> JobOutcome:
        """Pull one credential under its lease; PullAttemptFailedError (after recording it) when SQS should retry."""
        vendor, tenant, cred = job.vendor, job.tenant, job.credential_id
        owner = uuid.uuid4().hex
        lease_seconds = int(min(remaining_seconds(), 3600)) + 60
        started = time.monotonic()
        try:
            self.control.acquire_lease(tenant, vendor, cred, owner, lease_seconds, holder or f"{job.reason} job")
        except LeaseHeldError:
            return self._skip_held(job)
        except Exception as exc:  # noqa: BLE001 - recorded, counted and re-raised as a retryable failure
            self._fail(job, exc, started)
        failure: Exception | None = None
        outcome: JobOutcome | None = None
        try:
            outcome = self._run_leased(job, remaining_seconds)
        except Exception as exc:  # noqa: BLE001 - recorded, counted and re-raised below, after the lease is let go
            failure = exc
        finally:
            released = self._release(job, owner, lease_seconds)
        if failure is not None:
            self._fail(job, failure, started, released)
        assert outcome is not None
        if released is not None:
            self._save_status_loudly(job, {"lease_release_failed": released}, "lease release failure")
        try:
            outcome = self._continue(job, outcome)
        except Exception as exc:  # noqa: BLE001 - the continuation could not be enqueued: retry this job
            self._fail(job, exc, started)
        self._emit_job_metrics(outcome, time.monotonic() - started)
        self._check_mirrors(outcome)
        return outcome

    def _check_mirrors(self, outcome: JobOutcome) -> None:
        """Once the store's discounts stream is pulled to the end: its reward mirrors checked, notices raised or
        cleared. A failure leaves the pull as it is: logged and counted (AwsCallsFailed: each step is an AWS call),
        and the next pull of the discounts checks again."""
        discounts = outcome.result.streams.get(Stream.DISCOUNTS) if outcome.result is not None else None
        if self.mirrors is None or discounts is None or not discounts.complete:
            return
        job = outcome.job
        try:
            raised = self.mirrors.run(job.tenant, job.vendor, job.credential_id)
        except Exception as exc:  # noqa: BLE001 - the pull itself succeeded; the next pull checks again
            logger.error(
                "reward mirror check failed; the next pull of the discounts checks again",
                vendor=job.vendor.value,
                credential=job.credential_id,
                tenant=job.tenant,
                error=describe_failure(exc),
                where=_where(exc),
            )
            self._emit([(AWS_CALLS_FAILED, MetricUnit.Count, 1.0)], job.tenant, job.vendor, job.credential_id)
            return
        if raised:
            logger.info(
                "unmirrored-reward notices raised",
                vendor=job.vendor.value,
                credential=job.credential_id,
                tenant=job.tenant,
                raised=raised,
            )

    def _skip_held(self, job: PullJob) -> JobOutcome:
        """Another pull holds the lease: say so in the status (who, since when, until when)."""
        try:
            lease = self.control.get_lease(job.tenant, job.vendor, job.credential_id)
            holder = lease.describe() if lease is not None else {"holder": "a pull that has just finished"}
        except AwsServiceError:
            holder = {"holder": "unknown (the lease could not be read)"}
        skip = {"at": self.now().isoformat(), "by": f"{job.reason} job", **holder}
        logger.info(
            "pull skipped: another pull of this credential holds the lease",
            vendor=job.vendor.value,
            credential=job.credential_id,
            tenant=job.tenant,
            **skip,
        )
        self._save_status_loudly(job, {"lease_skip": skip}, "skipped pull")
        if job.reason == "continuation":
            raise LeaseHeldError("a continuation waits for the running pull of its credential; SQS redelivers it")
        return JobOutcome(job, "skipped", f"lease held by {skip['holder']} until {skip.get('until')}")

    def _release(self, job: PullJob, owner: str, lease_seconds: int) -> dict[str, Any] | None:
        """Let go of the lease; never raises. A failure is logged and counted, and returned for the status."""
        try:
            self.control.release_lease(job.tenant, job.vendor, job.credential_id, owner)
        except Exception as exc:  # noqa: BLE001 - must not mask the pull's own outcome or error
            until = datetime.now(UTC) + timedelta(seconds=lease_seconds)
            problem: dict[str, Any] = {
                "at": self.now().isoformat(),
                "error": describe_failure(exc),
                "lease_until": until.isoformat(),
            }
            logger.error(
                "pull lease not released: later pulls of this credential are skipped until it expires",
                vendor=job.vendor.value,
                credential=job.credential_id,
                tenant=job.tenant,
                **problem,
            )
            metrics = [(LEASE_RELEASE_FAILED, MetricUnit.Count, 1.0)]
            if _is_aws(exc):
                metrics.append((AWS_CALLS_FAILED, MetricUnit.Count, 1.0))
            self._emit(metrics, job.tenant, job.vendor, job.credential_id)
            return problem
        return None

    def _continue(self, job: PullJob, outcome: JobOutcome) -> JobOutcome:
        result = outcome.result
        if outcome.status != "continued" or result is None:
            return outcome
        if job.continuation >= MAX_CONTINUATIONS:
            detail = f"stopped after {MAX_CONTINUATIONS} continuations; the next scheduled pull resumes it"
            self._record_failure(job, "failed", detail)
            return JobOutcome(job, "failed", detail, result)
        self.enqueue(
            [
                job.model_copy(
                    update={
                        "streams": list(result.remaining_streams),
                        "reason": "continuation",
                        "continuation": job.continuation + 1,
                    }
                )
            ]
        )
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
        return self._record_result(job, result)

    def _record_result(self, job: PullJob, result: PullResult) -> JobOutcome:
        """Save a completed (or continued) pull's status, with the contract mismatches still standing."""
        vendor, tenant, cred = job.vendor, job.tenant, job.credential_id
        standing: dict[str, Any] = dict(self.control.get_status(tenant, vendor, cred).get("contract_mismatch") or {})
        found: list[ContractMismatch] = []
        for stream, stream_result in result.streams.items():
            verdict = stream_result.contract_verdict(stream)
            if isinstance(verdict, ContractMismatch):
                found.append(verdict)
                standing[stream.value] = verdict.as_status()
            elif verdict == "clean":
                standing.pop(stream.value, None)
        status: JobStatus = "continued" if result.continued else "ok"
        error: str | None = None
        if standing:
            status = "contract_mismatch"
            error = "; ".join(
                found_one.describe()
                for found_one in found or [_standing_mismatch(stream, entry) for stream, entry in standing.items()]
            )
        now = self.now().isoformat()
        # Windows that kept changing in every pass: closed with their cursor unmoved, read again next run (engine).
        unsettled = sorted(stream.value for stream, stream_result in result.streams.items() if stream_result.unsettled)
        update: dict[str, Any] = {
            "last_outcome": status,
            "last_attempt_at": now,
            "last_error": error,
            "unsettled_streams": unsettled or None,
            "last_pages": result.pages,
            "last_records": result.records,
            "last_changed": result.changed,
            "last_quarantined": result.quarantined,
            "contract_mismatch": standing or None,
            "lease_skip": None,
            "lease_release_failed": None,
        }
        if status == "ok":
            update["last_success_at"] = now
        self.control.save_status(tenant, vendor, cred, update)
        log = logger.error if status == "contract_mismatch" else logger.info
        log(
            "pull finished",
            vendor=vendor.value,
            credential=cred,
            tenant=tenant,
            outcome=status,
            pages=result.pages,
            records=result.records,
            changed=result.changed,
            quarantined=result.quarantined,
            unsettled=unsettled,
            error=error,
        )
        if result.continued and status == "contract_mismatch":
            # The other streams still need their turn: the continuation is enqueued as for any continued pull.
            return JobOutcome(job, "continued", error or "", result, tuple(found))
        return JobOutcome(job, status, error or "", result, tuple(found))

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
        update = {"last_outcome": status, "last_attempt_at": self.now().isoformat(), "last_error": error}
        self._save_status_loudly(job, {**update, "lease_skip": None}, f"pull {status} ({error})")

    def _save_status_loudly(self, job: PullJob, update: dict[str, Any], what: str) -> None:
        """A status that cannot be written must not pass unnoticed: log, count, and fail the SQS message."""
        try:
            self.control.save_status(job.tenant, job.vendor, job.credential_id, update)
        except Exception as exc:  # noqa: BLE001 - re-raised as a retryable failure that names both problems
            reason = describe_failure(exc)
            logger.error(
                "pull status could not be recorded",
                vendor=job.vendor.value,
                credential=job.credential_id,
                tenant=job.tenant,
                what=what,
                error=reason,
            )
            self._emit([(AWS_CALLS_FAILED, MetricUnit.Count, 1.0)], job.tenant, job.vendor, job.credential_id)
            raise PullAttemptFailedError(f"{what}: the status could not be recorded ({reason})") from None

    def _fail(self, job: PullJob, exc: Exception, started: float, released: dict[str, Any] | None = None) -> NoReturn:
        """Record a failure a retry may fix, count it, and raise PullAttemptFailedError so SQS retries the job."""
        if isinstance(exc, PullAttemptFailedError):
            raise exc  # already recorded (or recording it was what failed)
        aws_side = _is_aws(exc)
        reason = describe_failure(exc)
        detail = f"{reason}; SQS retries the job (stored pages are kept by the checkpoint)"
        logger.error(
            "pull failed",
            vendor=job.vendor.value,
            credential=job.credential_id,
            tenant=job.tenant,
            cause="aws" if aws_side else "unexpected",
            error=reason,
            where=_where(exc),
        )
        metrics = [
            (PULLS_FAILED, MetricUnit.Count, 1.0),
            (PULL_DURATION, MetricUnit.Seconds, time.monotonic() - started),
        ]
        if aws_side:
            metrics.append((AWS_CALLS_FAILED, MetricUnit.Count, 1.0))
        metrics += _resent_metric()
        self._emit(metrics, job.tenant, job.vendor, job.credential_id)
        update: dict[str, Any] = {
            "last_outcome": "failed",
            "last_attempt_at": self.now().isoformat(),
            "last_error": detail,
        }
        if released is not None:
            update["lease_release_failed"] = released
        self._save_status_loudly(job, update, f"pull failed ({reason})")
        raise PullAttemptFailedError(detail) from None

    def _aws_failure(
        self, what: str, exc: Exception, tenant: str, vendor: Vendor, entry: RegisteredCredential | None = None
    ) -> None:
        logger.error(what, tenant=tenant, vendor=vendor.value, error=describe_failure(exc), where=_where(exc))
        cred = entry.credential_id if entry is not None else None
        self._emit([(AWS_CALLS_FAILED, MetricUnit.Count, 1.0)], tenant, vendor, cred)

    # --- rejected jobs ---------------------------------------------------------------------------
    def reject(self, message_id: str, body: str, reason: str, function: str) -> None:
        """Move a job that can never succeed to the jobs dead-letter queue now; AwsServiceError if it could not be
        moved (the message then stays on its queue and is tried again: never dropped)."""
        logger.error(
            "pull job rejected: sent to the jobs dead-letter queue, not retried",
            function=function,
            message_id=message_id,
            reason=reason,
        )
        if not self.config.dead_letter_queue_url:
            raise AwsServiceError(
                f"{layout.ENV_JOB_DLQ_URL} is not set, so rejected job {message_id} stays on its queue "
                "(SQS moves it to the dead-letter queue after its receive limit)"
            )
        try:
            self.sqs.send_message(
                QueueUrl=self.config.dead_letter_queue_url,
                MessageBody=body,
                MessageAttributes={
                    "rejected_reason": {"DataType": "String", "StringValue": reason[:REJECTION_REASON_MAX]},
                    "rejected_by": {"DataType": "String", "StringValue": function},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            self._emit([(AWS_CALLS_FAILED, MetricUnit.Count, 1.0)])
            raise AwsServiceError(
                f"rejected pull job {message_id} could not be sent to the dead-letter queue ({_aws_code(exc)}); "
                "it stays on its queue and is tried again"
            ) from None
        self._emit([(PULL_JOBS_REJECTED, MetricUnit.Count, 1.0)])

    # --- metrics -------------------------------------------------------------------------------
    def _emit_job_metrics(self, outcome: JobOutcome, seconds: float) -> None:
        values: list[tuple[str, MetricUnit, float]] = [(PULL_DURATION, MetricUnit.Seconds, seconds)]
        if outcome.status == "failed":
            values.append((PULLS_FAILED, MetricUnit.Count, 1.0))
        elif outcome.status == "unavailable":
            values.append((PULLS_VENDOR_UNAVAILABLE, MetricUnit.Count, 1.0))
        elif outcome.status == "offline":
            values.append((STORES_OFFLINE, MetricUnit.Count, 1.0))
        if outcome.mismatches:
            values.append((PULL_CONTRACT_MISMATCH, MetricUnit.Count, float(len(outcome.mismatches))))
        result = outcome.result
        if result is not None:
            values += [
                (PAGES_PULLED, MetricUnit.Count, float(result.pages)),
                (RECORDS_PULLED, MetricUnit.Count, float(result.records)),
                (RECORDS_CHANGED, MetricUnit.Count, float(result.changed)),
                (RECORDS_QUARANTINED, MetricUnit.Count, float(result.quarantined)),
            ]
        values += _resent_metric()
        job = outcome.job
        self._emit(values, job.tenant, job.vendor, job.credential_id)

    @staticmethod
    def _emit(
        values: Sequence[tuple[str, MetricUnit, float]],
        tenant: str | None = None,
        vendor: Vendor | None = None,
        credential_id: str | None = None,
    ) -> None:
        emit_metrics(values, tenant, vendor, credential_id)


def _resent_metric() -> list[tuple[str, MetricUnit, float]]:
    """The job's requests the lean DynamoDB and S3 paths sent again through botocore (a failed job's too: throttles
    are most likely then), taken so the next job does not report them again."""
    resent = ddb_lean.take_resent()
    return [(LEAN_REQUESTS_RESENT, MetricUnit.Count, float(resent))] if resent else []


def emit_metrics(
    values: Sequence[tuple[str, MetricUnit, float]],
    tenant: str | None = None,
    vendor: Vendor | None = None,
    credential_id: str | None = None,
) -> None:
    """Each metric once without dimensions (one alarm covers every tenant and store) and, when the credential is
    known, once more with `vendor` and `credential` dimensions (the dashboard; finding the store at fault).
    """
    if not values:
        return
    plain = alarm_metrics()
    for name, unit, value in values:
        plain.add_metric(name=name, unit=unit, value=value)
    plain.flush_metrics()
    if vendor is None or tenant is None or credential_id is None:
        return
    per_credential = alarm_metrics()
    per_credential.add_dimension(name="vendor", value=vendor.value)
    per_credential.add_dimension(name="credential", value=f"{tenant}/{credential_id}")
    for name, unit, value in values:
        per_credential.add_metric(name=name, unit=unit, value=value)
    per_credential.flush_metrics()


def _label(tenant: str, vendor: Vendor, credential_id: str) -> str:
    return f"{tenant}/{vendor.value}/{credential_id}"


def _standing_mismatch(stream: str, entry: dict[str, Any]) -> ContractMismatch:
    return ContractMismatch(
        Stream(stream),
        str(entry.get("field")),
        str(entry.get("problem")),
        int(entry.get("quarantined", 0)),
        int(entry.get("read", 0)),
    )


def _down_status(exc: VendorUnavailableError) -> Literal["offline", "unavailable"]:
    return "offline" if isinstance(exc, StoreOfflineError) else "unavailable"


def handle_pull_event(
    event: dict[str, Any],
    context: Any,
    function: str,
    service_factory: Callable[[], PullService],
) -> dict[str, Any]:
    """Route a pull Lambda's event: a schedule tick fans out; SQS jobs are pulled with partial batch responses.

    An SQS job fails (and SQS retries it) only when a retry can help; a job that can never succeed is moved to the
    jobs dead-letter queue at once and acknowledged.
    """
    with heap.resident():  # once per process: collections then skip its modules, models and clients
        service = service_factory()
    if isinstance(event, dict) and event.get("action") == layout.DISPATCH_EVENT["action"]:
        reason = event.get("reason", "schedule")
        if reason not in ("schedule", "manual"):
            raise PossyncError(f"dispatch reason must be 'schedule' or 'manual', not {str(reason)[:40]!r}")
        outcome = service.dispatch(layout.PULL_VENDORS[function], reason)
        logger.info(
            "dispatched pull jobs",
            function=function,
            reason=reason,
            enqueued=len(outcome.enqueued),
            not_due=len(outcome.not_due),
            frozen=len(outcome.frozen),
            inactive=len(outcome.inactive),
            invalid_settings=len(outcome.invalid_settings),
            settings_unavailable=len(outcome.settings_unavailable),
            lease_held=len(outcome.lease_held),
            stale=len(outcome.stale),
        )
        return {
            "enqueued": len(outcome.enqueued),
            "not_due": len(outcome.not_due),
            "frozen": outcome.frozen,
            "inactive": outcome.inactive,
            "stale": outcome.stale,
        }

    def remaining() -> float:
        return float(context.get_remaining_time_in_millis()) / 1000.0

    request = getattr(context, "aws_request_id", None)
    takes = f"its schedule's dispatch event ({json.dumps(layout.DISPATCH_EVENT)}) or an SQS batch of pull jobs"
    if not sqs_records(event, function, takes):
        return {"batchItemFailures": []}

    def process(record: SQSRecord) -> str:
        try:
            job = parse_job(record.body, function)
        except PullJobRejectedError as exc:
            service.reject(record.message_id, record.body, str(exc), function)
            return "rejected"
        holder = f"{job.reason} job" + (f", Lambda request {request}" if request else "")
        return service.run_job(job, remaining, holder).status

    # A single failed job is a partial-batch failure, not an invocation error: SQS retries just that message.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(event=event, record_handler=process, processor=processor, context=context)
    return dict(response)
