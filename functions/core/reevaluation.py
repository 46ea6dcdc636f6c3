"""Re-evaluation: a change of settings or store mappings applied to the records already stored, per tenant and POS.

The rules run when a record arrives on the stream; records already stored never come back by themselves. A change
of a tenant's integration settings (enroll_after, the age gate, store mappings, the points import date, ...) or of
its loyalty settings therefore requests a re-evaluation job for that tenant and POS (for loyalty settings: one per
POS the tenant has credentials for). The CLI requests it after it saved a change; in AWS, an EventBridge rule on
"Parameter Store Change" events of the stage's settings parameters requests it for edits made anywhere else.

A run reads the tenant+POS's stored records through the records table's index by tenant and POS, a page at a time,
shoppers first, then sales, then POSaBIT balances, so every sale finds its shopper's persona, and hands each page to
`LoyaltyService.reapply`: the stream's own engines, so a sale is booked once however the run and the stream
interleave, and whether the run is retried or runs twice. Last, it applies the records parked while the settings
were invalid. Progress (phase, index cursor, counts) is saved on the control table after every page; a run that
runs out of time continues in a new SQS message, and a failed attempt is retried (with backoff) from the last page
it saved.

Coalescing: one run per tenant and POS at a time (a lease on its control item), and a run records a digest of the
settings it started from. A request whose settings digest equals the running run's is covered by it; one with other
settings waits until that run is over and then runs once (however many such requests there were); one whose
settings equal those of the last successful run, with nothing parked, has nothing to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NoReturn

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from functions.core import aws, layout, metrics
from functions.core.errors import AwsServiceError, PossyncError, SettingsError
from functions.core.failures import aws_error_code, describe_failure, failure_site, is_aws_failure
from functions.core.lambda_events import sqs_records
from functions.core.layout import RecordKind, ResourceNames, Vendor
from functions.core.loyalty.service import LoyaltyService
from functions.core.loyalty.settings import tenant_zone
from functions.core.models import CanonicalRecord
from functions.core.observability import logger
from functions.core.settings import IntegrationSettings, TenantSettings
from functions.core.sms.service import OptinService
from functions.core.sources import clear_caches
from functions.core.store import ControlStore, RecordStore, call_table

# --- the function, its queue and its event source mapping (the CDK app and the local runtime read these) --------
FUNCTION_TIMEOUT_SECONDS = 300
FUNCTION_MEMORY_MB = 512
# AWS's advice for SQS event sources: a visibility timeout of at least six times the function's timeout.
QUEUE_VISIBILITY_SECONDS = 6 * FUNCTION_TIMEOUT_SECONDS
# Receives of one message before SQS moves it to the dead-letter queue (its run is then recorded as failed).
MAX_RECEIVES = 4
# Runs of different tenants and POSes at once (they share the personas table with the stream consumers).
MAX_CONCURRENCY = 2
QUEUE_RETENTION_DAYS = 4
# Records read and applied per page: one index query, one batched read, one engine call (a stream batch's size).
PAGE_SIZE = 100
# A page is not started with less time than this left in the invocation; the run continues in a new message.
TIME_BUDGET_SECONDS = 60.0
# How long a run holds its tenant+POS between pages (a continuation normally starts within seconds).
LEASE_SECONDS = FUNCTION_TIMEOUT_SECONDS + 600
# A request with other settings than the running run's waits this long before it looks again.
RECHECK_DELAY_SECONDS = 120
# Visibility timeout set after the n-th failed attempt (the backoff before SQS hands the message out again).
RETRY_BACKOFF_SECONDS = (30, 120, 600)
# A chain of continuations this long is a runaway (each stores at least one page): the run is failed.
MAX_CONTINUATIONS = 5000
TRIGGER_MAX = 300

Phase = Literal["shopper", "sale", "loyalty_balance", "waiting", "done"]
# Shoppers first (layout.RULE_RECORD_KINDS), so every sale finds its shopper's persona; then the parked records.
PHASES: tuple[Phase, ...] = ("shopper", "sale", "loyalty_balance", "waiting", "done")
# What `possync status` shows, and what makes it exit 1.
RunState = Literal["running", "retrying", "done", "failed"]
FAILED_STATES = frozenset({"failed", "stalled"})

# EventBridge's event for an edit of a parameter (create, update, delete, label) in Parameter Store.
SSM_EVENT_SOURCE = "aws.ssm"
SSM_CHANGE_DETAIL_TYPE = "Parameter Store Change"


def settings_change_pattern(names: ResourceNames) -> dict[str, Any]:
    """The EventBridge pattern of the settings-change rule: edits of this stage's settings parameters (the name is
    matched with and without its leading '/')."""
    root = names.settings_parameter_root
    return {
        "source": [SSM_EVENT_SOURCE],
        "detail-type": [SSM_CHANGE_DETAIL_TYPE],
        "detail": {"name": [{"prefix": root}, {"prefix": root.lstrip("/")}]},
    }


def next_phase(phase: Phase) -> Phase:
    return PHASES[PHASES.index(phase) + 1]


def rules_fingerprint(integration: IntegrationSettings, tenant: TenantSettings) -> str:
    """A digest of what the loyalty rules read of a tenant's settings for one POS: two runs with the same digest make
    the same decisions on the same stored records. Settings only the pulls read (interval, freeze) are left out."""
    data = {
        "integration": integration.model_dump(mode="json", exclude={"pull_interval_minutes", "use_last_backup"}),
        "tenant": tenant.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:20]


# --- messages -----------------------------------------------------------------------------------------------------


class ReevaluationJob(BaseModel):
    """One SQS message: re-evaluate a tenant's stored records from one POS (or continue run `run_id`)."""

    model_config = ConfigDict(extra="forbid")

    tenant: str
    vendor: Vendor
    trigger: str = Field(default="", max_length=TRIGGER_MAX)
    run_id: str | None = Field(default=None, max_length=100)
    continuation: int = Field(default=0, ge=0)
    # Run even if the records were last evaluated with the settings in force now (`possync reevaluate --force`).
    force: bool = False

    @field_validator("tenant")
    @classmethod
    def _safe_id(cls, value: str, info: ValidationInfo) -> str:
        try:
            return layout.check_id(value, info.field_name or "id")
        except ValueError:
            raise PydanticCustomError("invalid_id", "not a valid id: {rule}", {"rule": layout.ID_RULE}) from None


