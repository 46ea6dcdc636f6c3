"""`possync sms outbox|reply`: the local runtime's SMS outbox and simulated inbound texts; consent for personas."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import ClientError

from functions.core.layout import ResourceNames, Vendor
from functions.core.loyalty.repository import PersonaStore
from functions.core.loyalty.values import Persona
from functions.core.models import normalize_phone
from functions.core.settings import (
    IntegrationSettings,
    TenantSettings,
    parse_integration_settings,
    parse_tenant_settings,
)
from functions.core.sms.consent import Consent, Evidence
from functions.core.sms.deferral import SqsDeferrals
from functions.core.sms.gateway import DEFAULT_OUTBOX, OutboxGateway, read_outbox
from functions.core.sms.inbound import InboundError, parse_message
from functions.core.sms.service import OptinService
from functions.core.sms.store import ConsentStore
from functions.core.sms.templates import Kind
from possync.admin.context import AdminContext, admin
from possync.admin.handler_logs import handler_logs_to
from possync.admin.render import Output, OutputOption, emit, fail, guarded
from possync.admin.tenants import require_tenant, unknown_tenant_hint
from possync.target import TargetError, find_local_state

app = typer.Typer(help="SMS double opt-in: the local outbox and simulated replies.", no_args_is_help=True)

# Beside the runtime's lambda.log (which the runtime itself writes): the reply rules' log lines run from the CLI.
CLI_LOG = "cli.log"
# The local runtime's two-way number: where simulated shoppers' replies are addressed.
LOCAL_DESTINATION = "+18885550100"


def local_sms_state(state_file: Path | None = None) -> dict[str, str]:
    """The running local runtime's outbox path, deferral queue and workdir (absent keys: defaults), found from any
    directory the way `--local` finds the runtime."""
    if state_file is None:
        try:
            state_file = find_local_state()
        except TargetError:
            return {}
    if not state_file.exists():
        return {}
    state = json.loads(state_file.read_text())
    found = {k: str(v) for k, v in state.items() if k in ("sms_outbox", "sms_deferral_queue_url", "workdir") and v}
    if "sms_outbox" in found and state.get("workdir"):
        # An older runtime published its outbox relative to the directory it was started in, which need not be
        # this one; that outbox was always `outbox.jsonl` in its workdir, which it published absolute.
        outbox = Path(found["sms_outbox"])
        if not outbox.is_absolute():
            found["sms_outbox"] = str(Path(str(state["workdir"])) / outbox.name)
    return found


class ClientSettings:
    """The settings reader over one SSM client (the CLI's, pointed at the target), parsed by the shared model."""

    def __init__(self, ssm: Any, names: ResourceNames) -> None:
        self.ssm = ssm
        self.names = names

    def _raw(self, name: str) -> str | None:
        try:
            return str(self.ssm.get_parameter(Name=name)["Parameter"]["Value"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return None
            raise

    def integration(self, tenant: str, vendor: Vendor) -> IntegrationSettings:
        name = self.names.integration_settings_parameter(tenant, vendor)
        raw = self._raw(name)
        return IntegrationSettings(vendor=vendor) if raw is None else parse_integration_settings(raw, vendor, name)

    def tenant(self, tenant: str) -> TenantSettings:
        name = self.names.tenant_settings_parameter(tenant)
        raw = self._raw(name)
        return TenantSettings() if raw is None else parse_tenant_settings(raw, name)


@app.command("outbox")
@guarded
def outbox_command(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="Only texts of this tenant.")] = None,
    kind: Annotated[Kind | None, typer.Option(help="Only texts of this kind.", case_sensitive=False)] = None,
    path: Annotated[Path | None, typer.Option(help="The outbox file (default: the local runtime's).")] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """What the local runtime texted: one row per message accepted by the local SMS provider (.local/outbox.jsonl).

    Example: possync sms outbox --tenant greenleaf --kind optin_request
    """
    state = local_sms_state()
    where = path or Path(state.get("sms_outbox") or DEFAULT_OUTBOX)
    texts = read_outbox(where)
    if tenant is not None:
        _check_tenant(admin(ctx), tenant, {str(row["tenant"]) for row in texts if row.get("tenant")}, bool(state))
    rows = [
        row
        for row in texts
        if (tenant is None or row.get("tenant") == tenant) and (kind is None or row.get("kind") == kind)
    ]
    emit(
        rows,
        [("sent_at", "sent at"), ("tenant", "tenant"), ("to", "to"), ("kind", "kind"), ("body", "text")],
        output,
        title=f"SMS outbox ({where})",
        empty=f"no texts in {where} yet: run `possync demo`, or `possync local serve` with sms_optin_after set",
    )


def _check_tenant(context: AdminContext, tenant: str, in_outbox: set[str], runtime_running: bool) -> None:
    """A typo must not read as "no texts": the tenant must be registered on the running local runtime, or (with no
    runtime running, e.g. after `make demo`) appear in the outbox."""
    if tenant in in_outbox:
        return
    context.local = True
    if runtime_running or context.target_override is not None:
        require_tenant(context, tenant)
        return
    fail(f"tenant {tenant!r} does not exist in the outbox", unknown_tenant_hint(context, tenant, sorted(in_outbox)))


@app.command("reply")
@guarded
def reply_command(
    ctx: typer.Context,
    number: Annotated[str, typer.Option("--from", help="The shopper's number, E.164 (+12065551234).")],
    text: Annotated[str, typer.Option("--text", help="What the shopper texts: YES, STOP, HELP, anything.")],
    local: Annotated[bool, typer.Option("--local", help="Simulate it on the running local runtime.")] = False,
) -> None:
    """Simulate an inbound text from a shopper, as End User Messaging two-way SMS would publish it to SNS, and apply
    it with the reply handler's rules (answers go to the local outbox; their log lines to .local/cli.log). Local
    only: in AWS, shoppers text.

    Example: possync sms reply --local --from +12065550123 --text YES
    """
    context = admin(ctx)
    if not (local or context.local):
        fail("replies can only be simulated locally", "add --local (with `possync local serve` running)")
    context.local = True
    target = context.target()
    state = local_sms_state()
    e164 = normalize_phone(number)
    if e164 is None:
        fail("--from is not a usable phone number", "give --from as an E.164 number, e.g. +12065551234")
    message = json.dumps(
        {
            "originationNumber": e164,
            "destinationNumber": LOCAL_DESTINATION,
            "messageKeyword": "KEYWORD_LOCAL",
            "messageBody": text,
            "inboundMessageId": f"local-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}",
        }
    )
    try:
        inbound = parse_message(message)
    except InboundError as exc:
        fail(str(exc), "give --from as an E.164 number, e.g. +12065551234")
    ddb = context.client("dynamodb")
    service = OptinService(
        consents=ConsentStore(ddb, target.personas_table),
        personas=PersonaStore(ddb, target.personas_table),
        records=context.records(),
        settings=ClientSettings(context.client("ssm"), target.names),
        gateway=OutboxGateway(Path(state.get("sms_outbox") or DEFAULT_OUTBOX)),
        deferrals=SqsDeferrals(context.client("sqs"), state.get("sms_deferral_queue_url", "")),
        notifier=_QuietNotifier(),
    )
    with handler_logs_to(Path(state.get("workdir") or ".local") / CLI_LOG):
        outcome = service.reply(inbound.number, inbound.body, inbound.inbound_id)
    explained = {
        "unknown": "possync never texted that number: nothing changed",
        "confirmed": "opted in (a confirmation text is in the outbox)",
        "opted_out": "opted out for good",
        "help": "answered with the help text",
        "ignored": "nothing to do (already answered)",
    }
    typer.echo(f"{outcome}: {explained.get(outcome, outcome)}")


class _QuietNotifier:
    """The CLI emits no metrics."""

    def counts(self, values: Any) -> None:
        return None

    def gauge(self, name: str, value: int) -> None:
        return None

    def unmapped_store(self, notice: Any) -> None:
        return None


# --- what `possync personas list|show` shows of SMS consent --------------------------------------------------------


def consent_labels(ddb: Any, table: str, tenant: str, personas: Iterable[Persona]) -> dict[str, str]:
    """Each persona's SMS consent as recorded for its number (absent: nothing asked or answered yet)."""
    store = ConsentStore(ddb, table)
    by_number = store.consents_of(tenant, {p.phone for p in personas if p.phone})
    return {p.persona_id: by_number[p.phone].label for p in personas if p.phone and p.phone in by_number}


def consent_evidence(ddb: Any, table: str, tenant: str, number: str | None) -> tuple[Consent | None, list[Evidence]]:
    if not number:
        return None, []
    store = ConsentStore(ddb, table)
    return store.consent(tenant, number), store.evidence(tenant, number)
