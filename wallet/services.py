"""Writes of the wallet side: beneficiaries, wallets, refunds."""

from django.db import transaction

from funders.models import Allocation
from wallet.errors import InvalidState
from wallet.ledger.models import Transfer
from wallet.ledger.services import refund_post
from wallet.models import Beneficiary, Pocket, Wallet


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


def capture_refund(*, capture: Transfer, amount: int, idempotency_key: str | None) -> Transfer:
    """Refund (part of) a captured payment. The money goes back to the pocket it came from while
    that aid is active, and to the program's float once it has expired or been revoked, so an
    ended aid is never refilled."""
    if not isinstance(capture, Transfer) or capture.kind != Transfer.Kind.CAPTURE:
        raise InvalidState(message="Only a capture can be refunded.", field="capture")
    paid_from = capture.entries.select_related("account").get(amount__lt=0).account
    pocket = Pocket.objects.get(account=paid_from)
    with transaction.atomic():
        # The allocation's row, as revocation and expiry take it: an aid ending at this moment
        # either ends first (the refund goes to the program) or after (its sweep takes it).
        allocation = (
            Allocation.objects.select_for_update(of=("self",))
            .select_related("program__float_account")
            .get(pk=pocket.allocation_id)
        )
        to = (
            paid_from
            if allocation.status == Allocation.Status.ACTIVE
            else allocation.program.float_account
        )
        return refund_post(capture=capture, amount=amount, to=to, idempotency_key=idempotency_key)
