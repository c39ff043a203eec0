"""The ledger account of the card channel."""

import logging

from django.core.cache import cache
from django.db import connection, transaction

from ledger.models import Account
from ledger.services import account_get_or_create

logger = logging.getLogger(__name__)

# How long the real-time path keeps the settlement account: its id and currency never change
# once it exists, so this only bounds how long a database recreated under a cache nobody
# emptied could be pointed at a row that is gone.
HOLD_ACCOUNT_SECONDS = 300


def card_settlement_account(currency: str) -> Account:
    """What the card network will settle: the credit side of every card hold."""
    return account_get_or_create(
        code=f"card-settlement:{currency}",
        name=f"Card network settlement ({currency})",
        kind=Account.Kind.CARD_SETTLEMENT,
        currency=currency,
        guarded=False,
    )


def card_hold_account(currency: str) -> Account:
    """card_settlement_account for the credit side of a real-time authorization's holds, which
    use only its id and currency: from the cache, saving a read within Stripe's wait (its
    balance there is not current, so nothing else may use it), else read or created and cached
    once the caller's transaction commits (a creation rolled back is never cached)."""
    # Named after the database too: a Redis shared by two platforms (staging and production,
    # a benchmark and the tests) must not give one the other's account.
    key = f"stripe_issuing:card-settlement:{connection.settings_dict['NAME']}:{currency}"
    try:
        account = cache.get(key)
    except Exception:  # the cache only saves a read: without it, the database answers
        logger.warning("cache unavailable, the card settlement account is read", exc_info=True)
        account = None
    if account is None:
        account = card_settlement_account(currency)
        transaction.on_commit(lambda: cache.set(key, account, HOLD_ACCOUNT_SECONDS), robust=True)
    return account
