"""Settings every possync Lambda shares, fixed here so no function can drift from the others."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from functions.core import layout

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
LOGGING_FORMAT = lambda_.LoggingFormat.JSON
APPLICATION_LOG_LEVEL = lambda_.ApplicationLogLevel.INFO
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS

PULL_MEMORY_MB = 512
# The pull engine stops fetching when its remaining time falls below a safety budget and enqueues a
# continuation, so the full Lambda maximum is headroom, not the expected run time.
PULL_TIMEOUT = Duration.minutes(15)
# AWS recommends a visibility timeout of at least six times the function timeout for SQS event sources,
# so a message is not handed out again while the poller is still retrying a throttled invoke.
PULL_QUEUE_VISIBILITY_TIMEOUT = Duration.minutes(PULL_TIMEOUT.to_minutes() * 6)
PULL_MAX_RECEIVES = 3
# A job not started within this long is stale: the next dispatch enqueues a fresh one.
PULL_QUEUE_RETENTION = Duration.days(4)
DLQ_RETENTION = Duration.days(14)

# How many credentials of one pull function run at once (SQS event source MaximumConcurrency, 2-1000).
# Hosted APIs are shared by all our tenants, so they get little parallelism; on-premises pulls each call
# a different store PC, so they can run wider.
PULL_MAX_CONCURRENCY: dict[str, int] = {
    "pull_thsuite": 2,
    "pull_posabit": 3,
    "pull_flourish": 3,
    "pull_onprem": 5,
}

# The pull function that calls on-premises store servers (custom IP:PORT): the one that may run in a VPC.
ONPREM_PULL_FUNCTION = layout.PULL_FUNCTION[layout.Vendor.PROFITEK]

# What the schedule sends a pull function (defined once, beside the runtime that reads it).
DISPATCH_EVENT = layout.DISPATCH_EVENT
SCHEDULE_RETRY_ATTEMPTS = 3
SCHEDULE_MAX_EVENT_AGE = Duration.hours(1)
