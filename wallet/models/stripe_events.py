from django.db import models
from django.utils.translation import gettext_lazy as _


class StripeEvent(models.Model):
    """One event Stripe sent us, stored once its signature is verified and before it is
    processed, so that a failure leaves its payload and traceback behind for a replay. The
    event id is unique: a second delivery finds the first one's row and its answer."""

    class Result(models.TextChoices):
        RECEIVED = "received", _("Received, not yet processed")
        PROCESSED = "processed", _("Processed")
        FAILED = "failed", _("Failed")

    stripe_id = models.CharField(_("Stripe event id"), max_length=255, unique=True)
    type = models.CharField(_("type"), max_length=100, db_index=True)
    api_version = models.CharField(_("API version"), max_length=64, blank=True)
    livemode = models.BooleanField(_("live mode"), default=False)
    payload = models.JSONField(_("payload"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    result = models.CharField(
        _("result"), max_length=16, choices=Result.choices, default=Result.RECEIVED
    )
    # What the handler did, in a few words, and what we answered Stripe (for a real-time
    # authorization, the decision; a redelivery gets the same answer).
    outcome = models.CharField(_("outcome"), max_length=300, blank=True)
    response = models.JSONField(_("answer sent to Stripe"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    traceback = models.TextField(_("traceback"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)

    class Meta:
        verbose_name = _("Stripe event")
        verbose_name_plural = _("Stripe events")
        ordering = ["-received_at"]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=models.Q(result="failed"),
                name="stripe_event_failed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id}"
