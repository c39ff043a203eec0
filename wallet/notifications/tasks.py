"""Sending the outbox. Thin: load the id, call the service."""

from celery import shared_task
from django.utils import timezone

from wallet.notifications.models import Notification
from wallet.notifications.services import notification_due_ids, notification_send


# max_retries=None: the row's attempts bound the retries (MAX_ATTEMPTS), also across the
# requeues of send_due_notifications, which start a new task with Celery's own count at zero.
@shared_task(bind=True, ignore_result=True, max_retries=None)
def send_notification(self, notification_id: int) -> str | None:
    """Send a notification if it is still to be sent; after a failure, try again when the
    backoff schedule says, until its attempts are spent. Safe to run twice: a sent notification
    is not sent again. Returns its status."""
    notification = notification_send(notification_id=notification_id)
    if notification is None:
        return None
    if notification.status == Notification.Status.FAILED and notification.next_attempt_at:
        wait = (notification.next_attempt_at - timezone.now()).total_seconds()
        raise self.retry(countdown=max(0.0, wait))
    return notification.status


@shared_task(ignore_result=True)
def send_due_notifications(batch_size: int = 500) -> int:
    """Queue again the notifications whose task was lost (a broker down when the event
    committed, a worker that died). A duplicate is harmless: send_notification sends once."""
    ids = notification_due_ids(limit=batch_size)
    for notification_id in ids:
        send_notification.delay(notification_id)
    return len(ids)
