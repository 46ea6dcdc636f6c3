"""Persona -> POS sync Lambda (personas table stream)."""
