from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class Account(models.Model):
    """Money in one currency. Sign convention: an entry's positive amount credits the account
    (money in), a negative amount debits it (money out); the balance is the sum of entries.

    A **guarded** account (a pocket, a program float) may never go below zero, counting what is
    held on it: it keeps a running `balance` and `pending` updated in the same transaction as its
    entries, and the database refuses `balance - pending < 0`. Other accounts (external funding,
    merchant payables, card settlement) only take inserts on the hot path: their running columns
    stay at zero and their balance is summed from entries (see selectors.account_balance)."""

    class Kind(models.TextChoices):
        EXTERNAL_FUNDING = "external_funding", _("External funding")
        PROGRAM_FLOAT = "program_float", _("Program float")
        PROGRAM_RECEIVABLE = "program_receivable", _("Program receivable")
        POCKET = "pocket", _("Pocket")
        MERCHANT_PAYABLE = "merchant_payable", _("Merchant payable")
        CARD_SETTLEMENT = "card_settlement", _("Card settlement")
        PAYOUT = "payout", _("Payout")

    code = models.CharField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    currency = models.CharField(_("currency"), max_length=3)
    guarded = models.BooleanField(_("never negative"), default=False)
    balance = models.BigIntegerField(_("balance"), default=0)
    pending = models.BigIntegerField(_("held"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        db_table = "wallet_account"  # kept from when the ledger was part of the wallet app
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")
        constraints = [
            models.CheckConstraint(
                condition=Q(pending__gte=0), name="account_pending_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(guarded=False) | Q(balance__gte=F("pending")),
                name="account_guarded_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(guarded=True) | Q(balance=0, pending=0),
                name="account_unguarded_keeps_no_running_balance",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def available(self) -> int:
        return self.balance - self.pending


class Transfer(models.Model):
    """One immutable movement of money. A posted transfer has entries summing to zero. A hold
    (`is_pending`) has no entries: it names its debit and credit accounts and reserves `amount`
    on the debit account until a later transfer resolves it through `pending_transfer`, which is
    unique, so a hold resolves at most once."""

    class Kind(models.TextChoices):
        FUND = "fund", _("Program funding")
        ALLOCATE = "allocate", _("Allocation")
        HOLD = "hold", _("Hold")
        CAPTURE = "capture", _("Capture")
        VOID = "void", _("Void")
        HOLD_EXPIRE = "hold_expire", _("Hold expiry")
        REFUND = "refund", _("Refund")
        EXPIRE = "expire", _("Aid expiry")
        REVOKE = "revoke", _("Revocation")
        PAYOUT = "payout", _("Payout")
        FUNDER_RETURN = "funder_return", _("Returned to the funder")

    # Kinds that resolve a hold.
    RESOLVING_KINDS = (Kind.CAPTURE, Kind.VOID, Kind.HOLD_EXPIRE)

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    currency = models.CharField(_("currency"), max_length=3)
    amount = models.BigIntegerField(_("amount"))
    idempotency_key = models.CharField(max_length=255, unique=True, null=True, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    is_pending = models.BooleanField(_("hold"), default=False)
    # Indexed with created_at below (transfer_hold_account_at_idx), which serves both.
    debit_account = models.ForeignKey(
        Account,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="holds_debited",
        db_index=False,
    )
    credit_account = models.ForeignKey(
        Account, models.PROTECT, null=True, blank=True, related_name="holds_credited"
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    pending_transfer = models.OneToOneField(
        "self", models.PROTECT, null=True, blank=True, related_name="resolution"
    )
    refund_of = models.ForeignKey(
        "self", models.PROTECT, null=True, blank=True, related_name="refunds"
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        db_table = "wallet_transfer"  # kept from when the ledger was part of the wallet app
        verbose_name = _("ledger transfer")
        verbose_name_plural = _("ledger transfers")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="transfer_amount_positive"),
            models.CheckConstraint(
                condition=Q(
                    is_pending=True,
                    debit_account__isnull=False,
                    credit_account__isnull=False,
                    pending_transfer__isnull=True,
                )
                | Q(is_pending=False, debit_account__isnull=True, credit_account__isnull=True),
                name="transfer_hold_names_its_accounts",
            ),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=Q(is_pending=True),
                name="transfer_hold_expiry_idx",
            ),
            # A program's statement finds its float's transfers of a period here, in proportion
            # to the period: payments (holds, their captures and releases, by far the most
            # transfers) never touch a float, and are left out, so the authorization path and
            # captures pay nothing for this index.
            models.Index(
                fields=["created_at"],
                condition=~Q(kind__in=["hold", "capture", "void", "hold_expire"]),
                name="transfer_not_payment_at_idx",
            ),
            # A pocket's holds in the order they were placed: what the validity cap leaves out
            # of the account's spending (those before the aid's start, normally none), read under
            # the wallet's lock, and the holds' periods verify() checks Spending against.
            models.Index(
                fields=["debit_account", "created_at"], name="transfer_hold_account_at_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} {self.amount} {self.currency}"

    @property
    def hold_state(self) -> str | None:
        """pending, posted, voided or expired for a hold; None for any other transfer."""
        if not self.is_pending:
            return None
        resolution = getattr(self, "resolution", None)
        if resolution is None:
            return "pending"
        return {
            self.Kind.CAPTURE: "posted",
            self.Kind.VOID: "voided",
            self.Kind.HOLD_EXPIRE: "expired",
        }[resolution.kind]


class Entry(models.Model):
    transfer = models.ForeignKey(Transfer, models.PROTECT, related_name="entries")
    account = models.ForeignKey(Account, models.PROTECT, related_name="entries")
    amount = models.BigIntegerField(_("amount"))

    class Meta:
        db_table = "wallet_entry"  # kept from when the ledger was part of the wallet app
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="entry_amount_not_zero"),
        ]
        indexes = [models.Index(fields=["account", "transfer"], name="entry_account_transfer_idx")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount:+d}"


class VerifyRun(models.Model):
    """One run of `verify` (nightly, or `manage.py ledger verify`): when it ran and how many
    broken invariants it found. The operator's metrics read the latest (its result and age);
    the problems themselves are in the run's log."""

    finished_at = models.DateTimeField(_("finished at"), db_index=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))
    problems = models.PositiveIntegerField(_("problems found"))

    class Meta:
        verbose_name = _("ledger verification")
        verbose_name_plural = _("ledger verifications")

    def __str__(self) -> str:
        return f"{self.finished_at.isoformat()}: {self.problems}"


class Spending(models.Model):
    """What the holds placed on an account in one Paris day, month or year net to, kept as they
    change (issue 19): a hold counts for its amount while pending, for what its capture took
    once captured, minus refunds of that capture, for nothing once voided or expired, always in
    the periods of the moment it was placed (wallet/usage.py). The ledger's services move these
    rows in the transaction, and on the hot path the statement, that moves the hold, so reading
    a pocket's spending in any period reads a few rows, not every hold of the year."""

    class Grain(models.TextChoices):
        DAY = "day", _("Day")
        MONTH = "month", _("Month")
        YEAR = "year", _("Year")

    account = models.ForeignKey(Account, models.PROTECT, db_index=False, related_name="+")
    grain = models.CharField(_("period"), max_length=5, choices=Grain.choices)
    # The period's first day in Paris (the 1st for a month, 1 January for a year).
    start = models.DateField(_("start"))
    net = models.BigIntegerField(_("net spending"), default=0)

    class Meta:
        verbose_name = _("spending")
        verbose_name_plural = _("spending")
        constraints = [
            # Also the reads' index: an account's rows of one grain from a day on.
            models.UniqueConstraint(
                fields=["account", "grain", "start"], name="spending_one_row_per_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.grain} {self.start}: {self.net}"
