"""The card channel's adapter: Stripe's `issuing_authorization.request` in, the engine's
decision out, in the shape Stripe expects. The merchant's place and category come from the card
network's merchant data as Stripe signed it, never from anything the cardholder chooses."""

import re
from datetime import UTC, datetime
from functools import cache

import iso18245
from django.utils import timezone

from engine.request import AuthorizationRequest, MerchantPlace
from stripe_issuing.accounts import card_settlement_account
from wallet.authorize import authorize
from wallet.models import Card
from wallet.models.decisions import Decision


@cache
def _mcc_by_stripe_category() -> dict[str, str]:
    return {m.stripe_code: m.mcc for m in iso18245.get_all_mccs() if m.stripe_code}


def merchant_mcc(merchant_data: dict) -> str:
    """Stripe names the category ("grocery_stores_supermarkets"); the rules speak MCCs. Stripe
    also sends the code itself, used when the name is one iso18245 does not know yet."""
    mcc = _mcc_by_stripe_category().get(merchant_data.get("category") or "")
    return mcc or str(merchant_data.get("category_code") or "")


def merchant_place(merchant_data: dict) -> MerchantPlace:
    return MerchantPlace(
        name=merchant_data.get("name") or "",
        mcc=merchant_mcc(merchant_data),
        country=(merchant_data.get("country") or "").upper(),
        network_id=merchant_data.get("network_id") or None,
        postcode=merchant_data.get("postal_code") or None,
    )


def stripe_id(value) -> str | None:
    """An expandable field: the object itself, or its id."""
    if isinstance(value, dict):
        return value.get("id")
    return value


def card_find(value) -> Card | None:
    card_id = stripe_id(value)
    if not card_id:
        return None
    return Card.objects.select_related("wallet").filter(stripe_card_id=card_id).first()


def decision_key(authorization: dict) -> str:
    """`card:<authorization id>` for the first request; an incremental authorization is a new
    request on the same authorization (Stripe keeps the earlier ones in `request_history`),
    decided on its own under `card:<id>:<n>`."""
    earlier = len(authorization.get("request_history") or [])
    key = f"card:{authorization['id']}"
    return f"{key}:{earlier}" if earlier else key


def authorization_decisions(authorization_id: str):
    """Every decision taken on one Stripe authorization: its first request and increments."""
    key = f"card:{authorization_id}"
    # The prefix uses the unique index; the pattern keeps "card:iauth_1" from matching
    # "card:iauth_12".
    return Decision.objects.filter(idempotency_key__startswith=key).filter(
        idempotency_key__regex=rf"^{re.escape(key)}(:[0-9]+)?$"
    )


def answer(*, approved: bool, amount: int | None = None, metadata: dict | None = None) -> dict:
    """Stripe's response body for a real-time authorization."""
    body: dict = {"approved": approved}
    if amount is not None:
        body["amount"] = amount
    if metadata:
        body["metadata"] = metadata
    return body


def authorization_request_handle(*, event: dict) -> tuple[str, dict]:
    """Decide a card payment. Returns (what happened in a few words, Stripe's answer)."""
    authorization = event["data"]["object"]
    pending = authorization.get("pending_request") or {}
    card = card_find(authorization.get("card"))
    if card is None:
        return "declined: unknown card", answer(approved=False, metadata={"reason": "unknown_card"})
    merchant_data = authorization.get("merchant_data") or {}
    created = authorization.get("created")
    request = AuthorizationRequest(
        amount=pending.get("amount", authorization.get("amount")),
        currency=(pending.get("currency") or authorization["currency"]).upper(),
        merchant=merchant_place(merchant_data),
        at=datetime.fromtimestamp(created, UTC) if created else timezone.now(),
        channel=Decision.Channel.CARD,
        partial_allowed=bool(pending.get("is_amount_controllable")),
    )
    decision = authorize(
        request=request,
        wallet=card.wallet,
        card=card,
        credit_account=card_settlement_account(request.currency),
        idempotency_key=decision_key(authorization),
        merchant_reference=authorization["id"],
        metadata={"city": merchant_data.get("city") or ""},
    )
    metadata = {"decision": decision.reference}
    if decision.status == Decision.Status.DECLINED:
        metadata["reason"] = decision.reason
        return f"declined: {decision.reason}", answer(approved=False, metadata=metadata)
    if decision.status == Decision.Status.PARTIALLY_APPROVED:
        return (
            f"partially approved: {decision.approved_amount} of {decision.amount}",
            answer(approved=True, amount=decision.approved_amount, metadata=metadata),
        )
    return f"approved: {decision.approved_amount}", answer(approved=True, metadata=metadata)
