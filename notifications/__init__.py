"""Messages to beneficiaries (email, SMS, app notifications by web push), through an outbox.

A service that wants a beneficiary told something calls `notify()` inside its own transaction:
it renders the message in the beneficiary's language and writes one outbox row per channel, each
with a unique dedupe key, so a replay writes nothing new. Once the transaction commits, the rows
are handed to the workers in batches: one `send_notifications` task for an event's channels, or
for each 50 messages of a loop that opened a `core.after_commit.together()` block (the payments'
drain, a campaign's grants, the expiry reminders, non-use), which sends them on one email
connection and one SMS client; the row's lock and status make a second run send nothing. The
row stays as the record of what was said, to whom and when, for the funder's staff to see; a
message the person turned off (preferences) or that nothing could carry is a skipped row saying
why.

A payment and a capture write only a notice row in their own transaction; beat's drain, every
second, writes their messages (services.decision_notices_drain, capture_notices_drain). The
expiry reminder runs hourly (tasks.send_expiry_reminders). Beneficiaries without a smartphone
ask their balance by SMS (inbound, views)."""
