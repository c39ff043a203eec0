"""The merchants domain's models: shops and their keys, what they did with a payment (captures,
reversals, refunds), their identities on the card network and the queue of unknown ones, the
answers kept for idempotent retries, their webhook endpoints and events, and their settlement
batches and payouts."""

from merchants.models.acceptors import CardAcceptor, UnknownCardAcceptor
from merchants.models.merchants import (
    ApiKey,
    Capture,
    IdempotentResponse,
    Merchant,
    Refund,
    Reversal,
)
from merchants.models.settlement import Payout, SepaFile, SettlementBatch, SettlementLine
from merchants.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

__all__ = [
    "ApiKey",
    "Capture",
    "CardAcceptor",
    "IdempotentResponse",
    "Merchant",
    "Payout",
    "Refund",
    "Reversal",
    "SepaFile",
    "SettlementBatch",
    "SettlementLine",
    "UnknownCardAcceptor",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
