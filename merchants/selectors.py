"""Reads of the merchant API, shared by its views."""

from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, Now

from merchants.models import Capture, Merchant, Refund, Reversal
from wallet.models.decisions import Decision, DecisionHold


def _total(queryset) -> Coalesce:
    return Coalesce(
        Subquery(
            queryset.filter(decision=OuterRef("pk"))
            .values("decision")
            .annotate(total=Sum("amount"))
            .values("total")
        ),
        0,
    )


def _with_totals() -> QuerySet[Decision]:
    still_held = DecisionHold.objects.filter(hold__resolution__isnull=True).filter(
        Q(hold__expires_at__isnull=True) | Q(hold__expires_at__gt=Now())
    )
    return Decision.objects.annotate(
        amount_held=_total(still_held),
        amount_captured=_total(Capture.objects.all()),
        amount_reversed=_total(Reversal.objects.all()),
        amount_refunded=_total(Refund.objects.all()),
    )


# Resolving the four subqueries costs more than running them: done once, cloned per request
# (NOW() is evaluated by the database at each query, not here).
_DECISIONS_WITH_TOTALS = _with_totals()


def authorization_list(*, merchant: Merchant) -> QuerySet[Decision]:
    """A merchant's authorizations on its API (and only theirs), each with its lifecycle totals
    computed by the database in the same query. A card payment at the merchant is recorded with
    it too, but the card network captures and settles it: it is not the API's to touch."""
    return _DECISIONS_WITH_TOTALS.filter(merchant=merchant, channel=Decision.Channel.API)


def capture_status(decision: Decision) -> str | None:
    """Where an authorization from authorization_list() stands in its lifecycle: None when
    declined, else requires_capture, captured, refunded, reversed or expired."""
    if decision.status == Decision.Status.DECLINED:
        return None
    if decision.amount_captured:
        return "refunded" if decision.amount_refunded == decision.amount_captured else "captured"
    if decision.amount_held:
        return "requires_capture"
    if decision.amount_reversed >= decision.approved_amount:
        return "reversed"
    return "expired"
