from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
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
    history = HistoricalRecords()

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


class Enrolment(models.Model):
    """A beneficiary known to a funder: the funder's staff see and help only the beneficiaries
    enrolled with it. One person has one wallet, whatever the number of funders helping them."""

    funder = models.ForeignKey(Funder, models.PROTECT, related_name="enrolments")
    beneficiary = models.ForeignKey("wallet.Beneficiary", models.PROTECT, related_name="enrolments")
    reference = models.CharField(
        _("file number"),
        max_length=64,
        blank=True,
        help_text=_("The funder's own number for this person, as in its files."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("enrolment")
        verbose_name_plural = _("enrolments")
        constraints = [
            models.UniqueConstraint(
                fields=["funder", "beneficiary"], name="enrolment_once_per_funder"
            ),
            models.UniqueConstraint(
                fields=["funder", "reference"],
                condition=~Q(reference=""),
                name="enrolment_reference_unique_per_funder",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.beneficiary} @ {self.funder}"


class Funding(models.Model):
    """Money a funder paid into a program: the record behind a FUND transfer of the ledger."""

    class Method(models.TextChoices):
        BANK_TRANSFER = "bank_transfer", _("Bank transfer")
        STRIPE_TOPUP = "stripe_topup", _("Stripe top-up")

    program = models.ForeignKey(Program, models.PROTECT, related_name="fundings")
    amount = models.BigIntegerField(_("amount (cents)"))
    method = models.CharField(_("method"), max_length=16, choices=Method.choices)
    reference = models.CharField(
        _("reference"),
        max_length=140,
        help_text=_("The bank transfer's reference or the Stripe top-up's id."),
    )
    received_on = models.DateField(_("received on"))
    transfer = models.OneToOneField(
        "wallet.Transfer", models.PROTECT, related_name="funding", editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("funding")
        verbose_name_plural = _("fundings")
        ordering = ["-received_on", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="funding_amount_positive")
        ]

    def __str__(self) -> str:
        return f"{self.program} + {self.amount} ({self.reference})"


class RecurringAllocation(models.Model):
    """ "Every month on the 1st, 50 € to these beneficiaries, for 6 months": the scheduler grants
    run n (0-based) on `day_of_month` of the n-th month from `starts_on`, once per beneficiary."""

    program = models.ForeignKey(Program, models.PROTECT, related_name="recurring_allocations")
    name = models.CharField(_("name"), max_length=120)
    amount = models.BigIntegerField(_("amount per run (cents)"))
    day_of_month = models.PositiveSmallIntegerField(
        _("day of the month"),
        help_text=_("From 1 to 28, so that every month has it."),
        validators=[MinValueValidator(1), MaxValueValidator(28)],
    )
    starts_on = models.DateField(_("first month"))
    runs = models.PositiveSmallIntegerField(
        _("number of runs"), validators=[MinValueValidator(1), MaxValueValidator(120)]
    )
    validity_days = models.PositiveSmallIntegerField(
        _("days each grant stays valid"), null=True, blank=True
    )
    beneficiaries = models.ManyToManyField(
        "wallet.Beneficiary", related_name="recurring_allocations", verbose_name=_("beneficiaries")
    )
    is_active = models.BooleanField(_("active"), default=True)
    runs_done = models.PositiveSmallIntegerField(_("runs made"), default=0, editable=False)
    last_error = models.CharField(_("last problem"), max_length=300, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    history = HistoricalRecords(m2m_fields=[beneficiaries])

    class Meta:
        verbose_name = _("recurring allocation")
        verbose_name_plural = _("recurring allocations")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="recurring_allocation_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(day_of_month__gte=1, day_of_month__lte=28),
                name="recurring_allocation_day_in_every_month",
            ),
            models.CheckConstraint(condition=Q(runs__gte=1), name="recurring_allocation_runs"),
        ]

    def __str__(self) -> str:
        return self.name


class AllocationImport(models.Model):
    """A file of allocations to grant: checked first (a dry run shows each row's result), then
    applied all at once. Applying the same file twice grants once: each row's idempotency key
    comes from the program, the file's digest and the row's number."""

    class Status(models.TextChoices):
        CHECKING = "checking", _("Being checked")
        CHECKED = "checked", _("Checked, waiting for confirmation")
        INVALID = "invalid", _("Has errors")
        APPLYING = "applying", _("Being applied")
        APPLIED = "applied", _("Applied")
        FAILED = "failed", _("Failed")

    program = models.ForeignKey(Program, models.PROTECT, related_name="imports")
    filename = models.CharField(_("file name"), max_length=255)
    content = models.BinaryField(_("content"))
    digest = models.CharField(_("SHA-256 of the file"), max_length=64)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.CHECKING
    )
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("rows processed"), default=0)
    total_amount = models.BigIntegerField(_("total amount (cents)"), default=0)
    report = models.JSONField(_("result of each row"), default=list, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)

    class Meta:
        verbose_name = _("allocation import")
        verbose_name_plural = _("allocation imports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.filename


class ProgramDashboard(Program):
    """The reports of a program, as an admin page of their own (figures, charts, exports)."""

    class Meta:
        proxy = True
        verbose_name = _("dashboard")
        verbose_name_plural = _("dashboards")
