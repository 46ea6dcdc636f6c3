"""One source of truth for resource names, key formats and the S3 archive layout."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Vendor(StrEnum):
    THSUITE = "thsuite"
    POSABIT = "posabit"
    FLOURISH = "flourish"
    PROFITEK = "profitek"
    AUPHAN = "auphan"


class Stream(StrEnum):
    """What a pull reads from a POS; each maps to one canonical record kind."""

    CUSTOMERS = "customers"
    SALES = "sales"
    INVENTORY = "inventory"
    LOYALTY = "loyalty"
    DISCOUNTS = "discounts"


class RecordKind(StrEnum):
    SHOPPER = "shopper"
    SALE = "sale"
    PRODUCT = "product"
    LOYALTY_BALANCE = "loyalty_balance"
    DISCOUNT = "discount"


STREAM_KIND: dict[Stream, RecordKind] = {
    Stream.CUSTOMERS: RecordKind.SHOPPER,
    Stream.SALES: RecordKind.SALE,
    Stream.INVENTORY: RecordKind.PRODUCT,
    Stream.LOYALTY: RecordKind.LOYALTY_BALANCE,
    Stream.DISCOUNTS: RecordKind.DISCOUNT,
}

# The pull function (and its SQS queue) that serves each vendor: Profitek and Auphan share the
# on-premises puller, the credential says which vendor it speaks.
PULL_FUNCTION: dict[Vendor, str] = {
    Vendor.THSUITE: "pull_thsuite",
    Vendor.POSABIT: "pull_posabit",
    Vendor.FLOURISH: "pull_flourish",
    Vendor.PROFITEK: "pull_onprem",
    Vendor.AUPHAN: "pull_onprem",
}

PULL_VENDORS: dict[str, tuple[Vendor, ...]] = {
    "pull_thsuite": (Vendor.THSUITE,),
    "pull_posabit": (Vendor.POSABIT,),
    "pull_flourish": (Vendor.FLOURISH,),
    "pull_onprem": (Vendor.PROFITEK, Vendor.AUPHAN),
}

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
ID_RULE = "use 1-63 lower-case letters, digits and dashes, starting with a letter or digit"


def check_id(value: str, what: str) -> str:
    """Tenant and credential ids appear in keys and paths, so they are kept to a safe alphabet."""
    if not _ID.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not valid: {ID_RULE}")
    return value


APPLICATION = "possync"
# The stage a deployment gets when `cdk deploy` (and the CLI's --stage) are not told otherwise.
DEFAULT_STAGE = "prod"
# Short enough that the longest name built from it (the access-log bucket, 63 characters at most) always fits.
MAX_STAGE_LENGTH = 12
_STAGE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


def check_stage(stage: str) -> str:
    """A stage goes into every physical name, so it is short, lower-case and DNS-safe."""
    if not isinstance(stage, str) or len(stage) > MAX_STAGE_LENGTH or not _STAGE.fullmatch(stage):
        raise ValueError(
            f"stage {stage!r} is not valid: use 1-{MAX_STAGE_LENGTH} lower-case letters, digits and single dashes, "
            f"starting with a letter and not ending with a dash (e.g. {DEFAULT_STAGE}, dev, staging-eu)"
        )
    return stage


# The path parts of the settings parameters under a deployment's SSM root (ResourceNames builds and parses them).
_TENANTS = "tenants"
_INTEGRATIONS = "integrations"
_LOYALTY = "loyalty"
_VENDOR_VALUES = frozenset(v.value for v in Vendor)


@dataclass(frozen=True)
class SettingsParameter:
    """Whose settings one SSM parameter holds: a tenant's integration with one POS, or (vendor None) the tenant's
    loyalty settings."""

    tenant: str
    vendor: Vendor | None


@dataclass(frozen=True)
class ResourceNames:
    """Physical names of the AWS resources; the CDK app and the local runtime both build them from here.

    A deployment's names are `ResourceNames.for_stage(stage)`: every table, bucket, queue, function, schedule,
    alarm, the stack, the metrics namespace and the SSM and Secrets Manager prefixes start with `possync-<stage>`,
    so two stages share an account without sharing anything. `ResourceNames()` (prefix `possync`) names the local
    runtime's resources, which live in a moto server that only ever holds one deployment.
    """

    prefix: str = APPLICATION

    @classmethod
    def for_stage(cls, stage: str) -> ResourceNames:
        return cls(f"{APPLICATION}-{check_stage(stage)}")

    @classmethod
    def from_env(cls) -> ResourceNames:
        """The names a Lambda (or the local runtime) was deployed with: the CDK app sets ENV_RESOURCE_PREFIX."""
        prefix = os.environ.get(ENV_RESOURCE_PREFIX)
        return cls(prefix) if prefix else cls()

    @property
    def stack_name(self) -> str:
        return self.prefix

    @property
    def records_table(self) -> str:
        return f"{self.prefix}-records"

    @property
    def control_table(self) -> str:
        return f"{self.prefix}-control"

    @property
    def personas_table(self) -> str:
        return f"{self.prefix}-personas"

    def rules_dlq(self, function: str) -> str:
        return f"{self.prefix}-{function.replace('_', '-')}-failures"

    def archive_bucket(self, account: str, region: str) -> str:
        return f"{self.prefix}-archive-{account}-{region}"

    def access_logs_bucket(self, account: str, region: str) -> str:
        return f"{self.prefix}-access-logs-{account}-{region}"

    def pull_queue(self, function: str) -> str:
        return f"{self.prefix}-{function.replace('_', '-')}-jobs"

    def pull_dlq(self, function: str) -> str:
        return f"{self.prefix}-{function.replace('_', '-')}-jobs-dlq"

    @property
    def reevaluation_queue(self) -> str:
        return f"{self.prefix}-{REEVALUATION_FUNCTION}-jobs"

    @property
    def reevaluation_dlq(self) -> str:
        return f"{self.prefix}-{REEVALUATION_FUNCTION}-jobs-dlq"

    @property
    def settings_change_rule(self) -> str:
        """The EventBridge rule that turns an edit of this stage's settings parameters into re-evaluation jobs."""
        return f"{self.prefix}-settings-changes"

    def function_name(self, function: str) -> str:
        return f"{self.prefix}-{function.replace('_', '-')}"

    def schedule_name(self, function: str) -> str:
        return f"{self.prefix}-{function.replace('_', '-')}-schedule"

    def alarm_name(self, label: str) -> str:
        """pull_onprem jobs dead letters -> possync-prod-pull-onprem-jobs-dead-letters."""
        return f"{self.prefix}-{re.sub(r'[^a-z0-9]+', '-', label.lower()).strip('-')}"

    @property
    def alarm_topic(self) -> str:
        return f"{self.prefix}-alarms"

    @property
    def dashboard(self) -> str:
        return self.prefix

    @property
    def ssm_root(self) -> str:
        return f"/{self.prefix}"

    @property
    def settings_parameter_root(self) -> str:
        """Every tenant's settings parameter starts here (the settings-change rule matches this prefix)."""
        return f"{self.ssm_root}/{_TENANTS}/"

    def integration_settings_parameter(self, tenant: str, vendor: Vendor) -> str:
        return f"{self.settings_parameter_root}{tenant}/{_INTEGRATIONS}/{vendor.value}"

    def tenant_settings_parameter(self, tenant: str) -> str:
        return f"{self.settings_parameter_root}{tenant}/{_LOYALTY}"

    def parse_settings_parameter(self, name: str) -> SettingsParameter | None:
        """The inverse of integration_settings_parameter and tenant_settings_parameter: whose settings a parameter
        name holds (vendor None: the tenant's loyalty settings). None for any other name, including another
        stage's. EventBridge reports parameter names with or without their leading '/'; both are read."""
        root = self.settings_parameter_root
        path = name if name.startswith("/") else f"/{name}"
        if not path.startswith(root):
            return None
        parts = path[len(root) :].split("/")
        if not _ID.fullmatch(parts[0]):
            return None
        if parts[1:] == [_LOYALTY]:
            return SettingsParameter(parts[0], None)
        if len(parts) == 3 and parts[1] == _INTEGRATIONS and parts[2] in _VENDOR_VALUES:
            return SettingsParameter(parts[0], Vendor(parts[2]))
        return None

    def credential_secret(self, tenant: str, vendor: Vendor, credential_id: str) -> str:
        return f"{self.secret_root}{tenant}/{vendor.value}/{credential_id}"

    @property
    def secret_root(self) -> str:
        """Every credential secret's name starts here (IAM grants are scoped to it)."""
        return f"{self.prefix}/"

    @property
    def metrics_namespace(self) -> str:
        """Per stage, so one stage's alarms never count another stage's failures."""
        return self.prefix


