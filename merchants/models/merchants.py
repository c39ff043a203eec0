import contextlib
import hashlib
import secrets

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.validators import validate_insee_commune, validate_mcc, validate_siret
from merchants.sepa import iban_compact, validate_bic, validate_iban, validate_stripe_account_id


class Merchant(models.Model):
    """A shop or service that takes aid payments. Its category and place are the ones registered
    and approved here: the authorization engine never takes them from a request."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting approval")
        APPROVED = "approved", pgettext_lazy("merchant", "Approved")
        SUSPENDED = "suspended", _("Suspended")

    siret = models.CharField(_("SIRET"), max_length=14, unique=True, validators=[validate_siret])
    legal_name = models.CharField(_("legal name"), max_length=200)
    trade_name = models.CharField(_("trade name"), max_length=200)
    mcc = models.CharField(_("merchant category code"), max_length=4, validators=[validate_mcc])
    address = models.CharField(_("address"), max_length=300)
    postcode = models.CharField(_("postcode"), max_length=10)
    city = models.CharField(_("city"), max_length=100)
    commune_code = models.CharField(
        _("INSEE commune code"), max_length=5, blank=True, validators=[validate_insee_commune]
    )
    country = models.CharField(_("country"), max_length=2, default="FR")
    latitude = models.DecimalField(
        _("latitude"),
        max_digits=8,
        decimal_places=5,
        null=True,
        blank=True,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
    )
    longitude = models.DecimalField(
        _("longitude"),
        max_digits=8,
        decimal_places=5,
        null=True,
        blank=True,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    payable_account = models.OneToOneField(
        "ledger.Account", models.PROTECT, related_name="merchant", editable=False
    )
    # Where its money is paid: by SEPA transfer to the IBAN, or by Stripe transfer to its
    # connected account when it has one. Typed with spaces or not; kept compact.
    iban = models.CharField(_("IBAN"), max_length=42, blank=True, validators=[validate_iban])
    bic = models.CharField(_("BIC"), max_length=11, blank=True, validators=[validate_bic])
    stripe_account_id = models.CharField(
        _("connected Stripe account"),
        max_length=80,
        blank=True,
        validators=[validate_stripe_account_id],
        help_text=_("acct_…: when set, payouts are Stripe transfers instead of SEPA transfers."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    # Set when the merchant does something an operator should review (e.g. it sprayed payment
    # codes); cleared by the operator after review. It blocks nothing by itself.
    flagged_at = models.DateTimeField(_("flagged for review at"), null=True, blank=True)
    flag_reason = models.CharField(_("reason for review"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")
        ordering = ["trade_name"]

    def __str__(self) -> str:
        return self.trade_name

    def clean(self) -> None:
        # full_clean calls this even when a field failed its validators: a bad IBAN stays as
        # typed, its error is already reported.
        if self.iban:
            with contextlib.suppress(ValueError):
                self.iban = iban_compact(self.iban)
        self.bic = self.bic.replace(" ", "").upper()


class ApiKey(models.Model):
    """A merchant's secret API key. Only a SHA-256 digest is stored: keys are 32 random bytes, so
    a fast digest is safe and keeps authentication off the hot path's budget. The prefix is kept
    in clear so a merchant can tell its keys apart."""

    class Mode(models.TextChoices):
        TEST = "test", _("Test")
        LIVE = "live", _("Live")

    merchant = models.ForeignKey(Merchant, models.CASCADE, related_name="api_keys")
    name = models.CharField(_("name"), max_length=100)
    mode = models.CharField(_("mode"), max_length=4, choices=Mode.choices, default=Mode.LIVE)
    prefix = models.CharField(_("prefix"), max_length=20, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.prefix}…"

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()


class _PaymentOperation(models.Model):
    """A merchant's capture, reversal or refund of an authorization: what was asked and when.
    The money moved is in the ledger (one transfer per pocket the authorization used)."""

    decision = models.ForeignKey("wallet.Decision", models.PROTECT, related_name="+")
    amount = models.BigIntegerField(_("amount"))
    idempotency_key = models.CharField(max_length=300, unique=True)
    fingerprint = models.CharField(max_length=64)
    # Its authorization's mode, copied so that lists are scoped without a join.
    livemode = models.BooleanField(_("live mode"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.reference


def make_capture_reference() -> str:
    return f"cap_{secrets.token_urlsafe(18)}"


def make_reversal_reference() -> str:
    return f"rev_{secrets.token_urlsafe(18)}"


def make_refund_reference() -> str:
    return f"re_{secrets.token_urlsafe(18)}"


class Capture(_PaymentOperation):
    reference = models.CharField(max_length=40, unique=True, default=make_capture_reference)
    decision = models.ForeignKey("wallet.Decision", models.PROTECT, related_name="captures")

    class Meta(_PaymentOperation.Meta):
        verbose_name = _("capture")
        verbose_name_plural = _("captures")


class Reversal(_PaymentOperation):
    reference = models.CharField(max_length=40, unique=True, default=make_reversal_reference)
    decision = models.ForeignKey("wallet.Decision", models.PROTECT, related_name="reversals")

    class Meta(_PaymentOperation.Meta):
        verbose_name = _("reversal")
        verbose_name_plural = _("reversals")


class Refund(_PaymentOperation):
    reference = models.CharField(max_length=40, unique=True, default=make_refund_reference)
    decision = models.ForeignKey("wallet.Decision", models.PROTECT, related_name="refunds")
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta(_PaymentOperation.Meta):
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")


class IdempotentResponse(models.Model):
    """The first response to a POST with an Idempotency-Key, kept so that a retry gets it back
    byte for byte, whatever happened to the objects since."""

    # No index of its own: the unique (merchant, key) index serves lookups by merchant too, and
    # one index fewer to write per stored answer (issue 19).
    merchant = models.ForeignKey(Merchant, models.CASCADE, related_name="+", db_index=False)
    # The client's key (at most 255 characters), prefixed "test·" for a test key's requests.
    key = models.CharField(max_length=300)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    body = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("idempotent response")
        verbose_name_plural = _("idempotent responses")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "key"], name="idempotent_response_key")
        ]

    def __str__(self) -> str:
        return self.key


# Webhooks out and settlement live in their own modules (models and services); imported here so
# that Django registers their models with the app.
