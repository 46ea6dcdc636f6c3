"""Where the CLI points: a deployed stack (its CloudFormation outputs) or a running local runtime."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from functions.core.layout import DEFAULT_STAGE, PULL_VENDORS, REEVALUATION_FUNCTION, ResourceNames
from functions.core.netguard import IPNetwork, parse_private_networks
from infra import outputs


def stack_for_stage(stage: str) -> str:
    """The stack `cdk deploy -c stage=<stage>` creates (ValueError, saying what a stage looks like, if invalid)."""
    return ResourceNames.for_stage(stage).stack_name


DEFAULT_STACK = stack_for_stage(DEFAULT_STAGE)
LOCAL_STATE = Path(".local/runtime.json")
# Names the state file of a running `possync local serve` (or the directory holding it), from any directory.
LOCAL_ENV = "POSSYNC_LOCAL"
STATE_FILE_NAME = "runtime.json"


def user_state_file() -> Path:
    """Where `possync local serve` also publishes its state, so `--local` finds it from any directory:
    $XDG_RUNTIME_DIR/possync/, else $XDG_STATE_HOME/possync/, else ~/.local/state/possync/."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return Path(runtime_dir) / "possync" / STATE_FILE_NAME
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "possync" / STATE_FILE_NAME


def find_local_state() -> Path:
    """The running local runtime's state file: $POSSYNC_LOCAL (a file or its directory), else `.local/runtime.json`
    here, else the user's state path (`user_state_file`), the first whose runtime is still running (a file left by a
    runtime that died here does not hide one running elsewhere); TargetError listing where it looked when none
    exists."""
    named = os.environ.get(LOCAL_ENV)
    if named:
        path = Path(named).expanduser()
        path = path / STATE_FILE_NAME if path.is_dir() else path
        if not path.exists():
            raise TargetError(
                f"{LOCAL_ENV} names {path}, which does not exist: is `possync local serve` running? "
                f"Unset {LOCAL_ENV} to look in .local/ and {user_state_file()}"
            )
        return path
    candidates = [path for path in (LOCAL_STATE, user_state_file()) if path.exists()]
    for path in candidates:
        if running_pid(path) is not None:
            return path
    if candidates:
        # Every runtime found has died: the first one is reported as no longer running.
        return candidates[0]
    raise TargetError(
        f"no local runtime is running (looked for {LOCAL_STATE} here and {user_state_file()}): start one with "
        f"`possync local serve` (from any directory), or set {LOCAL_ENV} to its runtime.json"
    )


class TargetError(RuntimeError):
    """The CLI cannot find what to talk to; the message says how to point it somewhere."""


@dataclass
class Target:
    names: ResourceNames
    records_table: str
    control_table: str
    archive_bucket: str
    queue_urls: dict[str, str] = field(default_factory=dict)
    endpoint_url: str | None = None
    region: str | None = None
    personas_table: str = ""  # "" means the default physical name, names.personas_table
    reevaluation_queue_url: str = ""  # where settings and store-mapping changes send their re-evaluation jobs
    # The private ranges the deployment's on-premises pulls may call (a stack's PrivateHostCidrs output, the local
    # runtime's `local serve --allow-private-hosts`); empty: none.
    private_host_networks: tuple[IPNetwork, ...] = ()
    # Where the pulls call each POS, by vendor, when it is not the vendor's hosted API (the local simulators).
    base_urls: dict[str, str] = field(default_factory=dict)
    # The form signup endpoint's base URL (POST <it>/tenants/{tenant}/signups), and the local runtime's demo key as
    # (tenant, key); "" and None when unknown.
    signups_url: str = ""
    signup_demo: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if not self.personas_table:
            self.personas_table = self.names.personas_table

    def client(self, service: str) -> Any:
        local = {"aws_access_key_id": "local", "aws_secret_access_key": "local"} if self.endpoint_url else {}
        # The local runtime's moto accepts any keys; the admin's shell may have none at all.
        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=Config(retries={"mode": "standard", "max_attempts": 5}),
            **local,
        )

    @property
    def description(self) -> str:
        return f"local runtime at {self.endpoint_url}" if self.endpoint_url else f"AWS ({self.region or 'default'})"


def local_target(state_file: Path | None = None) -> Target:
    if state_file is None:
        state_file = find_local_state()
    if not state_file.exists():
        raise TargetError(f"no local runtime is running ({state_file} not found): start one with `possync local serve`")
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        raise TargetError(
            f"{state_file} is not a local runtime's state (unreadable or not JSON): restart `possync local serve`"
        ) from None
    pid = state.get("pid")
    if isinstance(pid, int) and not _alive(pid):
        raise TargetError(
            f"the local runtime that wrote {state_file} (process {pid}) is no longer running: start one with "
            "`possync local serve`"
        )
    return Target(
        names=ResourceNames(state["prefix"]),
        records_table=state["records_table"],
        control_table=state["control_table"],
        archive_bucket=state["archive_bucket"],
        queue_urls=state["queue_urls"],
        endpoint_url=state["endpoint_url"],
        region=state["region"],
        personas_table=state.get("personas_table", ""),
        reevaluation_queue_url=state.get("reevaluation_queue_url", ""),
        base_urls=dict(state.get("base_urls") or {}),
        # A runtime older than this key let its pulls call no private address.
        private_host_networks=parse_private_networks(state.get("private_host_cidrs") or ()),
        signups_url=str(state.get("signups_url") or ""),
        signup_demo=(str(state["signup_demo_tenant"]), str(state["signup_demo_key"]))
        if state.get("signup_demo_key")
        else None,
    )


def running_pid(state_file: Path) -> int | None:
    """The process id of the runtime that wrote `state_file`, if that process is still running; None when the file
    is missing or unreadable, names no process, or its process has ended."""
    try:
        pid = json.loads(state_file.read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) and _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    return True


def stack_target(stack: str = DEFAULT_STACK, region: str | None = None) -> Target:
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    cfn = boto3.client("cloudformation", region_name=region)
    try:
        stack_outputs = cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    except Exception as exc:  # noqa: BLE001 - any failure here means the same thing to the user
        raise TargetError(
            f"could not read stack {stack!r} ({type(exc).__name__}); check AWS credentials and region, and the "
            "stage (--stage NAME finds the stack of `cdk deploy -c stage=NAME`; the default is "
            f"{DEFAULT_STAGE}), or use --local against a running local runtime"
        ) from None
    values = {o["OutputKey"]: o["OutputValue"] for o in stack_outputs}
    try:
        return Target(
            # The stage's prefix as deployed: SSM parameters and secrets are named from it.
            names=ResourceNames(values[outputs.RESOURCE_PREFIX_OUTPUT]),
            records_table=values[outputs.RECORDS_TABLE_OUTPUT],
            control_table=values[outputs.CONTROL_TABLE_OUTPUT],
            archive_bucket=values[outputs.ARCHIVE_BUCKET_OUTPUT],
            queue_urls={
                f: values[outputs.queue_url_output(f)] for f in PULL_VENDORS if outputs.queue_url_output(f) in values
            },
            region=region,
            personas_table=values.get(outputs.PERSONAS_TABLE_OUTPUT, ""),
            reevaluation_queue_url=values.get(outputs.queue_url_output(REEVALUATION_FUNCTION), ""),
            private_host_networks=parse_private_networks(values.get(outputs.PRIVATE_HOST_CIDRS_OUTPUT, "")),
            signups_url=values.get(outputs.SIGNUPS_URL_OUTPUT, ""),
        )
    except KeyError as exc:
        raise TargetError(f"stack {stack!r} has no output {exc.args[0]}; is it a possync stack?") from None
