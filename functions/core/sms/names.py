"""The SMS opt-in's AWS resource names and function ids (the CDK app and the local runtime both build them here)."""

from __future__ import annotations

from functions.core.layout import ResourceNames

# The stream consumer is layout.RULE_FUNCTIONS' "optin"; these two are fed by the deferral queue and the reply topic.
DEFERRED_FUNCTION = "optin_deferred"
REPLY_FUNCTION = "optin_reply"
# Handler modules (functions.optin.<module>.handler) of the three functions.
HANDLER_MODULES = {"optin": "handler", DEFERRED_FUNCTION: "deferred", REPLY_FUNCTION: "reply"}


def deferral_queue(names: ResourceNames) -> str:
    return f"{names.prefix}-optin-deferrals"


def deferral_dlq(names: ResourceNames) -> str:
    return f"{names.prefix}-optin-deferrals-dlq"


def reply_topic(names: ResourceNames) -> str:
    return f"{names.prefix}-sms-inbound"


def reply_dlq(names: ResourceNames) -> str:
    return f"{names.prefix}-optin-reply-failures"
