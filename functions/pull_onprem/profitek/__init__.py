"""Profitek: contract (ASSUMED, see CONTRACT.md), client and pure mapping."""
