"""SMS double opt-in domain: numbers, quiet hours, the send cap, templates, reply keywords, consent and its store."""
