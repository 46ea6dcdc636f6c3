"""SMS double opt-in (DESIGN.md section 6): the stream consumer, the deferral queue handler, the reply handler."""
