"""One place for the Powertools logger, metrics and tracer every function uses."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "possync")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "possync")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE, disabled=os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").lower() == "true")
