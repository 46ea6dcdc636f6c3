"""A tiny harness: one vendor simulator, its credentials registered under moto, pulls run through the handler."""

from __future__ import annotations

import importlib
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import boto3

from functions.core import layout
from functions.core.credentials import credential_json, parse_credential
from functions.core.layout import PULL_FUNCTION, STREAM_KIND, Stream, Vendor
from functions.core.record_index import is_page_index
from functions.core.record_items import record_fields
from functions.core.store import ControlStore, RegisteredCredential
from possync.local.lambda_shim import HandlerRunner
from possync.local.provision import Resources
from possync.local.runtime import SIMULATORS, JobRecord, run_tick

ALL_VENDORS = tuple(Vendor)


def simulator_class(vendor: Vendor) -> Any:
    module, name = SIMULATORS[vendor]
    return getattr(importlib.import_module(module), name)


@dataclass
class PullWorld:
    vendor: Vendor
    simulator: Any
    resources: Resources
    tenant: str = "t1"
    runner: HandlerRunner = field(default_factory=HandlerRunner)
    credentials: dict[str, str] = field(default_factory=dict)  # store -> credential id

    @property
    def function(self) -> str:
        return PULL_FUNCTION[self.vendor]

    @property
    def control(self) -> ControlStore:
        return ControlStore(boto3.client("dynamodb"), self.resources.control_table)

    def register(self, store: str, credential: dict[str, Any] | None = None, tenant: str | None = None) -> str:
        tenant = tenant or self.tenant
        credential_id = f"{self.vendor.value}-{store}".lower().replace("_", "-")
        raw = credential if credential is not None else self.simulator.credential_for(store)
        secret = self.resources.names.credential_secret(tenant, self.vendor, credential_id)
        try:
            value = credential_json(parse_credential(raw, self.vendor, credential_id))
        except Exception:  # noqa: BLE001 - a deliberately malformed credential is stored as given
            import json

            value = json.dumps(raw)
        boto3.client("secretsmanager").create_secret(Name=secret, SecretString=value)
        self.control.register_credential(
            RegisteredCredential(tenant, self.vendor, credential_id, True, secret, label=store)
        )
        self.credentials[store] = credential_id
        return credential_id

    def tick(self, timeout_seconds: float = 900.0) -> list[JobRecord]:
        os.environ[layout.base_url_env(self.vendor)] = self.simulator.url
        return run_tick(
            lambda service: boto3.client(service, region_name="us-east-1"),
            self.resources,
            self.runner,
            [self.function],
            timeout_seconds=timeout_seconds,
            pull_now=True,  # every tick of these tests is a pull, whatever the credential's interval
        )

    def stored(self) -> dict[Stream, list[tuple[str, str]]]:
        """stream -> [(credential, pos_id)] as stored (a list, so duplicates would show)."""
        by_kind = {kind.value: stream for stream, kind in STREAM_KIND.items()}
        out: dict[Stream, list[tuple[str, str]]] = defaultdict(list)
        paginator = boto3.client("dynamodb").get_paginator("scan")
        for page in paginator.paginate(TableName=self.resources.records_table):
            for item in page["Items"]:
                if not is_page_index(item["pk"]["S"]) and item["vendor"]["S"] == self.vendor.value:
                    out[by_kind[item["kind"]["S"]]].append(
                        (record_fields(item)["credential_id"], record_fields(item)["pos_id"])
                    )
        return out

    def held(self, stream: Stream) -> set[tuple[str, str]]:
        return {
            (self.credentials[store], str(pos_id))
            for store, pos_id in self.simulator.all_ids(stream)
            if store in self.credentials
        }

    def quarantined(self) -> dict[Stream, set[tuple[str, str]]]:
        out: dict[Stream, set[tuple[str, str]]] = defaultdict(set)
        for credential_id in self.credentials.values():
            for entry in self.control.list_quarantine(self.tenant, self.vendor, credential_id):
                stream, pos_id = entry["sk"].split("#", 1)
                out[Stream(stream)].add((credential_id, pos_id))
        return out

    def status(self, store: str) -> dict[str, Any]:
        return self.control.get_status(self.tenant, self.vendor, self.credentials[store])
