"""Stripe events as Stripe builds and signs them, for the webhook tests: the `event` envelope
around an `issuing.authorization` or `issuing.transaction` object of the pinned API version,
signed with `stripe.WebhookSignature.generate_signature_header` (the `t=...,v1=...` header)."""

import itertools
import json
import time

import stripe

SECRET = "whsec_test_h9hooks"
_ids = itertools.count(1)

GROCERY = {
    "category": "grocery_stores_supermarkets",
    "category_code": "5411",
    "city": "GRENOBLE",
    "country": "FR",
    "name": "EPICERIE DU COURS",
    "network_id": "1234567890",
    "postal_code": "38000",
    "state": None,
    "terminal_id": "T0001",
    "url": None,
}
BAR = GROCERY | {"category": "drinking_places", "category_code": "5813", "name": "BAR DU PORT"}
LYON_GROCERY = GROCERY | {"city": "LYON", "postal_code": "69003"}


def _id(prefix: str) -> str:
    return f"{prefix}_1Test{next(_ids):08d}"


def card_object(stripe_card_id: str) -> dict:
    return {
        "id": stripe_card_id,
        "object": "issuing.card",
        "brand": "Visa",
        "currency": "eur",
        "last4": "4242",
        "status": "active",
        "type": "virtual",
    }


def authorization(
    *,
    card: str,
    amount: int,
    merchant: dict = GROCERY,
    controllable: bool = False,
    id: str | None = None,
    status: str = "pending",
    approved: bool = False,
    held: int = 0,
    history: int = 0,
    pending: bool = True,
) -> dict:
    """An `issuing.authorization`. While Stripe asks us (`pending_request` set), `amount` is
    what is already held (0 for a first request) and the pending request carries the new
    amount; `request_history` lists the requests decided before."""
    return {
        "id": id or _id("iauth"),
        "object": "issuing.authorization",
        "amount": held,
        "amount_details": {"atm_fee": None, "cashback_amount": None},
        "approved": approved,
        "authorization_method": "online",
        "balance_transactions": [],
        "card": card_object(card),
        "cardholder": "ich_1TestHolder",
        "created": int(time.time()),
        "currency": "eur",
        "livemode": False,
        "merchant_amount": held,
        "merchant_currency": "eur",
        "merchant_data": merchant,
        "metadata": {},
        "pending_request": (
            {
                "amount": amount,
                "amount_details": {"atm_fee": None, "cashback_amount": None},
                "currency": "eur",
                "is_amount_controllable": controllable,
                "merchant_amount": amount,
                "merchant_currency": "eur",
                "network_risk_score": 5,
            }
            if pending
            else None
        ),
        "request_history": [
            {"amount": amount, "approved": True, "currency": "eur", "reason": "webhook_approved"}
            for _ in range(history)
        ],
        "status": status,
        "transactions": [],
        "verification_data": {"address_line1_check": "not_provided", "cvc_check": "match"},
        "wallet": None,
    }


def decided(auth: dict, *, status: str = "pending", held: int | None = None) -> dict:
    """The same authorization as `issuing_authorization.created`/`.updated` carry it, after the
    decision: no pending request, the request in the history, `amount` what Stripe holds."""
    request = auth["pending_request"]
    return auth | {
        "pending_request": None,
        "approved": True,
        "amount": request["amount"] if held is None else held,
        "request_history": auth["request_history"]
        + [{"amount": request["amount"], "approved": True, "currency": "eur"}],
        "status": status,
    }


def transaction(
    *, card: str, type: str, amount: int, authorization: str | None, merchant: dict = GROCERY
) -> dict:
    """An `issuing.transaction`. As in Stripe's balance: a capture is negative, a refund
    positive."""
    return {
        "id": _id("ipi"),
        "object": "issuing.transaction",
        "amount": -amount if type == "capture" else amount,
        "amount_details": {"atm_fee": None, "cashback_amount": None},
        "authorization": authorization,
        "balance_transaction": _id("txn"),
        "card": card,
        "cardholder": "ich_1TestHolder",
        "created": int(time.time()),
        "currency": "eur",
        "dispute": None,
        "livemode": False,
        "merchant_amount": -amount if type == "capture" else amount,
        "merchant_currency": "eur",
        "merchant_data": merchant,
        "metadata": {},
        "type": type,
        "wallet": None,
    }


def event(event_type: str, obj: dict, *, id: str | None = None) -> dict:
    return {
        "id": id or _id("evt"),
        "object": "event",
        "account": None,
        "api_version": stripe.api_version,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def signed(body: dict, *, secret: str = SECRET, at: int | None = None) -> tuple[bytes, str]:
    """The raw body and its `Stripe-Signature` header, signed at `at` (now by default)."""
    payload = json.dumps(body)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=at)
    return payload.encode(), header


def post(client, body: dict, **sign):
    payload, header = signed(body, **sign)
    return client.post(
        "/hooks/stripe", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
