"""`make bench`: pull 10,000 and 100,000 records for one credential through the real handler and print figures.

Each size runs in a fresh process (peak RSS is per process); moto runs as a separate server process and the
POS simulator in another, so only the puller's own memory and CPU are measured.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

SIZES = (10_000, 100_000)
# us-east-1 list prices, per request / GB-second, used to model cost from the counts measured here.
PRICE_S3_PUT = 0.005 / 1000
PRICE_DDB_WRITE_UNIT = 0.625 / 1_000_000  # on-demand write request unit (1 KB)
PRICE_DDB_READ_UNIT = 0.125 / 1_000_000  # on-demand read request unit (4 KB, strongly consistent)
PRICE_LAMBDA_GB_SECOND_ARM = 0.0000133334
PRICE_SQS_REQUEST = 0.40 / 1_000_000


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


def child(records: int, vendor: str) -> dict[str, Any]:
    """Pull `records` once, then re-pull the same unchanged data from scratch; report what it cost."""
    port = _free_port()
    venv_bin = Path(sys.executable).parent
    moto = subprocess.Popen(
        [str(venv_bin / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
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

    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        calls[".".join(event_name.split(".")[1:3])] += 1  # before-call.dynamodb.BatchWriteItem

    for service in ("dynamodb", "s3", "sqs"):
        aws.client(service).meta.events.register(f"before-call.{service}.*", count)

    function = layout.PULL_FUNCTION[vendor]
    runner = HandlerRunner(open(os.devnull, "w"))  # noqa: SIM115 - process-lifetime sink for Lambda logs

    def pull() -> tuple[float, float, dict[str, Any]]:
        calls.clear()
        profiler = cProfile.Profile(time.process_time) if os.environ.get("BENCH_PROFILE") else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        jobs = run_tick(
            lambda s: boto3.client(s, region_name="us-east-1"), resources, runner, [function], pull_now=True
        )
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(os.environ["BENCH_PROFILE"])
            os.environ.pop("BENCH_PROFILE")
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        assert jobs and all(j.ok for j in jobs), jobs
        return cpu, wall, control.get_status("bench", vendor, "store-1")

    cpu, wall, status = pull()
    first_calls = dict(calls)
    pulled = int(status["last_records"])
    changed = int(status["last_changed"])
    pages = int(status["last_pages"])

    # The same data, re-read from the beginning: forget the checkpoints, keep the records.
    ddb = boto3.client("dynamodb")
    pk = layout.control_credential_pk("bench", vendor, "store-1")
    for item in ddb.query(
        TableName=resources.control_table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": pk}}
    )["Items"]:
        if item["sk"]["S"].startswith("CHECKPOINT#"):
            ddb.delete_item(TableName=resources.control_table, Key={"pk": item["pk"], "sk": item["sk"]})
    cpu2, wall2, status2 = pull()
    repull_calls = dict(calls)
    # The puller's high-water mark, taken before the yardstick below reads the archive back.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # The yardstick: CPU to json-decode the same page bytes.
    s3 = boto3.client("s3")
    decode_cpu = 0.0
    page_bytes = 0
    read = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=resources.archive_bucket):
        for obj in page.get("Contents", []):
            if read >= pages:
                break
            raw = s3.get_object(Bucket=resources.archive_bucket, Key=obj["Key"])["Body"].read()
            body = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            decode0 = time.process_time()
            json.loads(body)
            decode_cpu += time.process_time() - decode0
            page_bytes += len(body)
            read += 1
    ddb_writes = first_calls.get("dynamodb.BatchWriteItem", 0)
    ddb_reads = first_calls.get("dynamodb.BatchGetItem", 0)
    s3_puts = first_calls.get("s3.PutObject", 0)
    return {
        "requested": records,
        "pulled": pulled,
        "changed": changed,
        "pages": pages,
        "page_mb": page_bytes / 1e6,
        "seconds": wall,
        "records_per_second": pulled / wall if wall else 0.0,
        "cpu_seconds": cpu,
        "decode_cpu_seconds": decode_cpu,
        "cpu_vs_decode": cpu / decode_cpu if decode_cpu else float("nan"),
        "peak_rss_mb": peak_mb,
        "s3_puts": s3_puts,
        "s3_puts_per_1000": 1000 * s3_puts / pulled,
        "ddb_batch_writes": ddb_writes,
        "ddb_writes_per_1000_changed": 1000 * ddb_writes / max(1, changed),
        "ddb_requests_per_1000": 1000 * sum(v for k, v in first_calls.items() if k.startswith("dynamodb.")) / pulled,
        "ddb_batch_gets_per_1000": 1000 * ddb_reads / pulled,
        "repull_records": int(status2["last_records"]),
        "repull_changed": int(status2["last_changed"]),
        "repull_ddb_writes": repull_calls.get("dynamodb.BatchWriteItem", 0),
        "repull_seconds": wall2,
        "repull_cpu_seconds": cpu2,
        "calls": first_calls,
    }


def cost_per_million(r: dict[str, Any], memory_gb: float = 0.5) -> float:
    """Modelled AWS cost of pulling one million records, from the request counts measured."""
    per_record = 1 / r["pulled"]
    s3 = r["s3_puts"] * per_record * PRICE_S3_PUT
    ddb = r["changed"] * per_record * PRICE_DDB_WRITE_UNIT * 2  # items ~1-2 KB
    ddb += r["pulled"] * per_record * PRICE_DDB_READ_UNIT / 4 * 2  # BatchGet of a projection, strongly consistent
    lam = r["seconds"] * per_record * memory_gb * PRICE_LAMBDA_GB_SECOND_ARM
    return 1_000_000 * (s3 + ddb + lam)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="record counts to pull (comma-separated)")
    parser.add_argument("--vendor", default="posabit")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.vendor)))
        return

    from rich.console import Console
    from rich.table import Table

    from possync.admin.render import output_width

    console = Console(width=output_width())  # 120 columns into a file or a pipe
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        with console.status(f"pulling {size:,} {args.vendor} records through the handler..."):
            out = subprocess.run(
                [sys.executable, "-m", "bench.pull", "--child", str(size), "--vendor", args.vendor],
                check=False,
                capture_output=True,
                text=True,
            )
        if out.returncode != 0:
            tail = "\n".join(out.stderr.strip().splitlines()[-15:])
            console.print(f"[red]the {size:,}-record run failed (exit {out.returncode}):[/]\n{tail}")
            continue
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        console.print(
            f"{size:,} records: {results[-1]['records_per_second']:,.0f} records/s, "
            f"peak RSS {results[-1]['peak_rss_mb']:.0f} MB"
        )
    if not results:
        raise SystemExit(1)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    table = Table(title=f"pull benchmark ({args.vendor}, one credential, moto server + simulator on loopback)")
    rows = [
        ("records pulled", lambda r: f"{r['pulled']:,}"),
        ("pages (MB of JSON)", lambda r: f"{r['pages']:,} ({r['page_mb']:.1f} MB)"),
        ("wall seconds", lambda r: f"{r['seconds']:.1f}"),
        ("records / second", lambda r: f"{r['records_per_second']:,.0f}"),
        (
            "CPU / json-decode CPU",
            lambda r: f"{r['cpu_vs_decode']:.1f}x ({r['cpu_seconds']:.1f}s vs {r['decode_cpu_seconds']:.2f}s)",
        ),
        ("peak RSS (MB)", lambda r: f"{r['peak_rss_mb']:.0f}"),
        ("S3 PUTs / 1,000 records", lambda r: f"{r['s3_puts_per_1000']:.2f} ({r['s3_puts']} for {r['pages']} pages)"),
        ("DynamoDB BatchWrite / 1,000 changed", lambda r: f"{r['ddb_writes_per_1000_changed']:.1f} (ideal 40.0)"),
        ("DynamoDB requests / 1,000 records", lambda r: f"{r['ddb_requests_per_1000']:.1f}"),
        ("re-pull of unchanged data: records read", lambda r: f"{r['repull_records']:,}"),
        ("re-pull: records written", lambda r: f"{r['repull_changed']} ({r['repull_ddb_writes']} BatchWrite)"),
        ("modelled AWS cost / 1M records", lambda r: f"${cost_per_million(r):.2f}"),
    ]
    table.add_column("figure")
    for r in results:
        table.add_column(f"{r['requested']:,}", justify="right")
    for label, fmt in rows:
        table.add_row(label, *(fmt(r) for r in results))
    console.print(table)


if __name__ == "__main__":
    main()
