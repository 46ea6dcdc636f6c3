"""`make bench`: persona -> POS sync, DynamoDB and POS requests per synced persona; prints figures.

Form personas (as the signup endpoint stores them) are handed to the pos_sync service in the consumer's batches
(functions.core.streams.PERSONA_CONSUMERS), in Lambda's event shape, with the real adapters: sync records in the
personas table, the credential registry in the control table, settings in SSM and credentials in Secrets Manager
(moto, in-process), and the real POSaBIT and Flourish clients against their simulators over HTTP. Every DynamoDB
request is counted with a botocore `before-call` hook; every POS request by the simulators' request logs.

Three runs: personas no POS knows (created), personas the POS already holds (found and linked, nothing created),
and the first run's events delivered again (a replay: nothing sent to any POS). `--json` prints one object. Time
is not reported as a figure: moto in-process takes most of it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

REGION = "us-east-1"
TENANT = "bench"


def _env() -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
        POWERTOOLS_SERVICE_NAME="possync-bench",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)


class _Counts:
    def __init__(self) -> None:
        self.total: Counter[str] = Counter()

    def counts(self, values: Mapping[str, int]) -> None:
        self.total.update({k: v for k, v in values.items() if v})


def run(personas: int) -> dict[str, Any]:
    _env()
    import boto3
    from moto import mock_aws

    from functions.core import aws, layout
    from functions.core.credentials import credential_json, parse_credential
    from functions.core.layout import FORM_SOURCE, Vendor
    from functions.core.loyalty.codecs import persona_item
    from functions.core.loyalty.values import Persona, iso
    from functions.core.pos_sync.records import SyncStore
    from functions.core.pos_sync.service import PosSyncService, persona_changes
    from functions.core.settings import IntegrationSettings
    from functions.core.sources import CredentialSource, SettingsSource, clear_caches
    from functions.core.store import ControlStore, RegisteredCredential
    from functions.core.streams import PERSONA_CONSUMERS, POS_SYNC_FUNCTION, BatchFailures
    from functions.pos_sync.writers import open_writer
    from possync.local.provision import provision
    from simulators.flourish import FlourishSimulator
    from simulators.posabit import PosabitSimulator

    batch_size = PERSONA_CONSUMERS[POS_SYNC_FUNCTION].batch_size
    with (
        mock_aws(),
        PosabitSimulator(store_count=1, customers_per_store=5) as posabit,
        FlourishSimulator(store_count=1, customers_per_store=5) as flourish,
    ):
        boto3.DEFAULT_SESSION = aws.session()
        aws.reset_clients()
        clear_caches()
        sims = {Vendor.POSABIT: posabit, Vendor.FLOURISH: flourish}
        for vendor, sim in sims.items():
            os.environ[layout.base_url_env(vendor)] = sim.url  # type: ignore[attr-defined]
        resources = provision(lambda service: boto3.client(service, region_name=REGION))
        names = resources.names
        ddb = aws.client("dynamodb")
        ddb_calls: Counter[str] = Counter()
        ddb.meta.events.register("before-call.dynamodb.*", lambda model, **_: ddb_calls.update([model.name]))
        control = ControlStore(ddb, resources.control_table)
        ssm, secrets = boto3.client("ssm", region_name=REGION), boto3.client("secretsmanager", region_name=REGION)
        today = datetime.now(UTC).date() - timedelta(days=1)
        for vendor, sim in sims.items():
            raw = sim.credential_for(sim.stores[0])  # type: ignore[attr-defined]
            credential = parse_credential(raw, vendor, "c1")
            name = names.credential_secret(TENANT, vendor, "c1")
            secrets.create_secret(Name=name, SecretString=credential_json(credential))
            control.register_credential(
                RegisteredCredential(TENANT, vendor, "c1", True, name, market=raw.get("market"))
            )
            settings = IntegrationSettings(vendor=vendor, sync_personas=True, sync_personas_enabled_on=today)
            ssm.put_parameter(
                Name=names.integration_settings_parameter(TENANT, vendor),
                Value=settings.model_dump_json(),
                Type="String",
            )
        service = PosSyncService(
            store=SyncStore(ddb, resources.personas_table),
            settings=SettingsSource(names),
            registry=control,
            credentials=CredentialSource(names),
            open_writer=open_writer,
            notifier=_Counts(),
        )

        def signups(prefix: str, count: int) -> list[dict[str, Any]]:
            records = []
            for n in range(count):
                at = iso(datetime.now(UTC))
                persona = Persona(
                    TENANT, f"{prefix}{n}", first_name="Bench", last_name=f"Person{n}",
                    phone=f"+1458555{n:04d}", email=f"bench.{prefix}{n}@example.com", birth_date="1990-01-01",
                    sources=frozenset({FORM_SOURCE}), created_at=at, updated_at=at,
                )  # fmt: skip
                item = persona_item(persona)
                boto3.client("dynamodb", region_name=REGION).put_item(TableName=resources.personas_table, Item=item)
                keys = {"pk": item["pk"], "sk": item["sk"]}
                records.append(
                    {"eventName": "INSERT", "dynamodb": {"Keys": keys, "NewImage": item, "SequenceNumber": str(n)}}
                )
            return records

        def deliver(label: str, records: list[dict[str, Any]]) -> dict[str, Any]:
            ddb_calls.clear()
            for sim in sims.values():
                sim.request_log.clear()  # type: ignore[attr-defined]
            outcomes: Counter[str] = Counter()
            failed = 0
            started = time.perf_counter()
            for start in range(0, len(records), batch_size):
                failures = BatchFailures()
                changes = persona_changes({"Records": records[start : start + batch_size]}, failures)
                outcomes.update(service.batch(changes, failures))
                failed += len(failures)
            seconds = time.perf_counter() - started
            synced = outcomes["created"] + outcomes["matched"]
            pos = {v.value: len(s.request_log) for v, s in sims.items()}  # type: ignore[attr-defined]
            writes = {v.value: len(s.writes) for v, s in sims.items()}  # type: ignore[attr-defined]
            per = max(1, synced)
            return {
                "run": label,
                "personas": len(records),
                "outcomes": dict(outcomes),
                "failed": failed,
                "ddb_requests": sum(ddb_calls.values()),
                "ddb_requests_by_operation": dict(ddb_calls),
                "ddb_requests_per_synced_persona": round(sum(ddb_calls.values()) / per, 2) if synced else None,
                "ddb_requests_per_persona": round(sum(ddb_calls.values()) / len(records), 2),
                "pos_requests": pos,
                "pos_writes": writes,
                "pos_requests_per_synced_persona": round(sum(pos.values()) / per, 2) if synced else None,
                # moto in-process answers a request in ~80 ms on a loaded machine: this measures moto, not pos_sync
                "seconds": round(seconds, 1),
            }

        fresh = signups("n", personas)
        created = deliver("new signups (created in POSaBIT and Flourish)", fresh)
        known = [dict(r) for r in fresh]
        for record in known:  # other personas with the same phones and emails: the POS holds them now
            image = dict(record["dynamodb"]["NewImage"])
            image["pk"] = {"S": image["pk"]["S"] + "-again"}
            image["persona_id"] = {"S": image["persona_id"]["S"] + "-again"}
            record["dynamodb"] = {
                **record["dynamodb"],
                "NewImage": image,
                "Keys": {"pk": image["pk"], "sk": image["sk"]},
            }
        matched = deliver("signups the POS already holds (found, linked)", known)
        replay = deliver("the first run's events again (replay)", fresh)
        return {"personas": personas, "batch_size": batch_size, "runs": [created, matched, replay]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--personas", type=int, default=50, help="form personas per run (default 50)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run(args.personas)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"persona -> POS sync: {args.personas} form personas, each synced to one POSaBIT and one Flourish credential")
    header = ("run", "outcomes", "DynamoDB req / persona", "DynamoDB req / sync", "POS req / sync", "POS writes")
    print(" | ".join(header))
    for r in result["runs"]:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
        writes = sum(r["pos_writes"].values())
        print(
            f"{r['run']} | {outcomes} | {r['ddb_requests_per_persona']} | {r['ddb_requests_per_synced_persona']} | "
            f"{r['pos_requests_per_synced_persona']} | {writes}"
        )
        print(f"    DynamoDB by operation: {r['ddb_requests_by_operation']}")


if __name__ == "__main__":
    main()
