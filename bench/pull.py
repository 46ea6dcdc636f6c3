"""`make bench`: pull 10,000 and 100,000 records per vendor through the real handler, next to the floor.

For each size and vendor a fresh process (peak RSS is per process) pulls one credential from the vendor's simulator
(its own process) into moto (a server process of its own, `bench.moto_server`: moto's app on kept-alive HTTP/1.1
connections as AWS keeps them, where `moto_server` closes every connection after one request), so only the puller's
CPU and memory are measured. Then:

- the floor: the same HTTP requests sent again by the same clients and their bodies json-decoded, nothing else
  (CPU of this process, same run): what any puller must spend; `cpu_vs_floor` is possync's multiple of it;
- an unchanged re-pull: the same data read again (checkpoints kept, a lookback reaching back past every record),
  counting every S3 PUT and DynamoDB write it makes;
- the cost model: DynamoDB write and read units computed from the measured size of every item each request carried
  (1 KB write units, 4 KB strongly consistent read units), S3 requests counted, Lambda GB-seconds from the measured
  duration with moto's local latency replaced by AWS_REQUEST_SECONDS per request, at us-east-1 on-demand prices;
- where the first pull's CPU goes, stage by stage (STAGES: fetch + validate, engine, map, record items, writes,
  version reads, page archive, checkpoints, and the job around them), adding up to possync's figure.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import json
import math
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from functions.core import record_items
from functions.core.layout import RECORDS_SCOPE_ATTRIBUTE, RECORDS_SCOPE_KEY_ATTRIBUTE
from functions.core.record_index import is_page_index

SIZES = (10_000, 100_000)
# How page index items (functions.core.record_index) are reported among the records' kinds.
PAGE_INDEX_KIND = "page_index"
VENDORS = ("posabit", "flourish", "thsuite", "profitek", "auphan")
# us-east-1 list prices (on-demand DynamoDB since the November 2024 price cut; Lambda on arm64).
PRICE_S3_PUT = 0.005 / 1000
PRICE_S3_GET = 0.0004 / 1000
PRICE_DDB_WRITE_UNIT = 0.625 / 1_000_000  # write request unit: one write of up to 1 KB
PRICE_DDB_READ_UNIT = 0.125 / 1_000_000  # read request unit: one strongly consistent read of up to 4 KB
PRICE_LAMBDA_GB_SECOND_ARM = 0.0000133334
PRICE_LAMBDA_REQUEST = 0.20 / 1_000_000
PRICE_SQS_REQUEST = 0.40 / 1_000_000
# An in-region DynamoDB or S3 request's round trip, replacing what moto on loopback takes (ASSUMED: DynamoDB
# documents single-digit millisecond latency; S3 PUTs of a small object take longer, batch writes a little more).
AWS_REQUEST_SECONDS = 0.010
FLOOR_PASSES = 3  # the floor is the median of this many passes over the same requests
WRITE_OPS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
# How far back the re-pull looks: past every record a simulator holds, so it re-reads all of them.
REPULL_LOOKBACK_MINUTES = 10 * 366 * 24 * 60


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


# --- DynamoDB item sizes and capacity units: the size rule is the one possync decides an item's form by ------------
item_size = record_items.attribute_bytes


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool = True) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


class AwsCalls:
    """Every AWS request the puller makes: counted by operation, its capacity units computed from what it carried,
    and the time spent waiting on it (moto's, to be replaced by AWS_REQUEST_SECONDS in the model)."""

    def __init__(self, records_table: str) -> None:
        self.records_table = records_table
        self.sizes: dict[str, int] = {}  # records-table pk -> size of the item stored last (what a read costs)
        self.reset()

    def reset(self) -> None:
        self.ops: Counter[str] = Counter()
        self.data_writes: Counter[str] = Counter()  # records, checkpoints, page index, quarantine, context
        self.bookkeeping_writes: Counter[str] = Counter()  # the run's lease and status
        self.write_units = 0.0
        self.index_write_units = 0.0
        self.read_units = 0.0
        self.item_sizes: dict[str, list[int]] = {}  # record kind -> sizes of the items written
        self.waited = 0.0
        self._started = 0.0
        self.overhead = 0.0

    def register(self, client: Any) -> None:
        from functions.core import ddb_lean, s3_lean

        client.meta.events.register("before-parameter-build.*.*", self._request)  # the API parameters
        client.meta.events.register("before-call.*.*", self._before)
        client.meta.events.register("after-call.*.*", self._after)
        # Requests on the trusted DynamoDB and S3 clients' lean paths emit none of those events: their observers tell.
        ddb_lean.observe(client, self._lean)
        s3_lean.observe(client, self._lean_s3)

    def _lean(self, operation: str, params: Mapping[str, Any], waited: float) -> None:
        self.waited += waited
        cpu0 = time.process_time()
        self.ops[f"dynamodb.{operation}"] += 1
        self._dynamodb(operation, params)
        self.overhead += time.process_time() - cpu0

    def _lean_s3(self, operation: str, params: Mapping[str, Any], waited: float) -> None:
        self.waited += waited
        self.ops[f"s3.{operation}"] += 1

    def _before(self, **_: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, **_: Any) -> None:
        self.waited += time.perf_counter() - self._started

    def _request(self, model: Any, params: Mapping[str, Any], **_: Any) -> None:
        # Sizing the items is the bench's own work: its CPU is taken out of the pull's (`overhead`).
        cpu0 = time.process_time()
        service = model.service_model.service_name
        self.ops[f"{service}.{model.name}"] += 1
        if service == "dynamodb":
            self._dynamodb(model.name, params)
        self.overhead += time.process_time() - cpu0

    def _dynamodb(self, op: str, params: Mapping[str, Any]) -> None:
        if op == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    self._write(table, "BatchWriteItem", request.get("PutRequest", {}).get("Item"), request)
        elif op in WRITE_OPS:
            self._write(params.get("TableName", ""), op, params.get("Item"), params)
        elif op == "BatchGetItem":
            for table, spec in params["RequestItems"].items():
                for key in spec["Keys"]:
                    size = self.sizes.get(key["pk"]["S"], 0) if table == self.records_table else 0
                    self.read_units += read_units(size, bool(spec.get("ConsistentRead")))
        elif op in ("GetItem", "Query"):
            self.read_units += read_units(0, bool(params.get("ConsistentRead")))

    def _write(self, table: str, op: str, item: Mapping[str, Any] | None, request: Mapping[str, Any]) -> None:
        key = item or request.get("Key") or request.get("DeleteRequest", {}).get("Key") or {}
        sk = key.get("sk", {}).get("S", "")
        if sk in ("LEASE", "STATUS"):
            self.bookkeeping_writes[op] += 1
        else:
            self.data_writes[op] += 1
        size = item_size(item) if item else 0
        self.write_units += write_units(size)
        if item and table == self.records_table:
            pk = item["pk"]["S"]
            kind = PAGE_INDEX_KIND if is_page_index(pk) else item["kind"]["S"]
            self.item_sizes.setdefault(kind, []).append(size)
            # An item that carries the index keys (a page index item; a record stored before page indexes) enters
            # the keys-only index when it is first written; rewriting it with the same keys costs the index nothing.
            if pk not in self.sizes and RECORDS_SCOPE_ATTRIBUTE in item:
                keys = {name: item[name] for name in ("pk", RECORDS_SCOPE_ATTRIBUTE, RECORDS_SCOPE_KEY_ATTRIBUTE)}
                self.index_write_units += write_units(item_size(keys) + 100)  # 100 bytes of index overhead
            self.sizes[pk] = size


class GcTimer:
    """CPU the cyclic garbage collector spends, per generation, while `on` (gc.callbacks around each collection)."""

    def __init__(self) -> None:
        self.on = False
        self.seconds: dict[int, float] = defaultdict(float)
        self.collections: Counter[int] = Counter()
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def reset(self) -> None:
        self.seconds.clear()
        self.collections.clear()

    def _callback(self, phase: str, info: Mapping[str, int]) -> None:
        if not self.on:
            return
        if phase == "start":
            self._started = time.process_time()
        else:
            generation = info["generation"]
            self.seconds[generation] += time.process_time() - self._started
            self.collections[generation] += 1


# Where a pull's CPU goes, stage by stage: each is the CPU spent in these functions (first pull) less what their
# callees in another stage took, and less the bench's own work inside them. Each is called once a page or once a
# request batch, never per record, so timing them costs the pull nothing measurable.
STAGES: tuple[tuple[str, str, str, str], ...] = (
    # (stage, module, class or "", function)
    ("fetch + validate", "functions.core.engine", "PullEngine", "_pull_stream"),
    ("engine", "functions.core.engine", "PullEngine", "run"),
    ("engine", "functions.core.engine", "PullEngine", "_store_page"),
    ("map", "functions.core.engine", "", "map_page"),
    ("record items", "functions.core.store", "RecordStore", "upsert_changed"),
    ("writes", "functions.core.store", "RecordStore", "_batch_write"),
    ("version reads", "functions.core.store", "RecordStore", "_versions"),
    ("page archive", "functions.core.archive", "S3Archive", "put_page"),
    ("page archive", "functions.core.store", "ControlStore", "archived_page"),
    ("checkpoints", "functions.core.store", "ControlStore", "get_checkpoints"),
    ("checkpoints", "functions.core.store", "ControlStore", "save_checkpoint"),
)
# What the rest of a pull's CPU is: the job around the streams (the schedule's invocation that enqueues it, the lease,
# settings, secrets, the store's context, status, metrics, the reward mirror check) and the local runtime's queue.
JOB_STAGE = "job"
STAGE_ORDER = (*dict.fromkeys(stage for stage, *_ in STAGES), JOB_STAGE)


class StageClock:
    """CPU by stage (STAGES) while `on`: a function's time less its timed callees' and less `overhead()` spent inside
    it (the bench's own sizing of requests), added to its stage."""

    def __init__(self, overhead: Any = lambda: 0.0, clock: Any = time.process_time) -> None:
        self.on = False
        self.seconds: dict[str, float] = defaultdict(float)
        self._overhead = overhead
        self._clock = clock
        self._stack: list[list[float]] = []  # [children's CPU] of each timed call in progress

    def reset(self) -> None:
        self.seconds.clear()

    def timed(self, stage: str, function: Any) -> Any:
        clock = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            if not clock.on:
                return function(*args, **kwargs)
            cpu0, overhead0 = clock._clock(), clock._overhead()
            clock._stack.append([0.0])
            try:
                return function(*args, **kwargs)
            finally:
                (children,) = clock._stack.pop()
                spent = clock._clock() - cpu0 - (clock._overhead() - overhead0)
                clock.seconds[stage] += spent - children
                if clock._stack:
                    clock._stack[-1][0] += spent

        return timed

    def install(self, stages: Iterable[tuple[str, str, str, str]] = STAGES) -> None:
        for stage, module_name, class_name, name in stages:
            owner = importlib.import_module(module_name)
            if class_name:
                owner = getattr(owner, class_name)
            function = owner.__dict__[name]
            wrapped = self.timed(stage, function.__func__ if isinstance(function, staticmethod) else function)
            setattr(owner, name, staticmethod(wrapped) if isinstance(function, staticmethod) else wrapped)

    def by_stage(self, total: float) -> dict[str, float]:
        """Seconds by stage, in STAGE_ORDER; what no stage took is the job's."""
        out = {stage: self.seconds.get(stage, 0.0) for stage in STAGE_ORDER if stage != JOB_STAGE}
        out[JOB_STAGE] = total - sum(out.values())
        return out


def percentile(sizes: list[int], share: float) -> int:
    if not sizes:
        return 0
    ordered = sorted(sizes)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def child(records: int, vendor: str) -> dict[str, Any]:
    """Pull `records` once, measure the floor, then re-pull the unchanged data; report what each cost."""
    port = _free_port()
    # moto's app on kept-alive connections, as DynamoDB and S3 keep them (bench.moto_server: moto_server closes each)
    moto = subprocess.Popen(
        [sys.executable, "-m", "bench.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sim = subprocess.Popen(
        [sys.executable, "-m", "bench.sim_server", "--vendor", vendor, "--records", str(records)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sim.stdout is not None
        info = json.loads(sim.stdout.readline())
        _wait_port(port)
        return _measure(records, vendor, port, info)
    finally:
        if sim.stdin:
            sim.stdin.close()
        for process in (sim, moto):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # moto holding 100,000 items can be slow to stop: the figures stand
                process.kill()
                process.wait()


class HttpRecorder:
    """The puller's vendor requests, in order, and its HTTP clients kept open so the floor can send them again."""

    def __init__(self) -> None:
        import httpx

        self.requests: list[tuple[Any, str, str]] = []
        self.clients: list[Any] = []
        self.recording = True
        real_send, real_close = httpx.Client.send, httpx.Client.close
        recorder = self

        def send(client: Any, request: Any, **kwargs: Any) -> Any:
            if recorder.recording:
                recorder.requests.append((client, request.method, str(request.url)))
            return real_send(client, request, **kwargs)

        def close(client: Any) -> None:
            recorder.clients.append(client)

        httpx.Client.send = send  # type: ignore[method-assign,assignment]
        httpx.Client.close = close  # type: ignore[method-assign,assignment]
        self._real_close = real_close

    def floor_cpu(self, passes: int = FLOOR_PASSES) -> tuple[float, list[float]]:
        """CPU to send the recorded requests again and json-decode what comes back: fetch + decode, nothing else.
        The median of `passes` passes, and each pass's: one pass takes a tenth of a second or less, and a single one
        moved by 20-50% between identical runs on a shared machine."""
        seconds = []
        for _ in range(passes):
            cpu0 = time.process_time()
            for client, method, url in self.requests:
                json.loads(client.request(method, url).content)
            seconds.append(time.process_time() - cpu0)
        return statistics.median(seconds), seconds

    def close(self) -> None:
        for client in self.clients:
            self._real_close(client)


def _measure(records: int, vendor_name: str, port: int, info: dict[str, Any]) -> dict[str, Any]:
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
        POWERTOOLS_TRACE_DISABLED="true",
        POSSYNC_SETTLE_SECONDS="0",
    )
    import boto3

    from functions.core import aws, layout
    from functions.core.credentials import credential_json, parse_credential
    from functions.core.layout import Vendor
    from functions.core.store import ControlStore, RegisteredCredential
    from possync.local.lambda_shim import HandlerRunner
    from possync.local.provision import provision
    from possync.local.runtime import run_tick

    vendor = Vendor(vendor_name)
    os.environ[layout.base_url_env(vendor)] = info["url"]
    resources = provision(lambda s: boto3.client(s, region_name="us-east-1"))
    control = ControlStore(boto3.client("dynamodb"), resources.control_table)
    secret = resources.names.credential_secret("bench", vendor, "store-1")
    credential = parse_credential(info["credential"], vendor, "store-1")
    boto3.client("secretsmanager").create_secret(Name=secret, SecretString=credential_json(credential))
    control.register_credential(RegisteredCredential("bench", vendor, "store-1", True, secret))

    calls = AwsCalls(resources.records_table)
    for service in ("dynamodb", "s3", "sqs"):
        calls.register(aws.client(service))
        calls.register(aws.trusted_client(service))
    recorder = HttpRecorder()
    collector = GcTimer()
    stages = StageClock(lambda: calls.overhead)
    stages.install()
    function = layout.PULL_FUNCTION[vendor]
    # Lambda imports a function's handler module in its init phase, once per container and before any invocation is
    # timed or billed per request: the bench does the same before its clock starts (what the first invocation itself
    # imports or builds, it still counts).
    init_cpu0 = time.process_time()
    importlib.import_module(f"functions.{function}.handler")
    # Reported, not counted in the pull: the handler module's import after the harness's own imports (which loaded
    # most of what it imports), its warm-up included (functions.core.pull_runtime.warm_up).
    init_cpu = time.process_time() - init_cpu0
    # BENCH_LOG=file keeps the Lambda log lines (and EMF metrics) there instead of discarding them.
    runner = HandlerRunner(open(os.environ.get("BENCH_LOG", os.devnull), "w"))  # noqa: SIM115 - process lifetime

    # The local runtime's own clients (the queue it delivers jobs from) stand in for Lambda's machinery, not the pull:
    # built before the clock.
    harness_clients = {service: boto3.client(service, region_name="us-east-1") for service in ("sqs",)}

    def harness_client(service: str) -> Any:
        return harness_clients.get(service) or boto3.client(service, region_name="us-east-1")

    def pull() -> tuple[float, float, dict[str, Any]]:
        calls.reset()
        collector.reset()
        stages.reset()
        collector.on = stages.on = True
        profiler = cProfile.Profile(time.process_time) if os.environ.get("BENCH_PROFILE") else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        jobs = run_tick(harness_client, resources, runner, [function], pull_now=True)
        if profiler is not None:  # BENCH_PROFILE=file: a CPU profile of the first pull (python -m pstats file)
            profiler.disable()
            profiler.dump_stats(os.environ.pop("BENCH_PROFILE"))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        collector.on = stages.on = False
        assert jobs and all(j.ok for j in jobs), jobs
        cpu -= calls.overhead
        return cpu, wall, control.get_status("bench", vendor, "store-1")

    cpu, wall, status = pull()
    first_stages = stages.by_stage(cpu)
    # Read before anything else the bench does: the cost model imports infra.constants, and with it aws-cdk-lib (a
    # few hundred MB while Python compiles it in a fresh venv), which a pull Lambda never holds.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    first = _costs(calls, wall)
    gc_seconds = dict(collector.seconds)
    gc_collections = dict(collector.collections)
    first_sizes = {kind: list(sizes) for kind, sizes in calls.item_sizes.items()}
    pulled = int(status["last_records"])

    recorder.recording = False
    floor, floor_passes = recorder.floor_cpu()

    # The same data again, unchanged: checkpoints kept, the lookback reaching back past every record.
    os.environ[layout.ENV_LOOKBACK_MINUTES] = str(REPULL_LOOKBACK_MINUTES)
    cpu2, wall2, status2 = pull()
    repull_stages = stages.by_stage(cpu2)
    again = _costs(calls, wall2)
    recorder.close()
    write_floor = _write_floor(resources.records_table, list(calls.sizes))

    # The records' own items (page index items are reported as their kind, and costed on their own).
    every = [size for kind, sizes in first_sizes.items() if kind != PAGE_INDEX_KIND for size in sizes]
    return {
        "vendor": vendor_name,
        "requested": records,
        "pulled": pulled,
        "changed": int(status["last_changed"]),
        "pages": int(status["last_pages"]),
        "vendor_requests": len(recorder.requests),
        "seconds": wall,
        "records_per_second": pulled / wall if wall else 0.0,
        "cpu_seconds": cpu,
        "floor_cpu_seconds": floor,
        "cpu_us_per_record": 1e6 * cpu / pulled,
        "floor_cpu_us_per_record": 1e6 * floor / pulled,
        "floor_cpu_us_per_record_passes": [1e6 * seconds / pulled for seconds in floor_passes],
        "cpu_vs_floor": cpu / floor if floor else float("nan"),
        "boto3_write_cpu_seconds": write_floor,
        "boto3_write_cpu_us_per_record": 1e6 * write_floor / pulled,
        "cpu_vs_floor_with_writes": cpu / (floor + write_floor),
        "peak_rss_mb": peak_mb,
        "cpu_us_per_record_by_stage": {stage: 1e6 * sec / pulled for stage, sec in first_stages.items()},
        "handler_init_cpu_ms": 1e3 * init_cpu,
        # the first pull's garbage collections: CPU a record, and how many ran of each generation
        "gc_cpu_us_per_record": 1e6 * sum(gc_seconds.values()) / pulled,
        "gc_collections": {f"gen{g}": n for g, n in sorted(gc_collections.items())},
        "gc_cpu_us_per_record_by_generation": {f"gen{g}": 1e6 * t / pulled for g, t in sorted(gc_seconds.items())},
        "item_bytes_p50": percentile(every, 0.50),
        "item_bytes_p99": percentile(every, 0.99),
        "item_bytes_by_kind": {
            kind: {
                "items": len(sizes),
                "p50": percentile(sizes, 0.50),
                "p99": percentile(sizes, 0.99),
                "max": max(sizes),
                "write_units_per_item": sum(map(write_units, sizes)) / len(sizes),
                "read_units_per_item": sum(read_units(s) for s in sizes) / len(sizes),
            }
            for kind, sizes in sorted(first_sizes.items())
        },
        "item_size_counts": dict(Counter(every)),
        "page_index_write_units": sum(map(write_units, first_sizes.get(PAGE_INDEX_KIND, []))),
        **{f"first_{name}": value for name, value in first.items()},
        "modelled_cost_per_million": 1e6 * first["cost"] / pulled,
        "repull_records": int(status2["last_records"]),
        "repull_changed": int(status2["last_changed"]),
        "repull_s3_puts": calls.ops.get("s3.PutObject", 0),
        "repull_ddb_writes": sum(calls.data_writes.values()),
        "repull_bookkeeping_writes": dict(calls.bookkeeping_writes),
        "repull_cpu_us_per_record": 1e6 * cpu2 / max(1, int(status2["last_records"])),
        "repull_cpu_us_per_record_by_stage": {
            stage: 1e6 * sec / max(1, int(status2["last_records"])) for stage, sec in repull_stages.items()
        },
        "repull_cost_per_million": 1e6 * again["cost"] / max(1, int(status2["last_records"])),
    }


def _write_floor(records_table: str, keys: list[str]) -> float:
    """CPU boto3 alone spends writing the pulled items once (BatchWriteItem, 25 a request, no validation) into a
    scratch table: what any puller that stores these items through boto3 pays on top of fetch + decode."""
    import boto3
    from botocore.config import Config

    reader = boto3.client("dynamodb")
    scratch = f"{records_table}-write-floor"
    reader.create_table(
        TableName=scratch,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # Read by key (every pk the pull wrote), not by a scan: moto sorts the whole table for every page of a scan, which
    # at 100,000 records took longer than the pull itself.
    items: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {records_table: {"Keys": [{"pk": {"S": pk}} for pk in keys[start : start + 100]]}}
        while request:
            answer = reader.batch_get_item(RequestItems=request)
            items += answer["Responses"].get(records_table, [])
            request = answer.get("UnprocessedKeys") or {}
    writer = boto3.client("dynamodb", config=Config(parameter_validation=False))
    writer.describe_table(TableName=scratch)  # the connection and endpoint are set up before the clock starts
    cpu0 = time.process_time()
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        writer.batch_write_item(RequestItems={scratch: chunk})
    return time.process_time() - cpu0


def _costs(calls: AwsCalls, wall: float) -> dict[str, Any]:
    """Dollars of one pull, from the units and requests it made (see the module docstring)."""
    memory_gb = _pull_memory_mb() / 1024
    aws_requests = sum(n for op, n in calls.ops.items() if not op.startswith("sqs."))
    lambda_seconds = max(0.0, wall - calls.waited) + aws_requests * AWS_REQUEST_SECONDS
    parts = {
        "dynamodb_writes": (calls.write_units + calls.index_write_units) * PRICE_DDB_WRITE_UNIT,
        "dynamodb_reads": calls.read_units * PRICE_DDB_READ_UNIT,
        "s3": calls.ops.get("s3.PutObject", 0) * PRICE_S3_PUT + calls.ops.get("s3.GetObject", 0) * PRICE_S3_GET,
        "lambda": lambda_seconds * memory_gb * PRICE_LAMBDA_GB_SECOND_ARM + 2 * PRICE_LAMBDA_REQUEST,
        "sqs": sum(n for op, n in calls.ops.items() if op.startswith("sqs.")) * PRICE_SQS_REQUEST,
    }
    return {
        "calls": dict(calls.ops),
        "write_units": calls.write_units,
        "index_write_units": calls.index_write_units,
        "read_units": calls.read_units,
        "lambda_seconds_modelled": lambda_seconds,
        "cost_parts": parts,
        "cost": sum(parts.values()),
    }


def _pull_memory_mb() -> int:
    from infra.constants import PULL_MEMORY_MB

    return PULL_MEMORY_MB


def combine(size: int, runs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One object per size: the figures over every vendor's records, and each vendor's own."""
    runs = list(runs)
    pulled = sum(r["pulled"] for r in runs)
    cpu = sum(r["cpu_seconds"] for r in runs)
    floor = sum(r["floor_cpu_seconds"] for r in runs)
    sizes: list[int] = []
    for r in runs:
        for item_bytes, count in r.pop("item_size_counts").items():
            sizes.extend([int(item_bytes)] * count)
    cost = sum(r["first_cost"] for r in runs)
    repulled = sum(r["repull_records"] for r in runs)
    out: dict[str, Any] = {
        "records": size,
        "pulled": pulled,
        "cpu_us_per_record": 1e6 * cpu / pulled,
        "floor_cpu_us_per_record": 1e6 * floor / pulled,
        "cpu_vs_floor": cpu / floor if floor else float("nan"),
        "worst_vendor_cpu_vs_floor": max(r["cpu_vs_floor"] for r in runs),
        "boto3_write_cpu_us_per_record": sum(r["boto3_write_cpu_us_per_record"] * r["pulled"] for r in runs) / pulled,
        "cpu_vs_floor_with_writes": cpu / (floor + sum(r["boto3_write_cpu_seconds"] for r in runs)),
        "repull_s3_puts": sum(r["repull_s3_puts"] for r in runs),
        "repull_ddb_writes": sum(r["repull_ddb_writes"] for r in runs),
        "item_bytes_p50": percentile(sizes, 0.50),
        "item_bytes_p99": percentile(sizes, 0.99),
        "modelled_cost_per_million": 1e6 * cost / pulled,
        "cost_parts_per_million": {
            part: 1e6 * sum(r["first_cost_parts"][part] for r in runs) / pulled for part in runs[0]["first_cost_parts"]
        },
        "write_units_per_record": sum(r["first_write_units"] + r["first_index_write_units"] for r in runs) / pulled,
        "index_write_units_per_record": sum(r["first_index_write_units"] for r in runs) / pulled,
        "page_index_write_units_per_record": sum(r["page_index_write_units"] for r in runs) / pulled,
        "read_units_per_record": sum(r["first_read_units"] for r in runs) / pulled,
        "repull_cost_per_million": sum(r["repull_cost_per_million"] * r["repull_records"] for r in runs)
        / max(1, repulled),
        "cpu_us_per_record_by_stage": {
            stage: sum(r["cpu_us_per_record_by_stage"][stage] * r["pulled"] for r in runs) / pulled
            for stage in STAGE_ORDER
        },
        "vendors": {r["vendor"]: r for r in runs},
    }
    out.update(cost_floor(out, sizes))
    return out


def cost_floor(result: Mapping[str, Any], sizes: list[int]) -> dict[str, Any]:
    """What a first pull of new records cannot cost less than in this data model, from the measured items: each
    record's item is written once (1 write unit up to 1 KB, 2 up to 2 KB), each page of new records writes its page
    index item (1 unit a KB of POS ids) and that item's entry in the keys-only index (1 unit), and nothing is read (a
    credential's first pull knows none of its records is stored: functions.core.store.FirstPull; a later pull reads
    each record it meets once, 1 strongly consistent read unit up to 4 KB, so that an unchanged one writes nothing);
    and the lines that say where the dollars go."""
    pulled = max(1, int(result["pulled"]))
    item_units = sum(map(write_units, sizes)) / pulled
    over_1kb = sum(1 for size in sizes if size > 1024) / max(1, len(sizes))
    page_units = float(result["page_index_write_units_per_record"])
    index_units = float(result["index_write_units_per_record"])
    write_price, read_price = 1e6 * PRICE_DDB_WRITE_UNIT, 1e6 * PRICE_DDB_READ_UNIT
    floor = (max(1.0, item_units) + page_units + index_units) * write_price
    parts = result["cost_parts_per_million"]
    lines = [
        f"${result['modelled_cost_per_million']:.2f} per 1M records pulled: DynamoDB writes "
        f"${parts['dynamodb_writes']:.2f}, reads ${parts['dynamodb_reads']:.2f}, S3 ${parts['s3']:.2f}, "
        f"Lambda ${parts['lambda']:.2f}, SQS ${parts['sqs']:.2f}.",
        f"Writes per record: {item_units:.2f} units for the record items (p50 {result['item_bytes_p50']:,} B, "
        f"p99 {result['item_bytes_p99']:,} B; the {100 * over_1kb:.0f}% over 1 KB take 2 units) + {page_units:.3f} "
        f"for page index items + {index_units:.3f} for the index by tenant and POS (one entry per page of new "
        f"records, none per record) at ${write_price:.3f} per 1M units.",
        f"Floor of this data model for new records: ({max(1.0, item_units):.2f} + {page_units:.3f} + "
        f"{index_units:.3f}) x ${write_price:.3f} = ${floor:.2f} per 1M, no read (a credential's first pull: none of "
        f"its records is stored yet; a later pull reads each record it meets, ${read_price:.3f} per 1M)"
        + (
            f": $1 is out of reach while {100 * over_1kb:.0f}% of the record items are over 1 KB."
            if floor > 1.0
            else "."
        ),
    ]
    return {"cost_floor_per_million": floor, "cost_arithmetic": lines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="record counts to pull (comma-separated)")
    parser.add_argument("--vendor", default="all", help=f"one of {', '.join(VENDORS)}, or all (default)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print one JSON object per size instead of the table")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.vendor)))
        return
    vendors = VENDORS if args.vendor == "all" else (args.vendor,)
    if any(v not in VENDORS for v in vendors):
        parser.error(f"--vendor must be one of {', '.join(VENDORS)} or all")

    from rich.console import Console
    from rich.table import Table

    from possync.admin.render import output_width

    console = Console(width=output_width(), stderr=args.json)  # the JSON alone goes to stdout
    results = []
    failed = False
    for size in (int(s) for s in args.sizes.split(",")):
        runs = []
        for vendor in vendors:
            with console.status(f"pulling {size:,} {vendor} records through the handler..."):
                out = subprocess.run(
                    [sys.executable, "-m", "bench.pull", "--child", str(size), "--vendor", vendor],
                    check=False,
                    capture_output=True,
                    text=True,
                )
            if out.returncode != 0:
                tail = "\n".join(out.stderr.strip().splitlines()[-15:])
                console.print(f"[red]the {size:,}-record {vendor} run failed (exit {out.returncode}):[/]\n{tail}")
                failed = True
                continue
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = runs[-1]
            console.print(
                f"{size:,} {vendor}: {r['cpu_us_per_record']:.0f} µs CPU/record, floor "
                f"{r['floor_cpu_us_per_record']:.0f} µs ({r['cpu_vs_floor']:.1f}x), garbage collection "
                f"{r['gc_cpu_us_per_record']:.1f} µs, peak RSS {r['peak_rss_mb']:.0f} MB"
            )
        if runs:
            results.append(combine(size, runs))
    if not results:
        raise SystemExit(1)
    if args.json:
        print(json.dumps(results, indent=2))
        raise SystemExit(1 if failed else 0)
    for result in results:
        console.print(_table(result, Table))
        console.print(_stage_table(result, Table))
        for line in result["cost_arithmetic"]:
            console.print(line)
    raise SystemExit(1 if failed else 0)


def _table(result: dict[str, Any], table_class: Any) -> Any:
    table = table_class(
        title=f"pull of {result['records']:,} records per vendor (one credential; moto server + simulator on loopback)"
    )
    table.caption = (
        "CPU µs per record pulled: floor = fetch + json-decode of the same pages; boto3 write = boto3 alone writing "
        "the same items; re-pull = the same data read again unchanged"
    )
    for column in (
        "vendor",
        "records",
        "floor",
        "possync",
        "ratio",
        "boto3 write",
        "vs floor+write",
        "re-pull PUTs",
        "re-pull writes",
        "item B p50/p99",
        "$ / 1M",
    ):
        table.add_column(column, justify="left" if column == "vendor" else "right")
    rows = [*result["vendors"].values(), {**result, "vendor": "all"}]
    for r in rows:
        table.add_row(
            r["vendor"],
            f"{r['pulled']:,}",
            f"{r['floor_cpu_us_per_record']:.0f}",
            f"{r['cpu_us_per_record']:.0f}",
            f"{r['cpu_vs_floor']:.1f}x",
            f"{r['boto3_write_cpu_us_per_record']:.0f}",
            f"{r['cpu_vs_floor_with_writes']:.1f}x",
            str(r["repull_s3_puts"]),
            str(r["repull_ddb_writes"]),
            f"{r['item_bytes_p50']:,}/{r['item_bytes_p99']:,}",
            f"${r['modelled_cost_per_million']:.2f}",
        )
    return table


def _stage_table(result: dict[str, Any], table_class: Any) -> Any:
    table = table_class(title=f"where the first pull's CPU goes, µs per record ({result['records']:,} records)")
    table.caption = (
        "fetch + validate: the vendor's pages read and validated (the floor's work and the validation); map: items to "
        "records; record items: each record's JSON, digest and item; writes: the batch write requests; job: what "
        "runs around the streams (lease, settings, status, mirror check, the schedule's invocation)"
    )
    for column in ("vendor", "floor", *STAGE_ORDER, "possync"):
        table.add_column(column, justify="left" if column == "vendor" else "right")
    for r in [*result["vendors"].values(), {**result, "vendor": "all"}]:
        by_stage = r["cpu_us_per_record_by_stage"]
        table.add_row(
            r["vendor"],
            f"{r['floor_cpu_us_per_record']:.1f}",
            *(f"{by_stage[stage]:.1f}" for stage in STAGE_ORDER),
            f"{r['cpu_us_per_record']:.1f}",
        )
    return table


if __name__ == "__main__":
    main()
