"""Reads of the merchant API, shared by its views."""

from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from merchants.models import Merchant
from wallet.authorization.models import Decision, DecisionHold
from wallet.ledger.models import Transfer


def authorization_list(*, merchant: Merchant) -> QuerySet[Decision]:
    """A merchant's authorizations (and only theirs), with what the lifecycle summary needs in
    a fixed number of queries."""
    return Decision.objects.filter(merchant=merchant).prefetch_related(
        Prefetch(
            "holds",
            queryset=DecisionHold.objects.select_related("hold__resolution").order_by("pk"),
        ),
        "captures",
        "reversals",
        "refunds",
    )


@dataclass(frozen=True)
class AuthorizationSummary:
    capture_status: str | None  # requires_capture, captured, refunded, reversed, expired
    amount_held: int
    amount_captured: int
    amount_reversed: int
    amount_refunded: int


def authorization_summary(decision: Decision) -> AuthorizationSummary:
    now = timezone.now()
    held = 0
    for link in decision.holds.all():
        hold: Transfer = link.hold
        resolution = getattr(hold, "resolution", None)
        if resolution is None and (hold.expires_at is None or hold.expires_at > now):
            held += hold.amount
    captured = sum(capture.amount for capture in decision.captures.all())
    reversed_ = sum(reversal.amount for reversal in decision.reversals.all())
    refunded = sum(refund.amount for refund in decision.refunds.all())
    if decision.status == Decision.Status.DECLINED:
        status = None
    elif captured:
        status = "refunded" if refunded == captured else "captured"
    elif held:
        status = "requires_capture"
    elif reversed_ >= decision.approved_amount:
        status = "reversed"
    else:
        status = "expired"
    return AuthorizationSummary(status, held, captured, reversed_, refunded)
