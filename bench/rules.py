"""`make bench`: the rules (stream consumers) on 10,000 and 100,000 sales, through the real handlers; prints figures.

Shopper and sale records are written to the records table with RecordStore (as a pull writes them), read back from
the table's DynamoDB stream and handed to `functions.personas.handler` and `functions.enroll.handler` by the local
stream pump: the consumers' own FilterCriteria, batches of 100, Lambda's event shape. Every AWS request the handlers
make is counted by operation with a botocore `before-call` hook, per consumer. Each size runs in a fresh process
(peak RSS is per process). At the end the personas table is read back and checked against what the generated data
must produce (every sale booked once, balances = ledger, members and points as the rules define them).

moto runs in its own process by default (a moto server on loopback), so its tables and its CPU do not count in the
consumers' figures; `--moto in-process` runs it inside the measured process instead (faster per request, but its
tables then count in the RSS). moto costs that grow with the table are removed (possync.local.moto_fixes, and a
Scan fix here): without them a run is quadratic in the personas table.

`--json` prints one JSON object per run, with at least `ddb_requests_per_sale_record`,
`ddb_requests_per_shopper_record`, `modelled_ddb_cost_per_million_sales`, `own_time_share` (per consumer: the share
of handler time outside AWS calls) and `checks_ok` (true only when every correctness check passed).
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import importlib
import itertools
import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

SIZES = (10_000, 100_000)
QUICK = (1_000,)
TENANT = "bench"
REGION = "us-east-1"
TIMEZONE = "America/Los_Angeles"
POINTS_PER_DOLLAR = 2
ENROLL_AFTER_DAYS = 60  # sales over the last 90 days; the older third happened before "enroll after"
SALE_DAYS = 90
SHOPPERS_PER_SALE = 0.2  # 10,000 sales -> 2,000 POS customer records
WRITE_PAGE = 500  # records per RecordStore.upsert_changed call (a pull page)
# Three POSaBIT credentials (stores), two POS locations each. The store mappings cover a whole credential
# (north), single locations (south) and leave one pop-up location unmapped (east): one unmapped-store notice.
LOCATIONS: dict[str, tuple[tuple[str, float], ...]] = {
    "pb-north": (("north-main", 0.8), ("north-express", 0.2)),
    "pb-south": (("south-main", 0.7), ("south-annex", 0.3)),
    "pb-east": (("east-main", 0.97), ("east-popup", 0.03)),
}
STORE_MAPPINGS = {
    "pb-north": "store-north",
    "south-main": "store-south",
    "south-annex": "store-south-annex",
    "east-main": "store-east",
}
MARKET = "WA"
STATUSES = (
    ("completed", 0.86),
    ("refunded", 0.04),
    ("partially_refunded", 0.03),
    ("cancelled", 0.04),
    ("pending", 0.03),
)
# What enrolls and what earns, restated from the rules (not imported from them), so the final check is independent.
ENROLLING = frozenset({"completed", "partially_refunded"})
EARNING = frozenset({"completed", "partially_refunded", "refunded"})
# The model behind the "on Lambda" rows: a 512 MB function gets 512/1769 of a vCPU, and an in-region DynamoDB
# request (send, sign, parse included) takes about 5 ms. Both are assumptions, stated where they are used.
LAMBDA_VCPU = 512 / 1769
DDB_REQUEST_SECONDS = 0.005
PRICE_DDB_WRITE_UNIT = 0.625 / 1_000_000  # on-demand, 1 KB
PRICE_DDB_READ_UNIT = 0.125 / 1_000_000  # on-demand, 4 KB strongly consistent
FIRST_NAMES = ("ana", "ben", "cara", "dev", "eli", "fay", "gus", "hana", "ivan", "jo", "kai", "lena", "marc", "nia")
LAST_NAMES = ("reyes", "olsen", "kim", "patel", "nguyen", "smith", "garcia", "moore", "lee", "clark", "young")
PRODUCTS = (("Blue Dream 3.5g", "flower", 3500), ("Gummies 10pk", "edible", 1800), ("Vape 1g", "vape", 4200))


# --- moto: the costs that grow with the table (possync.local.moto_fixes, and a Scan fix for the final check) -------
def patch_moto() -> None:
    """possync.local.moto_fixes (TransactWriteItems backs up the items it names, not whole tables; Query reads one
    partition), plus, for the final check's Scan: the table is sorted once per scan rather than once per page, and
    each page starts at its key instead of walking the table from the top. Requests, answers and errors stay as
    moto gives them; only the time they take stops growing with the table."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    from possync.local import moto_fixes

    moto_fixes.install()
    original_scan, original_put, original_delete = Table.scan, Table.put_item, Table.delete_item
    original_transact = DynamoDBBackend.transact_write_items

    def changed(table: Any) -> None:
        table.__dict__.pop("_bench_sorted", None)  # a scan's sorted copy of the table is stale now

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        changed(self)
        return original_put(self, *args, **kwargs)

    def delete_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        changed(self)
        return original_delete(self, *args, **kwargs)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        for action in transact_items:  # a cancelled transaction puts items back without put_item
            for op in action.values():
                table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
                if table is not None:
                    changed(table)
        original_transact(self, transact_items)

    def scan(self: Any, filters: Any, limit: Any, exclusive_start_key: Any, *args: Any, **kwargs: Any) -> Any:
        # (filter_expression, index_name, consistent_read, projection_expression, segments=...)
        index_name = args[1] if len(args) > 1 else kwargs.get("index_name")
        if index_name is not None:
            return original_scan(self, filters, limit, exclusive_start_key, *args, **kwargs)
        if "_bench_sorted" not in self.__dict__:
            items = self.all_items()
            keys = [(item.hash_key, item.range_key) if self.range_key_attr else item.hash_key for item in items]
            self._bench_sorted = (items, keys)
        items, keys = self._bench_sorted
        start = 0
        if exclusive_start_key:
            hash_value = DynamoType(exclusive_start_key[self.hash_key_attr])
            if self.range_key_attr:
                start = bisect.bisect_left(keys, (hash_value, DynamoType(exclusive_start_key[self.range_key_attr])))
            else:
                start = bisect.bisect_left(keys, hash_value)
        page = items[start:]
        self.all_items = lambda: page  # shadows the method for this call only
        try:
            return original_scan(self, filters, limit, exclusive_start_key, *args, **kwargs)
        finally:
            del self.all_items

    setattr(Table, "scan", scan)  # noqa: B010 - patched on purpose, see the docstring
    setattr(Table, "put_item", put_item)  # noqa: B010
    setattr(Table, "delete_item", delete_item)  # noqa: B010
    setattr(DynamoDBBackend, "transact_write_items", transact_write_items)  # noqa: B010


