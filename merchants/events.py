from django.db import models
from django.utils.translation import gettext_lazy as _


class EventType(models.TextChoices):
    AUTHORIZATION_APPROVED = "authorization.approved", _("Authorization approved")
    AUTHORIZATION_PARTIALLY_APPROVED = (
        "authorization.partially_approved",
        _("Authorization partially approved"),
    )
    AUTHORIZATION_DECLINED = "authorization.declined", _("Authorization declined")
    AUTHORIZATION_REVERSED = "authorization.reversed", _("Authorization reversed")
    AUTHORIZATION_EXPIRED = "authorization.expired", _("Authorization expired")
    PAYMENT_CAPTURED = "payment.captured", _("Payment captured")
    REFUND_SUCCEEDED = "refund.succeeded", _("Refund succeeded")
