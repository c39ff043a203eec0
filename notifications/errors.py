"""Refusals of the notification services (each with a stable code), and why a message could not
leave at all."""

from django.utils.translation import gettext_lazy as _

from core.errors import DomainError


class PreferenceInvalid(DomainError):
    code = "invalid_notification_preference"
    default_message = _("These notification choices are not valid.")


class PreferenceLocked(DomainError):
    code = "notification_always_sent"
    default_message = _(
        "This message cannot be turned off: it is needed to sign in or to know about new aid."
    )


class PushSubscriptionInvalid(DomainError):
    code = "invalid_push_subscription"
    default_message = _("This push subscription is not valid.")


class PushServiceNotAllowed(DomainError):
    code = "push_service_not_allowed"
    default_message = _(
        "This address is not one of the push services the platform sends to "
        "(those of Chrome, Firefox, Safari and Edge)."
    )


class PushDisabled(DomainError):
    code = "push_disabled"
    status = 409
    default_message = _("App notifications are not available on this platform.")


class Undeliverable(Exception):
    """Nothing can carry the message and trying again will not change that (the app was removed
    from every device, push was turned off): the row is skipped with `reason`, not retried."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)
