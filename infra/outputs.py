"""The stack's output keys, for the CLI that reads them (plain Python: importing it needs no CDK).

The stack's name is the stage's (functions.core.layout.ResourceNames.stack_name).
"""

from __future__ import annotations

# The stage-qualified prefix of every name, SSM parameter and secret of the stack (ResourceNames.prefix).
RESOURCE_PREFIX_OUTPUT = "ResourcePrefix"

RECORDS_TABLE_OUTPUT = "RecordsTableName"
RECORDS_TABLE_STREAM_OUTPUT = "RecordsTableStreamArn"
CONTROL_TABLE_OUTPUT = "ControlTableName"
PERSONAS_TABLE_OUTPUT = "PersonasTableName"
ARCHIVE_BUCKET_OUTPUT = "ArchiveBucketName"
ALARM_TOPIC_OUTPUT = "AlarmTopicArn"
DASHBOARD_OUTPUT = "DashboardName"
# The private ranges on-premises pulls may call (comma-separated); absent when the deployment allows none.
PRIVATE_HOST_CIDRS_OUTPUT = "PrivateHostCidrs"
# The topic End User Messaging two-way SMS publishes inbound texts to (set it on the phone number's two-way channel).
SMS_INBOUND_TOPIC_OUTPUT = "SmsInboundTopicArn"
# The form signup endpoint: POST /tenants/{tenant}/signups (functions.core.signups).
SIGNUPS_URL_OUTPUT = "SignupsUrl"


def pascal_case(text: str) -> str:
    """pull_thsuite jobs -> PullThsuiteJobs: output keys and construct ids."""
    return "".join(part.capitalize() for part in text.replace("_", " ").split())


def function_name_output(function: str) -> str:
    """pull_thsuite -> PullThsuiteFunctionName."""
    return f"{pascal_case(function)}FunctionName"


def queue_url_output(function: str) -> str:
    return f"{pascal_case(function)}QueueUrl"


def dead_letter_queue_url_output(function: str) -> str:
    return f"{pascal_case(function)}DeadLetterQueueUrl"


def dispatch_dead_letter_queue_url_output(function: str) -> str:
    return f"{pascal_case(function)}DispatchDeadLetterQueueUrl"
