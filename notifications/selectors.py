"""Reads of the outbox that more than one page uses."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from notifications.channels import mask_email, mask_phone
from wallet.models import Beneficiary
from wallet.models.notifications import Notification, SmsOptOut

Channel = Notification.Channel
Delivery = Notification.Delivery

FAILING = frozenset({Delivery.BOUNCED, Delivery.COMPLAINED, Delivery.OPTED_OUT})


@dataclass(frozen=True)
class ContactFailing:
    """A contact of the person that messages do not reach: what the agents see on the person's
    file, to ask for another address or number."""

    channel: str
    recipient: str  # masked
    why: str  # a Notification.Delivery, or "failed" when every attempt failed
    since: datetime


def contact_failing(beneficiary: Beneficiary) -> list[ContactFailing]:
    """The person's current email address and mobile number that fail: the last message that
    left for it bounced, was reported as unwanted or refused by the person (STOP), or could not
    be sent at all after every attempt. A later message delivered clears it; a new address or
    number starts clean."""
    failing = []
    contacts = [(Channel.EMAIL, beneficiary.email, mask_email)]
    if beneficiary.phone:
        contacts.append((Channel.SMS, beneficiary.phone.as_e164, mask_phone))
    for channel, recipient, mask in contacts:
        if not recipient:
            continue
        if channel == Channel.SMS:
            opt_out = SmsOptOut.objects.filter(phone=recipient).first()
            if opt_out is not None:
                failing.append(
                    ContactFailing(channel, mask(recipient), Delivery.OPTED_OUT, opt_out.created_at)
                )
                continue
        last = (
            Notification.objects.filter(
                beneficiary=beneficiary, channel=channel, recipient=recipient
            )
            .filter(
                Q(status=Notification.Status.SENT)
                | Q(status=Notification.Status.FAILED, next_attempt_at__isnull=True)
            )
            .order_by("-created_at", "-pk")
            .first()
        )
        if last is None:
            continue
        if last.status == Notification.Status.FAILED:
            failing.append(ContactFailing(channel, mask(recipient), "failed", last.created_at))
        elif last.delivery in FAILING:
            failing.append(
                ContactFailing(channel, mask(recipient), last.delivery, last.delivery_reported_at)
            )
    return failing