# What an EventBridge Scheduler tick sends a pull function: fan out one job per active credential that is due
# (its integration's pull_interval_minutes has passed since its last pull).
DISPATCH_EVENT: dict[str, str] = {"action": "dispatch"}
# Pull every active, non-frozen credential now, whatever its interval (an operator's "pull now"; the local demo).
DISPATCH_NOW_EVENT: dict[str, str] = {**DISPATCH_EVENT, "reason": "manual"}

# The function (folder functions/reevaluate) that applies a settings or store-mapping change to stored records.
REEVALUATION_FUNCTION = "reevaluate"
# The SQS queue it drains; the CLI and the settings-change rule send it jobs (the local runtime sets it too).
ENV_REEVALUATION_QUEUE_URL = "POSSYNC_REEVALUATION_QUEUE_URL"
ENV_REEVALUATION_DLQ_URL = "POSSYNC_REEVALUATION_DLQ_URL"

# The raw archive's key root (IAM grants and lifecycle rules are scoped to it).
ARCHIVE_ROOT = "raw/"

# Environment variable names the Lambdas read; the CDK app sets them, the local runtime too.
ENV_RECORDS_TABLE = "POSSYNC_RECORDS_TABLE"
ENV_CONTROL_TABLE = "POSSYNC_CONTROL_TABLE"
ENV_ARCHIVE_BUCKET = "POSSYNC_ARCHIVE_BUCKET"
ENV_JOB_QUEUE_URL = "POSSYNC_JOB_QUEUE_URL"
# The pull function's jobs dead-letter queue: jobs that can never succeed (not JSON, invalid ids) go there at once.
ENV_JOB_DLQ_URL = "POSSYNC_JOB_DLQ_URL"
ENV_RESOURCE_PREFIX = "POSSYNC_RESOURCE_PREFIX"
ENV_ALLOW_PRIVATE_HOSTS = "POSSYNC_ALLOW_PRIVATE_HOSTS"
# The private ranges (comma-separated CIDRs) an on-premises pull may call when private hosts are allowed.
ENV_PRIVATE_HOST_CIDRS = "POSSYNC_PRIVATE_HOST_CIDRS"
ENV_LOOKBACK_MINUTES = "POSSYNC_LOOKBACK_MINUTES"
ENV_SETTLE_SECONDS = "POSSYNC_SETTLE_SECONDS"
ENV_HTTP_READ_TIMEOUT = "POSSYNC_HTTP_READ_TIMEOUT_SECONDS"


