"""The CloudWatch metric names possync emits: one list, read by the functions, the alarms and the dashboard.

Every metric here is emitted once without dimensions (so one alarm covers every tenant and store), and the pull
metrics again with `vendor` and `credential` dimensions for the dashboard and for finding the store at fault.
"""

from __future__ import annotations

# --- pulls (functions.core.pull_runtime) ------------------------------------------------------------------
PULL_DURATION = "PullDuration"
PULLS_FAILED = "PullsFailed"
PULLS_VENDOR_UNAVAILABLE = "PullsVendorUnavailable"
STORES_OFFLINE = "StoresOffline"
PAGES_PULLED = "PagesPulled"
RECORDS_PULLED = "RecordsPulled"
RECORDS_CHANGED = "RecordsChanged"
RECORDS_QUARANTINED = "RecordsQuarantined"
# Most records of a pull quarantined for one reason: the POS's payload no longer matches our contract.
PULL_CONTRACT_MISMATCH = "PullContractMismatch"
SECONDS_SINCE_LAST_SUCCESSFUL_PULL = "SecondsSinceLastSuccessfulPull"
# Credentials with no successful pull for twice their interval (a gauge, emitted by each dispatch).
CREDENTIALS_STALE = "CredentialsStale"
# A pull's lease could not be released: the next ticks skip that credential until the lease expires.
LEASE_RELEASE_FAILED = "LeaseReleaseFailed"
# SQS pull jobs that can never succeed (not JSON, unknown vendor, invalid ids): sent to the DLQ, never retried.
PULL_JOBS_REJECTED = "PullJobsRejected"
# An AWS service (DynamoDB, S3, SSM, SQS, Secrets Manager) throttled or failed one of our calls past its retries.
AWS_CALLS_FAILED = "AwsCallsFailed"
# DynamoDB and S3 requests the lean paths (functions.core.ddb_lean, s3_lean) sent again through botocore's call: a
# throttle or a 5xx now and then; steadily above zero after a deploy, the lean path does not work there (every request
# then costs two). On the dashboard, not alarmed: nothing is lost, botocore's call answers.
LEAN_REQUESTS_RESENT = "LeanRequestsResent"

# --- rules (the records stream's consumers) ---------------------------------------------------------------
SETTINGS_INVALID = "SettingsInvalid"
# Settings that could not be read (SSM throttled or down): the record is retried, nothing is dropped.
SETTINGS_UNREADABLE = "SettingsUnreadable"
# Records parked because their settings are invalid: applied once valid settings return (a gauge of the backlog).
RECORDS_WAITING = "RecordsWaiting"
UNMAPPED_STORES = "UnmappedStores"
# What the rules did with the records of a batch (for the dashboard).
PERSONAS_CREATED = "PersonasCreated"
PERSONAS_UPDATED = "PersonasUpdated"
PERSONA_SOURCES_MOVED = "PersonaSourcesMoved"
SALES_APPLIED = "SalesApplied"
MEMBERS_ENROLLED = "MembersEnrolled"
RECORDS_PENDING = "RecordsPending"  # sales or balances parked until their shopper has a persona
POINTS_IMPORTED = "PointsImported"
# Rewards redeemed on sales (a mirrored POS discount), and those that took a balance below zero: kept, flagged,
# listed by `possync rewards check`; alarmed.
REWARDS_REDEEMED = "RewardsRedeemed"
REDEMPTIONS_OVERDRAWN = "RedemptionsOverdrawn"
# A reward with no working mirror at a store (one notice per store and reward, like an unmapped store).
REWARDS_UNMIRRORED = "RewardsUnmirrored"

# --- re-evaluation of stored records after a settings or store-mapping change (functions.core.reevaluation) ----
# A re-evaluation job that gave up (its retries used up, invalid settings, a record that cannot be applied): alarmed.
REEVALUATIONS_FAILED = "ReevaluationsFailed"
# Jobs finished, and the stored records they applied again (for the dashboard).
REEVALUATIONS_DONE = "ReevaluationsDone"
RECORDS_REEVALUATED = "RecordsReevaluated"

# --- SMS double opt-in (functions.core.sms) --------------------------------------------------------------------
# The provider refused a text (bad number, carrier opt-out, identity not allowed): alarmed.
SMS_SENDS_FAILED = "SmsSendsFailed"
# A send that may or may not have gone out (timeout or crash after the provider call began): never repeated; alarmed.
SMS_SENDS_UNCERTAIN = "SmsSendsUncertain"
# What the opt-in consumer and the reply handler did (for the dashboard).
SMS_REQUESTS_SENT = "SmsRequestsSent"
SMS_REQUESTS_DEFERRED = "SmsRequestsDeferred"
SMS_CONFIRMED = "SmsConfirmed"
SMS_OPTED_OUT = "SmsOptedOut"
# Inbound messages that were not End User Messaging's documented JSON: logged and dropped.
SMS_REPLIES_MALFORMED = "SmsRepliesMalformed"

# --- form signups (functions.core.signups) -----------------------------------------------------------------------
# Signups not stored because DynamoDB, SSM or SQS failed (the client got 503 and retries): alarmed.
SIGNUPS_FAILED = "SignupsFailed"
# What the endpoint answered (for the dashboard): new signups, repeats of one, refused bodies, refused keys.
SIGNUPS_ACCEPTED = "SignupsAccepted"
SIGNUPS_DUPLICATE = "SignupsDuplicate"
SIGNUPS_REJECTED = "SignupsRejected"
SIGNUPS_UNAUTHORIZED = "SignupsUnauthorized"
# --- persona -> POS sync (functions.core.pos_sync) ---------------------------------------------------------------
# A POS refused a customer create (validation error) or the credential: recorded on the persona, alarmed.
POS_SYNC_FAILED = "PosSyncFailed"
# A create whose answer was lost (timeout, 5xx) and which a search did not find: never repeated; alarmed.
POS_SYNC_UNCERTAIN = "PosSyncUncertain"
# What persona sync did (for the dashboard): customers created, found and linked, and syncs retried later.
POS_SYNC_CREATED = "PosSyncCreated"
POS_SYNC_MATCHED = "PosSyncMatched"
POS_SYNC_RETRIED = "PosSyncRetried"
