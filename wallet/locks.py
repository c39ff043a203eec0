"""The wallet's lock: the row lock that every write touching a wallet's money takes first."""

from wallet.models import Wallet


def wallet_lock(wallet_id: int) -> Wallet:
    """Lock the wallet's row until the transaction ends, and return it as it is now.

    Lock order: the wallet first, then what hangs from it (its pockets' ledger accounts, holds
    and transfers, its payment codes, cards, decisions, aidants, its beneficiary's row). Every
    operation on one wallet queues on this one row, whatever the channel (authorize(), the
    merchant API, Stripe Issuing, the app, erasure), so the locks each takes after it can never
    cross another's and deadlock.

    Nothing deletes a wallet, and its pockets, cards and decisions hold it (PROTECT): an unknown
    id is a caller's mistake, and raises Wallet.DoesNotExist."""
    return Wallet.objects.select_for_update().get(pk=wallet_id)
