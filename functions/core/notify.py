"""Operator notifications from the rules: the "unmapped store" EventBridge event and CloudWatch metrics (EMF)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from functions.core import metrics as metric_names
from functions.core.errors import PossyncError
from functions.core.observability import NAMESPACE
from functions.core.unmapped import UnmappedStore

EVENT_SOURCE = "possync"
UNMAPPED_STORE_DETAIL_TYPE = "possync.unmapped-store"
UNMAPPED_STORES_METRIC = metric_names.UNMAPPED_STORES
SETTINGS_INVALID_METRIC = metric_names.SETTINGS_INVALID
DEFAULT_EVENT_BUS = "default"


class NotifyError(PossyncError):
    """EventBridge did not accept an event."""


class Notifier(Protocol):
    """What the rules tell operators: an unmapped store (event + metric), counts, and gauges (a level, such as how
    many records wait: emitted even when it is 0, so an alarm sees it clear)."""

    def unmapped_store(self, notice: UnmappedStore) -> None: ...

    def counts(self, values: Mapping[str, int]) -> None: ...

    def gauge(self, name: str, value: int) -> None: ...


def unmapped_store_event(notice: UnmappedStore, bus: str = DEFAULT_EVENT_BUS) -> dict[str, Any]:
    """The PutEvents entry; the detail names the store by ids only (no personal data)."""
    return {
        "Source": EVENT_SOURCE,
        "DetailType": UNMAPPED_STORE_DETAIL_TYPE,
        "Detail": json.dumps(
            {
                "tenant": notice.tenant,
                "vendor": notice.vendor.value,
                "credential_id": notice.credential_id,
                "location_id": notice.location_id,
                "first_seen_at": notice.first_seen_at,
                "record_kind": notice.record_kind,
                "fix": fix_command(notice),
            }
        ),
        "EventBusName": bus,
    }


def fix_command(notice: UnmappedStore) -> str:
    """The CLI command that maps the store (STORE_ID is the retail store the admin picks)."""
    target = f"--location {notice.location_id}" if notice.location_id else f"--credential {notice.credential_id}"
    return f"possync stores map --tenant {notice.tenant} --vendor {notice.vendor.value} {target} --store STORE_ID"


class AwsNotifier:
    """EventBridge PutEvents on the default bus; metrics as one EMF line per call (no dimensions, for alarms)."""

    def __init__(self, events: Any, bus: str = DEFAULT_EVENT_BUS, namespace: str = NAMESPACE) -> None:
        self.events = events
        self.bus = bus
        self.namespace = namespace

    def unmapped_store(self, notice: UnmappedStore) -> None:
        try:
            response = self.events.put_events(Entries=[unmapped_store_event(notice, self.bus)])
        except (ClientError, BotoCoreError) as exc:
            raise NotifyError(f"unmapped-store event not accepted: {type(exc).__name__}") from exc
        if response.get("FailedEntryCount"):
            raise NotifyError("unmapped-store event not accepted by EventBridge")
        self.counts({UNMAPPED_STORES_METRIC: 1})

    def counts(self, values: Mapping[str, int]) -> None:
        if not any(values.values()):
            return
        metrics = _without_dimensions(self.namespace)
        for name, value in values.items():
            if value:
                metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        metrics.flush_metrics()

    def gauge(self, name: str, value: int) -> None:
        metrics = _without_dimensions(self.namespace)
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        metrics.flush_metrics()


class PutMetricCounts:
    """Counts sent with CloudWatch PutMetricData (no dimensions, as AwsNotifier's): for the CLI and the local demo,
    whose stdout no log group reads for EMF."""

    def __init__(self, cloudwatch: Any, namespace: str = NAMESPACE) -> None:
        self.cloudwatch = cloudwatch
        self.namespace = namespace

    def counts(self, values: Mapping[str, int]) -> None:
        data = [{"MetricName": name, "Value": value, "Unit": "Count"} for name, value in values.items() if value]
        if data:
            self.cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=data)


def _without_dimensions(namespace: str) -> EphemeralMetrics:
    """The alarms watch these metrics without dimensions: service="" keeps Powertools from adding its `service`
    dimension (from POWERTOOLS_SERVICE_NAME, which every Lambda has), as functions.core.observability.alarm_metrics
    does."""
    return EphemeralMetrics(namespace=namespace, service="")
