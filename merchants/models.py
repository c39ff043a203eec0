import hashlib

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from config.validators import validate_insee_commune, validate_mcc, validate_siret


class Merchant(models.Model):
    """A shop or service that takes aid payments. Its category and place are the ones registered
    and approved here: the authorization engine never takes them from a request."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting approval")
        APPROVED = "approved", _("Approved")
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
        "wallet.Account", models.PROTECT, related_name="merchant", editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")
        ordering = ["trade_name"]

    def __str__(self) -> str:
        return self.trade_name


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
