"""AWS failing the way it does in production (throttled, down), on top of moto; and the metrics a test emitted."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError


@dataclass
class Faulty:
    """A real (moto) boto3 client whose `operation` fails with `code` after `after` good calls, `times` times
    (None: for good). Every other call goes to the real client."""

    client: Any
    operation: str
    code: str = "ThrottlingException"
    after: int = 0
    times: int | None = None
    calls: int = 0
    failures: int = 0
    operations: list[str] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.client, name)
        if name != self.operation:
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls > self.after and (self.times is None or self.failures < self.times):
                self.failures += 1
                raise ClientError(
                    {
                        "Error": {"Code": self.code, "Message": "Rate exceeded (a message AWS writes)"},
                        "ResponseMetadata": {"HTTPStatusCode": 400 if "Throttl" in self.code else 503},
                    },
                    "".join(part.title() for part in name.split("_")),
                )
            return real(*args, **kwargs)

        return call


@dataclass(frozen=True)
class Emitted:
    name: str
    dimensions: tuple[tuple[str, str], ...]
    value: float


def json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def metrics(text: str) -> list[Emitted]:
    """Every metric value in the EMF blobs printed to stdout, with the dimensions it was emitted under."""
    found = []
    for blob in json_lines(text):
        directive = blob.get("_aws", {}).get("CloudWatchMetrics")
        if not directive:
            continue
        for entry in directive:
            dimension_names = [name for group in entry["Dimensions"] for name in group]
            dims = tuple(sorted((name, str(blob[name])) for name in dimension_names))
            for metric in entry["Metrics"]:
                values = blob[metric["Name"]]
                for value in values if isinstance(values, list) else [values]:
                    found.append(Emitted(metric["Name"], dims, float(value)))
    return found


def named(found: Iterable[Emitted], name: str) -> list[Emitted]:
    return [m for m in found if m.name == name]


def logs(caplog: Any) -> list[dict[str, Any]]:
    """Log records (pytest's caplog) as dicts: the message and the structured keys passed with it."""
    return [{**vars(record), "message": record.getMessage()} for record in caplog.records]
