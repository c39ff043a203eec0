import secrets

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from ledger.models import Transfer


def make_batch_reference() -> str:
    # Also the SEPA end-to-end id and the Stripe transfer group: SEPA allows letters, digits
    # and "-" (no "_"), 35 characters at most.
    return f"STL-{secrets.token_hex(8).upper()}"


class SettlementBatch(models.Model):
    merchant = models.ForeignKey(
        "merchants.Merchant", models.PROTECT, related_name="settlement_batches"
    )
    currency = models.CharField(_("currency"), max_length=3)
    reference = models.CharField(
        _("reference"), max_length=35, unique=True, default=make_batch_reference, editable=False
    )
    period_start = models.DateTimeField(_("from"), null=True, blank=True)
    period_end = models.DateTimeField(_("until (excluded)"))
    captured = models.BigIntegerField(_("payments"), default=0)
    refunded = models.BigIntegerField(_("refunds"), default=0)
    carried = models.BigIntegerField(_("carried from the previous statement"), default=0)
    net = models.BigIntegerField(_("net"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("settlement batch")
        verbose_name_plural = _("settlement batches")
        ordering = ["-period_end", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "currency", "period_end"],
                name="settlement_batch_one_per_period",
            ),
            models.CheckConstraint(
                condition=Q(net=F("captured") - F("refunded") + F("carried")),
                name="settlement_batch_net_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(captured__gte=0, refunded__gte=0, carried__lte=0),
                name="settlement_batch_signs",
            ),
        ]

    def __str__(self) -> str:
        return self.reference


class SettlementLine(models.Model):
    class Kind(models.TextChoices):
        PAYMENT = "payment", _("Payment")
        REFUND = "refund", _("Refund")
        CARRIED = "carried", _("Carried from the previous statement")

    batch = models.ForeignKey(SettlementBatch, models.PROTECT, related_name="lines")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    amount = models.BigIntegerField(_("amount"))  # signed: what the line adds to the net
    transfer = models.OneToOneField(
        Transfer, models.PROTECT, null=True, blank=True, related_name="settlement_line"
    )
    carried_from = models.OneToOneField(
        SettlementBatch, models.PROTECT, null=True, blank=True, related_name="carried_into"
    )
    decision = models.ForeignKey(
        "wallet.Decision", models.PROTECT, null=True, blank=True, related_name="+"
    )
    occurred_at = models.DateTimeField(_("date"))

    class Meta:
        verbose_name = _("settlement line")
        verbose_name_plural = _("settlement lines")
        ordering = ["occurred_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="payment", amount__gt=0, carried_from__isnull=True)
                & Q(transfer__isnull=False)
                | Q(kind="refund", amount__lt=0, carried_from__isnull=True)
                & Q(transfer__isnull=False)
                | Q(kind="carried", amount__lt=0, carried_from__isnull=False)
                & Q(transfer__isnull=True),
                name="settlement_line_kind_matches",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.batch} {self.kind} {self.amount}"


class SepaFile(models.Model):
    """A pain.001 credit transfer file for the operator's bank, as it was generated."""

    message_id = models.CharField(_("message id"), max_length=35, unique=True)
    content = models.TextField(_("content"))
    count = models.PositiveIntegerField(_("number of transfers"))
    total = models.BigIntegerField(_("total"))
    currency = models.CharField(_("currency"), max_length=3)
    execution_date = models.DateField(_("execution date"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("SEPA file")
        verbose_name_plural = _("SEPA files")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.message_id


class Payout(models.Model):
    class Method(models.TextChoices):
        SEPA = "sepa", _("SEPA transfer")
        STRIPE = "stripe", _("Stripe transfer")

    class Status(models.TextChoices):
        PENDING = "pending", _("To send")
        SENT = "sent", _("Sent, awaiting the bank")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")

    batch = models.OneToOneField(SettlementBatch, models.PROTECT, related_name="payout")
    transfer = models.OneToOneField(Transfer, models.PROTECT, related_name="payout")
    method = models.CharField(_("method"), max_length=8, choices=Method.choices)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.PENDING
    )
    amount = models.BigIntegerField(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    # Where it was sent, copied when it leaves: the merchant may change its details later.
    destination = models.CharField(_("sent to"), max_length=80, blank=True)
    sepa_file = models.ForeignKey(
        SepaFile, models.PROTECT, null=True, blank=True, related_name="payouts"
    )
    stripe_transfer_id = models.CharField(_("Stripe transfer"), max_length=80, blank=True)
    failure_reason = models.CharField(_("why it failed"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)

    class Meta:
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payout_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.batch.reference} {self.amount} {self.currency}"
