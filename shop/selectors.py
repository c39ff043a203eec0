"""Reads of the till: a shop's payments of the day, each aid's part in one, and the day's
takings by aid and by funder. Always through the shop's merchant: nothing here reads another
shop's records."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, F, Sum, When
from django.utils import timezone

from core.time import PARIS, start_of_day
from ledger.models import Transfer
from merchants.models import Merchant
from merchants.selectors import authorization_list
from wallet.models.decisions import Decision

_PROGRAM = "pocket__allocation__program__name"
_FUNDER = "pocket__allocation__program__funder__name"


def today_start(now: datetime | None = None) -> datetime:
    return start_of_day(timezone.localtime(now or timezone.now(), PARIS).date())


def payments_today(*, merchant: Merchant):
    """The shop's payments taken through its till or its API since midnight, Paris time, the
    newest first, with their totals (held, captured, reversed, refunded)."""
    return authorization_list(merchant=merchant, livemode=True).filter(
        decided_at__gte=today_start()
    )


def payment_get(*, merchant: Merchant, reference: str) -> Decision | None:
    return authorization_list(merchant=merchant, livemode=True).filter(reference=reference).first()


@dataclass(frozen=True)
class AidPart:
    aid: str
    funder: str
    amount: int
    refunded: int = 0


def payment_parts(decision: Decision) -> list[AidPart]:
    """Which aid paid what in an approved payment, in the order the split used them, and what
    each got back of the refunds (read from the ledger: a refund gives back the aid used last
    first). Once captured, each aid's part is what its capture took, not what its hold reserved:
    a capture of less than the hold gives the rest back to the aid. The name of the aid and of
    its funder only: nothing about the beneficiary."""
    taken = Case(
        When(hold__resolution__kind=Transfer.Kind.CAPTURE, then=F("hold__resolution__amount")),
        default=F("amount"),
    )
    rows = decision.holds.values(_PROGRAM, _FUNDER).annotate(total=Sum(taken)).order_by("pk")
    hold = "refund_of__pending_transfer__decision_hold__"
    refunds = (
        Transfer.objects.filter(**{f"{hold}decision": decision})
        .values(hold + _PROGRAM, hold + _FUNDER)
        .annotate(total=Sum("amount"))
    )
    refunded = {(row[hold + _PROGRAM], row[hold + _FUNDER]): row["total"] for row in refunds}
    return [
        AidPart(
            aid=row[_PROGRAM],
            funder=row[_FUNDER],
            amount=row["total"],
            refunded=refunded.get((row[_PROGRAM], row[_FUNDER]), 0),
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Takings:
    currency: str
    captured: int
    refunded: int
    by_aid: list[tuple[str, str, int]]  # aid, funder, net
    by_funder: list[tuple[str, int]]  # funder, net

    @property
    def net(self) -> int:
        return self.captured - self.refunded


def takings_today(*, merchant: Merchant, currency: str = "EUR") -> Takings:
    """Money taken today (captures posted since midnight) less money given back today, per aid
    and per funder: read from the ledger's transfers, where each pocket's part is its own."""
    since = today_start()
    hold = "pending_transfer__decision_hold__"
    captures = Transfer.objects.filter(
        kind=Transfer.Kind.CAPTURE,
        currency=currency,
        created_at__gte=since,
        **{f"{hold}decision__merchant": merchant},
    )
    refunds = Transfer.objects.filter(
        refund_of__isnull=False,
        currency=currency,
        created_at__gte=since,
        **{f"refund_of__{hold}decision__merchant": merchant},
    )
    nets: dict[tuple[str, str], int] = {}
    for queryset, prefix, sign in ((captures, hold, 1), (refunds, f"refund_of__{hold}", -1)):
        for row in queryset.values(prefix + _PROGRAM, prefix + _FUNDER).annotate(s=Sum("amount")):
            key = (row[prefix + _PROGRAM], row[prefix + _FUNDER])
            nets[key] = nets.get(key, 0) + sign * row["s"]
    by_funder: dict[str, int] = {}
    for (_aid, funder), net in nets.items():
        by_funder[funder] = by_funder.get(funder, 0) + net
    return Takings(
        currency=currency,
        captured=captures.aggregate(s=Sum("amount"))["s"] or 0,
        refunded=refunds.aggregate(s=Sum("amount"))["s"] or 0,
        by_aid=sorted((aid, funder, net) for (aid, funder), net in nets.items()),
        by_funder=sorted(by_funder.items()),
    )
