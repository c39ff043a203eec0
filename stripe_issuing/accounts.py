"""The ledger account of the card channel."""

from ledger.models import Account
from ledger.services import account_get_or_create


def settlement_code(currency: str) -> str:
    """The code of the currency's card settlement account (a unique key of the accounts)."""
    return f"card-settlement:{currency}"


def card_settlement_account(currency: str) -> Account:
    """What the card network will settle: the credit side of every card hold."""
    return account_get_or_create(
        code=settlement_code(currency),
        name=f"Card network settlement ({currency})",
        kind=Account.Kind.CARD_SETTLEMENT,
        currency=currency,
        guarded=False,
    )