def base_url_env(vendor: Vendor) -> str:
    """Env var that overrides a vendor's hosted API base URL (the local runtime points it at a simulator)."""
    return f"POSSYNC_{vendor.value.upper()}_BASE_URL"


# --- DynamoDB keys -------------------------------------------------------------------------------


def credential_key(tenant: str, vendor: Vendor, credential_id: str) -> str:
    return f"{tenant}#{vendor.value}#{credential_id}"


def record_pk(tenant: str, vendor: Vendor, credential_id: str, kind: RecordKind, pos_id: str) -> str:
    """Records table partition key: tenant / vendor / credential / kind / the POS's own id."""
    return f"{tenant}#{vendor._value_}#{credential_id}#{kind._value_}#{pos_id}"  # `_value_`: `.value` is slow


RECORD_SK = "record"

# --- the records table's index by tenant and POS: what a re-evaluation (and a settings dry-run) reads -------------
# Sparse: only the kinds the loyalty rules read carry its key attributes (inventory is left out), in the order a
# re-evaluation applies them: shoppers first, so every sale finds its shopper's persona.
RECORDS_BY_SCOPE_INDEX = "by-tenant-vendor"
RECORDS_SCOPE_ATTRIBUTE = "tenant_vendor"
RECORDS_SCOPE_KEY_ATTRIBUTE = "kind_key"
RULE_RECORD_KINDS: tuple[RecordKind, ...] = (RecordKind.SHOPPER, RecordKind.SALE, RecordKind.LOYALTY_BALANCE)
# Kinds in that index: the rules' kinds, and POS discounts (what `possync rewards check` reads per tenant and POS, and a
# pull of a store's discounts reads for that store).
INDEXED_RECORD_KINDS: tuple[RecordKind, ...] = (*RULE_RECORD_KINDS, RecordKind.DISCOUNT)


