"""The log lines of handler code the CLI runs in-process go to a file, never between the command's own output."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _stream_handlers() -> list[Any]:
    from functions.core.observability import logger  # the Powertools logger every function and rule logs with

    return [h for h in logger.handlers if hasattr(h, "setStream")]


@contextlib.contextmanager
def handler_logs_to(path: Path) -> Iterator[None]:
    """Meanwhile, the shared Powertools logger writes its JSON lines to `path` (appended), as the local runtime
    sends the Lambdas' to lambda.log; the terminal gets only what the command itself prints."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handlers = _stream_handlers()
    with path.open("a", encoding="utf-8") as log:
        previous = [h.setStream(log) for h in handlers]
        try:
            yield
        finally:
            for handler, stream in zip(handlers, previous, strict=True):
                handler.setStream(stream)
