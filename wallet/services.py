"""Writes of the wallet side: beneficiaries, wallets, refunds, the holds of decisions."""

from django.db import transaction

from ledger.services import hold_release
from wallet.models import Beneficiary, Wallet
from wallet.models.decisions import DecisionHold


def beneficiary_create(**fields) -> Beneficiary:
    """Register a beneficiary with their (empty) wallet."""
    with transaction.atomic():
        beneficiary = Beneficiary(**fields)
        beneficiary.full_clean()
        beneficiary.save()
        Wallet.objects.create(beneficiary=beneficiary)
        return beneficiary


def wallet_freeze(*, wallet: Wallet, reason: str) -> Wallet:
    Wallet.objects.filter(pk=wallet.pk).update(is_frozen=True, frozen_reason=reason)
    wallet.refresh_from_db()
    return wallet


def wallet_unfreeze(*, wallet: Wallet) -> Wallet:
    Wallet.objects.filter(pk=wallet.pk).update(is_frozen=False, frozen_reason="")
    wallet.refresh_from_db()
    return wallet


def decision_hold_release(*, link: DecisionHold, amount: int) -> DecisionHold | None:
    """Give `amount` of one of a decision's holds back to its pocket (a partial reversal, by the
    merchant or by Stripe). The hold that keeps the rest carries on the decision's split for the
    same pocket; None when nothing stays held. The caller holds the wallet's lock
    (wallet.locks) and is idempotent by its own record."""
    kept = hold_release(hold=link.hold, amount=amount)
    if kept is None:
        return None
    return DecisionHold.objects.create(
        decision_id=link.decision_id, pocket_id=link.pocket_id, hold=kept, amount=kept.amount
    )
