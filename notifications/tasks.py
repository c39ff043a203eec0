"""Sending the outbox, and the events told after their own transaction. Thin: load the id,
call the service. Each is safe to run twice: the outbox's keys make the second run write and
send nothing.

The services queue these tasks, so they import this module at the top; each task imports its
service when it runs, which keeps the import between the two in one direction."""

from celery import shared_task
from django.utils import timezone

from wallet.models.notifications import Notification


# max_retries=None: the row's attempts bound the retries (MAX_ATTEMPTS), also across the
# requeues of send_due_notifications, which start a new task with Celery's own count at zero.
@shared_task(bind=True, ignore_result=True, max_retries=None)
def send_notification(self, notification_id: int) -> str | None:
    """Send a notification if it is still to be sent; after a failure, try again when the
    backoff schedule says, until its attempts are spent. Safe to run twice: a sent notification
    is not sent again. Returns its status."""
    from notifications import services

    notification = services.notification_send(notification_id=notification_id)
    if notification is None:
        return None
    if notification.status == Notification.Status.FAILED and notification.next_attempt_at:
        wait = (notification.next_attempt_at - timezone.now()).total_seconds()
        raise self.retry(countdown=max(0.0, wait))
    return notification.status


@shared_task(ignore_result=True)
def send_notifications(notification_ids: list[int]) -> int:
    """Send a batch of notifications on shared connections (services.notifications_send); each
    one that failed with attempts left is tried again on its own when its backoff says, as
    send_notification tries it. Returns how many of them are sent (by this run or before)."""
    from notifications import services

    now = timezone.now()
    sent = 0
    for notification in services.notifications_send(notification_ids=notification_ids):
        if notification.status == Notification.Status.SENT:
            sent += 1
        elif notification.status == Notification.Status.FAILED and notification.next_attempt_at:
            wait = (notification.next_attempt_at - now).total_seconds()
            send_notification.apply_async((notification.pk,), countdown=max(0.0, wait))
    return sent


@shared_task(ignore_result=True)
def send_due_notifications(batch_size: int = 500) -> int:
    """Queue again the notifications whose task was lost (a broker down when the event
    committed, a worker that died, a task failed while the database was away). A duplicate is
    harmless: a sent notification is not sent again. The payments' and captures' notices need
    no sweep: drain_notices takes every one of them."""
    from notifications import services

    ids = services.notification_due_ids(limit=batch_size)
    services.notifications_queue(notification_ids=ids)
    return len(ids)


# Every second (CELERY_BEAT_SCHEDULE's "drain-decision-notices"): a beneficiary is told of a
# payment, and of the low balance a capture left, within a second or two, and neither the
# payment nor the capture queues anything (services.py, decision_notice_put and
# capture_notices_put).
@shared_task(ignore_result=True)
def drain_notices() -> int:
    """Tell the payments and check the captures whose notice is waiting. Returns the notices
    told."""
    from notifications import services

    return services.notices_drain()


@shared_task(ignore_result=True)
def send_expiry_reminders() -> int:
    """Hourly: remind of the aid that ends in 7 days. Returns the pockets reminded of."""
    from notifications import services

    return services.expiry_reminders_notify()
