import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField

from core.validators import email_canonical, validate_french_postcode
from ledger.models import Account


class Beneficiary(models.Model):
    """A person who receives aid. Personal data is kept to what payments and messages need."""

    class Language(models.TextChoices):
        FRENCH = "fr", "Français"
        ENGLISH = "en", "English"

    first_name = models.CharField(_("first name"), max_length=100)
    last_name = models.CharField(_("last name"), max_length=100)
    # Always in its canonical form (core.validators.email_canonical), which sign-in and
    # imports compare with "=": see clean() and save().
    email = models.EmailField(_("email"), blank=True)
    phone = PhoneNumberField(_("mobile phone"), blank=True, region="FR")
    postcode = models.CharField(
        _("postcode"), max_length=5, blank=True, validators=[validate_french_postcode]
    )
    preferred_language = models.CharField(
        _("preferred language"), max_length=2, choices=Language.choices, default=Language.FRENCH
    )
    consent_given_at = models.DateTimeField(
        _("consent to data processing given at"), null=True, blank=True
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Set once the person's data was erased on request (gdpr.services): the row stays, under a
    # pseudonym, because the money history points at it.
    erased_at = models.DateTimeField(_("personal data erased at"), null=True, blank=True)
    erased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    erasure_reason = models.CharField(_("why the data was erased"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("beneficiary")
        verbose_name_plural = _("beneficiaries")
        ordering = ["last_name", "first_name"]
        indexes = [
            # Sign-in finds a person by either contact.
            models.Index(fields=["email"], name="beneficiary_email_idx"),
            models.Index(fields=["phone"], name="beneficiary_phone_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def save(self, *args, **kwargs):
        # Also here, and not only in clean(), because sign-in compares with "=": an address
        # saved in another form would never match, and a form that was not canonical is what
        # let a look-alike match before. Forms and services call clean() first, so a refusal
        # here means a caller skipped validation.
        update_fields = kwargs.get("update_fields")
        if self.email and (update_fields is None or "email" in update_fields):
            self.email = email_canonical(self.email)
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        if self.email:
            try:
                self.email = email_canonical(self.email)
            except ValidationError as error:
                raise ValidationError({"email": error}) from None


class ContactChangeRequest(models.Model):
    """A change of a beneficiary's email or mobile phone. Sign-in codes go to these contacts, so
    whoever holds them holds the wallet: an agent's change waits here until a manager of a
    funder helping the person confirms it; a manager's or the platform operator's is confirmed
    at once (backoffice.contacts). The row is the audit of every change: who asked, who decided,
    when, from what to what."""

    class Field(models.TextChoices):
        EMAIL = "email", _("email")
        PHONE = "phone", _("mobile phone")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a manager")
        CONFIRMED = "confirmed", _("Confirmed")
        REFUSED = "refused", _("Refused")
        EXPIRED = "expired", _("Expired")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    beneficiary = models.ForeignKey(
        Beneficiary, models.PROTECT, related_name="contact_changes", verbose_name=_("beneficiary")
    )
    field = models.CharField(_("contact"), max_length=8, choices=Field.choices)
    # As stored on the person: an email address as typed, a phone number in E.164.
    old_value = models.CharField(_("before"), max_length=254, blank=True)
    new_value = models.CharField(_("after"), max_length=254, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("asked by"),
    )
    requested_at = models.DateTimeField(_("asked at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("contact change")
        verbose_name_plural = _("contact changes")
        ordering = ["-requested_at", "-pk"]
        constraints = [
            # A newer request withdraws the one it replaces: a manager never confirms a value
            # that someone has since typed over.
            models.UniqueConstraint(
                fields=["beneficiary", "field"],
                condition=Q(status="pending"),
                name="contact_change_one_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.beneficiary} · {self.get_field_display()}"


class Wallet(models.Model):
    """A beneficiary's wallet: the pockets of every aid they were granted. Freezing it refuses
    every payment, whatever the channel."""

    beneficiary = models.OneToOneField(
        Beneficiary, models.PROTECT, related_name="wallet", verbose_name=_("beneficiary")
    )
    is_frozen = models.BooleanField(_("frozen"), default=False)
    frozen_reason = models.CharField(_("reason for freezing"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("wallet")
        verbose_name_plural = _("wallets")

    def __str__(self) -> str:
        return str(self.beneficiary)


# The status of a grant that may be spent. Grants are the funders' (funders.models.Allocation
# .Status.ACTIVE); the wallet floor names the value instead of importing the floor above it, and
# tests/wallet/test_models.py pins the two together.
SPENDABLE_ALLOCATION_STATUS = "active"


class PocketQuerySet(models.QuerySet):
    def spendable(self) -> "PocketQuerySet":
        """The pockets whose grant is active: the only ones a payment may use."""
        return self.filter(allocation__status=SPENDABLE_ALLOCATION_STATUS)


class Pocket(models.Model):
    """The earmarked balance one allocation created. Its money is its ledger account's."""

    wallet = models.ForeignKey(
        Wallet, models.PROTECT, related_name="pockets", verbose_name=_("wallet")
    )
    allocation = models.OneToOneField("funders.Allocation", models.PROTECT, related_name="pocket")
    account = models.OneToOneField(Account, models.PROTECT, related_name="pocket")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = PocketQuerySet.as_manager()

    class Meta:
        verbose_name = _("pocket")
        verbose_name_plural = _("pockets")

    def __str__(self) -> str:
        return f"{self.allocation.program} ({self.wallet})"


def _card_reference() -> str:
    return f"card_{secrets.token_urlsafe(18)}"


class Card(models.Model):
    """A payment card issued through Stripe Issuing. The card number and CVC never reach us:
    Stripe keeps them; we keep Stripe's ids and the last four digits."""

    class Kind(models.TextChoices):
        VIRTUAL = "virtual", _("Virtual")
        PHYSICAL = "physical", _("Physical")

    class Status(models.TextChoices):
        INACTIVE = "inactive", _("Not yet active")
        ACTIVE = "active", _("Active")
        FROZEN = "frozen", _("Frozen")
        LOST = "lost", _("Reported lost")
        CANCELED = "canceled", _("Cancelled")

    wallet = models.ForeignKey(
        Wallet, models.PROTECT, related_name="cards", verbose_name=_("wallet")
    )
    reference = models.CharField(
        _("reference"), max_length=40, unique=True, default=_card_reference, editable=False
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.INACTIVE
    )
    last4 = models.CharField(_("last 4 digits"), max_length=4, blank=True)
    stripe_card_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    stripe_cardholder_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("card")
        verbose_name_plural = _("cards")

    def __str__(self) -> str:
        return f"•••• {self.last4 or '----'}"
