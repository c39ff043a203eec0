from django.db.models import Sum

from ledger.models import Account


def account_balance(account: Account) -> int:
    """The balance of any account: the running column of a guarded one, the sum of entries of
    an insert-only one (merchant payables, funding, settlement)."""
    if account.guarded:
        return account.balance
    return account.entries.aggregate(total=Sum("amount"))["total"] or 0
