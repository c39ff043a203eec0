"""Writes of the notifications outbox: queue a message, send it, and the messages of each event.

Sending holds the row's lock while the email or SMS backend works, so that two workers given
the same row send it once (PostgreSQL locks the row; SQLite, the embedded default, the whole
database, which the console backends keep short)."""

import logging
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.functional import lazy

from wallet.authorization.codes import format_money, format_until
from wallet.authorization.rules import PocketRules, merge_rules
from wallet.models import Beneficiary
from wallet.notifications.channels import deliver, sms_text
from wallet.notifications.models import ERROR_LENGTH, Notification

if TYPE_CHECKING:
    from funders.models import Allocation, Funder

logger = logging.getLogger(__name__)

Channel = Notification.Channel
Status = Notification.Status

# The wait before each new attempt after a failure; one more attempt than delays in all.
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# A row still due this long after its time lost its task (broker down at commit, worker gone):
# send_due_notifications queues it again.
REQUEUE_GRACE = timedelta(minutes=10)

_BLANK_LINES = re.compile(r"\n{3,}")


def _contacts(beneficiary: Beneficiary) -> list[tuple[str, str]]:
    contacts = []
    if beneficiary.email:
        contacts.append((Channel.EMAIL, beneficiary.email))
    if beneficiary.phone:
        contacts.append((Channel.SMS, beneficiary.phone.as_e164))
    return contacts


def _render(kind: str, channel: str, context: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) of one message, from notifications/<kind>/ in the active language."""
    folder = f"notifications/{kind}"
    if channel == Channel.SMS:
        return "", sms_text(render_to_string(f"{folder}/sms.txt", context))
    subject = " ".join(render_to_string(f"{folder}/email_subject.txt", context).split())
    body = render_to_string(f"{folder}/email_body.txt", context)
    lines = "\n".join(line.rstrip() for line in body.strip().splitlines())
    return subject, _BLANK_LINES.sub("\n\n", lines) + "\n"


def _queue(notification_id: int) -> None:
    # Imported here: the task module imports this one.
    from wallet.notifications.tasks import send_notification

    # robust: the event's transaction has committed; a broker that is down must not turn it
    # into an error. The row stays due and send_due_notifications queues it again.
    transaction.on_commit(lambda: send_notification.delay(notification_id), robust=True)


def notify(
    *,
    beneficiary: Beneficiary,
    kind: str,
    key: str,
    context: dict[str, Any],
    funder: "Funder | None" = None,
) -> list[Notification]:
    """Tell `beneficiary` about an event on every channel they can be reached on (email if they
    have an address, SMS if they have a mobile number), sent once the surrounding transaction
    commits. `key` names the event within `kind` (an allocation's id): the same event told
    again writes and sends nothing more, and returns the rows of the first time.

    The templates notifications/<kind>/{email_subject,email_body,sms}.txt are rendered with
    `context` and `beneficiary`, in the beneficiary's preferred language. Values whose wording
    depends on the language (amounts, dates, sentences) are given lazy
    (`django.utils.functional.lazy`), so that they are formatted in that language too.

    `funder` is the funder whose aid the message is about: only its staff see the message.
    Without one, every funder the beneficiary is enrolled with sees it.

    With no channel at all, one row records that the message was skipped and why."""
    contacts = _contacts(beneficiary)
    if not contacts:
        skipped, _ = Notification.objects.get_or_create(
            dedupe_key=f"{kind}:{key}:{Channel.EMAIL}",
            defaults={
                "beneficiary": beneficiary,
                "funder": funder,
                "kind": kind,
                "channel": Channel.EMAIL,
                "status": Status.SKIPPED,
                "skip_reason": Notification.SkipReason.NO_CONTACT,
            },
        )
        return [skipped]

    notifications = []
    for channel, recipient in contacts:
        dedupe_key = f"{kind}:{key}:{channel}"
        existing = Notification.objects.filter(dedupe_key=dedupe_key).first()
        if existing is not None:
            notifications.append(existing)
            continue
        with translation.override(beneficiary.preferred_language):
            subject, body = _render(kind, channel, {**context, "beneficiary": beneficiary})
        # get_or_create: of two calls racing past the lookup above, one inserts and the other
        # finds its row (the key is unique).
        notification, created = Notification.objects.get_or_create(
            dedupe_key=dedupe_key,
            defaults={
                "beneficiary": beneficiary,
                "funder": funder,
                "kind": kind,
                "channel": channel,
                "recipient": recipient,
                "subject": subject,
                "body": body,
                "next_attempt_at": timezone.now(),
            },
        )
        if created:
            _queue(notification.pk)
        notifications.append(notification)
    return notifications


def _error_text(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= ERROR_LENGTH else text[: ERROR_LENGTH - 1] + "…"


def notification_send(*, notification_id: int) -> Notification | None:
    """Make the next attempt of a notification that is still to be sent (queued, or failed with
    attempts left); do nothing for one sent, skipped or failed for good. After a failure the
    row is failed, with the error and, while attempts are left, when to try again. Returns the
    row (None if there is no such row)."""
    with transaction.atomic():
        notification = Notification.objects.select_for_update().filter(pk=notification_id).first()
        if notification is None or notification.next_attempt_at is None:
            return notification
        notification.attempts += 1
        now = timezone.now()
        try:
            deliver(
                channel=notification.channel,
                recipient=notification.recipient,
                subject=notification.subject,
                body=notification.body,
            )
        except Exception as exc:
            # Whatever the backend raised (a refused connection, a provider's error, a wrong
            # setting), the attempt is recorded and the retry schedule goes on.
            logger.warning(
                "notification %s: attempt %s of %s failed",
                notification.pk,
                notification.attempts,
                MAX_ATTEMPTS,
                exc_info=True,
            )
            notification.status = Status.FAILED
            notification.error = _error_text(exc)
            notification.next_attempt_at = (
                now + RETRY_DELAYS[notification.attempts - 1]
                if notification.attempts < MAX_ATTEMPTS
                else None
            )
        else:
            notification.status = Status.SENT
            notification.error = ""
            notification.sent_at = now
            notification.next_attempt_at = None
        notification.save(
            update_fields=["status", "error", "attempts", "sent_at", "next_attempt_at"]
        )
    return notification


def notification_due_ids(*, limit: int = 500) -> list[int]:
    """Notifications still to be sent whose time passed more than REQUEUE_GRACE ago: their task
    was lost."""
    return list(
        Notification.objects.filter(next_attempt_at__lte=timezone.now() - REQUEUE_GRACE)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


# The messages of each event


def allocation_notify(*, allocation: "Allocation") -> list[Notification]:
    """Tell the beneficiary they were granted `allocation`: how much, from whom, until when and,
    by email, where it can be spent. Call it in the transaction that creates the allocation."""
    program = allocation.program
    rules = PocketRules.from_dict(
        merge_rules(program.rules, allocation.rules),
        valid_from=allocation.valid_from,
        valid_until=allocation.valid_until,
    )
    return notify(
        beneficiary=allocation.beneficiary,
        kind=Notification.Kind.ALLOCATION_GRANTED,
        key=str(allocation.pk),
        funder=program.funder,
        context={
            "funder": program.funder.name,
            "program": program.name,
            "amount": lazy(format_money, str)(allocation.amount, allocation.currency),
            "valid_until": (
                lazy(format_until, str)(allocation.valid_until) if allocation.valid_until else ""
            ),
            "rules": lazy(rules.describe, list)(currency=allocation.currency),
        },
    )
