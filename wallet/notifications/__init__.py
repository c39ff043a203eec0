"""Messages to beneficiaries (email, SMS), through an outbox.

A service that wants a beneficiary told something calls `notify()` inside its own transaction:
it renders the message in the beneficiary's language and writes one outbox row per channel, each
with a unique dedupe key, so a replay writes nothing new. Once the transaction commits, a task
sends each row; the row's lock and status make a second run of the task send nothing. The row
stays as the record of what was said, to whom and when, for the funder's staff to see."""
