"""Invokes the real Lambda handlers the way AWS does: the same event shapes, a context with a deadline."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from possync.local.provision import LOCAL_ACCOUNT, LOCAL_REGION


@dataclass
class LambdaContext:
    """What handlers use of the Lambda context: names, request id and the remaining time."""

    function_name: str
    timeout_seconds: float = 900.0
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self.timeout_seconds - (time.monotonic() - self.started)) * 1000)


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """An SQS -> Lambda event for messages from ReceiveMessage (the shape the event source mapping delivers)."""
    now = str(int(time.time() * 1000))
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": m.get("Attributes", {}).get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": m.get("Attributes", {}).get("SentTimestamp", now),
                    "SenderId": LOCAL_ACCOUNT,
                    "ApproximateFirstReceiveTimestamp": now,
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(m["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": LOCAL_REGION,
            }
            for m in messages
        ]
    }


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class HandlerRunner:
    """Imports `functions.<name>.handler` and calls `handler(event, context)` with the function's environment.

    Lambda log lines and EMF metrics go to `log` rather than the terminal, as CloudWatch would keep them.
    """

    def __init__(self, log: TextIO | None = None) -> None:
        self.log = log or io.StringIO()
        # One invocation at a time: each swaps the process's environment and stdout (the local signup server
        # calls its handler from its own thread while the runtime ticks).
        self._lock = threading.RLock()

    def _logger_handlers(self) -> list[Any]:
        from functions.core.observability import logger

        return [h for h in logger.handlers if hasattr(h, "setStream")]

    def invoke(
        self,
        function: str,
        event: dict[str, Any],
        env: Mapping[str, str],
        timeout_seconds: float = 900.0,
        module_name: str | None = None,
    ) -> Any:
        """`module_name` names the handler's module when it is not functions/<function>/handler.py."""
        module = importlib.import_module(module_name or f"functions.{function}.handler")
        context = LambdaContext(function_name=f"possync-{function.replace('_', '-')}", timeout_seconds=timeout_seconds)
        with self._lock:
            handlers = self._logger_handlers()
            previous = [h.setStream(self.log) for h in handlers]  # the shared logger writes here only meanwhile
            try:
                with environment(env), contextlib.redirect_stdout(self.log):
                    response = module.handler(event, context)
            finally:
                for handler, stream in zip(handlers, previous, strict=True):
                    handler.setStream(stream)
        return json.loads(json.dumps(response, default=str))
