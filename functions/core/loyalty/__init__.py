"""The loyalty domain every stream consumer shares: personas, claims, ledger, consent, parked records, stores.

Dependency direction (an import-graph test holds it): the pure modules (`values`, `identity`, `points`, `stores`)
import nothing that touches AWS; `codecs` turns values into DynamoDB items; `repository` is the only module here
that talks to DynamoDB; `settings` reads settings through a protocol; `shoppers`, `sales` and `parked` apply the
rules to whole stream batches through the repository; `service` composes them for the consumers
(`functions/personas`, `functions/enroll`), which import from `functions.core` only, never from each other.
"""
