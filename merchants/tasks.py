"""Merchant-side tasks: webhook delivery, the expiry of uncaptured authorizations, settlement and
payouts. Thin: load, call the service.

The services queue these tasks, so they import this module at the top; each task imports its
service when it runs, which keeps the import between the two in one direction."""

from celery import shared_task
from django.utils import timezone

from merchants.models.settlement import Payout
from merchants.models.webhooks import WebhookDelivery


@shared_task(ignore_result=True)
def deliver_webhook(delivery_id: int) -> str | None:
    """Attempt a delivery if it is pending and due; after a failed attempt, queue the next one
    for when the backoff schedule says. Safe to run twice: a delivery that succeeded, or that
    another worker is attempting, is not sent again. Returns the delivery's status."""
    from merchants import webhooks

    delivery = WebhookDelivery.objects.filter(pk=delivery_id).first()
    if delivery is None:
        return None
    attempt = webhooks.webhook_delivery_attempt(delivery=delivery)
    if attempt is not None and delivery.status == WebhookDelivery.Status.PENDING:
        wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
        deliver_webhook.apply_async(args=[delivery.pk], countdown=max(0.0, wait))
    return delivery.status


@shared_task(ignore_result=True)
def retry_due_webhooks(batch_size: int = 500) -> int:
    """Queue again the pending deliveries whose attempt is overdue (a message the broker lost, a
    worker that died mid-attempt). A duplicate is harmless: deliver_webhook sends once."""
    from merchants import webhooks

    ids = webhooks.webhook_delivery_due_ids(limit=batch_size)
    for delivery_id in ids:
        deliver_webhook.delay(delivery_id)
    return len(ids)


@shared_task(ignore_result=True)
def expire_authorizations(batch_size: int = 200) -> int:
    """Release what merchants held but neither captured nor reversed within HOLD_TTL_DAYS, and
    announce each expired authorization to the merchant's webhooks."""
    from merchants import payments

    return sum(
        payments.authorization_expire(decision=decision)
        for decision in payments.authorization_expirable(limit=batch_size)
    )


@shared_task(ignore_result=True)
def close_settlement_batches() -> int:
    """Close each merchant's batch up to midnight, Paris time, then send the Stripe payouts
    (this run's and any a network failure left pending). Safe to run twice: a period is closed
    once, and a payout is sent once."""
    from merchants import settlement

    batches = settlement.settlement_close_due(until=settlement.settlement_until())
    for payout_id in settlement.stripe_payouts_pending():
        send_stripe_payout.delay(payout_id)
    return len(batches)


@shared_task(ignore_result=True)
def send_stripe_payout(payout_id: int) -> str | None:
    from merchants import settlement

    payout = Payout.objects.filter(pk=payout_id).first()
    if payout is None:
        return None
    return settlement.stripe_payout_send(payout=payout).status
