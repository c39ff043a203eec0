"""What the domains announce, turned into messages to beneficiaries, and what the email
provider reports of them. Connected in NotificationsConfig.ready(): the domains never import
this floor."""

from notifications.delivery import delivery_report
from notifications.services import (
    allocation_notify,
    capture_notices_put,
    decision_notice_put,
    nonuse_notify,
)
from wallet.models.notifications import Notification


def on_allocation_granted(sender, *, allocation, **kwargs) -> None:
    allocation_notify(allocation=allocation)


def on_decision_recorded(sender, *, decision, writes=None, **kwargs) -> None:
    decision_notice_put(decision=decision, writes=writes)


def on_captures_posted(sender, *, captures, writes=None, **kwargs) -> None:
    capture_notices_put(captures=captures, writes=writes)


# django-anymail's tracking events, as the outbox records them; engagement (opened, clicked)
# is not tracked: the outbox records delivery, not what people read.
_EMAIL_DELIVERY = {
    "delivered": Notification.Delivery.DELIVERED,
    "deferred": Notification.Delivery.DEFERRED,
    "bounced": Notification.Delivery.BOUNCED,
    "rejected": Notification.Delivery.BOUNCED,
    "failed": Notification.Delivery.BOUNCED,
    "complained": Notification.Delivery.COMPLAINED,
    "unsubscribed": Notification.Delivery.OPTED_OUT,
}
# A bounce some providers call temporary (a full mailbox): the provider tries again.
_SOFT_BOUNCES = frozenset({"soft_bounce"})


def on_email_tracking(sender, *, event, esp_name, **kwargs) -> None:
    """django-anymail's tracking signal (its webhooks, /hooks/anymail/<provider>/tracking/):
    the message's delivery state, and a failing contact on a bounce or a complaint."""
    delivery = _EMAIL_DELIVERY.get(event.event_type)
    if delivery is None:
        return
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    if raw.get("event") in _SOFT_BOUNCES:
        delivery = Notification.Delivery.DEFERRED
    delivery_report(
        channel=Notification.Channel.EMAIL,
        provider_message_id=event.message_id or "",
        delivery=delivery,
        detail=f"{esp_name}: {event.description or event.reject_reason or event.event_type}",
    )


def on_non_use_found(sender, *, episode, **kwargs) -> None:
    nonuse_notify(episode=episode)
