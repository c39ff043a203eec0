"""Writes of the merchant side: onboarding, approval, API keys."""

import secrets
import uuid

from django.db import transaction
from django.utils import timezone

from merchants.models import ApiKey, Merchant
from wallet.ledger.models import Account


def merchant_create(*, currency: str = "EUR", **fields) -> Merchant:
    """Register a merchant, pending approval, with its payable account (insert-only: many
    payments credit it at once, so it keeps no running balance to lock)."""
    with transaction.atomic():
        account = Account.objects.create(
            code=f"merchant-payable:{uuid.uuid4().hex[:16]}",
            name=f"Payable to {fields.get('trade_name', '')}"[:200],
            kind=Account.Kind.MERCHANT_PAYABLE,
            currency=currency,
            guarded=False,
        )
        merchant = Merchant(payable_account=account, **fields)
        merchant.full_clean()
        merchant.save()
        return merchant


def merchant_approve(*, merchant: Merchant) -> Merchant:
    merchant.status = Merchant.Status.APPROVED
    merchant.approved_at = merchant.approved_at or timezone.now()
    merchant.save(update_fields=["status", "approved_at"])
    return merchant


def merchant_suspend(*, merchant: Merchant) -> Merchant:
    merchant.status = Merchant.Status.SUSPENDED
    merchant.save(update_fields=["status"])
    return merchant


def api_key_create(
    *, merchant: Merchant, name: str, mode: str = ApiKey.Mode.LIVE
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never shown again."""
    secret = f"sk_{mode}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        merchant=merchant,
        name=name,
        mode=mode,
        prefix=secret[:16],
        digest=ApiKey.digest_of(secret),
    )
    return key, secret


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    key.revoked_at = key.revoked_at or timezone.now()
    key.save(update_fields=["revoked_at"])
    return key
