from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Messages to beneficiaries")

    def ready(self) -> None:
        from anymail.signals import tracking

        from funders.signals import allocation_granted, non_use_found
        from notifications import (
            checks,  # noqa: F401 -- registers the system checks
            receivers,
        )
        from wallet.signals import captures_posted, decision_recorded

        allocation_granted.connect(receivers.on_allocation_granted, dispatch_uid="notify-grant")
        decision_recorded.connect(receivers.on_decision_recorded, dispatch_uid="notify-decision")
        captures_posted.connect(receivers.on_captures_posted, dispatch_uid="notify-captures")
        tracking.connect(receivers.on_email_tracking, dispatch_uid="email-tracking")
        non_use_found.connect(receivers.on_non_use_found, dispatch_uid="notify-non-use")
