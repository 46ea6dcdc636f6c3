"""The SMS opt-in on the local runtime: deferred requests delivered, simulated shoppers answering the outbox."""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.core.sms import names as sms_names
from functions.core.sms.gateway import read_outbox
from functions.core.sms.store import CONSENT_PREFIX, EVIDENCE_PREFIX, NUMBER_PREFIX
from possync.local.lambda_shim import HandlerRunner, sqs_event
from possync.local.provision import Resources

# What a simulated shopper does with an opt-in request, picked by its number so a run is repeatable.
BEHAVIOURS: tuple[str | None, ...] = ("YES", "STOP", "HELP", None, "YES")
LOCAL_DESTINATION = "+18885550100"  # the local two-way number the shoppers answer


def handler_module(function: str) -> str:
    return f"functions.optin.{sms_names.HANDLER_MODULES[function]}"


def cold_start_sms() -> None:
    """Forget the deferral and reply handlers' warm services (clients bound to an old endpoint)."""
    for function in (sms_names.DEFERRED_FUNCTION, sms_names.REPLY_FUNCTION):
        module = sys.modules.get(handler_module(function))
        service = getattr(module, "service", None) if module is not None else None
        if callable(getattr(service, "cache_clear", None)):
            service.cache_clear()  # type: ignore[union-attr]


def behaviour(number: str) -> str | None:
    """The reply a simulated shopper sends (None: never answers)."""
    digest = hashlib.sha256(number.encode()).digest()
    return BEHAVIOURS[digest[0] % len(BEHAVIOURS)]


def inbound_event(number: str, text: str, inbound_id: str) -> dict[str, Any]:
    """An SNS -> Lambda event carrying End User Messaging two-way SMS's documented JSON."""
    message = {
        "originationNumber": number,
        "destinationNumber": LOCAL_DESTINATION,
        "messageKeyword": "KEYWORD_LOCAL",
        "messageBody": text,
        "inboundMessageId": inbound_id,
        "previousPublishedMessageId": None,
    }
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "Sns": {"Type": "Notification", "MessageId": inbound_id, "Message": json.dumps(message)},
            }
        ]
    }


@dataclass
class SmsReport:
    """What the opt-in did on the local runtime (from the outbox and the consent items)."""

    texts: Counter[str] = field(default_factory=Counter)  # kind -> texts in the outbox
    states: Counter[str] = field(default_factory=Counter)  # consent state -> numbers (all tenants)
    deferred: int = 0  # requests deferred for quiet hours or the cap, ever
    replies: Counter[str] = field(default_factory=Counter)  # what the simulated shoppers answered


class LocalSms:
    """Runs the deferral and reply handlers as their event sources would, and plays the shoppers."""

    def __init__(self, clients: Callable[[str], Any], resources: Resources, runner: HandlerRunner) -> None:
        self.clients = clients
        self.resources = resources
        self.runner = runner
        self.outbox = Path(resources.sms_outbox)
        self._answered = 0  # outbox lines already read by the simulated shoppers
        self.replies: Counter[str] = Counter()

    def reset_outbox(self) -> None:
        self.outbox.parent.mkdir(parents=True, exist_ok=True)
        self.outbox.write_text("", encoding="utf-8")

    def deliver_deferred(self) -> int:
        """Deferred requests whose delay has passed, through the real handler (batches of 10, as mapped)."""
        sqs = self.clients("sqs")
        url = self.resources.sms_deferral_queue_url
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        env = self.resources.lambda_env(sms_names.DEFERRED_FUNCTION)
        handled = 0
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                return handled
            response = self.runner.invoke(
                sms_names.DEFERRED_FUNCTION,
                sqs_event(messages, arn),
                env,
                60.0,
                module_name=handler_module(sms_names.DEFERRED_FUNCTION),
            )
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            handled += len(messages)

    def reply(self, number: str, text: str, inbound_id: str) -> Any:
        return self.runner.invoke(
            sms_names.REPLY_FUNCTION,
            inbound_event(number, text, inbound_id),
            self.resources.lambda_env(sms_names.REPLY_FUNCTION),
            60.0,
            module_name=handler_module(sms_names.REPLY_FUNCTION),
        )

    def simulate_replies(self) -> Counter[str]:
        """Each opt-in request not yet seen gets its shopper's answer: YES, STOP, HELP, or nothing."""
        lines = read_outbox(self.outbox)
        new, self._answered = lines[self._answered :], len(lines)
        answered: Counter[str] = Counter()
        for index, line in enumerate(new):
            if line.get("kind") != "optin_request":
                continue
            text = behaviour(str(line["to"]))
            answered[text or "no reply"] += 1
            if text is not None:
                self.reply(str(line["to"]), text, f"local-reply-{self._answered}-{index}")
        self._answered = len(read_outbox(self.outbox))  # answers to the replies are not requests
        self.replies.update(answered)
        return answered

    def report(self) -> SmsReport:
        report = SmsReport(replies=Counter(self.replies))
        for line in read_outbox(self.outbox):
            report.texts[str(line.get("kind"))] += 1
        ddb = self.clients("dynamodb")
        kwargs: dict[str, Any] = {
            "TableName": self.resources.personas_table,
            "FilterExpression": "begins_with(pk, :number) AND (begins_with(sk, :consent) OR begins_with(sk, :ev))",
            "ExpressionAttributeValues": {
                ":number": {"S": NUMBER_PREFIX},
                ":consent": {"S": CONSENT_PREFIX},
                ":ev": {"S": EVIDENCE_PREFIX},
            },
        }
        while True:
            page = ddb.scan(**kwargs)
            for item in page.get("Items", []):
                if item["sk"]["S"].startswith(CONSENT_PREFIX):
                    report.states[item["state"]["S"]] += 1
                elif item.get("event", {}).get("S") == "deferred":
                    report.deferred += 1
            if "LastEvaluatedKey" not in page:
                return report
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
