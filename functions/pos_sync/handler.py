"""Persona -> POS sync Lambda: form personas from the personas table's stream become POSaBIT / Flourish customers."""

from __future__ import annotations

import functools
from typing import Any

from functions.core.observability import logger
from functions.core.pos_sync.service import PosSyncService, persona_changes
from functions.core.streams import BatchFailures
from functions.pos_sync.writers import open_writer

FUNCTION = "pos_sync"


@functools.cache
def service() -> PosSyncService:
    return PosSyncService.from_env(open_writer)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = BatchFailures()
    changes = persona_changes(event, failures)
    outcomes = service().batch(changes, failures)
    logger.info(
        "persona sync batch processed",
        outcomes=dict(outcomes),
        failed=len(failures),
        failures=failures.reasons(),
    )
    return failures.response()
