"""Messages to beneficiaries (email, SMS, app notifications by web push), through an outbox.

A service that wants a beneficiary told something calls `notify()` inside its own transaction:
it renders the message in the beneficiary's language and writes one outbox row per channel, each
with a unique dedupe key, so a replay writes nothing new. Once the transaction commits, a task
sends each row; the row's lock and status make a second run of the task send nothing. The row
stays as the record of what was said, to whom and when, for the funder's staff to see; a message
the person turned off (preferences) or that nothing could carry is a skipped row saying why.

Payments are told from a task queued when the payment commits, so that the payment's own
transaction stays short: services.decision_notify, capture_low_balance_notify. The expiry
reminder runs hourly (tasks.send_expiry_reminders). Beneficiaries without a smartphone ask their
balance by SMS (inbound, views)."""
