"""What the admin commands talk to: the global --local/--stack/--region options, resolved only when needed."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from functions.core.archive import S3Archive
from functions.core.layout import DEFAULT_STAGE, Vendor, check_id
from functions.core.store import ControlStore, RecordStore
from possync.admin.globals import show_version
from possync.admin.render import fail
from possync.target import DEFAULT_STACK, Target, local_target, stack_for_stage, stack_target

VENDOR_NAMES = ", ".join(v.value for v in Vendor)


@dataclass
class AdminContext:
    """Carried on the click context (`ctx.obj`); tests pass one with `target_override` set."""

    local: bool = False
    stack: str = DEFAULT_STACK
    region: str | None = None
    target_override: Target | None = None
    actor_override: str | None = None
    global_flags: list[str] = field(default_factory=list)  # as typed: hints repeat them
    _target: Target | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    def target(self) -> Target:
        if self.target_override is not None:
            return self.target_override
        if self._target is None:
            # TargetError carries the next step; `guarded` prints it.
            self._target = local_target() if self.local else stack_target(self.stack, self.region)
        return self._target

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.target().client(service)
        return self._clients[service]

    def control(self) -> ControlStore:
        return ControlStore(self.client("dynamodb"), self.target().control_table)

    def records(self) -> RecordStore:
        return RecordStore(self.client("dynamodb"), self.target().records_table)

    def archive(self) -> S3Archive:
        return S3Archive(self.client("s3"), self.target().archive_bucket)

    def actor(self) -> str:
        """Who makes a change: the AWS caller's ARN against a stack, the local user against the local runtime."""
        if self.actor_override:
            return self.actor_override
        if self.target().endpoint_url:
            return f"local:{_local_user()}"
        try:
            return str(self.client("sts").get_caller_identity()["Arn"])
        except Exception:  # noqa: BLE001 - the change itself worked; the audit says who as well as it can
            return f"unknown (STS failed; local user {_local_user()})"


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def admin_options(
    ctx: typer.Context,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Talk to a running `possync local serve` (found from any directory, or $POSSYNC_LOCAL) instead of "
            "AWS.",
        ),
    ] = False,
    stage: Annotated[
        str,
        typer.Option(
            "--stage",
            envvar="POSSYNC_STAGE",
            help="The deployment stage (`cdk deploy -c stage=NAME`); talks to its stack, possync-NAME.",
        ),
    ] = DEFAULT_STAGE,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack", envvar="POSSYNC_STACK", help=f"The deployed CloudFormation stack \\[default: {DEFAULT_STACK}]."
        ),
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="AWS region of the stack (default: AWS_REGION / your profile).")
    ] = None,
    _version: Annotated[
        bool,
        typer.Option("--version", help="Print possync's version and exit.", callback=show_version, is_eager=True),
    ] = False,
) -> None:
    """possync: POS data to loyalty personas. Global options (--local, --stage, --stack, --region) may also
    follow the subcommand: `possync status --local`."""

    def explicit(name: str) -> bool:  # typed on the command line, not taken from POSSYNC_* in the environment
        source = ctx.get_parameter_source(name)
        return source is not None and source.name == "COMMANDLINE"

    if local and (explicit("stack") or explicit("stage") or region):
        fail(
            "--local talks to the local runtime; --stage, --stack and --region are for a deployed stack",
            "use one or the other",
        )
    if explicit("stack") and explicit("stage"):
        fail("--stage picks the stage's stack and --stack names one", "use one or the other")
    stage_stack = DEFAULT_STACK
    if not local:
        try:
            stage_stack = stack_for_stage(stage)
        except ValueError as exc:
            fail(str(exc), "a stage is what the stack was deployed with: `cdk deploy -c stage=NAME`")
    admin = ctx.obj if isinstance(ctx.obj, AdminContext) else AdminContext()
    admin.local, admin.stack, admin.region = local, stack or stage_stack, region
    # The global options typed (not from the environment), so printed hints run against the same target.
    admin.global_flags = (
        ["--local"] * local
        + (["--stage", stage] if explicit("stage") else [])
        + (["--stack", stack or ""] if explicit("stack") else [])
        + (["--region", region] if region else [])
    )
    ctx.obj = admin


def admin(ctx: typer.Context) -> AdminContext:
    found = ctx.find_object(AdminContext)
    return found if found is not None else AdminContext()


def parse_vendor(value: str) -> Vendor:
    try:
        return Vendor(value.strip().lower())
    except ValueError:
        fail(f"unknown vendor {value!r}", f"vendors are {VENDOR_NAMES}")


def parse_id(value: str, what: str) -> str:
    try:
        return check_id(value, what)
    except ValueError as exc:
        fail(str(exc))


TenantOption = Annotated[
    str, typer.Option("--tenant", "-t", help="Tenant id (e.g. greenleaf); `possync tenants list` shows them.")
]
OptionalTenant = Annotated[
    str | None, typer.Option("--tenant", "-t", help="Only this tenant (`possync tenants list` shows them).")
]
VendorArgument = Annotated[str, typer.Argument(metavar="VENDOR", help=f"The POS: {VENDOR_NAMES}.", show_default=False)]
VendorOption = Annotated[str, typer.Option("--vendor", "-v", help=f"The POS: {VENDOR_NAMES}.")]
OptionalVendor = Annotated[str | None, typer.Option("--vendor", "-v", help=f"Only this POS ({VENDOR_NAMES}).")]
CredentialIdOption = Annotated[
    str, typer.Option("--id", help="Credential id, unique per tenant and POS (e.g. store-12).")
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
