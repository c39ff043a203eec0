"""What happens to a message after it left: the providers' delivery reports (Brevo's SMS
events, django-anymail's email tracking events), and SMS opt-outs (STOP).

A report finds its message by the provider's id the outbox kept when it was sent. A bounce, a
complaint ("this is spam") or an opt-out makes the person's contact failing
(notifications.selectors.contact_failing), which agents see on the outbox and the person's
file, so that they can ask for another address or number."""

import logging

from django.db import transaction
from django.utils import timezone

from wallet.models.notifications import Notification, SmsOptOut

logger = logging.getLogger(__name__)

Delivery = Notification.Delivery

# A later report never takes a failure back: "delivered" after "bounced" for one message is a
# provider's retry told out of order.
_RANK = {
    "": 0,
    Delivery.DEFERRED: 1,
    Delivery.DELIVERED: 2,
    Delivery.BOUNCED: 3,
    Delivery.COMPLAINED: 3,
    Delivery.OPTED_OUT: 3,
}


def delivery_report(*, channel: str, provider_message_id: str, delivery: str, detail: str) -> int:
    """Record what the provider says of the message it calls `provider_message_id`. Returns
    how many messages it was about (0 for an id we never sent: another system's, or a
    message whose outbox row was purged)."""
    if not provider_message_id:
        return 0
    with transaction.atomic():
        messages = Notification.objects.select_for_update().filter(
            channel=channel, provider_message_id=provider_message_id
        )
        count = 0
        for message in messages:
            count += 1
            if _RANK[delivery] < _RANK[message.delivery]:
                continue
            message.delivery = delivery
            message.delivery_detail = detail[:200]
            message.delivery_reported_at = timezone.now()
            message.save(update_fields=["delivery", "delivery_detail", "delivery_reported_at"])
    if count and delivery in (Delivery.BOUNCED, Delivery.COMPLAINED):
        logger.warning("%s message %s: %s", channel, provider_message_id, delivery)
    return count


def sms_opt_out(*, phone: str, source: str) -> SmsOptOut:
    """Record that `phone` (E.164) wants no more SMS: from now on it gets only those its owner
    asks for (notifications.services.SMS_ASKED_FOR)."""
    opt_out, created = SmsOptOut.objects.get_or_create(phone=phone, defaults={"source": source})
    if created:
        logger.info("SMS opt-out recorded (%s)", source)
    return opt_out


def sms_opt_in(*, phone: str) -> bool:
    """START: `phone` gets SMS again. Whether it had opted out."""
    removed, _ = SmsOptOut.objects.filter(phone=phone).delete()
    return bool(removed)


def sms_opted_out(phone: str) -> bool:
    return SmsOptOut.objects.filter(phone=phone).exists()
