"""Recompute the ledger's invariants from its immutable records. Run by `manage.py ledger verify`
and nightly by Celery; the tests run it after every concurrent scenario."""

from dataclasses import dataclass

from django.db.models import Count, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from ledger.models import Account, Entry, Transfer


@dataclass(frozen=True)
class Problem:
    subject: str  # "account <code>" or "transfer #<id>"
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


def verify() -> list[Problem]:
    problems: list[Problem] = []

    unbalanced = (
        Transfer.objects.annotate(total=Sum("entries__amount"), n=Count("entries"))
        .filter(Q(n__gt=0) & ~Q(total=0))
        .values_list("pk", "total")
    )
    problems += [
        Problem(f"transfer #{pk}", f"entries sum to {total}, not 0") for pk, total in unbalanced
    ]

    wrong_currency = Entry.objects.exclude(account__currency=F("transfer__currency")).values_list(
        "transfer_id", "account__code"
    )
    problems += [
        Problem(f"transfer #{pk}", f"entry on {code} is in another currency")
        for pk, code in wrong_currency
    ]

    holds_with_entries = Transfer.objects.filter(is_pending=True, entries__isnull=False).distinct()
    problems += [
        Problem(f"transfer #{pk}", "a hold must not have entries")
        for pk in holds_with_entries.values_list("pk", flat=True)
    ]

    over_posted = Transfer.objects.filter(
        pending_transfer__isnull=False, kind=Transfer.Kind.CAPTURE
    ).filter(amount__gt=F("pending_transfer__amount"))
    problems += [
        Problem(f"transfer #{pk}", "captures more than its hold")
        for pk in over_posted.values_list("pk", flat=True)
    ]
    bad_resolutions = Transfer.objects.filter(pending_transfer__isnull=False).filter(
        Q(pending_transfer__is_pending=False) | ~Q(kind__in=Transfer.RESOLVING_KINDS)
    )
    problems += [
        Problem(f"transfer #{pk}", "resolves something that is not a hold")
        for pk in bad_resolutions.values_list("pk", flat=True)
    ]

    over_refunded = Transfer.objects.annotate(refunded=Sum("refunds__amount")).filter(
        refunded__gt=F("amount")
    )
    problems += [
        Problem(f"transfer #{pk}", f"refunded {refunded}, more than its {amount}")
        for pk, refunded, amount in over_refunded.values_list("pk", "refunded", "amount")
    ]

    entry_sums = (
        Entry.objects.filter(account=OuterRef("pk"))
        .values("account")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    open_holds = (
        Transfer.objects.filter(
            debit_account=OuterRef("pk"), is_pending=True, resolution__isnull=True
        )
        .values("debit_account")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    accounts = Account.objects.filter(guarded=True).annotate(
        entries_total=Coalesce(Subquery(entry_sums), 0),
        held_total=Coalesce(Subquery(open_holds), 0),
    )
    for account in accounts.exclude(balance=F("entries_total"), pending=F("held_total")):
        if account.balance != account.entries_total:
            problems.append(
                Problem(
                    f"account {account.code}",
                    f"balance {account.balance} but its entries sum to {account.entries_total}",
                )
            )
        if account.pending != account.held_total:
            problems.append(
                Problem(
                    f"account {account.code}",
                    f"held {account.pending} but its open holds sum to {account.held_total}",
                )
            )
    negative = Account.objects.filter(guarded=True, balance__lt=F("pending"))
    problems += [
        Problem(f"account {code}", f"negative: balance {balance}, held {pending}")
        for code, balance, pending in negative.values_list("code", "balance", "pending")
    ]
    running_on_unguarded = Account.objects.filter(guarded=False).exclude(balance=0, pending=0)
    problems += [
        Problem(f"account {code}", "keeps a running balance but is not guarded")
        for code in running_on_unguarded.values_list("code", flat=True)
    ]
    return problems
