import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ContactChannel(models.TextChoices):
    """How a sign-in code reaches a contact: the channel its form names."""

    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")


class Aidant(models.Model):
    """Someone, often a social worker, whom a beneficiary lets see their wallet without
    changing anything. They sign in with a code sent to this contact, as the beneficiary does,
    and get a read-only token for this wallet."""

    wallet = models.ForeignKey("wallet.Wallet", models.PROTECT, related_name="aidants")
    name = models.CharField(_("name"), max_length=100, blank=True)
    # Normalised as sign-in looks it up: an email address in lower case, a phone in E.164.
    contact = models.CharField(_("email or mobile phone"), max_length=254)
    channel = models.CharField(_("channel"), max_length=8, choices=ContactChannel.choices)
    created_at = models.DateTimeField(_("authorised at"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    # Set when a funder's staff registered the aidant for the person (who may not manage the
    # app): who did, and how the person gave their consent.
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("registered by"),
    )
    consent = models.CharField(_("how the person consented"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("aidant")
        verbose_name_plural = _("aidants")
        constraints = [
            models.UniqueConstraint(
                fields=["wallet", "contact"],
                condition=Q(revoked_at__isnull=True),
                name="aidant_once_per_wallet",
            )
        ]
        indexes = [
            models.Index(
                fields=["contact"], condition=Q(revoked_at__isnull=True), name="aidant_contact_idx"
            )
        ]

    def __str__(self) -> str:
        return self.name or self.contact


class SignInCode(models.Model):
    """A one-time sign-in code sent to a contact. The code itself is never stored: `digest` is
    its HMAC-SHA256 keyed with SECRET_KEY. Only the newest code of a contact can be used, once,
    until `expires_at`, and only while it has collected fewer wrong tries than the limit."""

    contact = models.CharField(_("email or mobile phone"), max_length=254)
    channel = models.CharField(_("channel"), max_length=8, choices=ContactChannel.choices)
    digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    failed_attempts = models.PositiveSmallIntegerField(_("wrong tries"), default=0)

    class Meta:
        verbose_name = _("sign-in code")
        verbose_name_plural = _("sign-in codes")
        indexes = [models.Index(fields=["contact", "-created_at"], name="sign_in_code_contact_idx")]

    def __str__(self) -> str:
        return f"{self.contact} ({self.created_at:%Y-%m-%d %H:%M})"


class AppToken(models.Model):
    """A token of the app, for one wallet: the beneficiary's own (aidant empty) or an aidant's,
    read-only. Only the SHA-256 digest of the 32 random bytes is stored, as for merchant API
    keys. A token unused for APP_TOKEN_IDLE_DAYS, or older than APP_TOKEN_MAX_AGE_DAYS, no longer
    works."""

    wallet = models.ForeignKey("wallet.Wallet", models.CASCADE, related_name="app_tokens")
    aidant = models.ForeignKey(Aidant, models.CASCADE, null=True, blank=True, related_name="tokens")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    last_used_at = models.DateTimeField(_("last used at"), default=timezone.now)
    revoked_at = models.DateTimeField(_("signed out at"), null=True, blank=True)

    class Meta:
        verbose_name = _("app token")
        verbose_name_plural = _("app tokens")

    def __str__(self) -> str:
        return f"{self.wallet} ({self.created_at:%Y-%m-%d})"

    @property
    def read_only(self) -> bool:
        return self.aidant_id is not None

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()
