"""Writes of the merchant side: onboarding, approval, API keys."""

import secrets
import uuid

from django.db import transaction
from django.utils import timezone

from merchants.models import ApiKey, Merchant
from wallet.authorization.request import AuthorizationRequest, MerchantPlace
from wallet.authorization.services import authorize
from wallet.errors import UnknownInstrument
from wallet.ledger.models import Account
from wallet.models import Card, Decision


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


def payment_authorize(
    *,
    merchant: Merchant,
    card: str,
    amount: int,
    currency: str,
    partial_approval_allowed: bool = False,
    idempotency_key: str | None = None,
) -> Decision:
    """Authorize a payment at a merchant on the API channel. The merchant's category and place
    are the registered ones; the request only says who pays and how much."""
    instrument = Card.objects.select_related("wallet").filter(reference=card).first()
    if instrument is None:
        raise UnknownInstrument(field="card")
    request = AuthorizationRequest(
        amount=amount,
        currency=currency,
        merchant=merchant_place(merchant),
        at=timezone.now(),
        channel=Decision.Channel.API,
        partial_allowed=partial_approval_allowed,
    )
    # Without a key the client cannot retry safely; each call is then a payment of its own.
    key = idempotency_key or f"auto:{uuid.uuid4().hex}"
    return authorize(
        request=request,
        wallet=instrument.wallet,
        card=instrument,
        merchant=merchant,
        idempotency_key=f"api:{merchant.pk}:{key}",
    )


def merchant_place(merchant: Merchant) -> MerchantPlace:
    return MerchantPlace(
        name=merchant.trade_name,
        mcc=merchant.mcc,
        country=merchant.country,
        merchant_id=merchant.pk,
        postcode=merchant.postcode or None,
        commune_code=merchant.commune_code or None,
        latitude=float(merchant.latitude) if merchant.latitude is not None else None,
        longitude=float(merchant.longitude) if merchant.longitude is not None else None,
    )
