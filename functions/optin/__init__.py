"""SMS double opt-in (DESIGN.md section 6): the stream consumer that sends one opt-in request per persona.

This package holds the opt-in consumer's rules and handler. It is not deployed yet: the CDK app's Rules
construct and functions.core.streams.CONSUMERS list only the consumers that exist (personas, enroll), and
personas show their SMS consent state as "unknown" until the opt-in consumer records replies.
"""
