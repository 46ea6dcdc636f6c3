"""One place for the Powertools logger and metrics every function uses.

There is no tracer: Powertools' Tracer imports aws_xray_sdk at construction even when disabled, and X-Ray would
patch every boto3 and HTTP call of the pull's hot path. Durations and failures are metrics and log lines instead.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics

from functions.core.layout import ResourceNames

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "possync")
# Per deployment stage (the CDK app sets it from the same ResourceNames), so two stages' alarms never mix.
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or ResourceNames.from_env().metrics_namespace

logger = Logger(service=SERVICE)
# service="" keeps Powertools from adding its default `service` dimension (see alarm_metrics).
metrics = Metrics(namespace=NAMESPACE, service="")


def alarm_metrics() -> EphemeralMetrics:
    """Metrics the alarms watch: the stage's namespace and NO dimension at all, so one alarm covers every function,
    tenant and store.

    Powertools adds a `service` dimension from POWERTOOLS_SERVICE_NAME (which every Lambda has) unless it is told
    service=""; a metric emitted with it is a different metric from the one an alarm without dimensions watches.
    """
    return EphemeralMetrics(namespace=NAMESPACE, service="")
