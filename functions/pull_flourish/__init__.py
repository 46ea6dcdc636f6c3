"""Flourish external API v1: contract (partly ASSUMED, see CONTRACT.md), paging, pure mapping and connector."""
