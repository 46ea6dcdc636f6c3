"""What a settings change would do: how many personas it would enroll or text, counted from stored data."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from functions.core import layout
from functions.core.ddb_batch import BATCH_GET_MAX, batch_get
from functions.core.layout import RecordKind, Vendor
from functions.core.loyalty.codecs import persona_from_item
from functions.core.loyalty.points import ENROLLING_STATUSES, would_enroll
from functions.core.loyalty.repository import PersonaStore
from functions.core.loyalty.values import UNKNOWN_CONSENT, Claim, Persona
from functions.core.models import Sale, normalize_phone
from functions.core.settings import IntegrationSettings
from possync.admin.context import AdminContext
from possync.admin.render import err_console

ENROLL_KEYS = frozenset({"enroll_after", "age_gate_attested"})
TEXT_KEYS = frozenset({"sms_optin_after"})
PROFILE_ATTRIBUTES = ("pk", "tenant", "persona_id", "member", "phone", "consent")

Shopper = tuple[str, str]  # (credential id, the POS's customer id)


def matchable_phone(phone: str | None) -> bool:
    """An E.164 number that parses as valid and is not a placeholder: the only kind possync ever texts."""
    return bool(phone) and normalize_phone(phone) == phone


def texts(persona: Persona, sale: Sale, sms_optin_after: date | None) -> bool:
    """A persona with a matchable phone and no SMS answer yet (consent unknown) gets one opt-in request for a
    completed sale on or after sms_optin_after (store-local date)."""
    return (
        sms_optin_after is not None
        and sale.status in ENROLLING_STATUSES
        and sale.local_date >= sms_optin_after
        and matchable_phone(persona.phone)
        and persona.consent.get("sms", UNKNOWN_CONSENT) == UNKNOWN_CONSENT
    )


@dataclass
class Impact:
    sales_scanned: int = 0
    shoppers: int = 0  # POS customers with a completed sale on or after the earliest date asked about
    would_enroll: int = 0
    enroll_members_already: int = 0
    enroll_without_persona: int = 0
    would_text: int = 0
    text_no_phone: int = 0
    text_answered: int = 0
    text_without_persona: int = 0


def latest_sales(
    ddb: Any,
    table: str,
    tenant: str,
    vendor: Vendor,
    since: date,
    on_page: Callable[[int], None] | None = None,
) -> tuple[dict[Shopper, Sale], int]:
    """Each shopper's latest completed sale (store-local date on or after `since`), and how many sales were read.

    The latest one stands for all: a date rule that any such sale meets, the latest meets too."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "#kind = :kind AND #tenant = :tenant AND #vendor = :vendor",
        "ProjectionExpression": "#data",
        "ExpressionAttributeNames": {"#kind": "kind", "#tenant": "tenant", "#vendor": "vendor", "#data": "data"},
        "ExpressionAttributeValues": {
            ":kind": {"S": RecordKind.SALE.value},
            ":tenant": {"S": tenant},
            ":vendor": {"S": vendor.value},
        },
    }
    latest: dict[Shopper, Sale] = {}
    read = 0
    while True:
        response = ddb.scan(**kwargs)
        for item in response.get("Items", []):
            read += 1
            try:
                sale = Sale.model_validate_json(item["data"]["S"])
            except (ValidationError, KeyError):
                continue  # not a sale this code can read: it cannot count either way
            if sale.status not in ENROLLING_STATUSES or not sale.customer_pos_id or sale.local_date < since:
                continue
            key = (sale.credential_id, sale.customer_pos_id)
            held = latest.get(key)
            if held is None or held.local_date < sale.local_date:
                latest[key] = sale
        if on_page is not None:
            on_page(int(response.get("ScannedCount", 0)))
        if "LastEvaluatedKey" not in response:
            return latest, read
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def personas_of(store: PersonaStore, tenant: str, vendor: Vendor, shoppers: Iterable[Shopper]) -> dict[Shopper, str]:
    """The persona each POS customer resolved to, through its identity claim (absent: no persona yet)."""
    claims = {
        Claim("pos", layout.pos_identity_value(vendor, credential, customer)): (credential, customer)
        for credential, customer in shoppers
    }
    return {claims[claim]: owner for claim, owner in store.claim_owners(tenant, list(claims)).items()}


def profiles(ddb: Any, table: str, tenant: str, persona_ids: Iterable[str]) -> dict[str, Persona]:
    """The profiles' membership, phone and consent (a projection: batch reads of only what the rules look at)."""
    keys = [
        {"pk": {"S": layout.persona_pk(tenant, pid)}, "sk": {"S": layout.PERSONA_PROFILE_SK}}
        for pid in sorted(set(persona_ids))
    ]
    found: dict[str, Persona] = {}
    for start in range(0, len(keys), BATCH_GET_MAX):
        spec: dict[str, Any] = {
            "Keys": keys[start : start + BATCH_GET_MAX],
            # placeholders for every name: "member" is a DynamoDB reserved word
            "ProjectionExpression": ", ".join(f"#a{i}" for i in range(len(PROFILE_ATTRIBUTES))),
            "ExpressionAttributeNames": {f"#a{i}": name for i, name in enumerate(PROFILE_ATTRIBUTES)},
        }
        for _, item in batch_get(ddb, {table: spec}):
            persona = persona_from_item(item)
            found[persona.persona_id] = persona
    return found


