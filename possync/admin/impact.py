"""What a settings change would do: how many personas it would enroll or text, counted from stored data."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from botocore.exceptions import ClientError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from functions.core import layout
from functions.core.ddb_batch import BATCH_GET_MAX, batch_get
from functions.core.errors import SettingsError
from functions.core.layout import RecordKind, Vendor
from functions.core.loyalty.codecs import persona_from_item
from functions.core.loyalty.points import (
    ENROLLING_STATUSES,
    VISIT_STATUSES,
    import_applies,
    ledger_delta,
    ledger_sk_of,
    would_enroll,
)
from functions.core.loyalty.repository import PersonaStore
from functions.core.loyalty.stores import mapped_store
from functions.core.loyalty.values import UNKNOWN_CONSENT, Claim, Persona, iso
from functions.core.models import CanonicalRecord, LoyaltyBalance, Sale
from functions.core.settings import POINTS_IMPORT_VENDORS, IntegrationSettings, parse_tenant_settings
from functions.core.sms import rules as sms_rules
from functions.core.sms.store import ConsentStore
from functions.core.store import RecordStore
from possync.admin.context import AdminContext
from possync.admin.render import err_console

ENROLL_KEYS = frozenset({"enroll_after", "age_gate_attested"})
TEXT_KEYS = frozenset({"sms_optin_after"})
IMPORT_KEYS = frozenset({"loyalty_points_imported_on"})
MAPPING_KEYS = frozenset({"store_mappings"})
PROFILE_ATTRIBUTES = ("pk", "tenant", "persona_id", "member", "phone", "consent", "favourite_store")

Shopper = tuple[str, str]  # (credential id, the POS's customer id)


# The opt-in consumer's own rules (functions.core.sms.rules), so the preview counts what it then sends.
matchable_phone = sms_rules.textable


def texts(persona: Persona, sale: Sale, sms_optin_after: date | None) -> bool:
    """A persona with a matchable phone and no SMS answer yet (consent unknown) gets one opt-in request for a
    completed sale on or after sms_optin_after (store-local date); the consent recorded for its number (a request
    already sent, a reply, the POS's consent) is checked by `count`, as the consumer checks it."""
    return (
        sms_rules.sale_qualifies(sale, sms_optin_after)
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


def stored_records(
    ddb: Any,
    table: str,
    tenant: str,
    vendor: Vendor,
    kind: RecordKind,
    on_page: Callable[[int], None] | None = None,
) -> Iterator[tuple[CanonicalRecord, int]]:
    """A tenant's stored records of one kind from one POS, with their versions, through the records table's index by
    tenant and POS: the records the re-evaluation reads, read the same way (never a scan of the whole table)."""
    store = RecordStore(ddb, table)
    start: dict[str, Any] | None = None
    while True:
        page = store.scope_page(tenant, vendor, kind, start)
        yield from page.records
        if on_page is not None:
            on_page(len(page.records))
        start = page.next_key
        if start is None:
            return


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
    latest: dict[Shopper, Sale] = {}
    read = 0
    for sale, _ in stored_records(ddb, table, tenant, vendor, RecordKind.SALE, on_page):
        read += 1
        if not isinstance(sale, Sale):
            continue
        if sale.status not in ENROLLING_STATUSES or not sale.customer_pos_id or sale.local_date < since:
            continue
        key = (sale.credential_id, sale.customer_pos_id)
        held = latest.get(key)
        if held is None or held.local_date < sale.local_date:
            latest[key] = sale
    return latest, read


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
    consents = ConsentStore(ddb, personas_table)
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
            if texts(persona, sale, settings.sms_optin_after) and not _consent_recorded(consents, tenant, persona):
                impact.would_text += 1
            elif sale.local_date >= (settings.sms_optin_after or date.max):
                if not matchable_phone(persona.phone):
                    impact.text_no_phone += 1
                else:
                    impact.text_answered += 1
    return impact


def _consent_recorded(consents: ConsentStore, tenant: str, persona: Persona) -> bool:
    """What the consumer finds before it records a request: a consent for the number (asked, answered, or the POS's)
    or the persona's once-ever marker (asked at an earlier number)."""
    if persona.phone and consents.consent(tenant, persona.phone) is not None:
        return True
    return consents.persona_marker(tenant, persona.persona_id) is not None


@dataclass
class ImportImpact:
    balances_read: int = 0
    would_import: int = 0  # POSaBIT balances the rules would import now (their ledger changes)
    points: int = 0  # the balance change those imports make
    already: int = 0  # balances imported already, as they are
    without_persona: int = 0  # balances as of the date whose customer has no persona yet
    after_date: int = 0  # balances as of a later day (ignored: accrual is ours from the day after)


def count_imports(
    ddb: Any,
    records_table: str,
    personas_table: str,
    tenant: str,
    settings: IntegrationSettings,
    zone: ZoneInfo,
    on_page: Callable[[int], None] | None = None,
) -> ImportImpact:
    """How many stored POSaBIT balances these settings would import: the import rule (points.import_applies) on the
    balance's date in the tenant's time zone, and the ledger rule (points.ledger_delta) against the import entry the
    persona holds, exactly as the rules book them."""
    impact = ImportImpact()
    if settings.loyalty_points_imported_on is None or settings.vendor not in POINTS_IMPORT_VENDORS:
        return impact
    vendor = settings.vendor
    applying: list[tuple[LoyaltyBalance, int]] = []
    for record, version in stored_records(ddb, records_table, tenant, vendor, RecordKind.LOYALTY_BALANCE, on_page):
        impact.balances_read += 1
        if not isinstance(record, LoyaltyBalance):
            continue
        if import_applies(settings, record.as_of.astimezone(zone).date()):
            applying.append((record, version))
        else:
            impact.after_date += 1
    store = PersonaStore(ddb, personas_table)
    owners = store.pos_owners(tenant, {(vendor, b.credential_id, b.customer_pos_id) for b, _ in applying})
    wanted: dict[str, list[str]] = {}
    for balance, _ in applying:
        owner = owners.get((vendor, balance.credential_id, balance.customer_pos_id))
        if owner is not None:
            wanted.setdefault(owner, []).append(ledger_sk_of(balance))
    _, entries = store.read_bookings(tenant, wanted) if wanted else ({}, {})
    for balance, version in applying:
        owner = owners.get((vendor, balance.credential_id, balance.customer_pos_id))
        if owner is None:
            impact.without_persona += 1
            continue
        entry = entries.get(owner, {}).get(ledger_sk_of(balance))
        held = ((entry.at, entry.record_version), entry.points) if entry is not None else None
        delta = ledger_delta(held, (iso(balance.as_of), version), balance.points)
        if delta is None:
            impact.already += 1
        else:
            impact.would_import += 1
            impact.points += delta
    return impact


@dataclass
class FavouriteImpact:
    sales_read: int = 0
    would_set: int = 0  # personas without a favourite store that would get one
    may_change: int = 0  # personas with a favourite store and served sales at a mapped store
    without_persona: int = 0  # POS customers with such sales and no persona yet


def count_favourites(
    ddb: Any,
    records_table: str,
    personas_table: str,
    tenant: str,
    settings: IntegrationSettings,
    on_page: Callable[[int], None] | None = None,
) -> FavouriteImpact:
    """How many personas these store mappings would give a favourite store: those without one that have a served
    sale (a store visit, points.VISIT_STATUSES) whose credential or location maps to a store (stores.mapped_store)."""
    impact = FavouriteImpact()
    vendor = settings.vendor
    visiting: set[Shopper] = set()
    for sale, _ in stored_records(ddb, records_table, tenant, vendor, RecordKind.SALE, on_page):
        impact.sales_read += 1
        if not isinstance(sale, Sale) or not sale.customer_pos_id or sale.status not in VISIT_STATUSES:
            continue
        if mapped_store(settings.store_mappings, sale.credential_id, sale.location_id) is not None:
            visiting.add((sale.credential_id, sale.customer_pos_id))
    owners = personas_of(PersonaStore(ddb, personas_table), tenant, vendor, visiting)
    impact.without_persona = len(visiting) - len(owners)
    for persona in profiles(ddb, personas_table, tenant, set(owners.values())).values():
        if persona.favourite_store is None:
            impact.would_set += 1
        else:
            impact.may_change += 1
    return impact


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
    """Lines for `settings set --dry-run` (and `stores map --dry-run`): the personas the new settings would enroll,
    text, import balances for or give a favourite store, counted from the records stored now with the rules' own
    functions (empty: no such key changed)."""
    asks_enroll = bool(changed & ENROLL_KEYS)
    asks_text = bool(changed & TEXT_KEYS)
    asks_import = bool(changed & IMPORT_KEYS)
    asks_favourites = bool(changed & MAPPING_KEYS)
    if not (asks_enroll or asks_text or asks_import or asks_favourites):
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
    if asks_import and settings.loyalty_points_imported_on is None:
        lines.append("Would import: nothing (loyalty_points_imported_on is not set).")
        asks_import = False
    if asks_favourites and not settings.store_mappings:
        lines.append("Would set favourite stores: none (no store is mapped).")
        asks_favourites = False
    if not (asks_enroll or asks_text or asks_import or asks_favourites):
        return lines
    target = context.target()
    ddb = context.client("dynamodb")
    if not _table_exists(ddb, target.personas_table):
        return [
            *lines,
            f"How many personas this would enroll or text cannot be counted: the personas table "
            f"{target.personas_table} does not exist yet (deploy or restart the runtime with the persona rules).",
        ]
    zone: ZoneInfo | None = None
    if asks_import:
        zone, problem = _tenant_zone(context, tenant)
        if zone is None:
            lines.append(f"Would import: cannot be counted ({problem}).")
            asks_import = False
    with Progress(
        TextColumn("reading {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console(),
        transient=True,
    ) as progress:
        task = progress.add_task(f"stored {vendor.value} records of {tenant}", total=None)

        def advance(read: int) -> None:
            progress.advance(task, read)

        impact = count(
            ddb,
            target.records_table,
            target.personas_table,
            tenant,
            settings,
            enroll=asks_enroll,
            text=asks_text,
            on_page=advance,
        )
        imports = (
            count_imports(ddb, target.records_table, target.personas_table, tenant, settings, zone, advance)
            if asks_import and zone is not None
            else None
        )
        favourites = (
            count_favourites(ddb, target.records_table, target.personas_table, tenant, settings, advance)
            if asks_favourites
            else None
        )
    if asks_enroll or asks_text:
        lines += _enroll_and_text_lines(impact, tenant, vendor, settings, asks_enroll, asks_text)
    if imports is not None:
        lines.append(
            f"Would import: {_s(imports.would_import, 'POSaBIT balance')} ({imports.points:+d} points, as of "
            f"{settings.loyalty_points_imported_on} or earlier in the tenant's time zone; counted from "
            f"{_s(imports.balances_read, 'stored balance')}); {imports.already} imported already, "
            f"{imports.after_date} as of a later day are not imported."
        )
        if imports.without_persona:
            lines.append(
                f"  {_s(imports.without_persona, 'more balance')} of a shopper with no persona yet: imported when "
                "the persona appears."
            )
    if favourites is not None:
        lines.append(
            f"Would set the favourite store of {_s(favourites.would_set, 'persona')} (none yet, with a served "
            f"{vendor.value} sale at a mapped store; counted from {_s(favourites.sales_read, 'stored sale')}); "
            f"{favourites.may_change} with a favourite store already may change it."
        )
        if favourites.without_persona:
            lines.append(
                f"  {_s(favourites.without_persona, 'more shopper')} with such a sale "
                f"{'has' if favourites.without_persona == 1 else 'have'} no persona yet."
            )
    return lines


def _tenant_zone(context: AdminContext, tenant: str) -> tuple[ZoneInfo | None, str]:
    """The tenant's time zone from its loyalty settings (the day a balance is as of), or why it cannot be read."""
    parameter = context.target().names.tenant_settings_parameter(tenant)
    try:
        raw = context.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ParameterNotFound":
            raise
        raw = "{}"
    try:
        settings = parse_tenant_settings(raw, parameter)
        return ZoneInfo(settings.timezone), ""
    except (SettingsError, ZoneInfoNotFoundError, ValueError) as exc:
        return None, f"the tenant loyalty settings are not valid: {exc}"


def _enroll_and_text_lines(
    impact: Impact, tenant: str, vendor: Vendor, settings: IntegrationSettings, asks_enroll: bool, asks_text: bool
) -> list[str]:
    enroll_after, sms_after = settings.enroll_after, settings.sms_optin_after
    lines = [
        f"Impact, counted from {_s(impact.sales_scanned, 'stored ' + vendor.value + ' sale')} of {tenant} and the "
        "personas the persona rules have built so far:"
    ]
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