# New records are not in that index one by one: a write of records not stored before first writes one page index item
# per kind and credential (functions.core.record_index) that carries the index keys and lists their POS ids, and each
# record names the page index item it was written after. Records written before page indexes carry the index keys
# themselves (and keep them), so both kinds of entry are read.
RECORDS_PAGE_INDEX_PK_PREFIX = "INDEX#"  # upper case: no tenant id can start a record key with it
RECORDS_PAGE_INDEX_IDS_ATTRIBUTE = "pos_ids"
RECORDS_INDEXED_BY_ATTRIBUTE = "indexed_by"


def record_scope(tenant: str, vendor: Vendor) -> str:
    """The index partition of a tenant's records from one POS."""
    return f"{tenant}#{vendor.value}"


def record_scope_key(kind: RecordKind, credential_id: str, pos_id: str) -> str:
    """The index sort key: kind first, so one kind of a tenant+POS is one begins_with range."""
    return f"{record_scope_kind_prefix(kind)}{credential_id}#{pos_id}"


def record_scope_kind_prefix(kind: RecordKind) -> str:
    return f"{kind.value}#"


# Control table (pk, sk)
def control_credential_pk(tenant: str, vendor: Vendor, credential_id: str) -> str:
    return f"CRED#{credential_key(tenant, vendor, credential_id)}"


CONTROL_LEASE_SK = "LEASE"
CONTROL_STATUS_SK = "STATUS"


# A stream's checkpoint item is overwritten, never deleted (nor given a TTL): a credential without one has no records
# stored, which lets its first pull skip reading versions (functions.core.engine, store.FirstPull). Code that deletes
# or expires checkpoints must end that shortcut first.
CONTROL_CHECKPOINT_SK_PREFIX = "CHECKPOINT#"


def control_checkpoint_sk(stream: Stream) -> str:
    return f"{CONTROL_CHECKPOINT_SK_PREFIX}{stream.value}"


def control_archived_page_sk(stream: Stream, digest: str) -> str:
    """The archive key of a raw page with this digest (functions.core.engine.page_digest) of one stream."""
    return f"ARCHIVED#{stream.value}#{digest}"


def control_registry_pk(vendor: Vendor) -> str:
    """All credentials of one vendor, across tenants: what the schedule's dispatch fans out over."""
    return f"REGISTRY#{vendor.value}"


def control_registry_sk(tenant: str, credential_id: str) -> str:
    return f"{tenant}#{credential_id}"


def control_quarantine_pk(tenant: str, vendor: Vendor, credential_id: str) -> str:
    return f"QUARANTINE#{credential_key(tenant, vendor, credential_id)}"


def control_quarantine_sk(stream: Stream, pos_id: str) -> str:
    return f"{stream.value}#{pos_id}"


# --- S3 archive keys -----------------------------------------------------------------------------

# raw/tenant=<t>/vendor=<v>/credential=<c>/stream=<s>/date=<YYYY-MM-DD>/run=<run id>/page-<000001>.json.gz: Hive-style
# partitions (Athena and lifecycle rules can select on them), written by archive_key and read by parse_archive_key.
_ARCHIVE_PARTITIONS = ("tenant", "vendor", "credential", "stream", "date", "run")
_ARCHIVE_PAGE = re.compile(r"page-(?P<page>\d{6,})\.json\.gz")


def _archive_dirs(*values: str) -> str:
    return ARCHIVE_ROOT + "".join(f"{name}={value}/" for name, value in zip(_ARCHIVE_PARTITIONS, values, strict=False))


