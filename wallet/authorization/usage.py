"""What each pocket already spent in each capped period, read from the ledger.

A payment counts against the periods of the moment it was authorized, for what it finally
took: the hold's amount while pending, the captured amount once posted, nothing once voided or
expired; refunds of its capture come off it. So a cap counts approved amounts net of reversals
and refunds, and a refund gives room back in the period of the payment it refunds."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from wallet.authorization.periods import Usage, period_start
from wallet.authorization.rules import PocketRules
from wallet.ledger.models import Transfer


def pockets_usage(pockets: Iterable[tuple[int, PocketRules]], *, at: datetime) -> dict[int, Usage]:
    """Usage per account id, for the (account id, rules) pairs given; one query for all."""
    starts: dict[int, dict[str, datetime | None]] = {}
    for account_id, rules in pockets:
        caps = rules.limits.caps()
        if caps:
            starts[account_id] = {
                period: period_start(period, at, valid_from=rules.valid_from) for period, _ in caps
            }
    if not starts:
        return {}
    bounds = [start for by_period in starts.values() for start in by_period.values()]
    earliest = None if None in bounds else min(bounds)

    refunded = (
        Transfer.objects.filter(refund_of=OuterRef("resolution"))
        .values("refund_of")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    # No upper bound at `at`: a payment decided while this one waited for the wallet lock was
    # created after `at` was taken, and it counts all the same.
    holds = Transfer.objects.filter(is_pending=True, debit_account_id__in=list(starts)).annotate(
        refunded=Coalesce(Subquery(refunded), 0)
    )
    if earliest is not None:
        holds = holds.filter(created_at__gte=earliest)

    spent: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = holds.values_list(
        "debit_account_id",
        "amount",
        "created_at",
        "resolution__kind",
        "resolution__amount",
        "refunded",
    )
    for account_id, amount, created_at, resolved_as, resolved_amount, refunds in rows:
        if resolved_as is None:
            net = amount
        elif resolved_as == Transfer.Kind.CAPTURE:
            net = resolved_amount - refunds
        else:
            net = 0
        for period, start in starts[account_id].items():
            if start is None or created_at >= start:
                spent[account_id][period] += net
    return {account_id: Usage(spent=dict(spent[account_id])) for account_id in starts}
