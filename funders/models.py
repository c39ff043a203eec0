from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from config.validators import validate_currency, validate_siret


class Funder(models.Model):
    """An organisation that gives aid: a département, a family-allowance fund, a pension fund..."""

    class Kind(models.TextChoices):
        DEPARTEMENT = "departement", _("Département")
        FAMILY_ALLOWANCE_FUND = "caf", _("Family-allowance fund (CAF)")
        PENSION_FUND = "pension_fund", _("Pension fund")
        MUTUAL_INSURER = "mutual_insurer", _("Mutual insurer")
        CITY = "city", _("City or social action centre")
        OTHER = "other", _("Other")

    name = models.CharField(_("name"), max_length=200)
    siret = models.CharField(_("SIRET"), max_length=14, unique=True, validators=[validate_siret])
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("funder")
        verbose_name_plural = _("funders")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A member of a funder's staff and what they may do there."""

    class Role(models.TextChoices):
        ADMINISTRATOR = "administrator", _("Administrator")
        MANAGER = "manager", _("Manager")
        AGENT = "agent", _("Agent")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="funder_memberships"
    )
    funder = models.ForeignKey(Funder, models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("staff membership")
        verbose_name_plural = _("staff memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "funder"], name="membership_once_per_funder")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.funder} ({self.get_role_display()})"


class Program(models.Model):
    """An aid scheme of a funder. Its money sits in its float account until allocated; its rules
    are the defaults of every allocation made from it (see wallet/authorization/rules.py for the
    shape)."""

    funder = models.ForeignKey(Funder, models.PROTECT, related_name="programs")
    name = models.CharField(_("name"), max_length=120)
    purpose = models.TextField(_("purpose"), blank=True)
    currency = models.CharField(
        _("currency"), max_length=3, default="EUR", validators=[validate_currency]
    )
    float_account = models.OneToOneField(
        "wallet.Account", models.PROTECT, related_name="program", editable=False
    )
    rules = models.JSONField(_("rules"), default=dict, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("program")
        verbose_name_plural = _("programs")
        ordering = ["funder__name", "name"]

    def __str__(self) -> str:
        return self.name


class Allocation(models.Model):
    """A grant of an amount from a program to a beneficiary, valid in [valid_from, valid_until),
    under the program's rules with this allocation's overrides. It creates one pocket."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        REVOKED = "revoked", _("Revoked")
        EXPIRED = "expired", _("Expired")

    program = models.ForeignKey(Program, models.PROTECT, related_name="allocations")
    beneficiary = models.ForeignKey(
        "wallet.Beneficiary", models.PROTECT, related_name="allocations"
    )
    amount = models.BigIntegerField(_("amount (cents)"))
    currency = models.CharField(_("currency"), max_length=3, validators=[validate_currency])
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    rules = models.JSONField(_("rule overrides"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    idempotency_key = models.CharField(max_length=255, unique=True)
    fingerprint = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    end_reason = models.CharField(_("reason"), max_length=300, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="allocation_amount_positive"),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="allocation_window_not_empty",
            ),
        ]
        indexes = [
            models.Index(
                fields=["valid_until"], condition=Q(status="active"), name="allocation_expiry_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.program} → {self.beneficiary}"
