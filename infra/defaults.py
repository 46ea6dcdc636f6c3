"""Deployment defaults the CLI and the local runtime read too (plain Python: importing it needs no CDK or Node)."""

from __future__ import annotations

# The schedule's tick when the CDK context sets no dispatch_tick_minutes; `possync local serve` ticks as often.
DEFAULT_DISPATCH_TICK_MINUTES = 15
