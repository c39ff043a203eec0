import secrets

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from merchants.events import EventType
from merchants.validators import validate_event_types, validate_webhook_url

EXCERPT_LENGTH = 500


ERROR_LENGTH = 300


def _endpoint_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def _event_reference() -> str:
    return f"evt_{secrets.token_urlsafe(18)}"


class WebhookEndpoint(models.Model):
    """A URL of a merchant's that receives its events: all of them, or the types listed."""

    merchant = models.ForeignKey(
        "merchants.Merchant",
        models.CASCADE,
        related_name="webhook_endpoints",
        verbose_name=_("merchant"),
    )
    url = models.URLField(_("URL"), max_length=500, validators=[validate_webhook_url])
    # Stored in clear, unlike API keys: we sign every webhook with it, so we must be able to
    # read it. It never appears in a log, an error or an attempt's record, and the admin shows
    # it masked except once, when the endpoint is created.
    secret = models.CharField(
        _("signing secret"), max_length=100, default=_endpoint_secret, editable=False
    )
    enabled_events = models.JSONField(
        _("event types"),
        default=list,
        blank=True,
        validators=[validate_event_types],
        help_text=_("None selected: every event type."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    # A test key's endpoint receives only sandbox events, a live key's only live ones.
    livemode = models.BooleanField(_("live mode"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["merchant", "pk"]

    def __str__(self) -> str:
        return self.url

    @property
    def masked_secret(self) -> str:
        return f"whsec_••••••••{self.secret[-4:]}"

    def subscribes_to(self, event_type: str) -> bool:
        return not self.enabled_events or event_type in self.enabled_events


class WebhookEvent(models.Model):
    """Something that happened to a merchant's payment, as told to its endpoints. Written once,
    with the exact body sent (`payload`), and never changed."""

    Type = EventType

    reference = models.CharField(
        _("reference"), max_length=40, unique=True, default=_event_reference, editable=False
    )
    merchant = models.ForeignKey(
        "merchants.Merchant",
        models.PROTECT,
        related_name="webhook_events",
        verbose_name=_("merchant"),
    )
    type = models.CharField(_("type"), max_length=64, choices=EventType.choices)
    livemode = models.BooleanField(_("live mode"), default=True)
    data = models.JSONField(_("data"))
    payload = models.TextField(_("body sent"), editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    # The id of the request (or task) that caused the event (core/request_id.py), sent with
    # each delivery: support finds the payment's request from what the merchant received.
    request_id = models.CharField(_("request id"), max_length=64, blank=True, editable=False)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.reference} {self.type}"

    def save(self, *args, **kwargs):
        # What a merchant was told stays what it was told: retries send these very bytes.
        if not self._state.adding:
            raise ValueError("a webhook event is immutable")
        super().save(*args, **kwargs)


class WebhookDelivery(models.Model):
    """One event to one endpoint: pending until an attempt gets a 2xx answer (succeeded) or the
    last attempt fails (failed)."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("webhook delivery", "Pending")
        SUCCEEDED = "succeeded", pgettext_lazy("webhook delivery", "Succeeded")
        FAILED = "failed", pgettext_lazy("webhook delivery", "Failed")

    # No index of its own: the unique (event, endpoint) index serves lookups by event too, and
    # one index fewer to write per delivery (issue 19).
    event = models.ForeignKey(
        WebhookEvent, models.PROTECT, related_name="deliveries", db_index=False
    )
    endpoint = models.ForeignKey(WebhookEndpoint, models.PROTECT, related_name="deliveries")
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(
        _("last HTTP status"), null=True, blank=True
    )
    last_error = models.CharField(_("last error"), max_length=ERROR_LENGTH, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "endpoint"], name="webhook_delivery_event_endpoint_unique"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event.reference} → {self.endpoint.url}"


class WebhookAttempt(models.Model):
    """One POST of a delivery and what came back. Written when the attempt starts, completed
    when it ends: an attempt whose worker died keeps its "interrupted" error."""

    delivery = models.ForeignKey(WebhookDelivery, models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField(_("number"))
    started_at = models.DateTimeField(_("started at"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=ERROR_LENGTH, blank=True)
    response_excerpt = models.CharField(_("answer (start)"), max_length=EXCERPT_LENGTH, blank=True)

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "number"], name="webhook_attempt_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.status_code or self.error}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
