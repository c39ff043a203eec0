"""Writes of the merchant side: onboarding (its card acceptors: merchants.acceptors), approval,
review flags, API keys."""

import logging
import secrets
import uuid
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError
from ledger.models import Account
from merchants.acceptors import card_acceptor_add
from merchants.api_keys import api_keys_forget
from merchants.models import ApiKey, CardAcceptor, Merchant
from merchants.signals import merchant_approved

logger = logging.getLogger(__name__)


class MerchantNotActive(DomainError):
    code = "merchant_not_active"
    status = 403
    default_message = _(
        "This merchant account is not active (awaiting approval or suspended): it cannot use "
        "the API. Please contact the platform."
    )


def merchant_create(
    *, currency: str = "EUR", card_acceptors: Sequence[dict] = (), **fields
) -> Merchant:
    """Register a merchant, pending approval, with its payable account (insert-only: many
    payments credit it at once, so it keeps no running balance to lock) and the card acceptors
    it gave (`{"network_id", "terminal_id"}`; CardAcceptorTaken when one is another
    merchant's)."""
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
        for acceptor in card_acceptors:
            card_acceptor_add(
                merchant=merchant,
                network_id=acceptor["network_id"],
                terminal_id=acceptor.get("terminal_id", ""),
                how=CardAcceptor.How.ONBOARDING,
            )
        return merchant


def merchant_approve(*, merchant: Merchant) -> Merchant:
    """Approve a merchant; the first approval is announced (merchant_approved: the shop's
    till tells its owner)."""
    with transaction.atomic():
        first = merchant.approved_at is None
        merchant.status = Merchant.Status.APPROVED
        merchant.approved_at = merchant.approved_at or timezone.now()
        merchant.save(update_fields=["status", "approved_at"])
        if first:
            merchant_approved.send(sender=Merchant, merchant=merchant)
    return merchant


def merchant_suspend(*, merchant: Merchant) -> Merchant:
    merchant.status = Merchant.Status.SUSPENDED
    merchant.save(update_fields=["status"])
    return merchant


class ApiKeyLimitReached(DomainError):
    code = "api_key_limit_reached"
    status = 409
    default_message = _(
        "This merchant already has the most active API keys allowed. Revoke a key you no "
        "longer use, then create the new one."
    )


def merchant_ensure_active(*, merchant: Merchant) -> None:
    """Refuse a merchant that may not take payments: only an approved one uses the API."""
    if merchant.status != Merchant.Status.APPROVED:
        raise MerchantNotActive()


def merchant_flag(*, merchant: Merchant, reason: str) -> bool:
    """Flag a merchant for an operator's review (shown in the admin, logged as a warning).
    Returns False if it was already flagged: the first reason stands until the review."""
    flagged = Merchant.objects.filter(pk=merchant.pk, flagged_at__isnull=True).update(
        flagged_at=timezone.now(), flag_reason=reason[:300]
    )
    if flagged:
        api_keys_forget(merchant.pk)  # an update() sends no post_save
        logger.warning("merchant %s flagged for review: %s", merchant.pk, reason)
    return bool(flagged)


def merchant_unflag(*, merchant: Merchant) -> Merchant:
    """An operator reviewed the flag and clears it."""
    merchant.flagged_at, merchant.flag_reason = None, ""
    merchant.save(update_fields=["flagged_at", "flag_reason"])
    return merchant


def api_key_create(
    *, merchant: Merchant, name: str, mode: str = ApiKey.Mode.LIVE
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never shown again. Refused with
    ApiKeyLimitReached when the merchant already has MERCHANT_API_KEYS_MAX active keys."""
    secret = f"sk_{mode}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        # The merchant's row queues concurrent creations, so the cap holds under a burst.
        Merchant.objects.select_for_update().filter(pk=merchant.pk).first()
        if (
            merchant.api_keys.filter(revoked_at__isnull=True).count()
            >= settings.MERCHANT_API_KEYS_MAX
        ):
            raise ApiKeyLimitReached()
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
