"""Writes of the wallet side: beneficiaries, wallets, refunds."""

from django.db import transaction

from wallet.models import Beneficiary, Wallet


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