@dataclass(frozen=True)
class SettingsChange:
    """An EventBridge "Parameter Store Change" event for one of this stage's parameters."""

    parameter: str
    operation: str
    at: str


class JobRejectedError(PossyncError):
    """A message that can never become a re-evaluation (not JSON, not a job, invalid ids): not retried."""


def parse_message(body: str) -> ReevaluationJob | SettingsChange:
    """A job the CLI, the settings-change path or a continuation sent, or an EventBridge settings-change event."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise JobRejectedError("the message body is not JSON") from None
    if isinstance(data, dict) and data.get("source") == SSM_EVENT_SOURCE:
        detail = data.get("detail")
        if data.get("detail-type") != SSM_CHANGE_DETAIL_TYPE or not isinstance(detail, dict):
            raise JobRejectedError(f"an {SSM_EVENT_SOURCE} event that is not a {SSM_CHANGE_DETAIL_TYPE!r} event")
        name = detail.get("name")
        if not isinstance(name, str) or not name:
            raise JobRejectedError("a Parameter Store Change event without a parameter name")
        return SettingsChange(name, str(detail.get("operation") or "change"), str(data.get("time") or ""))
    try:
        return ReevaluationJob.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise JobRejectedError(f"not a valid re-evaluation job: {problems}"[:500]) from None


@dataclass(frozen=True)
class QueueMessage:
    """What the handler passes on of an SQS record."""

    body: str
    message_id: str
    receive_count: int = 1
    receipt_handle: str = ""


# --- the job's state on the control table -------------------------------------------------------------------------


@dataclass
class Counts:
    """What a run did, summed over its pages."""

    evaluated: int = 0  # stored records applied again
    enrolled: int = 0  # personas that became members
    points: int = 0  # net change of the persona balances
    favourites_set: int = 0  # personas whose favourite store was unset and now is
    imported: int = 0  # POSaBIT balances imported
    waiting_applied: int = 0  # records parked for invalid settings, applied
    still_waiting: int = 0  # records still parked for invalid settings when the run ended
    unreadable: int = 0  # stored items this version of the code cannot read as a record
    texts_sent: int = 0  # SMS opt-in requests sent to personas of stored sales (sms_optin_after)
    texts_deferred: int = 0  # ... and deferred for quiet hours or the 24 h cap (sent when due)

    def add(self, other: Counts) -> None:
        for name in COUNT_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNT_FIELDS}


COUNT_FIELDS = tuple(f.name for f in fields(Counts))


@dataclass
class RunStatus:
    """A tenant+POS's re-evaluation item: the current or last run, and the requests made."""

    tenant: str
    vendor: Vendor
    state: RunState | None = None
    run_id: str | None = None
    trigger: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    updated_at: str | None = None
    lease_until: datetime | None = None
    phase: Phase | None = None
    cursor: dict[str, Any] | None = None
    counts: Counts = field(default_factory=Counts)
    continuations: int = 0
    error: str | None = None
    fingerprint: str | None = None  # of the settings this run started from
    done_fingerprint: str | None = None  # of the settings of the last run that completed
    requests: int = 0
    handled_requests: int = 0
    requested_at: str | None = None
    requested_by: str | None = None

    def holds_lease(self, now: datetime) -> bool:
        return self.lease_until is not None and self.lease_until > now

    def shown_state(self, now: datetime) -> str:
        """queued / running / stalled / retrying / done / failed, as `possync status` shows it."""
        if self.state in ("running", "retrying") and not self.holds_lease(now):
            return "stalled"  # the invocation ended without saying how (a timeout): SQS redelivers it
        if self.requests > self.handled_requests and self.state not in ("running", "retrying"):
            return "queued"
        return self.state or "queued"

    @property
    def queued_behind(self) -> bool:
        """A request waits for the running run to end (it asks for other settings)."""
        return self.requests > self.handled_requests and self.state in ("running", "retrying")


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class RunStatuses:
    """The control table's re-evaluation items (one per tenant and POS); every write that decides is conditional on
    the run that holds the lease."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.ddb = dynamodb
        self.table = table

    @staticmethod
    def key(tenant: str, vendor: Vendor) -> dict[str, Any]:
        return {
            "pk": _s(layout.control_reevaluation_pk(tenant)),
            "sk": _s(layout.control_reevaluation_sk(vendor)),
        }

    def _call(self, op: str, **kwargs: Any) -> Any:
        return call_table(self.ddb, self.table, op, TableName=self.table, **kwargs)

    def _conditional(self, **kwargs: Any) -> bool:
        """An update that applies only if its condition holds; False when it did not."""
        try:
            self._call("update_item", **kwargs)
        except ClientError:
            return False
        return True

    def get(self, tenant: str, vendor: Vendor) -> RunStatus:
        item = self._call("get_item", Key=self.key(tenant, vendor), ConsistentRead=True).get("Item")
        return _status_from_item(tenant, vendor, item or {})

    def of_tenant(self, tenant: str) -> list[RunStatus]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(layout.control_reevaluation_pk(tenant))},
        }
        found: list[RunStatus] = []
        while True:
            response = self._call("query", **kwargs)
            for item in response.get("Items", []):
                try:
                    vendor = Vendor(item["sk"]["S"])
                except ValueError:
                    continue
                found.append(_status_from_item(tenant, vendor, item))
            if "LastEvaluatedKey" not in response:
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def record_request(self, tenant: str, vendor: Vendor, trigger: str, now: datetime) -> None:
        update = _Update()
        update.set("requested_at", _s(_iso(now)))
        update.set("requested_by", _s(trigger[:TRIGGER_MAX]))
        update.add("requests", 1)
        self._call("update_item", Key=self.key(tenant, vendor), **update.request())

    def mark_handled(self, tenant: str, vendor: Vendor) -> None:
        """Every request made so far is answered (covered by a run, or nothing to do)."""
        update = _Update()
        update.copy_requests()
        self._call("update_item", Key=self.key(tenant, vendor), **update.request())

    def start_run(self, tenant: str, vendor: Vendor, run_id: str, trigger: str, now: datetime) -> bool:
        """Begin a new run unless another holds the tenant+POS; it answers every request made so far."""
        update = _Update()
        update.set("run_id", _s(run_id))
        update.set("state", _s("running"))
        update.set("run_trigger", _s(trigger[:TRIGGER_MAX] or "a request"))
        update.set("started_at", _s(_iso(now)))
        update.set("updated_at", _s(_iso(now)))
        update.set("lease_until", _n(_lease_until(now)))
        update.set("phase", _s(PHASES[0]))
        update.set("continuations", _n(0))
        for name in COUNT_FIELDS:
            update.set(f"n_{name}", _n(0))
        update.copy_requests()
        for name in ("cursor", "finished_at", "error", "fingerprint"):
            update.remove(name)
        lease = update.name("lease_until")
        condition = f"attribute_not_exists({lease}) OR {lease} < {update.value(_n(int(now.timestamp())))}"
        return self._conditional(Key=self.key(tenant, vendor), **update.request(condition))

    def hold(self, tenant: str, vendor: Vendor, run_id: str, now: datetime, **changes: Any) -> bool:
        """Renew the run's lease and save `changes` (phase, cursor, fingerprint, continuations, state, counts to
        add); False when another run holds the tenant+POS now (this one was superseded)."""
        update = _Update()
        update.set("lease_until", _n(_lease_until(now)))
        update.set("updated_at", _s(_iso(now)))
        counts: Counts | None = changes.pop("counts", None)
        for name, value in changes.items():
            if value is None:
                update.remove(name)
            elif isinstance(value, int):
                update.set(name, _n(value))
            else:
                update.set(name, _s(value if isinstance(value, str) else json.dumps(value, sort_keys=True)))
        if counts is not None:
            for name, value in counts.as_dict().items():
                if value:
                    update.add(f"n_{name}", value)
        return self._conditional(Key=self.key(tenant, vendor), **update.request(update.is_run(run_id)))

    def end(
        self,
        tenant: str,
        vendor: Vendor,
        run_id: str,
        state: RunState,
        now: datetime,
        error: str | None = None,
        done_fingerprint: str | None = None,
        keep_lease: bool = False,
    ) -> bool:
        """Record how the run ended: done or failed (the lease is let go), or retrying (it keeps the lease)."""
        update = _Update()
        update.set("state", _s(state))
        update.set("updated_at", _s(_iso(now)))
        if state != "retrying":
            update.set("finished_at", _s(_iso(now)))
        if not keep_lease:
            update.remove("lease_until")
        if error is None:
            update.remove("error")
        else:
            update.set("error", _s(error[:1000]))
        if done_fingerprint is not None:
            update.set("done_fingerprint", _s(done_fingerprint))
        return self._conditional(Key=self.key(tenant, vendor), **update.request(update.is_run(run_id)))


def _lease_until(now: datetime) -> int:
    return int((now + timedelta(seconds=LEASE_SECONDS)).timestamp())


class _Update:
    """An UpdateItem expression with a placeholder for every attribute name (several are DynamoDB reserved words)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.sets: list[str] = []
        self.adds: list[str] = []
        self.removes: list[str] = []

    def name(self, attribute: str) -> str:
        for placeholder, known in self.names.items():
            if known == attribute:
                return placeholder
        placeholder = f"#a{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def set(self, attribute: str, value: Any) -> None:
        self.sets.append(f"{self.name(attribute)} = {self.value(value)}")

    def add(self, attribute: str, amount: int) -> None:
        self.adds.append(f"{self.name(attribute)} {self.value(_n(amount))}")

    def remove(self, attribute: str) -> None:
        self.removes.append(self.name(attribute))

    def copy_requests(self) -> None:
        """handled_requests = requests (0 if none was recorded): every request so far is answered."""
        self.sets.append(
            f"{self.name('handled_requests')} = if_not_exists({self.name('requests')}, {self.value(_n(0))})"
        )

    def is_run(self, run_id: str) -> str:
        return f"{self.name('run_id')} = {self.value(_s(run_id))}"

    def request(self, condition: str | None = None) -> dict[str, Any]:
        parts = []
        for keyword, clauses in (("SET", self.sets), ("ADD", self.adds), ("REMOVE", self.removes)):
            if clauses:
                parts.append(f"{keyword} {', '.join(clauses)}")
        kwargs: dict[str, Any] = {"UpdateExpression": " ".join(parts), "ExpressionAttributeNames": self.names}
        if self.values:
            kwargs["ExpressionAttributeValues"] = self.values
        if condition is not None:
            kwargs["ConditionExpression"] = condition
        return kwargs