def serve_moto(port: int) -> None:
    patch_moto()
    from moto.server import main as moto_main

    moto_main(["-H", "127.0.0.1", "-p", str(port)])


# --- the data: people, their POS customer records, their sales; and what the rules must make of them --------------
@dataclass(frozen=True)
class Customer:
    """One POS customer record (what a Shopper record carries) and the person it belongs to."""

    credential: str
    pos_id: str
    person: int


@dataclass
class Expected:
    persons: int = 0
    members: int = 0
    points: dict[int, int] = field(default_factory=dict)  # person -> balance
    member_since_date: dict[int, str] = field(default_factory=dict)
    ledger_entries: int = 0
    visits: int = 0
    unmapped_notices: int = 0


class Plan:
    """Generated records (seeded) and, computed independently of the rules' code, what they must produce.

    People have one POS customer record, or two or three at different stores sharing the phone (and mostly the
    email); some have a placeholder phone or email, or none. A few records arrive after their sales (those sales
    wait as pending). Sales, oldest first over 90 days: a heavy-tailed number per customer, 8% anonymous, several
    statuses; 2% of the completed ones are refunded later (a second version: a MODIFY on the stream).
    """

    def __init__(self, sales: int, seed: int, now: datetime) -> None:
        from functions.core.layout import Vendor
        from functions.core.models import Shopper

        self.sales = sales
        self.rng = random.Random(seed)
        self.now = now
        self.zone = ZoneInfo(TIMEZONE)
        self.enroll_after = now.astimezone(self.zone).date() - timedelta(days=ENROLL_AFTER_DAYS)
        rng = self.rng
        self.customers: list[Customer] = []
        self.shoppers: list[Shopper] = []
        self.late_shoppers: list[Shopper] = []
        credentials = list(LOCATIONS)
        target = max(50, int(sales * SHOPPERS_PER_SALE))
        person = 0
        while len(self.customers) < target:
            copies = rng.choices((1, 2, 3), weights=(90, 8, 2))[0]
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            roll = rng.random()
            phone: str | None = f"+1206{2_000_000 + person:07d}"
            phone_raw: str | None = phone
            if copies == 1 and roll < 0.04:
                phone, phone_raw = None, "1234567890"  # a placeholder: kept as typed, never matched
            elif copies == 1 and roll < 0.12:
                phone = phone_raw = None
            roll = rng.random()
            email: str | None = f"{first}.{last}.{person}@example.com"
            if roll < 0.04:
                email = "test@test.com"
            elif roll < 0.14 and copies == 1:
                email = None
            for credential in rng.sample(credentials, copies):
                pos_id = f"C{len(self.customers):07d}"
                self.customers.append(Customer(credential, pos_id, person))
                updated = now - timedelta(days=rng.uniform(1, 400))
                shopper = Shopper(
                    tenant=TENANT,
                    vendor=Vendor.POSABIT,
                    credential_id=credential,
                    pos_id=pos_id,
                    source_updated_at=updated,
                    first_name=first.title(),
                    last_name=last.title(),
                    phone=phone,
                    phone_raw=phone_raw,
                    email=email if rng.random() > 0.1 or copies == 1 else None,
                    birth_date=date(rng.randint(1950, 2003), rng.randint(1, 12), rng.randint(1, 28)),
                    state=MARKET if rng.random() < 0.9 else "OR",
                    postal_code=f"98{rng.randint(0, 999):03d}",
                    loyalty_member=rng.random() < 0.3,
                    marketing_opt_in=rng.random() < 0.5,
                    sms_opt_in=rng.random() < 0.4,
                    customer_type="recreational",
                    pos_created_at=updated - timedelta(days=rng.uniform(0, 700)),
                )
                (self.late_shoppers if rng.random() < 0.04 else self.shoppers).append(shopper)
            person += 1
        self.expected = Expected(persons=person)
        # How often each customer buys: heavy-tailed (a few regulars, many one-off shoppers).
        self._cum_weights = list(itertools.accumulate(rng.paretovariate(1.3) for _ in self.customers))
        # Pulls read by update time, so sales reach the table (and the stream) roughly oldest first.
        self._ages = sorted((rng.uniform(0, SALE_DAYS) for _ in range(sales)), reverse=True)
        self._enrolled: dict[int, tuple[datetime, date]] = {}
        self._final: dict[str, tuple[int, str, int, date]] = {}  # sale id -> (person, status, net, local date)
        self.updates: list[Any] = []

    @property
    def records(self) -> int:
        return len(self.shoppers) + len(self.late_shoppers) + self.sales + len(self.updates)

    def sale_pages(self, size: int) -> Iterator[list[Any]]:
        """The sales, generated page by page (updates are collected for later); the oracle learns each one."""
        page: list[Any] = []
        for index in range(self.sales):
            page.append(self._sale(index))
            if len(page) == size:
                yield page
                page = []
        if page:
            yield page
        self._finish()

    def _sale(self, index: int) -> Any:
        from functions.core.layout import Vendor
        from functions.core.models import Sale, SaleLine

        rng = self.rng
        customer = rng.choices(self.customers, cum_weights=self._cum_weights)[0] if rng.random() >= 0.08 else None
        credential = customer.credential if customer else rng.choice(list(LOCATIONS))
        locations = LOCATIONS[credential]
        location = rng.choices([name for name, _ in locations], weights=[w for _, w in locations])[0]
        ordered = self.now - timedelta(days=self._ages[index], hours=1)
        local = ordered.astimezone(self.zone).date()
        status = rng.choices([s for s, _ in STATUSES], weights=[w for _, w in STATUSES])[0]
        lines = []
        for _ in range(rng.randint(1, 4)):
            name, category, price = rng.choice(PRODUCTS)
            quantity = rng.randint(1, 3)
            lines.append(
                SaleLine(
                    product_id=name[:4], name=name, category=category, quantity=quantity, total_cents=price * quantity
                )
            )
        subtotal = sum(line.total_cents for line in lines)
        discount = subtotal // 10 if rng.random() < 0.2 else 0
        tax = (subtotal - discount) * 37 // 100
        total = subtotal - discount + tax
        refunded = total if status == "refunded" else (total // 3 if status == "partially_refunded" else 0)
        sale = Sale(
            tenant=TENANT,
            vendor=Vendor.POSABIT,
            credential_id=credential,
            pos_id=f"S{index:08d}",
            location_id=location,
            source_updated_at=ordered + timedelta(minutes=rng.uniform(1, 30)),
            customer_pos_id=customer.pos_id if customer else None,
            ordered_at=ordered,
            local_date=local,
            timezone=TIMEZONE,
            status=status,
            subtotal_cents=subtotal,
            discount_cents=discount,
            tax_cents=tax,
            total_cents=total,
            refunded_cents=refunded,
            lines=tuple(lines),
            tenders=({"type": "cash", "amount_cents": total},),
        )
        if location == "east-popup":
            self.expected.unmapped_notices = 1
        if customer is not None:
            self._learn(customer.person, sale)
            if location != "east-popup" and status in EARNING:  # a visit to a mapped store
                self.expected.visits += 1
            if status == "completed" and rng.random() < 0.02:
                full = rng.random() < 0.5
                later = sale.model_copy(
                    update={
                        "status": "refunded" if full else "partially_refunded",
                        "refunded_cents": total if full else total // 4,
                        "source_updated_at": min(self.now, sale.source_updated_at + timedelta(days=1)),
                    }
                )
                self.updates.append(later)
                self._learn(customer.person, later)
        return sale

    def _learn(self, person: int, sale: Any) -> None:
        if sale.status in ENROLLING and sale.local_date >= self.enroll_after:
            held = self._enrolled.get(person)
            if held is None or sale.ordered_at < held[0]:
                self._enrolled[person] = (sale.ordered_at, sale.local_date)
        self._final[sale.pos_id] = (person, sale.status, sale.total_cents - sale.refunded_cents, sale.local_date)

    def _finish(self) -> None:
        expected = self.expected
        expected.ledger_entries = len(self._final)
        expected.members = len(self._enrolled)
        expected.member_since_date = {p: since.isoformat() for p, (_, since) in self._enrolled.items()}
        expected.points = dict.fromkeys(range(expected.persons), 0)
        for person, status, net, local in self._final.values():
            joined = self._enrolled.get(person)
            if joined is None or status not in EARNING or local < joined[1]:
                continue
            points = abs(net) * POINTS_PER_DOLLAR // 100
            expected.points[person] += points if net >= 0 else -points


# --- counting what the handlers ask of AWS -------------------------------------------------------------------------
@dataclass
class ConsumerCalls:
    calls: Counter[str] = field(default_factory=Counter)  # "dynamodb.GetItem|persona profile" -> requests
    failed: Counter[str] = field(default_factory=Counter)  # the same keys -> requests that failed (conditions)
    read_units: int = 0  # modelled: 1 per strongly consistent read of an item <= 4 KB
    write_units: int = 0  # modelled: 1 per write of an item <= 1 KB, 2 per item in a transaction
    aws_seconds: float = 0.0  # wall time between before-call and after-call (send, sign, moto, parse)
    batch_seconds: list[float] = field(default_factory=list)


def _key_of(op: str, params: Mapping[str, Any]) -> tuple[str, str]:
    """The (pk, sk) a DynamoDB request is about (its first item for batches and transactions)."""
    if op == "Query":
        values = params.get("ExpressionAttributeValues", {})
        return values.get(":pk", {}).get("S", ""), values.get(":prefix", {}).get("S", "")
    if op == "TransactWriteItems":
        first = next(iter(params["TransactItems"][0].values()))
        return _key_of("PutItem" if "Item" in first else "GetItem", first)
    if op == "BatchGetItem":
        return _key_of("GetItem", {"Key": next(iter(params["RequestItems"].values()))["Keys"][0]})
    key = params.get("Key") or params.get("Item") or {}
    return key.get("pk", {}).get("S", ""), key.get("sk", {}).get("S", "")


def purpose(op: str, params: Mapping[str, Any]) -> str:
    """What a rules' DynamoDB request is for, from the keys and expressions it names (for the hot-spot rows)."""
    pk, sk = _key_of(op, params)
    if op == "BatchGetItem":
        keys = [k for r in params["RequestItems"].values() for k in r["Keys"]]
        sorts = {k["sk"]["S"].split("#")[0] or k["sk"]["S"] for k in keys}
        names = {"ID": "claims", "PROFILE": "profiles", "LEDGER": "ledger entries", "MARKER": "parked-sale markers"}
        return " + ".join(names.get(x, x) for x in sorted(sorts))
    if op == "TransactWriteItems":
        kinds = {
            next(iter(a.values())).get("Item", next(iter(a.values())).get("Key", {}))["sk"]["S"].split("#")[0]
            for a in params["TransactItems"]
        }
        if "LEDGER" in kinds:
            return "sale effects: ledger entries + profile"
        if "ID" in kinds:
            return "persona + identity claims"
        return "+".join(sorted(kinds))
    if sk == "PROFILE":
        attributes = set(params.get("ExpressionAttributeNames", {}).values())
        if "points" in attributes:
            return "sale effects: profile only"
        return "persona contact update" if op == "UpdateItem" else "persona profile"
    for prefix, name in (
        ("LEDGER#", "ledger entries (membership moved back)" if op == "Query" else "ledger entry"),
        ("ID", "identity claims"),
        ("MARKER", "parked-sale marker"),
        ("#FLAG", "waiting flag"),
    ):
        if sk.startswith(prefix):
            return name
    for prefix, name in (
        ("PENDING#", "pending sales"),
        ("WAITING#", "waiting records"),
        ("UNMAPPED#", "unmapped notice"),
        ("CRED#", "credential registry"),
        ("REGISTRY#", "credential registry"),
    ):
        if pk.startswith(prefix):
            return name
    return pk.split("#", 1)[0] or "?"


class CountingRunner:
    """HandlerRunner that knows which consumer is running, so every AWS request is charged to it."""

    def __init__(self, log: TextIO) -> None:
        from possync.local.lambda_shim import HandlerRunner

        self.inner = HandlerRunner(log)
        self.log = log
        self.current: str | None = None
        self.per: dict[str, ConsumerCalls] = defaultdict(ConsumerCalls)
        self._label = ""
        self._started = 0.0

    def invoke(
        self, function: str, event: dict[str, Any], env: Mapping[str, str], timeout_seconds: float = 900.0
    ) -> Any:
        self.current = function
        started = time.perf_counter()
        try:
            return self.inner.invoke(function, event, env, timeout_seconds)
        finally:
            self.per[function].batch_seconds.append(time.perf_counter() - started)
            self.current = None

    def watch(self, client: Any) -> None:
        service = client.meta.service_model.service_id.hyphenize()  # "dynamodb", "ssm", "eventbridge"
        client.meta.events.register(f"before-parameter-build.{service}", self._params)
        client.meta.events.register(f"before-call.{service}", self._before)
        client.meta.events.register(f"after-call.{service}", self._after)

    def _params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service, op = model.service_model.endpoint_prefix, model.name
        if self.current is None:
            return
        if service != "dynamodb":
            self._label = f"{service}.{op}"
            return
        self._label = f"dynamodb.{op}|{purpose(op, params)}"
        stats = self.per[self.current]
        if op == "BatchGetItem":
            stats.read_units += sum(len(r.get("Keys", [])) for r in params.get("RequestItems", {}).values())
        elif op in ("GetItem", "Query", "Scan"):
            stats.read_units += 1
        elif op == "TransactWriteItems":
            stats.write_units += 2 * len(params.get("TransactItems", []))
        elif op == "BatchWriteItem":
            stats.write_units += sum(len(r) for r in params.get("RequestItems", {}).values())
        elif op in ("PutItem", "UpdateItem", "DeleteItem"):
            stats.write_units += 1

    def _before(self, **_: Any) -> None:
        if self.current is not None:
            self.per[self.current].calls[self._label] += 1
            self._started = time.perf_counter()

    def _after(self, http_response: Any, **_: Any) -> None:
        if self.current is None:
            return
        stats = self.per[self.current]
        stats.aws_seconds += time.perf_counter() - self._started
        if http_response.status_code >= 300:
            stats.failed[self._label] += 1


# --- one size, in its own process -----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


def code_version() -> dict[str, str]:
    """Which rules code this process runs: a digest of the functions.* sources it imported, and git's view."""
    digest = hashlib.sha256()
    modules = sorted(name for name in sys.modules if name == "functions" or name.startswith("functions."))
    for name in modules:
        source = getattr(sys.modules[name], "__file__", None)
        if source:
            digest.update(name.encode() + b"\0" + Path(source).read_bytes())
    root = Path(str(sys.modules["functions"].__file__)).parent.parent
    git = ["git", "-C", str(root)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "functions"], capture_output=True, text=True)
        where = head.stdout.strip() + (" + uncommitted changes in functions/" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        where = f"{root} (not a git checkout)"
    return {"digest": digest.hexdigest()[:12], "git": where}


def _peak_rss_mb(pid: int | None = None) -> float:
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(
    sales: int, seed: int, moto: str, emit: Callable[[dict[str, Any]], None], partial_seconds: float = 300.0
) -> dict[str, Any]:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_SERVICE_NAME="possync-bench",
        POWERTOOLS_METRICS_NAMESPACE="possync",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    if moto == "server":
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.rules", "--serve-moto", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_port(port)
            os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
            result = _measure(sales, seed, emit, partial_seconds)
            result["moto_server_rss_mb"] = _peak_rss_mb(server.pid)
            return result
        finally:
            server.terminate()
            server.wait(timeout=30)
    from moto import mock_aws

    patch_moto()
    with mock_aws():
        return _measure(sales, seed, emit, partial_seconds)


def _measure(sales: int, seed: int, emit: Callable[[dict[str, Any]], None], partial_seconds: float) -> dict[str, Any]:
    import boto3
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
    from aws_lambda_powertools.utilities.parameters.ssm import SSMProvider

    from functions.core import aws
    from functions.core.layout import RULE_FUNCTIONS, Vendor
    from functions.core.settings import IntegrationSettings, TenantSettings
    from functions.core.sms.service import ENV_NOW
    from functions.core.sources import clear_caches
    from functions.core.store import ControlStore, RecordStore, RegisteredCredential
    from functions.core.streams import CONSUMERS
    from possync.local.provision import provision
    from possync.local.stream_pump import LocalConsumer, ShardRecord, StreamPump, lambda_record, peek_dead_letters

    aws.reset_clients()
    clear_caches()
    started = time.perf_counter()

    def clients(service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    resources = provision(clients)
    names = resources.names
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo(TIMEZONE)).date()
    # The opt-in consumer texts through an outbox file, and runs as if at noon in the stores' zone so that every
    # request is sent (daytime load) rather than deferred for quiet hours, whatever time the benchmark runs at.
    resources.sms_outbox = str(Path(tempfile.mkdtemp(prefix="possync-bench-")) / "outbox.jsonl")
    os.environ[ENV_NOW] = datetime.combine(today, datetime.min.time().replace(hour=12), ZoneInfo(TIMEZONE)).isoformat()
    ssm = clients("ssm")
    integration = IntegrationSettings(
        vendor=Vendor.POSABIT,
        age_gate_attested=True,
        enroll_after=today - timedelta(days=ENROLL_AFTER_DAYS),
        sms_optin_after=today - timedelta(days=ENROLL_AFTER_DAYS),
        sync_personas=True,
        sync_personas_enabled_on=today - timedelta(days=365),
        sync_to_relevant_market=True,
        store_mappings=STORE_MAPPINGS,
    )
    tenant = TenantSettings(brand_name="Bench", points_per_dollar=POINTS_PER_DOLLAR, timezone=TIMEZONE)
    for name, value in (
        (names.integration_settings_parameter(TENANT, Vendor.POSABIT), integration),
        (names.tenant_settings_parameter(TENANT), tenant),
    ):
        ssm.put_parameter(Name=name, Value=value.model_dump_json(), Type="String", Overwrite=True)
    control = ControlStore(clients("dynamodb"), resources.control_table)
    for credential in LOCATIONS:
        secret = names.credential_secret(TENANT, Vendor.POSABIT, credential)
        control.register_credential(
            RegisteredCredential(TENANT, Vendor.POSABIT, credential, True, secret, credential, market=MARKET)
        )

    plan = Plan(sales, seed, now)
    records = RecordStore(clients("dynamodb"), resources.records_table)
    pages = 0

    def write(page: Sequence[Any]) -> None:
        nonlocal pages
        pages += 1
        stats = records.upsert_changed(page, f"raw/tenant={TENANT}/bench/page-{pages:06d}.json.gz", now)
        assert stats.changed == len(page), stats
        emit({"advance": len(page)})

    emit({"phase": "write", "total": len(plan.shoppers) + len(plan.late_shoppers) + sales})
    for start in range(0, len(plan.shoppers), WRITE_PAGE):
        write(plan.shoppers[start : start + WRITE_PAGE])
    for page in plan.sale_pages(WRITE_PAGE):
        write(page)
    emit({"total": plan.records})  # the later versions of sales are known once the sales are
    for start in range(0, len(plan.late_shoppers), WRITE_PAGE):
        write(plan.late_shoppers[start : start + WRITE_PAGE])
    for start in range(0, len(plan.updates), WRITE_PAGE):
        write(plan.updates[start : start + WRITE_PAGE])
    write_seconds = time.perf_counter() - started

    # --- the consumers, fed from the stream GetRecords call by GetRecords call ------------------------------------
    runner = CountingRunner(open(os.devnull, "w"))  # noqa: SIM115 - process-lifetime sink for Lambda logs
    for service in ("dynamodb", "events"):
        runner.watch(aws.client(service))
    DEFAULT_PROVIDERS["ssm"] = SSMProvider()  # the provider parameters.get_parameter uses, made now to watch it
    runner.watch(DEFAULT_PROVIDERS["ssm"].client)
    pump = StreamPump(
        runner,  # type: ignore[arg-type]  # the same invoke() and log as HandlerRunner
        [
            LocalConsumer(name, CONSUMERS[name], resources.lambda_env(name), resources.rules_dlq_urls[name])
            for name in RULE_FUNCTIONS
        ],
        clients("sqs"),
        resources.records_stream_arn,
    )
    for name in RULE_FUNCTIONS:  # imported now (not at the first batch) so the digest names what runs
        importlib.import_module(f"functions.{name}.handler")
    code = code_version()
    streams = clients("dynamodbstreams")
    emit({"phase": "rules", "total": plan.records})
    rules_started = time.perf_counter()
    get_records = 0

    def figures(rules_seconds: float, verify_seconds: float, checks: list[Any], partial: str = "") -> dict[str, Any]:
        consumers = {}
        for name in RULE_FUNCTIONS:
            stats, calls = pump.totals[name], runner.per[name]
            consumers[name] = {
                "delivered": stats.delivered,
                "invocations": stats.invocations,
                "seconds": stats.seconds,
                "aws_seconds": calls.aws_seconds,
                "calls": dict(calls.calls),
                "failed": dict(calls.failed),
                "read_units": calls.read_units,
                "write_units": calls.write_units,
                "batch_seconds": sorted(calls.batch_seconds),
            }
        return {
            "sales": sales,
            "sale_updates": len(plan.updates),
            "shoppers": len(plan.shoppers) + len(plan.late_shoppers),
            "late_shoppers": len(plan.late_shoppers),
            "persons": plan.expected.persons,
            "records": plan.records,
            "moto": "server" if os.environ.get("AWS_ENDPOINT_URL") else "in-process",
            "code": code,
            "write_seconds": write_seconds,
            "rules_seconds": rules_seconds,
            "verify_seconds": verify_seconds,
            "get_records": get_records,
            "consumers": consumers,
            "checks": checks,
            "peak_rss_mb": _peak_rss_mb(),
            **({"partial": partial} if partial else {}),
        }

    last_partial = time.perf_counter()
    shards = streams.describe_stream(StreamArn=resources.records_stream_arn)["StreamDescription"]["Shards"]
    for shard in shards:
        iterator = streams.get_shard_iterator(
            StreamArn=resources.records_stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = streams.get_records(ShardIterator=iterator, Limit=1000)
            get_records += 1
            if not response["Records"]:
                break
            pump.feed(
                ShardRecord(shard["ShardId"], lambda_record(r, resources.records_stream_arn))
                for r in response["Records"]
            )
            pump.drain(lambda _function, n: emit({"advance": n}))
            iterator = response.get("NextShardIterator")
            if time.perf_counter() - last_partial >= partial_seconds:
                # What is measured so far, in case the run does not finish (it is long at 100,000 sales).
                last_partial = time.perf_counter()
                done = sum(stats.delivered for stats in pump.totals.values())
                partial = f"stopped after {done:,} of {plan.records:,} stream records; figures up to there, unchecked"
                emit({"partial": figures(last_partial - rules_started, 0.0, [], partial)})
    rules_seconds = time.perf_counter() - rules_started

    if code_version()["digest"] != code["digest"]:
        code["git"] += "; the sources changed on disk during the run (the digest is of the version that ran)"
    emit({"phase": "verify", "total": 0})
    verify_started = time.perf_counter()
    checks = verify(plan, resources, clients)
    dead = {name: peek_dead_letters(clients("sqs"), url).records for name, url in resources.rules_dlq_urls.items()}
    failures = {name: s.failed_invocations + s.partial_failures for name, s in pump.totals.items()}
    checks.append(
        (
            "no failed batches, nothing dead-lettered",
            not any(failures.values()) and not any(dead.values()),
            f"failed {failures}, dead-lettered {dead}",
        )
    )
    return figures(rules_seconds, time.perf_counter() - verify_started, checks)


def _scan(ddb: Any, table: str) -> Iterator[dict[str, Any]]:
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        yield from page["Items"]


def verify(plan: Plan, resources: Any, clients: Callable[[str], Any]) -> list[tuple[str, bool, str]]:
    """Read the personas table back; compare with what the generated data must produce."""
    from functions.core import layout
    from functions.core.layout import Vendor

    ddb = clients("dynamodb")
    profiles: dict[str, dict[str, Any]] = {}
    owner: dict[str, str] = {}  # POS identity value -> persona id
    ledger_points: Counter[str] = Counter()
    ledger_entries = visits = pending = 0
    for item in _scan(ddb, resources.personas_table):
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        if sk == layout.PERSONA_PROFILE_SK:
            profiles[item["persona_id"]["S"]] = item
            # visits are kept on the profile: store -> {count, last_at}
            visits += sum(int(v["M"]["count"]["N"]) for v in item.get("visits", {}).get("M", {}).values())
        elif sk == layout.IDENTITY_SK and item["kind"]["S"] == "pos":
            owner[pk.split("#", 3)[3]] = item["persona_id"]["S"]
        elif sk.startswith("LEDGER#"):
            ledger_entries += 1
            ledger_points[pk.split("#", 2)[2]] += int(item["points"]["N"])
        elif pk.startswith(("PENDING#", "WAITING#")):
            pending += 1  # a parked record, or the marker / flag that says records may be parked
    expected = plan.expected
    optin = _optin_check(resources, ddb)
    persona_of: dict[int, set[str]] = defaultdict(set)
    for customer in plan.customers:
        value = layout.pos_identity_value(Vendor.POSABIT, customer.credential, customer.pos_id)
        persona_of[customer.person].add(owner.get(value, "?"))
    split = sum(1 for ids in persona_of.values() if len(ids) != 1 or "?" in ids)
    merged = len(persona_of) - len({next(iter(ids)) for ids in persona_of.values()})
    balances = {pid: int(item.get("points", {}).get("N", "0")) for pid, item in profiles.items()}
    unbalanced = sum(1 for pid, points in balances.items() if points != ledger_points.get(pid, 0))
    wrong_points = wrong_since = 0
    for person, ids in persona_of.items():
        profile = profiles.get(next(iter(ids)))
        if profile is None:
            continue
        wrong_points += int(profile.get("points", {}).get("N", "0")) != expected.points.get(person, 0)
        since = profile.get("member_since_date", {}).get("S")
        wrong_since += since != expected.member_since_date.get(person)
    members = sum(1 for item in profiles.values() if item.get("member", {}).get("BOOL"))
    notices = ddb.query(
        TableName=resources.control_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": layout.control_unmapped_pk(TENANT)}},
    )["Count"]
    total = sum(balances.values())
    return [
        (
            "one persona per person (shared phones/emails merged)",
            len(profiles) == expected.persons and split == 0 and merged == 0,
            f"{len(profiles):,} personas for {expected.persons:,} people; split {split}, wrongly merged {merged}",
        ),
        (
            "every sale booked exactly once",
            ledger_entries == expected.ledger_entries and pending == 0,
            f"{ledger_entries:,} ledger entries for {expected.ledger_entries:,} sales with a customer; "
            f"{pending} parked items (records, markers, flags) left",
        ),
        (
            "each balance = sum of its ledger entries",
            unbalanced == 0 and total == sum(ledger_points.values()),
            f"{unbalanced} personas differ; total {total:,} points",
        ),
        (
            "points and member-since as the rules define them",
            wrong_points == 0 and wrong_since == 0 and total == sum(expected.points.values()),
            f"{wrong_points} balances and {wrong_since} member-since dates differ from the expected; "
            f"expected total {sum(expected.points.values()):,}",
        ),
        (
            "members enrolled (> 0)",
            members == expected.members and members > 0,
            f"{members:,} members, {expected.members:,} expected",
        ),
        ("store visits counted once", visits == expected.visits, f"{visits:,} visits, {expected.visits:,} expected"),
        (
            "unmapped-store notices",
            notices == expected.unmapped_notices,
            f"{notices}, {expected.unmapped_notices} expected",
        ),
        optin,
    ]


def _optin_check(resources: Any, ddb: Any) -> tuple[str, bool, str]:
    """No number got two opt-in requests, and every request the consumer recorded went out (it ran at noon; the
    other consents are the ones the POS recorded)."""
    from functions.core.sms.gateway import read_outbox
    from functions.core.sms.store import CONSENT_PREFIX, NUMBER_PREFIX

    sent = Counter(line["to"] for line in read_outbox(Path(resources.sms_outbox)) if line["kind"] == "optin_request")
    recorded: Counter[str] = Counter()
    for item in _scan(ddb, resources.personas_table):
        if item["pk"]["S"].startswith(NUMBER_PREFIX) and item["sk"]["S"].startswith(CONSENT_PREFIX):
            recorded[item["state"]["S"]] += 1
    twice = sum(1 for n in sent.values() if n > 1)
    return (
        "no number got two opt-in requests (> 0 sent)",
        twice == 0 and 0 < sum(sent.values()) == recorded["requested"],
        f"{sum(sent.values()):,} requests to {len(sent):,} numbers, {twice} numbers twice; consent {dict(recorded)}",
    )


# --- the parent: one child per size, a progress bar, the table ------------------------------------------------------
Row = tuple[str, Callable[[dict[str, Any]], str]]  # a table row: its label and how to print one run's figure


def run_child(size: int, seed: int, moto: str, progress: Any, partial_seconds: float) -> dict[str, Any] | None:
    """One size in a fresh process. A run that dies returns its last partial figures (marked so), else None."""
    from rich.markup import escape

    command = [sys.executable, "-m", "bench.rules", "--child", str(size), "--seed", str(seed), "--moto", moto]
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(
            [*command, "--partial-seconds", str(partial_seconds)], stdout=subprocess.PIPE, stderr=errors, text=True
        )
        assert proc.stdout is not None
        result: dict[str, Any] | None = None
        partial: dict[str, Any] | None = None
        task = None
        labels = {"write": "writing records table", "rules": "stream -> consumers", "verify": "checking results"}
        for line in proc.stdout:
            message = json.loads(line)
            if "phase" in message:
                if task is not None:
                    progress.update(task, visible=False)
                total = message["total"] or None
                label = f"{size:,} sales: {labels[message['phase']]}"
                task = progress.add_task(label, total=total)
            elif "total" in message and task is not None:
                progress.update(task, total=message["total"])
            elif "advance" in message and task is not None:
                progress.advance(task, message["advance"])
            elif "partial" in message:
                partial = message["partial"]
            elif "result" in message:
                result = message["result"]
        if task is not None:
            progress.update(task, visible=False)
        code = proc.wait()
        if code == 0 and result is not None:
            return result
        errors.seek(0)
        tail = errors.read()[-4000:]
        progress.console.print(f"[red]the {size:,}-sale run failed (exit status {code}):[/red]\n{escape(tail)}")
        return partial


def _per_1000(n: float, of: float) -> str:
    return f"{1000 * n / of:,.0f}" if of else "-"


def _rate(records: int, seconds: float) -> str:
    return f"{records / seconds:,.0f}" if seconds else "-"


def _lambda_batch_seconds(c: dict[str, Any], batch: int = 100) -> float:
    """Modelled time of a batch on a 512 MB Lambda: our CPU (outside AWS calls) scaled to its vCPU share, plus
    5 ms per request."""
    own = max(0.0, c["seconds"] - c["aws_seconds"]) / max(1, c["delivered"])
    requests = sum(c["calls"].values()) / max(1, c["delivered"])
    return batch * (own / LAMBDA_VCPU + requests * DDB_REQUEST_SECONDS)


def _cost_per_million_sales(r: dict[str, Any]) -> float:
    reads = sum(c["read_units"] for c in r["consumers"].values())
    writes = sum(c["write_units"] for c in r["consumers"].values())
    return 1_000_000 / r["sales"] * (reads * PRICE_DDB_READ_UNIT + writes * PRICE_DDB_WRITE_UNIT)


def _ddb_requests(c: dict[str, Any]) -> int:
    return sum(n for op, n in c["calls"].items() if op.startswith("dynamodb."))


def summary(r: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one run (the issue's targets are stated in these)."""
    p, e, o = r["consumers"]["personas"], r["consumers"]["enroll"], r["consumers"]["optin"]
    return {
        "ddb_requests_per_sale_record": _ddb_requests(e) / max(1, e["delivered"]),
        "ddb_requests_per_shopper_record": _ddb_requests(p) / max(1, p["delivered"]),
        "ddb_requests_per_sale": (_ddb_requests(p) + _ddb_requests(e)) / max(1, r["sales"]),
        "modelled_ddb_cost_per_million_sales": _cost_per_million_sales(r),
        # the SMS opt-in consumer (sales and shoppers): handler throughput and its DynamoDB requests per 1,000 sales
        "optin_records_per_second": o["delivered"] / o["seconds"] if o["seconds"] else 0.0,
        "optin_ddb_requests_per_1000_sales": 1000 * _ddb_requests(o) / max(1, r["sales"]),
        "own_time_share": {
            name: (max(0.0, c["seconds"] - c["aws_seconds"]) / c["seconds"]) if c["seconds"] else 0.0
            for name, c in r["consumers"].items()
        },
        "checks_ok": bool(r["checks"]) and all(ok for _, ok, _ in r["checks"]) and "partial" not in r,
    }


def print_table(results: list[dict[str, Any]], console: Any) -> None:
    from rich.table import Table

    from functions.core.streams import CONSUMERS, MAX_BATCHING_WINDOW_SECONDS

    timeout = CONSUMERS["enroll"].timeout_seconds
    table = Table(
        title=f"rules benchmark (personas, enroll and optin consumers, real handlers, moto {results[0]['moto']})",
        caption="requests are counted per consumer from botocore before-call hooks; 'on Lambda' rows are a model: "
        f"512 MB = {LAMBDA_VCPU:.2f} vCPU, {DDB_REQUEST_SECONDS * 1000:.0f} ms per DynamoDB request\nrules code: "
        + "; ".join(sorted({f"{r['code']['git']} (sources {r['code']['digest']})" for r in results if "code" in r})),
    )
    table.add_column("figure")
    for r in results:
        table.add_column(f"{r['sales']:,} sales" + (" (partial)" if "partial" in r else ""), justify="right")

    def p(r: dict[str, Any]) -> dict[str, Any]:
        return dict(r["consumers"]["personas"])

    def e(r: dict[str, Any]) -> dict[str, Any]:
        return dict(r["consumers"]["enroll"])

    def o(r: dict[str, Any]) -> dict[str, Any]:
        return dict(r["consumers"]["optin"])

    ddb = _ddb_requests

    rows: list[Row] = [
        (
            "records: shoppers / sales (+ later versions)",
            lambda r: f"{r['shoppers']:,} / {r['sales']:,} (+{r['sale_updates']:,})",
        ),
        ("people behind the shoppers", lambda r: f"{r['persons']:,} ({r['late_shoppers']:,} shoppers after sales)"),
        ("wall seconds: set up + write records / rules / check", lambda r: _seconds(r)),
        ("personas: shopper records / s (handler time)", lambda r: _rate(p(r)["delivered"], p(r)["seconds"])),
        ("enroll: sale records / s (handler time)", lambda r: _rate(e(r)["delivered"], e(r)["seconds"])),
        ("both: stream records / s (rules wall)", lambda r: _rate(r["records"], r["rules_seconds"])),
        (
            "share of handler time inside AWS calls (personas / enroll)",
            lambda r: (
                f"{100 * p(r)['aws_seconds'] / p(r)['seconds']:.0f}% / "
                f"{100 * e(r)['aws_seconds'] / e(r)['seconds']:.0f}%"
            ),
        ),
        (
            "share of handler time outside AWS calls: our code (personas / enroll)",
            lambda r: (
                f"{100 * summary(r)['own_time_share']['personas']:.0f}% / "
                f"{100 * summary(r)['own_time_share']['enroll']:.0f}%"
            ),
        ),
        (
            "our code's time per record, ms (personas / enroll)",
            lambda r: (
                f"{1000 * (p(r)['seconds'] - p(r)['aws_seconds']) / max(1, p(r)['delivered']):.2f} / "
                f"{1000 * (e(r)['seconds'] - e(r)['aws_seconds']) / max(1, e(r)['delivered']):.2f}"
            ),
        ),
        (
            "mean AWS request here, ms (moto + botocore send/parse)",
            lambda r: f"{_ms_per_call(p(r)):.1f} / {_ms_per_call(e(r)):.1f}",
        ),
        (
            "on Lambda (model): records / s per batch in flight",
            lambda r: f"{100 / _lambda_batch_seconds(p(r)):,.0f} / {100 / _lambda_batch_seconds(e(r)):,.0f}",
        ),
        (
            f"slowest batch of 100 here / on Lambda (timeout {timeout} s)",
            lambda r: (
                f"{max(p(r)['batch_seconds'][-1], e(r)['batch_seconds'][-1]):.1f} s / "
                f"{max(_lambda_batch_seconds(p(r)), _lambda_batch_seconds(e(r))):.1f} s"
            ),
        ),
        (
            f"rule effects after a page lands (model, {MAX_BATCHING_WINDOW_SECONDS} s window + 1 batch; target 60 s)",
            lambda r: _verdict(MAX_BATCHING_WINDOW_SECONDS + _lambda_batch_seconds(e(r)), 60),
        ),
        ("enroll: DynamoDB requests / 1,000 sale records", lambda r: _per_1000(ddb(e(r)), e(r)["delivered"])),
    ]
    rows += _request_rows(results, e)
    rows.append(("personas: DynamoDB requests / 1,000 shoppers", lambda r: _per_1000(ddb(p(r)), p(r)["delivered"])))
    rows += _request_rows(results, p)
    rows += [
        ("optin: sale and shopper records / s (handler time)", lambda r: _rate(o(r)["delivered"], o(r)["seconds"])),
        ("optin: DynamoDB requests / 1,000 sales", lambda r: _per_1000(ddb(o(r)), r["sales"])),
    ]
    rows += _request_rows(results, o)
    rows += [
        ("both: DynamoDB requests / 1,000 sales", lambda r: _per_1000(ddb(p(r)) + ddb(e(r)), r["sales"])),
        ("  of which failed their condition", lambda r: _failed(r)),
        ("other AWS requests (SSM, EventBridge)", lambda r: _others(r)),
        ("modelled DynamoDB cost / 1M sales (on-demand, small items)", lambda r: f"${_cost_per_million_sales(r):.2f}"),
        ("peak RSS (MB)", lambda r: _rss(r)),
    ]
    for label, fmt in rows:
        table.add_row(label, *(fmt(r) for r in results))
    labels: list[Any] = next((r["checks"] for r in results if r["checks"]), [])
    for index, (label, _, _) in enumerate(labels):
        table.add_row(f"check: {label}", *(_check(r, index) for r in results))
    console.print(table)
    for r in results:
        if "partial" in r:
            console.print(f"  {r['sales']:,} sales: [yellow]{r['partial']}[/yellow]")
        for label, ok, detail in r["checks"]:
            mark = "[green]ok[/green]" if ok else "[red]FAILED[/red]"
            console.print(f"  {r['sales']:,} sales, {label}: {mark} - {detail}")


def _request_rows(results: list[dict[str, Any]], pick: Callable[[dict[str, Any]], dict[str, Any]]) -> list[Row]:
    """One row per DynamoDB operation, and under it one per purpose when it has several; per 1,000 records."""
    labels = {label for r in results for label in pick(r)["calls"] if label.startswith("dynamodb.")}
    by_op: dict[str, list[str]] = defaultdict(list)
    for label in labels:
        by_op[label.removeprefix("dynamodb.").split("|")[0]].append(label)

    def rate(chosen: list[str]) -> Callable[[dict[str, Any]], str]:
        def cell(r: dict[str, Any]) -> str:
            c = pick(r)
            n, failed = sum(c["calls"].get(x, 0) for x in chosen), sum(c["failed"].get(x, 0) for x in chosen)
            text = _per_1000(n, c["delivered"])
            return f"{text} ({_per_1000(failed, c['delivered'])} failed a condition)" if failed else text

        return cell

    def weight(op: str) -> int:
        return -sum(pick(r)["calls"].get(x, 0) for r in results for x in by_op[op])

    rows: list[Row] = []
    for op in sorted(by_op, key=weight):
        chosen = sorted(by_op[op], key=lambda x: -sum(pick(r)["calls"].get(x, 0) for r in results))
        if len(chosen) == 1:
            rows.append((f"  {op}: {chosen[0].split('|')[1]}", rate(chosen)))
            continue
        rows.append((f"  {op}", rate(chosen)))
        rows += [(f"      {x.split('|')[1]}", rate([x])) for x in chosen]
    return rows


def _check(r: dict[str, Any], index: int) -> str:
    if index >= len(r["checks"]):
        return "not run"
    return "[green]ok[/green]" if r["checks"][index][1] else "[red]FAILED[/red]"


def _ms_per_call(c: dict[str, Any]) -> float:
    return 1000 * c["aws_seconds"] / max(1, sum(c["calls"].values()))


def _seconds(r: dict[str, Any]) -> str:
    return f"{r['write_seconds']:,.0f} / {r['rules_seconds']:,.0f} / {r['verify_seconds']:,.0f}"


def _verdict(seconds: float, target: float) -> str:
    mark = "[green]within[/green]" if seconds <= target else "[red]over[/red]"
    return f"{seconds:.1f} s ({mark})"


def _failed(r: dict[str, Any]) -> str:
    failed: Counter[str] = Counter()
    for c in r["consumers"].values():
        failed.update({op: n for op, n in c["failed"].items() if op.startswith("dynamodb.")})
    total = sum(failed.values())
    top = ", ".join(f"{label.split('|')[1]} {_per_1000(n, r['sales'])}" for label, n in failed.most_common(2))
    return f"{_per_1000(total, r['sales'])} ({top})" if total else "0"


def _others(r: dict[str, Any]) -> str:
    others: Counter[str] = Counter()
    for c in r["consumers"].values():
        others.update({op: n for op, n in c["calls"].items() if not op.startswith("dynamodb.")})
    return ", ".join(f"{op} {n:,}" for op, n in sorted(others.items())) or "0"


def _rss(r: dict[str, Any]) -> str:
    if "moto_server_rss_mb" in r:
        return f"{r['peak_rss_mb']:,.0f} (+ moto server {r['moto_server_rss_mb']:,.0f})"
    return f"{r['peak_rss_mb']:,.0f} (moto's tables included)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sales", type=int, nargs="+", default=list(SIZES), help="sale counts to run (one run each)")
    parser.add_argument("--quick", action="store_true", help=f"one small run ({QUICK[0]:,} sales), a smoke test")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated shoppers and sales")
    parser.add_argument(
        "--moto",
        choices=("server", "in-process"),
        default="server",
        help="moto as a separate server process (the default: clean RSS and CPU) or inside the measured process",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per run (its figures)")
    parser.add_argument("--save", metavar="FILE", help="also write the raw figures to FILE (JSON)")
    parser.add_argument("--show", metavar="FILE", nargs="+", help="print the table from saved figures; run nothing")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-moto", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--partial-seconds", type=float, default=300.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_moto:
        serve_moto(args.serve_moto)
        return
    if args.child:
        # Progress and the result go to the original stdout; anything else written to fd 1 goes to stderr.
        channel = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)

        def emit(message: dict[str, Any]) -> None:
            channel.write(json.dumps(message) + "\n")

        result = child(args.child, args.seed, args.moto, emit, args.partial_seconds)
        emit({"result": result})
        return

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from possync.admin.render import output_width

    # 120 columns into a file or a pipe; with --json, stdout carries only the JSON (progress goes to stderr)
    console = Console(width=output_width(), stderr=args.json)
    if args.show:
        saved = [r for path in args.show for r in json.loads(Path(path).read_text())]
        for r in saved:
            r.update(summary(r))
        print_table(sorted(saved, key=lambda r: int(r["sales"])), console)
        return
    sizes = list(QUICK) if args.quick else args.sales
    results = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    failed = False
    with Progress(*columns, console=console, transient=True) as progress:
        for size in sizes:
            started = time.perf_counter()
            outcome = run_child(size, args.seed, args.moto, progress, args.partial_seconds)
            failed = failed or outcome is None or "partial" in outcome
            if outcome is None:
                continue
            outcome["wall_seconds"] = time.perf_counter() - started
            outcome.update(summary(outcome))
            results.append(outcome)
            progress.console.print(f"{size:,} sales: {outcome['wall_seconds'] / 60:.1f} min")
            if args.save:
                Path(args.save).write_text(json.dumps(results, indent=2))
    if args.json:
        for result in results:
            print(json.dumps(result))
    elif results:
        print_table(results, console)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