def count(
    ddb: Any,
    records_table: str,
    personas_table: str,
    tenant: str,
    settings: IntegrationSettings,
    *,
    enroll: bool,
    text: bool,
    on_page: Callable[[int], None] | None = None,
) -> Impact:
    """How many personas these integration settings would enroll (if `enroll`) and text (if `text`), from the
    sales and personas stored now. Enrollment is decided by the enrollment rule itself
    (functions.core.loyalty.points)."""
    impact = Impact()
    enrolling = enroll and settings.enroll_after is not None and settings.age_gate_attested
    texting = text and settings.sms_optin_after is not None
    dates = [d for d, on in ((settings.enroll_after, enrolling), (settings.sms_optin_after, texting)) if on and d]
    if not dates:
        return impact
    vendor = settings.vendor
    latest, impact.sales_scanned = latest_sales(ddb, records_table, tenant, vendor, min(dates), on_page)
    impact.shoppers = len(latest)
    owners = personas_of(PersonaStore(ddb, personas_table), tenant, vendor, latest)
    known = profiles(ddb, personas_table, tenant, owners.values())
    persona_sale: dict[str, Sale] = {}
    for shopper, sale in latest.items():
        persona_id = owners.get(shopper)
        if persona_id is None or persona_id not in known:
            # a sale before its shopper's persona: the rules apply it when the persona appears
            if enrolling and would_enroll(settings, [sale], already_member=False):
                impact.enroll_without_persona += 1
            if texting and sale.local_date >= (settings.sms_optin_after or date.max):
                impact.text_without_persona += 1
            continue
        held = persona_sale.get(persona_id)
        if held is None or held.local_date < sale.local_date:
            persona_sale[persona_id] = sale  # two POS customers, one person: counted once
    for persona_id, sale in persona_sale.items():
        persona = known[persona_id]
        if enrolling:
            if would_enroll(settings, [sale], already_member=persona.member):
                impact.would_enroll += 1
            elif persona.member and would_enroll(settings, [sale], already_member=False):
                impact.enroll_members_already += 1
        if texting:
            if texts(persona, sale, settings.sms_optin_after):
                impact.would_text += 1
            elif sale.local_date >= (settings.sms_optin_after or date.max):
                if not matchable_phone(persona.phone):
                    impact.text_no_phone += 1
                else:
                    impact.text_answered += 1
    return impact


def _approximate_items(ddb: Any, table: str) -> int | None:
    try:
        return int(ddb.describe_table(TableName=table)["Table"].get("ItemCount", 0)) or None
    except ClientError:
        return None


def _table_exists(ddb: Any, table: str) -> bool:
    try:
        ddb.describe_table(TableName=table)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return False
        raise
    return True


def _s(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def preview(context: AdminContext, tenant: str, vendor: Vendor, after: dict[str, Any], changed: set[str]) -> list[str]:
    """Lines for `settings set --dry-run`: the personas the new settings would enroll or text (empty: no such key)."""
    asks_enroll = bool(changed & ENROLL_KEYS)
    asks_text = bool(changed & TEXT_KEYS)
    if not (asks_enroll or asks_text):
        return []
    settings = IntegrationSettings.model_validate({**after, "vendor": vendor.value})
    enroll_after, sms_after = settings.enroll_after, settings.sms_optin_after
    lines: list[str] = []
    if asks_enroll and enroll_after is None:
        lines.append("Would enroll: nobody new (enroll_after is not set).")
        asks_enroll = False
    elif asks_enroll and not settings.age_gate_attested:
        lines.append("Would enroll: nobody (the age gate is not attested for this integration).")
        asks_enroll = False
    if asks_text and sms_after is None:
        lines.append("Would text: nobody new (sms_optin_after is not set).")
        asks_text = False
    if not (asks_enroll or asks_text):
        return lines
    target = context.target()
    ddb = context.client("dynamodb")
    if not _table_exists(ddb, target.personas_table):
        return [
            *lines,
            f"How many personas this would enroll or text cannot be counted: the personas table "
            f"{target.personas_table} does not exist yet (deploy or restart the runtime with the persona rules).",
        ]
    total = _approximate_items(ddb, target.records_table)
    with Progress(
        TextColumn("scanning {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console(),
        transient=True,
    ) as progress:
        task = progress.add_task(f"{vendor.value} sales of {tenant}", total=total)
        impact = count(
            ddb,
            target.records_table,
            target.personas_table,
            tenant,
            settings,
            enroll=asks_enroll,
            text=asks_text,
            on_page=lambda scanned: progress.advance(task, scanned),
        )
    lines.append(
        f"Impact, counted from {_s(impact.sales_scanned, 'stored ' + vendor.value + ' sale')} of {tenant} and the "
        "personas the persona rules have built so far:"
    )
    if asks_enroll and enroll_after is not None:
        lines.append(
            f"  Would enroll: {_s(impact.would_enroll, 'persona')} (not members yet, with a completed "
            f"{vendor.value} sale on or after {enroll_after.isoformat()} in the store's local date); "
            f"{impact.enroll_members_already} with such a sale are members already."
        )
        if impact.enroll_without_persona:
            lines.append(
                f"  {_s(impact.enroll_without_persona, 'more shopper')} with such a sale "
                f"{'has' if impact.enroll_without_persona == 1 else 'have'} no persona yet: enrolled when the "
                "persona appears."
            )
    if asks_text and sms_after is not None:
        lines.append(
            f"  Would text: {_s(impact.would_text, 'persona')} (a usable mobile number, a completed {vendor.value} "
            f"sale on or after {sms_after.isoformat()}, no SMS answer yet: one opt-in request each); "
            f"{impact.text_no_phone} with such a sale have no usable phone, {impact.text_answered} already answered."
        )
        if impact.text_without_persona:
            lines.append(
                f"  {_s(impact.text_without_persona, 'more shopper')} with such a sale "
                f"{'has' if impact.text_without_persona == 1 else 'have'} no persona yet."
            )
    return lines
