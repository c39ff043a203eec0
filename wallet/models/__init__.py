"""The wallet domain's models: who is helped (beneficiaries, wallets, pockets, cards, their contact
changes), how they pay (payment codes, the decisions taken on their payments), who may open a
wallet (aidants, app tokens, sign-in codes), and what the platform told them (the outbox) or was
told (Stripe's events)."""

from wallet.models.access import Aidant, AppToken, SignInCode
from wallet.models.decisions import Decision, DecisionHold
from wallet.models.notifications import (
    CaptureNotice,
    DecisionNotice,
    Notification,
    NotificationPreference,
    PushSubscription,
    SmsOptOut,
)
from wallet.models.payment_codes import PaymentCode, PaymentCodeFailure
from wallet.models.stripe_events import StripeEvent
from wallet.models.wallets import Beneficiary, Card, ContactChangeRequest, Pocket, Wallet

__all__ = [
    "Aidant",
    "AppToken",
    "Beneficiary",
    "CaptureNotice",
    "Card",
    "ContactChangeRequest",
    "Decision",
    "DecisionHold",
    "DecisionNotice",
    "Notification",
    "NotificationPreference",
    "PaymentCode",
    "PaymentCodeFailure",
    "Pocket",
    "PushSubscription",
    "SignInCode",
    "SmsOptOut",
    "StripeEvent",
    "Wallet",
]