def archive_key(
    tenant: str,
    vendor: Vendor,
    credential_id: str,
    stream: Stream,
    day: date,
    run_id: str,
    page: int,
) -> str:
    """Deterministic: the same run retrying the same page overwrites its object instead of adding one."""
    if not run_id or "/" in run_id or page < 1:
        raise ValueError("an archive key needs a run id without '/' and a page number from 1")
    dirs = _archive_dirs(tenant, vendor.value, credential_id, stream.value, day.isoformat(), run_id)
    return f"{dirs}page-{page:06d}.json.gz"


@dataclass(frozen=True, order=True)
class ArchiveKey:
    """The parts of an archived page's key, as archive_key wrote them."""

    tenant: str
    vendor: Vendor
    credential_id: str
    stream: Stream
    day: date
    run_id: str
    page: int

    @property
    def key(self) -> str:
        return archive_key(self.tenant, self.vendor, self.credential_id, self.stream, self.day, self.run_id, self.page)


def parse_archive_key(key: str) -> ArchiveKey | None:
    """The inverse of archive_key; None for any key it would not write (other objects, a vendor or stream no longer
    known, ids outside the safe alphabet)."""
    if not key.startswith(ARCHIVE_ROOT):
        return None
    *dirs, name = key[len(ARCHIVE_ROOT) :].split("/")
    page = _ARCHIVE_PAGE.fullmatch(name)
    if page is None or len(dirs) != len(_ARCHIVE_PARTITIONS):
        return None
    parts: dict[str, str] = {}
    for expected, part in zip(_ARCHIVE_PARTITIONS, dirs, strict=True):
        label, _, value = part.partition("=")
        if label != expected or not value:
            return None
        parts[label] = value
    if not (_ID.fullmatch(parts["tenant"]) and _ID.fullmatch(parts["credential"])):
        return None
    try:
        vendor, stream, day = Vendor(parts["vendor"]), Stream(parts["stream"]), date.fromisoformat(parts["date"])
        parsed = ArchiveKey(parts["tenant"], vendor, parts["credential"], stream, day, parts["run"], int(page["page"]))
        canonical = parsed.key  # only the one spelling archive_key writes (dates, zero padding, pages from 1)
    except ValueError:
        return None
    return parsed if canonical == key else None


def archive_prefix(tenant: str, vendor: Vendor, credential_id: str | None = None) -> str:
    if credential_id is None:
        return _archive_dirs(tenant, vendor.value)
    return _archive_dirs(tenant, vendor.value, credential_id)


# --- table shapes (the CDK storage construct and the local runtime both build tables from these) ------------
RECORDS_TABLE_PARTITION_KEY = "pk"
CONTROL_TABLE_PARTITION_KEY = "pk"
CONTROL_TABLE_SORT_KEY = "sk"
CONTROL_TABLE_TTL_ATTRIBUTE = "expires_at"
RECORDS_STREAM_VIEW_TYPE = "NEW_AND_OLD_IMAGES"


# --- personas table (pk, sk): personas (visits on the profile), identity claims, points ledger, parked records -
PERSONAS_TABLE_PARTITION_KEY = "pk"
PERSONAS_TABLE_SORT_KEY = "sk"
PERSONA_PROFILE_SK = "PROFILE"
IDENTITY_SK = "ID"
ENV_PERSONAS_TABLE = "POSSYNC_PERSONAS_TABLE"

# The stream consumers (Lambda function folder names) that the records table's stream feeds.
RULE_FUNCTIONS: tuple[str, ...] = ("personas", "enroll", "optin")


def persona_pk(tenant: str, persona_id: str) -> str:
    return f"P#{tenant}#{persona_id}"


def identity_pk(tenant: str, kind: str, value: str) -> str:
    """kind is "phone" (E.164), "email" (lower-cased) or "pos" (value "vendor#credential#pos_id")."""
    return f"I#{tenant}#{kind}#{value}"


def pos_identity_value(vendor: Vendor, credential_id: str, pos_id: str) -> str:
    return f"{vendor.value}#{credential_id}#{pos_id}"


