"""`make bench`: the form signup endpoint's handler under the local runtime; prints figures.

A LocalRuntime (moto server on loopback, the same tables the CDK app declares) with its signup endpoint: signups are
posted over HTTP to 127.0.0.1, built into API Gateway v2 events and handed to `functions.signups.handler`, one at a
time as one warm Lambda takes them. Half the new signups give marketing consent (the opt-in intent and its deferral
message are written); every signup is then posted again (a double click: the duplicate path). Figures: handler time
(mean, p50, p99) per path, requests per second one Lambda sustains (1 / mean handler time), and DynamoDB and SQS
requests per signup, counted with a botocore `before-call` hook on the handler's clients.

`--json` prints one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from functions.core import aws

DEFAULT_SIGNUPS = 500
QUICK_SIGNUPS = 50


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def signup(index: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "first_name": f"Bench{index}",
        "last_name": "Shopper",
        "phone": f"+1206555{index % 10_000:04d}",
        "email": f"bench{index}@example.com",
        "birth_date": "1990-04-01",
        "store": "downtown",
        "age_confirmed": True,
    }
    if index % 2 == 0:
        body |= {"marketing_consent": True, "consent_text": "Yes, text me offers. Reply STOP to cancel."}
    return body


class RequestCounter:
    """AWS requests the handler makes, by service and operation (botocore before-call on the cached clients)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def attach(self) -> None:
        for service in ("dynamodb", "sqs", "ssm"):
            aws.client(service).meta.events.register(f"before-call.{service}", self._before)

    def _before(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}:{model.name}"] += 1


def run(count: int, workdir: Path) -> dict[str, Any]:
    from functions.signups import handler as signup_handler
    from possync.local.runtime import LocalRuntime, Scale, TenantPlan
    from possync.local.signup_server import start_signups

    plan = (TenantPlan("bench", {}),)
    with LocalRuntime(plan=plan, scale=Scale(1, 1), workdir=workdir, rules=False) as rt:
        signup_handler.service.cache_clear()  # a cold start against this runtime's endpoint
        server = start_signups(rt, created_by="bench")
        url, key = server.signups_url("bench"), rt.extra_state["signup_demo_key"]
        headers = {"content-type": "application/json", "x-api-key": key}
        counter = RequestCounter()
        try:
            with httpx.Client(timeout=30) as client:
                client.post(url, content=json.dumps(signup(10**6)), headers=headers).raise_for_status()  # warm up
                counter.attach()
                timings: dict[str, list[float]] = {"new": [], "duplicate": []}
                calls: dict[str, Counter[str]] = {"new": Counter(), "duplicate": Counter()}
                client_seconds: list[float] = []
                for path, expected in (("new", 201), ("duplicate", 200)):
                    for index in range(count):
                        before = Counter(counter.calls)
                        started = time.perf_counter()
                        response = client.post(url, content=json.dumps(signup(index)), headers=headers)
                        client_seconds.append(time.perf_counter() - started)
                        if response.status_code != expected:
                            raise SystemExit(f"signup {index} ({path}): HTTP {response.status_code} {response.text}")
                        timings[path].append(server.handler_seconds[-1])
                        calls[path] += counter.calls - before
        finally:
            server.stop()
    figures: dict[str, Any] = {"signups": count}
    for path, seconds in timings.items():
        mean = statistics.fmean(seconds)
        figures[path] = {
            "handler_ms_mean": round(mean * 1000, 2),
            "handler_ms_p50": round(percentile(seconds, 0.5) * 1000, 2),
            "handler_ms_p99": round(percentile(seconds, 0.99) * 1000, 2),
            "requests_per_second_per_lambda": round(1 / mean, 1),
            "aws_requests_per_signup": {op: round(n / count, 2) for op, n in sorted(calls[path].items())},
        }
    figures["http_ms_p99"] = round(percentile(client_seconds, 0.99) * 1000, 2)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signups", type=int, default=DEFAULT_SIGNUPS, help="new signups (each then posted again)")
    parser.add_argument("--quick", action="store_true", help=f"a short smoke run of {QUICK_SIGNUPS} signups")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--workdir", type=Path, default=Path(".local/bench-signups"))
    args = parser.parse_args(argv)
    figures = run(QUICK_SIGNUPS if args.quick else args.signups, args.workdir)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"signup endpoint handler, {figures['signups']} signups (moto server on loopback, one request at a time)")
    for path in ("new", "duplicate"):
        f = figures[path]
        print(
            f"  {path:9}  {f['requests_per_second_per_lambda']:7.1f} req/s per Lambda   handler mean "
            f"{f['handler_ms_mean']:.1f} ms  p50 {f['handler_ms_p50']:.1f} ms  p99 {f['handler_ms_p99']:.1f} ms"
        )
        print(
            "             AWS requests per signup: "
            + ", ".join(f"{k} {v}" for k, v in f["aws_requests_per_signup"].items())
        )
    print(f"  HTTP round trip p99 (client side, both paths): {figures['http_ms_p99']:.1f} ms")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
