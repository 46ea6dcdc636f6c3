"""Personas stream consumer: shopper records -> identity resolution, contact sync, sources."""
