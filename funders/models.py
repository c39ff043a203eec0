import uuid
from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    FileExtensionValidator,
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField
from simple_history.models import HistoricalRecords

from core.validators import (
    validate_bic,
    validate_currency,
    validate_french_postcode,
    validate_iban,
    validate_insee_commune,
    validate_siret,
)
from engine import geo
from funders import eligibility


class LegalBasis(models.TextChoices):
    """Why a funder may process what it knows of a person (GDPR article 6), stated for each
    file of personal data it sends."""

    CONSENT = "consent", _("The person's consent")
    PUBLIC_TASK = "public_task", _("A task in the public interest (the aid is a public service)")
    LEGAL_OBLIGATION = "legal_obligation", _("A legal obligation")
    CONTRACT = "contract", _("A contract with the person (a mutual insurer's member)")


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
    # Shown to beneficiaries beside each aid and each refusal: who gives it, and whom to call.
    # Raster images only: an SVG served from our origin could carry script.
    logo = models.FileField(
        _("logo"),
        upload_to="funders/logos/",
        blank=True,
        validators=[FileExtensionValidator(["png", "jpg", "jpeg", "webp"])],
        help_text=_("A PNG, JPEG or WebP image, shown small beside the aid in the app."),
    )
    contact_phone = PhoneNumberField(
        _("contact phone"),
        blank=True,
        region="FR",
        help_text=_("The number beneficiaries call about their aid; shown in the app."),
    )
    # SMS about this funder's aid leave under its name, as its letters do; an alphanumeric
    # sender is 3 to 11 letters, digits or spaces, with a letter (operators' rule).
    sms_sender = models.CharField(
        _("SMS sender name"),
        max_length=11,
        blank=True,
        validators=[
            RegexValidator(
                r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{3,11}$",
                _("3 to 11 letters, digits or spaces, with at least one letter, no accent."),
            )
        ],
        help_text=_(
            "The sender people see on SMS about this funder's aid, e.g. ISERE. Empty: the "
            "platform's name."
        ),
    )
    # Where a closed program's money left unspent is paid back (funders/closing.py).
    iban = models.CharField(_("IBAN"), max_length=34, blank=True, validators=[validate_iban])
    bic = models.CharField(_("BIC"), max_length=11, blank=True, validators=[validate_bic])
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
    funder = models.ForeignKey(
        Funder, models.CASCADE, related_name="memberships", verbose_name=_("funder")
    )
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
    are the defaults of every allocation made from it (see engine/rules.py for the
    shape)."""

    funder = models.ForeignKey(
        Funder, models.PROTECT, related_name="programs", verbose_name=_("funder")
    )
    name = models.CharField(_("name"), max_length=120)
    purpose = models.TextField(_("purpose"), blank=True)
    currency = models.CharField(
        _("currency"), max_length=3, default="EUR", validators=[validate_currency]
    )
    float_account = models.OneToOneField(
        "ledger.Account", models.PROTECT, related_name="program", editable=False
    )
    rules = models.JSONField(_("rules"), default=dict, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    # The validity every grant, import row and campaign of the program starts from (each may
    # change it): a first day (today when empty or past), and a last day or a number of days.
    default_valid_from = models.DateField(
        _("first day"),
        null=True,
        blank=True,
        help_text=_("Leave empty: aid granted is valid from the day it is granted."),
    )
    default_valid_until = models.DateField(
        _("last day (included)"),
        null=True,
        blank=True,
        help_text=_("The aid can be spent until the end of this day, Paris time."),
    )
    default_validity_days = models.PositiveSmallIntegerField(
        _("or a number of days"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Counted from the first day, which is included. Used when no last day is set."),
    )
    # Non-use (funders/nonuse.py): who is reached out to, each setting off when empty.
    nonuse_idle_days = models.PositiveSmallIntegerField(
        _("no payment for (days)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Reach out to a person whose aid has had no payment for this many days."),
    )
    nonuse_expiry_days = models.PositiveSmallIntegerField(
        _("aid ending within (days)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Reach out to a person whose aid ends within this many days…"),
    )
    nonuse_unspent_percent = models.PositiveSmallIntegerField(
        _("with more than this share unspent (%)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(100)],
        help_text=_("…while more than this share of the aid is still unspent."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("program")
        verbose_name_plural = _("programs")
        ordering = ["funder__name", "name"]

    def __str__(self) -> str:
        return self.name

    def default_validity(self, today: date | None = None) -> tuple[date, date | None]:
        """The first and last days (both included) a grant made `today` gets by default."""
        today = today or timezone.localdate()
        start = max(today, self.default_valid_from or today)
        if self.default_valid_until is not None:
            return start, max(start, self.default_valid_until)
        if self.default_validity_days:
            return start, start + timedelta(days=self.default_validity_days - 1)
        return start, None


class Allocation(models.Model):
    """A grant of an amount from a program to a beneficiary, valid in [valid_from, valid_until),
    under the program's rules with this allocation's overrides. It creates one pocket."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        REVOKED = "revoked", _("Revoked")
        EXPIRED = "expired", _("Expired")

    program = models.ForeignKey(
        Program, models.PROTECT, related_name="allocations", verbose_name=_("program")
    )
    beneficiary = models.ForeignKey(
        "wallet.Beneficiary",
        models.PROTECT,
        related_name="allocations",
        verbose_name=_("beneficiary"),
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
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
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

    funder = models.ForeignKey(
        Funder, models.PROTECT, related_name="enrolments", verbose_name=_("funder")
    )
    beneficiary = models.ForeignKey(
        "wallet.Beneficiary",
        models.PROTECT,
        related_name="enrolments",
        verbose_name=_("beneficiary"),
    )
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

    program = models.ForeignKey(
        Program, models.PROTECT, related_name="fundings", verbose_name=_("program")
    )
    amount = models.BigIntegerField(_("amount (cents)"))
    method = models.CharField(_("method"), max_length=16, choices=Method.choices)
    reference = models.CharField(
        _("reference"),
        max_length=140,
        help_text=_("The bank transfer's reference or the Stripe top-up's id."),
    )
    received_on = models.DateField(_("received on"))
    transfer = models.OneToOneField(
        "ledger.Transfer", models.PROTECT, related_name="funding", editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
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

    program = models.ForeignKey(
        Program, models.PROTECT, related_name="recurring_allocations", verbose_name=_("program")
    )
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
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
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


class SpreadsheetImport(models.Model):
    """A file sent by a funder's staff (CSV or XLSX): checked first (a dry run shows each row's
    result), then applied all at once. See funders/spreadsheets.py for the reading."""

    class Status(models.TextChoices):
        CHECKING = "checking", _("Being checked")
        CHECKED = "checked", _("Checked, waiting for confirmation")
        INVALID = "invalid", _("Has errors")
        APPLYING = "applying", _("Being applied")
        APPLIED = "applied", _("Applied")
        FAILED = "failed", _("Failed")

    filename = models.CharField(_("file name"), max_length=255)
    content = models.BinaryField(_("content"))
    digest = models.CharField(_("SHA-256 of the file"), max_length=64)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.CHECKING
    )
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("rows processed"), default=0)
    report = models.JSONField(_("result of each row"), default=list, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.filename


class AllocationImport(SpreadsheetImport):
    """A file of allocations to grant. Applying the same file twice grants once: each row's
    idempotency key comes from the program, the file's digest and the row's number."""

    program = models.ForeignKey(
        Program, models.PROTECT, related_name="imports", verbose_name=_("program")
    )
    total_amount = models.BigIntegerField(_("total amount (cents)"), default=0)
    # Off (the default), a person who already holds the program's aid is flagged by the check
    # and skipped by the apply: no silent double grant; on, they are granted again on purpose.
    grant_to_holders = models.BooleanField(
        _("grant again to people who already hold this aid"), default=False
    )

    class Meta(SpreadsheetImport.Meta):
        verbose_name = _("allocation import")
        verbose_name_plural = _("allocation imports")


class ProfileImport(SpreadsheetImport):
    """A file of what a funder knows of the people it helps (postcode, birth date, household...),
    read into their eligibility profiles. Only the columns its programs' criteria use are
    accepted (see funders/profile_imports.py)."""

    funder = models.ForeignKey(
        Funder, models.PROTECT, related_name="profile_imports", verbose_name=_("funder")
    )
    legal_basis = models.CharField(_("legal basis"), max_length=24, choices=LegalBasis.choices)

    class Meta(SpreadsheetImport.Meta):
        verbose_name = _("beneficiary data import")
        verbose_name_plural = _("beneficiary data imports")


# --- proactive aid: criteria, campaigns, proposals -----------------------------------------------


class BeneficiaryProfile(models.Model):
    """What a funder knows of a person it helps, for its programs' eligibility criteria. Kept to
    the facts those criteria use (an import refuses other columns), private to that funder, and
    deleted when the person's data is erased. Any field may be unknown (empty): a criterion on an
    unknown fact is not met."""

    enrolment = models.OneToOneField(Enrolment, models.CASCADE, related_name="profile")
    postcode = models.CharField(
        _("postcode"), max_length=5, blank=True, validators=[validate_french_postcode]
    )
    commune = models.CharField(
        _("commune (INSEE code)"),
        max_length=5,
        blank=True,
        validators=[validate_insee_commune],
        help_text=_("The commune's INSEE code, such as 38185 for Grenoble (not its postcode)."),
    )
    birth_date = models.DateField(_("date of birth"), null=True, blank=True)
    household_size = models.PositiveSmallIntegerField(
        _("people in the household"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    dependent_children = models.PositiveSmallIntegerField(
        _("dependent children"), null=True, blank=True
    )
    income_bracket = models.PositiveSmallIntegerField(
        _("income bracket"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text=_("The funder's own income brackets, 1 being the lowest."),
    )
    attributes = models.JSONField(
        _("other facts"),
        default=dict,
        blank=True,
        help_text=_("Facts from the funder's own files that a criterion names, as text."),
    )
    legal_basis = models.CharField(
        _("legal basis"), max_length=24, choices=LegalBasis.choices, blank=True
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("eligibility profile")
        verbose_name_plural = _("eligibility profiles")
        constraints = [
            models.CheckConstraint(
                condition=Q(household_size__isnull=True) | Q(household_size__gte=1),
                name="profile_household_not_empty",
            ),
        ]

    def __str__(self) -> str:
        return str(self.enrolment)

    def clean(self):
        # Here rather than in each form or file reader: every way in goes through profile_save,
        # which calls full_clean().
        errors = {}
        self.commune = (self.commune or "").strip().upper()
        if self.commune and geo.departement_from_commune(self.commune) is None:
            errors["commune"] = ValidationError(
                _("This is not the INSEE code of a French commune."), code="invalid_commune"
            )
        if self.birth_date is not None and self.birth_date > timezone.localdate():
            errors["birth_date"] = ValidationError(
                _("This date of birth is in the future."), code="birth_date_in_future"
            )
        elif self.birth_date is not None and self.birth_date < eligibility.OLDEST_BIRTH_DATE:
            errors["birth_date"] = ValidationError(
                _("A date of birth before 1900 is surely a mistake."), code="birth_date_too_old"
            )
        if self.household_size is not None and self.household_size > eligibility.MAX_HOUSEHOLD:
            errors["household_size"] = ValidationError(
                _("At most %(max)s people."),
                code="out_of_range",
                params={"max": eligibility.MAX_HOUSEHOLD},
            )
        size, children = self.household_size, self.dependent_children
        if size is not None and children is not None and children >= size:
            errors["dependent_children"] = ValidationError(
                _(
                    "The household includes its children: it has more people than "
                    "dependent children."
                ),
                code="children_not_fewer_than_household",
            )
        for name, value in (self.attributes or {}).items():
            if len(str(value)) > eligibility.MAX_ATTRIBUTE_LENGTH:
                errors["attributes"] = ValidationError(
                    _("“%(name)s”: at most %(max)s characters."),
                    code="too_long",
                    params={"name": name, "max": eligibility.MAX_ATTRIBUTE_LENGTH},
                )
        if errors:
            raise ValidationError(errors)


class EligibilityCriterion(models.Model):
    """One condition a person must meet to be proposed a program's aid; a person meets the
    program's criteria when they meet every one (see funders/eligibility.py). Which fields a kind
    reads: zone kinds read `values`; number kinds read `minimum` and/or `maximum` (both included);
    other_aid reads `other_program` and `aid_condition`; attribute reads `attribute` and either
    `values` (one of) or `minimum`/`maximum` (a number)."""

    class Kind(models.TextChoices):
        DEPARTEMENT = "departement", _("Lives in a département")
        COMMUNE = "commune", _("Lives in a commune")
        POSTCODE = "postcode", _("Lives at a postcode")
        AGE = "age", _("Age")
        HOUSEHOLD_SIZE = "household_size", _("People in the household")
        DEPENDENT_CHILDREN = "dependent_children", _("Dependent children")
        INCOME_BRACKET = "income_bracket", _("Income bracket")
        OTHER_AID = "other_aid", _("Other aid")
        ATTRIBUTE = "attribute", _("Fact from the funder's files")

    class AidCondition(models.TextChoices):
        HOLDS = "holds", _("holds it now")
        DOES_NOT_HOLD = "does_not_hold", _("does not hold it now")
        EXHAUSTED = "exhausted", _("has spent all of it")
        NEVER_RECEIVED = "never_received", _("never received it")

    program = models.ForeignKey(
        Program, models.CASCADE, related_name="criteria", verbose_name=_("program")
    )
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    values = models.JSONField(
        _("values"),
        default=list,
        blank=True,
        help_text=_("The accepted values: département numbers, commune codes, postcodes..."),
    )
    minimum = models.IntegerField(_("at least"), null=True, blank=True)
    maximum = models.IntegerField(_("at most"), null=True, blank=True)
    other_program = models.ForeignKey(
        Program,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("other program"),
    )
    aid_condition = models.CharField(
        _("condition on the other aid"), max_length=16, choices=AidCondition.choices, blank=True
    )
    attribute = models.SlugField(
        _("name of the fact"),
        max_length=40,
        blank=True,
        help_text=_("As the column of your file names it, such as “quotient_familial”."),
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("eligibility criterion")
        verbose_name_plural = _("eligibility criteria")
        ordering = ["program", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(minimum__isnull=True)
                | Q(maximum__isnull=True)
                | Q(minimum__lte=F("maximum")),
                name="criterion_bounds_in_order",
            ),
        ]

    def __str__(self) -> str:
        return self.get_kind_display()

    def clean(self):
        # Fields the kind does not read are dropped, so the record says only what is checked.
        kinds = self.Kind
        reads_values = self.kind in (kinds.DEPARTEMENT, kinds.COMMUNE, kinds.POSTCODE)
        reads_values |= self.kind == kinds.ATTRIBUTE
        reads_bounds = self.kind in (
            kinds.AGE,
            kinds.HOUSEHOLD_SIZE,
            kinds.DEPENDENT_CHILDREN,
            kinds.INCOME_BRACKET,
            kinds.ATTRIBUTE,
        )
        self.values = eligibility.clean_values(self.kind, self.values or []) if reads_values else []
        if not reads_bounds:
            self.minimum = self.maximum = None
        if self.kind != kinds.OTHER_AID:
            self.other_program, self.aid_condition = None, ""
        if self.kind != kinds.ATTRIBUTE:
            self.attribute = ""
        errors = eligibility.criterion_errors(self)
        other = self.other_program
        if other is not None and self.program_id is not None:
            if other.pk == self.program_id:
                errors.setdefault("other_program", []).append(
                    _("Choose another program: a campaign already leaves out who holds this one.")
                )
            elif other.funder_id != self.program.funder_id:
                errors.setdefault("other_program", []).append(
                    _("Choose one of this funder's programs.")
                )
        if errors:
            raise ValidationError(errors)


class Campaign(models.Model):
    """Looks for the people a program's criteria make eligible, among everyone the funder helps,
    and proposes the aid to each one who does not hold it yet. Nothing is granted until an agent
    accepts a proposal."""

    class Frequency(models.TextChoices):
        ON_DEMAND = "on_demand", _("Only when asked")
        DAILY = "daily", _("Every day")
        WEEKLY = "weekly", _("Every week")
        MONTHLY = "monthly", _("Every month")

    program = models.ForeignKey(
        Program, models.PROTECT, related_name="campaigns", verbose_name=_("program")
    )
    name = models.CharField(_("name"), max_length=120)
    amount = models.BigIntegerField(_("amount proposed (cents)"))
    amount_per_child = models.BigIntegerField(_("added per dependent child (cents)"), default=0)
    validity_days = models.PositiveSmallIntegerField(
        _("days each grant stays valid"), null=True, blank=True
    )
    frequency = models.CharField(
        _("runs"), max_length=16, choices=Frequency.choices, default=Frequency.ON_DEMAND
    )
    is_active = models.BooleanField(_("active"), default=True)
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="campaign_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_per_child__gte=0), name="campaign_amount_per_child_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignRun(models.Model):
    """One evaluation of a campaign's criteria: over everyone the funder helps (on demand or on
    schedule), or over the people whose data just changed. `breakdown` holds, per group of
    people (département, age band, household type), how many were evaluated, eligible and
    already holding the aid: the fairness view's denominators."""

    class Trigger(models.TextChoices):
        ON_DEMAND = "on_demand", _("Asked by an agent")
        SCHEDULE = "schedule", _("On schedule")
        DATA_CHANGE = "data_change", _("A person's data changed")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    campaign = models.ForeignKey(Campaign, models.CASCADE, related_name="runs")
    trigger = models.CharField(_("trigger"), max_length=16, choices=Trigger.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.RUNNING
    )
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    evaluated = models.PositiveIntegerField(_("people evaluated"), default=0)
    eligible = models.PositiveIntegerField(_("eligible"), default=0)
    already_holding = models.PositiveIntegerField(_("eligible, already holding the aid"), default=0)
    proposed = models.PositiveIntegerField(_("new proposals"), default=0)
    withdrawn = models.PositiveIntegerField(_("proposals withdrawn"), default=0)
    breakdown = models.JSONField(_("figures per group"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("campaign run")
        verbose_name_plural = _("campaign runs")
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.campaign} @ {self.started_at:%Y-%m-%d %H:%M}"


class Proposal(models.Model):
    """A campaign's proposal to grant its program's aid to one person, with the criteria they
    met, as they stood that day (`reasons`, put into words by funders/eligibility.py). An agent
    accepts it (perhaps for another amount: `granted_amount`), which grants through the
    allocation service, or rejects it with a reason. A pending proposal whose person no longer
    meets the criteria is withdrawn, with the criteria they failed (`unmet`)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a decision")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    campaign = models.ForeignKey(
        Campaign, models.PROTECT, related_name="proposals", verbose_name=_("campaign")
    )
    beneficiary = models.ForeignKey(
        "wallet.Beneficiary",
        models.PROTECT,
        related_name="proposals",
        verbose_name=_("beneficiary"),
    )
    run = models.ForeignKey(
        CampaignRun, models.SET_NULL, null=True, blank=True, related_name="proposals"
    )
    amount = models.BigIntegerField(_("amount proposed (cents)"))
    granted_amount = models.BigIntegerField(_("amount granted (cents)"), null=True, blank=True)
    reasons = models.JSONField(_("criteria met"), default=list)
    unmet = models.JSONField(_("criteria no longer met"), default=list, blank=True)
    # The person's groups on the day of the proposal, for the fairness view.
    departement = models.CharField(_("département"), max_length=3, blank=True)
    age_band = models.CharField(_("age band"), max_length=8, blank=True)
    household_type = models.CharField(_("household"), max_length=16, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_reason = models.CharField(_("reason"), max_length=500, blank=True)
    allocation = models.OneToOneField(
        Allocation, models.PROTECT, null=True, blank=True, related_name="proposal"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("proposal")
        verbose_name_plural = _("proposals")
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "beneficiary"],
                condition=Q(status="pending"),
                name="proposal_one_pending_per_person",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="proposal_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status="accepted")
                | (Q(allocation__isnull=False) & Q(granted_amount__gt=0)),
                name="proposal_accepted_has_allocation",
            ),
        ]
        indexes = [models.Index(fields=["campaign", "status"], name="proposal_campaign_status")]

    def __str__(self) -> str:
        return f"{self.campaign} → {self.beneficiary}"


class ProgramDashboard(Program):
    """The reports of a program, as an admin page of their own (figures, charts, exports)."""

    class Meta:
        proxy = True
        verbose_name = _("dashboard")
        verbose_name_plural = _("dashboards")


class RuleDryRun(models.Model):
    """A proposed change of a program's rules (or of one allocation's overrides), replayed over
    the program's past decisions before it is saved (funders/dry_runs.py). The program's form
    saves the change only when it names a finished dry run of exactly these rules that its
    author has seen."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Waiting to run")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    program = models.ForeignKey(
        Program, models.CASCADE, related_name="dry_runs", verbose_name=_("program")
    )
    allocation = models.ForeignKey(
        Allocation,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="dry_runs",
        verbose_name=_("allocation"),
        help_text=_("Set when the change is to one allocation's overrides, not to the program."),
    )
    rules = models.JSONField(_("proposed rules"))
    since = models.DateTimeField(_("from"))
    until = models.DateTimeField(_("until"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    total = models.PositiveIntegerField(_("decisions to replay"), default=0)
    processed = models.PositiveIntegerField(_("decisions replayed"), default=0)
    result = models.JSONField(_("result"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("run by")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    seen_at = models.DateTimeField(_("result seen at"), null=True, blank=True)

    class Meta:
        verbose_name = _("rule dry run")
        verbose_name_plural = _("rule dry runs")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.program} #{self.pk}"


class NonUseEpisode(models.Model):
    """A stretch of time when a person does not use their aid (funders/nonuse.py): opened when
    the program's non-use setting first finds them, closed when it no longer does. Each episode
    sends one outreach and puts one person to call on the agents' worklist."""

    class Kind(models.TextChoices):
        IDLE = "idle", _("No payment for a while")
        EXPIRING = "expiring", _("Aid ending with much unspent")

    class Status(models.TextChoices):
        TO_CALL = "to_call", _("To call")
        DONE = "done", _("Done")

    program = models.ForeignKey(
        Program, models.PROTECT, related_name="nonuse_episodes", verbose_name=_("program")
    )
    allocation = models.ForeignKey(
        Allocation, models.PROTECT, related_name="nonuse_episodes", verbose_name=_("allocation")
    )
    beneficiary = models.ForeignKey(
        "wallet.Beneficiary",
        models.PROTECT,
        related_name="nonuse_episodes",
        verbose_name=_("beneficiary"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    opened_at = models.DateTimeField(_("found on"))
    closed_at = models.DateTimeField(_("ended on"), null=True, blank=True)
    unspent = models.BigIntegerField(_("unspent when found (cents)"))
    aidant_told = models.BooleanField(_("aidant told"), default=False)
    status = models.CharField(
        _("worklist"), max_length=16, choices=Status.choices, default=Status.TO_CALL
    )

    class Meta:
        verbose_name = _("person not using their aid")
        verbose_name_plural = _("people not using their aid (worklist)")
        ordering = ["status", "-opened_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["allocation", "kind"],
                condition=Q(closed_at__isnull=True),
                name="nonuse_one_open_episode",
            )
        ]

    def __str__(self) -> str:
        return f"{self.beneficiary} · {self.program}"


class NonUseCall(models.Model):
    """An agent's call to a person of the worklist, and how it went. Kept, never changed: the
    episode's history."""

    class Outcome(models.TextChoices):
        REACHED = "reached", _("Reached")
        NO_ANSWER = "no_answer", _("No answer")
        NEEDS_HELP = "needs_help", _("Needs help")
        NOT_NEEDED = "not_needed", _("Does not need the aid")

    episode = models.ForeignKey(
        NonUseEpisode, models.CASCADE, related_name="calls", verbose_name=_("episode")
    )
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    note = models.CharField(_("note"), max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("by")
    )
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.episode} · {self.get_outcome_display()}"


class ProgramClosure(models.Model):
    """A program closed by its funder (funders/closing.py): no new grant from then on; once every
    aid has ended and returned its remainder, what is left on the float is paid back to the
    funder's bank account by SEPA credit transfer."""

    program = models.OneToOneField(
        Program, models.PROTECT, related_name="closure", verbose_name=_("program")
    )
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("closed by")
    )
    closed_at = models.DateTimeField(_("closed at"))
    returned_at = models.DateTimeField(_("paid back at"), null=True, blank=True)
    amount_returned = models.BigIntegerField(_("paid back (cents)"), null=True, blank=True)
    transfer = models.OneToOneField(
        "ledger.Transfer", models.PROTECT, null=True, blank=True, related_name="+"
    )
    iban = models.CharField(_("paid to IBAN"), max_length=34, blank=True)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)

    class Meta:
        verbose_name = _("program closure")
        verbose_name_plural = _("program closures")

    def __str__(self) -> str:
        return str(self.program)


# --- the dashboards' rollup (funders/rollups.py) --------------------------------------------------


class RollupWatermark(models.Model):
    """How far the rollup tables below have folded the ledger and the decisions in: every
    transfer and every decision up to these ids. One row. A dashboard reads the rollup plus
    the rows after these ids, in one statement, so its figures are exact to the moment."""

    transfer = models.BigIntegerField(_("last transfer folded in"), default=0)
    decision = models.BigIntegerField(_("last decision folded in"), default=0)
    # EndedPocketLeft is right as of this transfer watermark: a fold re-reads only the pockets
    # the transfers after it moved. None: never listed, the next fold reads every ended pocket.
    ended = models.BigIntegerField(_("ended pockets listed up to transfer"), null=True, blank=True)
    # ProgramRefusal came after the other tables: it folds the decisions from its own mark.
    refusal = models.BigIntegerField(_("last decision folded in as refusals"), default=0)
    folded_at = models.DateTimeField(_("folded at"), null=True, blank=True)

    class Meta:
        verbose_name = _("dashboard rollup watermark")
        constraints = [models.CheckConstraint(condition=Q(id=1), name="rollup_watermark_one_row")]

    def __str__(self) -> str:
        return f"transfer {self.transfer}, decision {self.decision}"


class ProgramFlow(models.Model):
    """What moved on a program's accounts in a day (Europe/Paris), by account and kind of
    transfer: the sum of the ledger entries, and what holds added to or released from the
    pockets' pending amounts."""

    class Role(models.TextChoices):
        FLOAT = "float", _("float")
        POCKET = "pocket", _("pocket")
        RECEIVABLE = "receivable", _("receivable")

    program = models.ForeignKey(Program, models.CASCADE, related_name="+")
    day = models.DateField()
    role = models.CharField(max_length=16, choices=Role.choices)
    kind = models.CharField(max_length=32)
    amount = models.BigIntegerField(default=0)
    pending = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["program", "day", "role", "kind"], name="program_flow_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.program_id} {self.day} {self.role} {self.kind}"


class ProgramSpending(models.Model):
    """Captures and refunds on a program's pockets in a day (Europe/Paris), by the merchant
    as the decision recorded it (0: no merchant of ours, a card shop known by its name)."""

    program = models.ForeignKey(Program, models.CASCADE, related_name="+")
    day = models.DateField()
    merchant_id = models.BigIntegerField(default=0)
    merchant_name = models.CharField(max_length=200, blank=True)
    mcc = models.CharField(max_length=8, blank=True)
    departement = models.CharField(max_length=8, blank=True)
    captured = models.BigIntegerField(default=0)
    refunded = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["program", "day", "merchant_id", "merchant_name", "mcc", "departement"],
                name="program_spending_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.program_id} {self.day} {self.merchant_name}"


class ProgramDecline(models.Model):
    """Payments a program's pockets refused in a day (Europe/Paris), by reason: each payment
    once per reason, as declines_by_reason counts them."""

    program = models.ForeignKey(Program, models.CASCADE, related_name="+")
    day = models.DateField()
    reason = models.CharField(max_length=64)
    payments = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["program", "day", "reason"], name="program_decline_key")
        ]

    def __str__(self) -> str:
        return f"{self.program_id} {self.day} {self.reason}"


class ProgramRefusal(models.Model):
    """A payment a program's pockets refused (declined or partially approved; as
    ProgramDecline counts it), one row per program it asked: what the refusals page and export
    group by reason, shop, kind of shop and commune, without reading every decision of the
    period. Refusals are few: one row each is small."""

    program = models.ForeignKey(Program, models.CASCADE, related_name="+")
    decision_id = models.BigIntegerField()
    day = models.DateField()
    wallet_id = models.BigIntegerField()
    amount = models.BigIntegerField()  # refused: asked minus approved
    merchant_id = models.BigIntegerField(null=True)
    # As the decision recorded them: texts of any length a card network sends.
    merchant_name = models.TextField(blank=True)
    mcc = models.CharField(max_length=8, blank=True)
    commune = models.TextField(blank=True)  # its code, or its postcode
    reasons = models.JSONField(default=list)  # the program's reason codes, sorted

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["program", "decision_id"], name="program_refusal_key")
        ]
        indexes = [models.Index(fields=["program", "day"], name="program_refusal_day_idx")]

    def __str__(self) -> str:
        return f"{self.program_id} {self.day} {self.decision_id}"


class EndedPocketLeft(models.Model):
    """A pocket of ended aid that kept money beyond its holds at the last fold (normally none:
    the sweep returns it). With the pockets the ledger moved since, they are the only ones a
    dashboard reads to tell what ended aid keeps (funders/rollups.py)."""

    program = models.ForeignKey(Program, models.CASCADE, related_name="+")
    account_id = models.BigIntegerField(unique=True)

    def __str__(self) -> str:
        return f"{self.program_id}: account {self.account_id}"


def _export_path(export: "ProgramExport", filename: str) -> str:
    # A folder of its own per export, named at random: two exports of a day never collide,
    # and a file's name tells nothing about where another funder's is.
    return f"exports/{export.program_id}/{uuid.uuid4().hex}/{filename}"


class ProgramExport(models.Model):
    """A file for a funder's accountants (allocations, payments or statement of a period),
    built by a task into the file storage (STORAGES["default"]), where any app server finds
    it: the dashboard shows it being prepared, then ready to download."""

    class Status(models.TextChoices):
        PREPARING = "preparing", _("Being prepared")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    program = models.ForeignKey(
        Program, models.CASCADE, related_name="exports", verbose_name=_("program")
    )
    kind = models.CharField(_("kind"), max_length=32)
    file_format = models.CharField(_("format"), max_length=8)
    # The headings and labels are written in the language of whoever asked.
    language = models.CharField(_("language"), max_length=8, default="fr")
    period_start = models.DateField(_("from"))
    period_end = models.DateField(_("to"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PREPARING
    )
    file = models.FileField(_("file"), upload_to=_export_path, blank=True, max_length=300)
    filename = models.CharField(_("file name"), max_length=200, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.BigIntegerField(_("size (bytes)"), null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("asked by"),
    )
    created_at = models.DateTimeField(_("asked at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        indexes = [models.Index(fields=["program", "-created_at"], name="export_program_idx")]

    def __str__(self) -> str:
        return self.filename or f"{self.kind} {self.period_start} to {self.period_end}"
