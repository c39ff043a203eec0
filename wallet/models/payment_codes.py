from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

SLOT_DIGITS = 4


class PaymentCode(models.Model):
    """One payment code. The code itself is never stored: `digest` is its keyed HMAC."""

    class Status(models.TextChoices):
        ACTIVE = "active", pgettext_lazy("payment code", "Active")
        USED = "used", pgettext_lazy("payment code", "Used")
        EXPIRED = "expired", pgettext_lazy("payment code", "Expired")
        # Set by the wallet-wide lockout of earlier versions, which let one merchant's wrong
        # attempts cancel a person's codes; rows of that time keep it. Nothing sets it now.
        INVALIDATED = "invalidated", _("Cancelled after wrong attempts")

    wallet = models.ForeignKey("wallet.Wallet", models.PROTECT, related_name="payment_codes")
    slot = models.CharField(_("slot"), max_length=SLOT_DIGITS)
    digest = models.CharField(_("digest"), max_length=64, editable=False)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.ACTIVE
    )
    max_amount = models.BigIntegerField(_("maximum amount"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # Still "active" past this instant until a redemption refuses it or a creation reuses its
    # slot (which marks it expired first): expiry is checked on use, no periodic task.
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    invalidated_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    failed_attempts = models.PositiveIntegerField(_("wrong attempts"), default=0)
    # The (caller-scoped) idempotency key of the authorization that used the code, so that a
    # retry of that same authorization is recognised instead of refused as "already used".
    redeemed_with = models.CharField(_("used by request"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("payment code")
        verbose_name_plural = _("payment codes")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["slot"],
                condition=Q(status="active"),
                name="payment_code_one_active_per_slot",
            ),
            models.CheckConstraint(
                condition=Q(max_amount__isnull=True) | Q(max_amount__gt=0),
                name="payment_code_max_amount_positive",
            ),
        ]
        indexes = [models.Index(fields=["slot", "digest"], name="payment_code_slot_digest")]

    def __str__(self) -> str:
        return f"{self.slot} ••• ••• ({self.get_status_display()})"


class PaymentCodeFailure(models.Model):
    """A wrong secret sent on a usable code, and who sent it: the lockout counts them per wallet
    and merchant (see the module's docstring)."""

    payment_code = models.ForeignKey(PaymentCode, models.CASCADE, related_name="failures")
    wallet = models.ForeignKey("wallet.Wallet", models.CASCADE, related_name="+")
    # None for a caller that is no merchant (a test, a shell): such callers share one count.
    merchant = models.ForeignKey(
        "merchants.Merchant", models.CASCADE, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(_("sent at"), default=timezone.now)

    class Meta:
        verbose_name = _("wrong payment code")
        verbose_name_plural = _("wrong payment codes")
        indexes = [
            models.Index(fields=["wallet", "merchant", "at"], name="payment_code_failure_lookup")
        ]

    def __str__(self) -> str:
        return f"{self.payment_code} ({self.at:%Y-%m-%d %H:%M})"