def _str(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value["S"] if value and "S" in value else None


def _int(item: dict[str, Any], name: str) -> int:
    value = item.get(name)
    return int(value["N"]) if value and "N" in value else 0


def _status_from_item(tenant: str, vendor: Vendor, item: dict[str, Any]) -> RunStatus:
    cursor = _str(item, "cursor")
    until = item.get("lease_until")
    phase = _str(item, "phase")
    state = _str(item, "state")
    return RunStatus(
        tenant=tenant,
        vendor=vendor,
        state=state if state in ("running", "retrying", "done", "failed") else None,  # type: ignore[arg-type]
        run_id=_str(item, "run_id"),
        trigger=_str(item, "run_trigger"),
        started_at=_str(item, "started_at"),
        finished_at=_str(item, "finished_at"),
        updated_at=_str(item, "updated_at"),
        lease_until=datetime.fromtimestamp(int(until["N"]), UTC) if until and "N" in until else None,
        phase=phase if phase in PHASES else None,  # type: ignore[arg-type]
        cursor=json.loads(cursor) if cursor else None,
        counts=Counts(**{name: _int(item, f"n_{name}") for name in COUNT_FIELDS}),
        continuations=_int(item, "continuations"),
        error=_str(item, "error"),
        fingerprint=_str(item, "fingerprint"),
        done_fingerprint=_str(item, "done_fingerprint"),
        requests=_int(item, "requests"),
        handled_requests=_int(item, "handled_requests"),
        requested_at=_str(item, "requested_at"),
        requested_by=_str(item, "requested_by"),
    )


# --- requesting a job ---------------------------------------------------------------------------------------------


class ReevaluationRequests:
    """Records a request on the tenant+POS's item (`possync status` shows it queued) and sends the job."""

    def __init__(
        self,
        *,
        statuses: RunStatuses,
        sqs: Any,
        queue_url: str,
        vendors_of: Callable[[str], Iterable[Vendor]],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.statuses = statuses
        self.sqs = sqs
        self.queue_url = queue_url
        self.vendors_of = vendors_of
        self.now = now

    def request(self, tenant: str, vendor: Vendor, trigger: str, *, force: bool = False) -> None:
        """AwsServiceError if the request could not be recorded or sent."""
        self.statuses.record_request(tenant, vendor, trigger, self.now())
        self.send(ReevaluationJob(tenant=tenant, vendor=vendor, trigger=trigger[:TRIGGER_MAX], force=force))

    def request_tenant(self, tenant: str, trigger: str, *, force: bool = False) -> list[Vendor]:
        """A change of the tenant's loyalty settings: one job per POS the tenant has credentials for."""
        vendors = list(self.vendors_of(tenant))
        for vendor in vendors:
            self.request(tenant, vendor, trigger, force=force)
        return vendors

    def send(self, job: ReevaluationJob, delay_seconds: int = 0) -> None:
        try:
            self.sqs.send_message(
                QueueUrl=self.queue_url, MessageBody=job.model_dump_json(), DelaySeconds=delay_seconds
            )
        except (ClientError, BotoCoreError) as exc:
            raise AwsServiceError(
                f"the re-evaluation job of {job.tenant}/{job.vendor.value} could not be queued "
                f"({aws_error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__})"
            ) from exc


def vendors_with_credentials(control: ControlStore, tenant: str) -> list[Vendor]:
    """The POSes a tenant has credentials for (active or not: their records are stored all the same)."""
    return [vendor for vendor in Vendor if control.credentials(vendor, tenant)]


# --- running a job ------------------------------------------------------------------------------------------------


class RunFailedError(PossyncError):
    """An attempt of a run failed in a way a retry can fix: recorded (retrying, or failed on the last receive), and
    the SQS message fails so that SQS hands it out again after a backoff."""


Outcome = Literal[
    "done", "failed", "continued", "covered", "deferred", "up_to_date", "superseded", "requested", "ignored", "rejected"
]


class ReevaluationService:
    """Handles the re-evaluation queue's messages, with every AWS dependency passed in."""

    def __init__(
        self,
        *,
        names: ResourceNames,
        records: RecordStore,
        statuses: RunStatuses,
        loyalty: LoyaltyService,
        optin: OptinService | None,
        requests: ReevaluationRequests,
        sqs: Any,
        queue_url: str,
        dead_letter_queue_url: str | None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        fresh_settings: Callable[[], None] = clear_caches,
    ) -> None:
        self.names = names
        self.records = records
        self.statuses = statuses
        self.loyalty = loyalty
        self.optin = optin
        self.requests = requests
        self.sqs = sqs
        self.queue_url = queue_url
        self.dead_letter_queue_url = dead_letter_queue_url
        self.now = now
        self.fresh_settings = fresh_settings

    @classmethod
    def from_env(cls) -> ReevaluationService:
        env = os.environ
        names = ResourceNames.from_env()
        ddb = aws.client("dynamodb")
        sqs = aws.client("sqs")
        control_table = env.get(layout.ENV_CONTROL_TABLE, names.control_table)
        statuses = RunStatuses(ddb, control_table)
        control = ControlStore(ddb, control_table)
        queue_url = env[layout.ENV_REEVALUATION_QUEUE_URL]
        return cls(
            names=names,
            records=RecordStore(ddb, env.get(layout.ENV_RECORDS_TABLE, names.records_table)),
            statuses=statuses,
            loyalty=LoyaltyService.from_env(),
            optin=OptinService.from_env(),
            requests=ReevaluationRequests(
                statuses=statuses,
                sqs=sqs,
                queue_url=queue_url,
                vendors_of=lambda tenant: vendors_with_credentials(control, tenant),
            ),
            sqs=sqs,
            queue_url=queue_url,
            dead_letter_queue_url=env.get(layout.ENV_REEVALUATION_DLQ_URL) or None,
        )

    def handle(self, message: QueueMessage, remaining: Callable[[], float]) -> Outcome:
        """One message: a job (start a run, or continue one), or a settings-change event (request jobs)."""
        try:
            parsed = parse_message(message.body)
        except JobRejectedError as exc:
            self.reject(message, str(exc))
            return "rejected"
        if isinstance(parsed, SettingsChange):
            return self.on_settings_change(parsed)
        job = parsed
        run_id = job.run_id
        try:
            if run_id is None:
                status = self.statuses.get(job.tenant, job.vendor)
                if status.run_id == message.message_id and status.state in ("running", "retrying"):
                    run_id = message.message_id  # SQS hands this message out again: its run goes on where it was
                else:
                    return self.start(job, message, remaining, status)
            return self.resume(job, run_id, remaining)
        except Exception as exc:  # noqa: BLE001 - recorded and counted, then the message fails so SQS retries it
            self._attempt_failed(job, run_id, message, exc)

    # --- requests ------------------------------------------------------------------------------------------------
    def on_settings_change(self, change: SettingsChange) -> Outcome:
        """An edit of a settings parameter (the console, the CLI, any SDK): request the jobs it calls for."""
        target = self.names.parse_settings_parameter(change.parameter)
        if target is None:
            logger.info("parameter change is not a tenant's settings; ignored", parameter=change.parameter)
            return "ignored"
        trigger = f"SSM {change.operation} of {change.parameter}"
        try:
            if target.vendor is None:
                vendors = self.requests.request_tenant(target.tenant, trigger)
            else:
                self.requests.request(target.tenant, target.vendor, trigger)
                vendors = [target.vendor]
        except AwsServiceError as exc:
            self._count({metrics.AWS_CALLS_FAILED: 1})
            logger.error("re-evaluation not requested; retried", parameter=change.parameter, error=str(exc))
            raise
        logger.info("re-evaluation requested", tenant=target.tenant, vendors=[v.value for v in vendors], by=trigger)
        return "requested"

    def reject(self, message: QueueMessage, reason: str) -> None:
        """A message that can never become a job goes to the dead-letter queue now (its alarm fires), not retried;
        AwsServiceError if it could not be moved (it then stays on its queue: never dropped)."""
        logger.error(
            "re-evaluation message rejected: sent to the dead-letter queue",
            message_id=message.message_id,
            reason=reason,
        )
        if not self.dead_letter_queue_url:
            raise AwsServiceError(f"{layout.ENV_REEVALUATION_DLQ_URL} is not set; message {message.message_id} stays")
        try:
            self.sqs.send_message(
                QueueUrl=self.dead_letter_queue_url,
                MessageBody=message.body,
                MessageAttributes={"rejected_reason": {"DataType": "String", "StringValue": reason[:500]}},
            )
        except (ClientError, BotoCoreError) as exc:
            self._count({metrics.AWS_CALLS_FAILED: 1})
            raise AwsServiceError(f"rejected message {message.message_id} could not be dead-lettered") from exc

    # --- runs ----------------------------------------------------------------------------------------------------
    def start(
        self, job: ReevaluationJob, message: QueueMessage, remaining: Callable[[], float], status: RunStatus
    ) -> Outcome:
        """Start a run for this request, unless a run already covers it (same settings) or one of other settings
        holds the tenant+POS (then the request looks again in a while, and so runs once after it)."""
        tenant, vendor = job.tenant, job.vendor
        self.fresh_settings()  # the settings as they are now, not as this warm Lambda cached them
        now = self.now()
        fingerprint = self._fingerprint_if_valid(tenant, vendor)
        if status.holds_lease(now):
            if fingerprint is not None and fingerprint == status.fingerprint:
                self.statuses.mark_handled(tenant, vendor)
                logger.info("re-evaluation covered by the running one", tenant=tenant, vendor=vendor.value)
                return "covered"
            self.requests.send(job, RECHECK_DELAY_SECONDS)
            logger.info("re-evaluation waits for the running one", tenant=tenant, vendor=vendor.value)
            return "deferred"
        if (
            not job.force
            and fingerprint is not None
            and status.state == "done"
            and fingerprint == status.done_fingerprint
            and self.loyalty.store.waiting_flag(tenant, vendor) is None
        ):
            self.statuses.mark_handled(tenant, vendor)
            logger.info("re-evaluation not needed: settings as of the last run", tenant=tenant, vendor=vendor.value)
            return "up_to_date"
        if not self.statuses.start_run(tenant, vendor, message.message_id, job.trigger, now):
            self.requests.send(job, RECHECK_DELAY_SECONDS)
            return "deferred"
        logger.info("re-evaluation started", tenant=tenant, vendor=vendor.value, trigger=job.trigger)
        return self.resume(job, message.message_id, remaining)

    def resume(self, job: ReevaluationJob, run_id: str, remaining: Callable[[], float]) -> Outcome:
        """Go on with run `run_id` from the phase and cursor it saved last."""
        tenant, vendor = job.tenant, job.vendor
        status = self.statuses.get(tenant, vendor)
        if status.run_id != run_id:
            logger.info("re-evaluation superseded by a newer run", tenant=tenant, vendor=vendor.value)
            return "superseded"
        changes: dict[str, Any] = {"state": "running", "error": None}  # a retried attempt's error is over
        if status.fingerprint is None:
            self.fresh_settings()
            try:
                changes["fingerprint"] = self._fingerprint(tenant, vendor)
            except SettingsError as exc:
                # Nothing is parked: every stored record would be. Fixing the settings is a change, which runs again.
                error = f"{exc}; nothing was re-evaluated. Fix the settings: the change runs the job again"
                self._end(status, run_id, "failed", error)
                return "failed"
        if not self.statuses.hold(tenant, vendor, run_id, self.now(), **changes):
            return "superseded"
        return self._run(job, run_id, status, remaining)

    def _run(self, job: ReevaluationJob, run_id: str, status: RunStatus, remaining: Callable[[], float]) -> Outcome:
        tenant, vendor = job.tenant, job.vendor
        phase: Phase = status.phase or PHASES[0]
        cursor = status.cursor
        pages = 0
        while phase != "done":
            # At least one page per invocation, so a chain of continuations always moves on.
            if pages and remaining() < TIME_BUDGET_SECONDS:
                return self._continue(job, run_id, status)
            pages += 1
            counts = Counts()
            changes: dict[str, Any] = {}
            if phase == "waiting":
                applied = self.loyalty.apply_waiting(tenant, vendor)
                if applied.failed:
                    raise AwsServiceError(f"{applied.failed} records parked for invalid settings could not be applied")
                counts.waiting_applied = applied.applied
                changes["n_still_waiting"] = applied.remaining
                phase, cursor = "done", None
            else:
                page = self.records.scope_page(tenant, vendor, RecordKind(phase), cursor, PAGE_SIZE)
                before = replace(self.loyalty.sales.tally)
                report = self.loyalty.reapply(page.records)
                if report.failed:
                    raise AwsServiceError(f"{report.failed} of {len(page.records)} stored records could not be applied")
                done = self.loyalty.sales.tally.since(before)
                texted = self._optin(page.records)
                counts = Counts(
                    evaluated=len(page.records),
                    enrolled=done.enrolled,
                    points=done.points,
                    favourites_set=done.favourites_set,
                    imported=done.imported,
                    unreadable=page.unreadable,
                    texts_sent=texted["sent"],
                    texts_deferred=texted["deferred"],
                )
                cursor = page.next_key
                if cursor is None:
                    phase = next_phase(phase)
            if not self.statuses.hold(
                tenant, vendor, run_id, self.now(), phase=phase, cursor=cursor, counts=counts, **changes
            ):
                logger.info("re-evaluation superseded by a newer run", tenant=tenant, vendor=vendor.value)
                return "superseded"
            self._count({metrics.RECORDS_REEVALUATED: counts.evaluated})
        return self._finish(job, run_id)

    def _continue(self, job: ReevaluationJob, run_id: str, status: RunStatus) -> Outcome:
        if status.continuations >= MAX_CONTINUATIONS:
            error = f"stopped after {MAX_CONTINUATIONS} continuations; `possync reevaluate` starts it again"
            self._end(status, run_id, "failed", error)
            return "failed"
        if not self.statuses.hold(job.tenant, job.vendor, run_id, self.now(), continuations=status.continuations + 1):
            return "superseded"
        self.requests.send(job.model_copy(update={"run_id": run_id, "continuation": status.continuations + 1}))
        logger.info("re-evaluation continues in a new invocation", tenant=job.tenant, vendor=job.vendor.value)
        return "continued"

    def _finish(self, job: ReevaluationJob, run_id: str) -> Outcome:
        status = self.statuses.get(job.tenant, job.vendor)
        waiting = status.counts.still_waiting
        if waiting:
            error = (
                f"{waiting} records wait for valid settings (they became invalid during the run); fixing the "
                "settings runs the job again"
            )
            self._end(status, run_id, "failed", error)
            return "failed"
        self._end(status, run_id, "done")
        return "done"

    def _end(self, status: RunStatus, run_id: str, state: RunState, error: str | None = None) -> None:
        tenant, vendor = status.tenant, status.vendor
        done_fingerprint = status.fingerprint if state == "done" else None
        if not self.statuses.end(tenant, vendor, run_id, state, self.now(), error, done_fingerprint):
            return  # superseded meanwhile: the newer run reports for itself
        counts = self.statuses.get(tenant, vendor).counts
        if state == "failed":
            self._count({metrics.REEVALUATIONS_FAILED: 1})
            logger.error(
                "re-evaluation failed", tenant=tenant, vendor=vendor.value, error=error, counts=counts.as_dict()
            )
        else:
            self._count({metrics.REEVALUATIONS_DONE: 1})
            logger.info("re-evaluation done", tenant=tenant, vendor=vendor.value, counts=counts.as_dict())

    def _attempt_failed(
        self, job: ReevaluationJob, run_id: str | None, message: QueueMessage, exc: Exception
    ) -> NoReturn:
        """Record the failure (retrying, or failed when this was the last receive), count it, back off, re-raise."""
        if isinstance(exc, RunFailedError):
            raise exc
        reason = describe_failure(exc)
        last = message.receive_count >= MAX_RECEIVES
        backoff = RETRY_BACKOFF_SECONDS[min(message.receive_count, len(RETRY_BACKOFF_SECONDS)) - 1]
        logger.error(
            "re-evaluation attempt failed",
            tenant=job.tenant,
            vendor=job.vendor.value,
            attempt=message.receive_count,
            error=reason,
            where=failure_site(exc),
        )
        counted = {metrics.AWS_CALLS_FAILED: 1 if is_aws_failure(exc) else 0}
        if last:
            counted[metrics.REEVALUATIONS_FAILED] = 1
            error = (
                f"{reason}; gave up after {MAX_RECEIVES} attempts (the job is in the re-evaluation dead-letter "
                f"queue); `possync reevaluate --tenant {job.tenant} --vendor {job.vendor.value}` runs it again"
            )
        else:
            error = f"{reason}; attempt {message.receive_count} of {MAX_RECEIVES}, retried in about {backoff} s"
        # A run this message started is named after it; the write is conditional on the run, so nothing is recorded
        # when the attempt failed before it had one (the request then still shows as queued).
        try:
            self.statuses.end(
                job.tenant,
                job.vendor,
                run_id or message.message_id,
                "failed" if last else "retrying",
                self.now(),
                error,
                keep_lease=not last,
            )
        except Exception as status_exc:  # noqa: BLE001 - the attempt's own failure is what is re-raised
            counted[metrics.AWS_CALLS_FAILED] = 1
            logger.error("re-evaluation status could not be recorded", error=describe_failure(status_exc))
        self._count(counted)
        if not last and message.receipt_handle:
            # If SQS refuses, the queue's visibility timeout applies instead: a later retry, never a lost one.
            with contextlib.suppress(ClientError, BotoCoreError):
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=backoff
                )
        raise RunFailedError(reason) from None

    # --- helpers -------------------------------------------------------------------------------------------------
    def _optin(self, records: Sequence[tuple[CanonicalRecord, int]]) -> Counter[str]:
        """The SMS opt-in rules over a page of stored sales or shoppers, after the loyalty rules made their personas:
        the opt-in consumer's own code (one request per persona ever, quiet hours, the 24 h cap). Applied after
        the loyalty rules so that a retried page (AwsServiceError: the attempt is retried from this page) changes
        nothing twice."""
        if self.optin is None or not records:
            return Counter()
        texted = self.optin.reapply(records)
        if texted.failed:
            raise AwsServiceError(f"the opt-in rules failed on {texted.failed} of {len(records)} stored records")
        return texted.outcomes

    def _fingerprint(self, tenant: str, vendor: Vendor) -> str:
        """The digest of the settings as the rules read them now; SettingsError when they are invalid (and an
        AwsServiceError when they cannot be read: the attempt is retried)."""
        settings = self.loyalty.settings
        integration = settings.integration(tenant, vendor)
        tenant_settings = settings.tenant(tenant)
        tenant_zone(settings, tenant)
        return rules_fingerprint(integration, tenant_settings)

    def _fingerprint_if_valid(self, tenant: str, vendor: Vendor) -> str | None:
        try:
            return self._fingerprint(tenant, vendor)
        except SettingsError:
            return None

    def _count(self, values: dict[str, int]) -> None:
        self.loyalty.notifier.counts(values)


def handle_reevaluation_event(
    event: dict[str, Any], context: Any, service_factory: Callable[[], ReevaluationService]
) -> dict[str, Any]:
    """The re-evaluation queue's SQS batch (one message per invocation), with partial batch responses."""
    if not sqs_records(event, layout.REEVALUATION_FUNCTION, "an SQS batch of re-evaluation jobs"):
        return {"batchItemFailures": []}
    service = service_factory()

    def remaining() -> float:
        return float(context.get_remaining_time_in_millis()) / 1000.0

    def process(record: SQSRecord) -> str:
        message = QueueMessage(
            body=record.body,
            message_id=record.message_id,
            receive_count=int(record.attributes.approximate_receive_count or 1),
            receipt_handle=record.receipt_handle,
        )
        return service.handle(message, remaining)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(process_partial_response(event=event, record_handler=process, processor=processor, context=context))
