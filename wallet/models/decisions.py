import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _

from ledger.models import Transfer


def _decision_reference() -> str:
    return f"auth_{secrets.token_urlsafe(18)}"


class Decision(models.Model):
    """The record of one authorization: what was asked, what was decided and why, down to each
    pocket's verdict and the holds placed. Written once, in the transaction that places the
    holds, and never changed: what happens to the money later is in the ledger."""

    class Status(models.TextChoices):
        APPROVED = "approved", _("Approved")
        PARTIALLY_APPROVED = "partially_approved", _("Partially approved")
        DECLINED = "declined", _("Declined")

    class Channel(models.TextChoices):
        API = "api", _("Merchant API")
        CARD = "card", _("Card")

    reference = models.CharField(
        _("reference"), max_length=40, unique=True, default=_decision_reference, editable=False
    )
    idempotency_key = models.CharField(max_length=300, unique=True)
    fingerprint = models.CharField(max_length=64)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    # A sandbox (test mode) decision has no wallet: test keys never reach a beneficiary's aid.
    wallet = models.ForeignKey(
        "wallet.Wallet",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="decisions",
        verbose_name=_("wallet"),
    )
    livemode = models.BooleanField(_("live mode"), default=True)
    card = models.ForeignKey(
        "wallet.Card", models.PROTECT, null=True, blank=True, related_name="decisions"
    )
    merchant = models.ForeignKey(
        "merchants.Merchant",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="decisions",
        verbose_name=_("merchant"),
    )
    amount = models.BigIntegerField(_("amount asked"))
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(_("outcome"), max_length=20, choices=Status.choices)
    approved_amount = models.BigIntegerField(_("amount approved"))
    reason = models.CharField(_("reason code"), max_length=40, blank=True)
    reason_pocket = models.CharField(_("pocket concerned"), max_length=200, blank=True)
    details = models.JSONField(_("reason details"), default=dict, blank=True)
    merchant_reference = models.CharField(_("merchant's reference"), max_length=200, blank=True)
    metadata = models.JSONField(_("merchant's metadata"), default=dict, blank=True)
    request = models.JSONField(_("request"))
    trace = models.JSONField(_("each pocket's verdict and the split"))
    decided_at = models.DateTimeField(_("decided at"), db_index=True)
    duration_us = models.PositiveIntegerField(_("decision time (µs)"))

    class Meta:
        verbose_name = _("authorization decision")
        verbose_name_plural = _("authorization decisions")
        ordering = ["-decided_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(livemode=True, wallet__isnull=False)
                | models.Q(livemode=False, wallet__isnull=True),
                name="decision_live_has_wallet_sandbox_none",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    def save(self, *args, **kwargs):
        # A decision is evidence: what the funder, the merchant and the beneficiary are told
        # must stay what was decided at the time.
        if not self._state.adding:
            raise ValueError("an authorization decision is immutable")
        super().save(*args, **kwargs)


class DecisionHold(models.Model):
    """One hold an approval placed: the part of the payment one pocket carries."""

    # No foreign key constraint on the decision and the hold (issue 19): each was a deferred
    # check at COMMIT (a SELECT ... FOR KEY SHARE and a WAL record) on every payment, and
    # neither target can be missing: a decision hold is inserted with its decision and its hold,
    # by the same statement or transaction (wallet/authorize.py), and both are immutable, never
    # deleted (PROTECT still guards the ORM). tests/merchant_api/test_decision_references.py checks
    # that every reference holds.
    decision = models.ForeignKey(
        Decision, models.PROTECT, related_name="holds", db_constraint=False
    )
    pocket = models.ForeignKey("wallet.Pocket", models.PROTECT, related_name="decision_holds")
    hold = models.OneToOneField(
        Transfer, models.PROTECT, related_name="decision_hold", db_constraint=False
    )
    amount = models.BigIntegerField(_("amount"))

    class Meta:
        verbose_name = _("hold of a decision")
        verbose_name_plural = _("holds of decisions")
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.decision} · {self.pocket_id}: {self.amount}"