def ledger_sk(vendor: Vendor, credential_id: str, sale_id: str) -> str:
    return f"LEDGER#{vendor.value}#{credential_id}#{sale_id}"


def ledger_import_sk(vendor: Vendor, credential_id: str, pos_id: str) -> str:
    return f"LEDGER#import#{vendor.value}#{credential_id}#{pos_id}"


def pending_pk(tenant: str, vendor: Vendor, credential_id: str, customer_pos_id: str) -> str:
    return f"PENDING#{tenant}#{vendor.value}#{credential_id}#{customer_pos_id}"


def pending_sk(sale_id: str) -> str:
    return f"SALE#{sale_id}"


# Written (before any parked record) in the partition of a POS customer with parked records, so the personas
# consumer finds parked sales with one batched read of the customers it has just resolved.
PENDING_MARKER_SK = "MARKER"


def waiting_pk(tenant: str, vendor: Vendor) -> str:
    """Records parked because their tenant's settings for this POS were invalid: applied once they are valid."""
    return f"WAITING#{tenant}#{vendor.value}"


def waiting_sk(kind: RecordKind, credential_id: str, pos_id: str) -> str:
    return f"{kind.value}#{credential_id}#{pos_id}"


# In a waiting partition: present (with a change counter) while records may wait there.
WAITING_FLAG_SK = "#FLAG"


def control_unmapped_pk(tenant: str) -> str:
    return f"UNMAPPED#{tenant}"


def control_unmapped_sk(vendor: Vendor, credential_id: str, location_id: str | None) -> str:
    return f"{vendor.value}#{credential_id}#{location_id or '-'}"


def control_reevaluation_pk(tenant: str) -> str:
    """A tenant's re-evaluation jobs, one item per POS (its state, progress and outcome)."""
    return f"REEVAL#{tenant}"


def control_reevaluation_sk(vendor: Vendor) -> str:
    return vendor.value


def control_audit_pk(tenant: str) -> str:
    return f"AUDIT#{tenant}"


# Control table: the tenant registry, one item per tenant under one partition (a handful of tenants per stack).
CONTROL_TENANT_PK = "TENANT"


def control_tenant_sk(tenant: str) -> str:
    return tenant


# Control table: a tenant's reward catalogue, one item per reward, keyed by its name as the POS matches names
# (functions.core.loyalty.rewards.name_key).
def control_rewards_pk(tenant: str) -> str:
    return f"REWARDS#{tenant}"


def control_reward_sk(name_key: str) -> str:
    return f"REWARD#{name_key}"


# Control table: one notice per store and reward that is not mirrored there (raised once, like an unmapped store).
def control_unmirrored_pk(tenant: str) -> str:
    return f"UNMIRRORED#{tenant}"


def control_unmirrored_sk(vendor: Vendor, credential_id: str, reward_key: str) -> str:
    return f"{vendor.value}#{credential_id}#{reward_key}"


# --- form signups (functions.core.signups): API keys and allowed origins in the control table, events in personas ---
def control_signup_keys_pk(tenant: str) -> str:
    """A tenant's signup API keys (sort key: the key id) and its allowed browser origins."""
    return f"SIGNUPKEYS#{tenant}"


CONTROL_SIGNUP_ORIGINS_SK = "#ORIGINS"


def signup_event_pk(tenant: str, signup_id: str) -> str:
    """One accepted form signup (its idempotency id): written once, so a double post is one event."""
    return f"SIGNUP#{tenant}#{signup_id}"


SIGNUP_EVENT_SK = "EVENT"


# --- persona -> POS sync (functions.core.pos_sync): one record per persona and POS credential, personas table ----
# The source a persona created or matched by a retailer's web form carries among its sources (`Sourced from`).
FORM_SOURCE = "form"
# The personas table's stream (new profile images feed persona -> POS sync; nothing needs the old ones).
PERSONAS_STREAM_VIEW_TYPE = "NEW_IMAGE"


def pos_sync_pk(tenant: str, persona_id: str) -> str:
    return f"SYNC#{tenant}#{persona_id}"


def pos_sync_sk(vendor: Vendor, credential_id: str) -> str:
    return f"{vendor.value}#{credential_id}"
