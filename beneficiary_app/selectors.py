"""Reads of the beneficiary app: a wallet's pockets, its history, one payment's explanation,
and the merchants where a pocket can be spent. Every read starts from the wallet."""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import iso18245
from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError
from engine import categories, geo
from engine.rules import check_categories, check_merchant, check_zone
from funders.models import Allocation, Funder
from ledger.models import Entry, Transfer
from merchants.models import Merchant
from merchants.payments import merchant_place
from merchants.selectors import merchants_accepting, trade_name_key
from wallet.authorize import pocket_rules
from wallet.models import Decision, DecisionHold, Pocket, Wallet

EXPIRES_SOON = timedelta(days=14)


# --- pockets ------------------------------------------------------------------------------


def pocket_list(*, wallet: Wallet) -> QuerySet[Pocket]:
    """The wallet's active pockets, the one that ends first first."""
    return (
        Pocket.objects.filter(wallet=wallet, allocation__status=Allocation.Status.ACTIVE)
        .select_related("account", "allocation__program__funder")
        .order_by(F("allocation__valid_until").asc(nulls_last=True), "pk")
    )


def pocket_get(*, wallet: Wallet, pocket_id: int) -> Pocket:
    """One active pocket of the wallet; 404 for any other id, another wallet's included."""
    return get_object_or_404(pocket_list(wallet=wallet), pk=pocket_id)


def pocket_expires_soon(pocket: Pocket, *, now: datetime | None = None) -> bool:
    until = pocket.allocation.valid_until
    return until is not None and until - (now or timezone.now()) <= EXPIRES_SOON


def pockets_with_shop(pockets: list[Pocket]) -> set[int]:
    """The ids of the pockets that some approved merchant accepts (its category, identity and
    place, as merchants_accepting checks them): the merchants are read once for all the
    pockets, so a wallet's page costs the same whatever its number of aids."""
    places = [
        merchant_place(merchant)
        for merchant in Merchant.objects.filter(status=Merchant.Status.APPROVED).order_by("pk")
    ]
    accepted = set()
    for pocket in pockets:
        rules = pocket_rules(pocket)
        if any(
            check_categories(rules.categories, place.mcc).eligible
            and check_merchant(rules.merchants, place).eligible
            and check_zone(rules.zone, place).eligible
            for place in places
        ):
            accepted.add(pocket.pk)
    return accepted


# --- history ------------------------------------------------------------------------------


class InvalidCursor(DomainError):
    code = "invalid_cursor"
    default_message = _("This page link is not valid. Start again from the first page.")

    def __init__(self, message=None, *, field: str | None = "cursor", **details):
        super().__init__(message, field=field, **details)


@dataclass(frozen=True)
class HistoryCursor:
    """Where a page ends: events are ordered by (time, rank of their type, id), newest first."""

    at: datetime
    rank: int
    pk: int

    def encode(self) -> str:
        text = f"{self.at.isoformat()}|{self.rank}|{self.pk}"
        return base64.urlsafe_b64encode(text.encode()).decode()

    @classmethod
    def decode(cls, text: str) -> "HistoryCursor":
        try:
            at, rank, pk = base64.urlsafe_b64decode(text.encode("ascii")).decode().split("|")
            cursor = cls(datetime.fromisoformat(at), int(rank), int(pk))
        except (ValueError, UnicodeError, binascii.Error) as exc:
            raise InvalidCursor() from exc
        if cursor.at.utcoffset() is None or not 0 <= cursor.rank < len(_SOURCES):
            raise InvalidCursor()
        return cursor


@dataclass(frozen=True)
class HistoryEvent:
    type: str  # "aid_granted", "aid_ended", "payment" or "refund"
    at: datetime
    rank: int
    obj: Any  # a Pocket (aid_granted, aid_ended), a Decision, or a refund Transfer

    @property
    def cursor(self) -> HistoryCursor:
        return HistoryCursor(self.at, self.rank, self.obj.pk)


def _granted(wallet: Wallet) -> QuerySet:
    return Pocket.objects.filter(wallet=wallet).select_related(
        "account", "allocation__program__funder"
    )


def _ended(wallet: Wallet) -> QuerySet:
    swept = (
        Entry.objects.filter(
            account=OuterRef("account"),
            transfer__kind__in=[Transfer.Kind.EXPIRE, Transfer.Kind.REVOKE],
        )
        .values("account")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return (
        Pocket.objects.filter(
            wallet=wallet,
            allocation__status__in=[Allocation.Status.EXPIRED, Allocation.Status.REVOKED],
            allocation__ended_at__isnull=False,
        )
        .select_related("account", "allocation__program__funder")
        .annotate(returned=-Coalesce(Subquery(swept), Value(0)))
    )


def _payments(wallet: Wallet) -> QuerySet:
    return payment_list(wallet=wallet)


def _refunds(wallet: Wallet) -> QuerySet:
    path = "refund_of__pending_transfer__decision_hold"
    back_to_pocket = Entry.objects.filter(
        transfer=OuterRef("pk"), amount__gt=0, account=OuterRef(f"{path}__pocket__account")
    )
    return (
        Transfer.objects.filter(kind=Transfer.Kind.REFUND, **{f"{path}__decision__wallet": wallet})
        .select_related(f"{path}__decision__merchant", f"{path}__pocket__allocation__program")
        .annotate(back_to_pocket=Exists(back_to_pocket))
    )


# (type, queryset of the wallet, field of the event's time); the index is the type's rank.
_SOURCES = (
    ("aid_granted", _granted, "created_at"),
    ("aid_ended", _ended, "allocation__ended_at"),
    ("payment", _payments, "decided_at"),
    ("refund", _refunds, "created_at"),
)


def _after(field: str, rank: int, cursor: HistoryCursor | None) -> Q:
    """The events of one type that come after `cursor` in newest-first order."""
    if cursor is None:
        return Q()
    before = Q(**{f"{field}__lt": cursor.at})
    if rank < cursor.rank:
        return before | Q(**{field: cursor.at})
    if rank == cursor.rank:
        return before | Q(**{field: cursor.at, "pk__lt": cursor.pk})
    return before


def _event_time(obj: Any, field: str) -> datetime:
    for part in field.split("__"):
        obj = getattr(obj, part)
    return obj


def history_page(
    *, wallet: Wallet, cursor: HistoryCursor | None, limit: int
) -> tuple[list[HistoryEvent], HistoryCursor | None]:
    """One page of the wallet's history, newest first, and the cursor of the next page (None
    on the last). Each type is read with its own keyset query, at most limit + 1 rows, and the
    results merged: the cost of a page does not grow with the length of the history."""
    events = []
    for rank, (kind, queryset, field) in enumerate(_SOURCES):
        rows = (
            queryset(wallet)
            .filter(_after(field, rank, cursor))
            .order_by(f"-{field}", "-pk")[: limit + 1]
        )
        events += [HistoryEvent(kind, _event_time(row, field), rank, row) for row in rows]
    events.sort(key=lambda e: (e.at, e.rank, e.obj.pk), reverse=True)
    page = events[:limit]
    return page, (page[-1].cursor if len(events) > limit else None)


# --- payments -----------------------------------------------------------------------------


def payment_list(*, wallet: Wallet) -> QuerySet[Decision]:
    holds = DecisionHold.objects.select_related("pocket__allocation__program").order_by("pk")
    return (
        Decision.objects.filter(wallet=wallet)
        .select_related("merchant")
        .prefetch_related(Prefetch("holds", queryset=holds))
    )


def payment_get(*, wallet: Wallet, reference: str) -> Decision:
    """One payment of the wallet by its reference; 404 for another wallet's."""
    return get_object_or_404(payment_list(wallet=wallet), reference=reference)


def payment_merchant_name(decision: Decision) -> str:
    """The shop as the beneficiary knows it: our merchant's trade name, or on the card channel
    the name the card network gave."""
    if decision.merchant is not None:
        return decision.merchant.trade_name
    return str(decision.request.get("merchant", {}).get("name", ""))


@dataclass(frozen=True)
class PaymentMoney:
    held: int  # still reserved, not yet taken by the shop
    captured: int  # taken by the shop
    refunded: int  # given back by the shop


def payment_money(decision: Decision) -> PaymentMoney:
    """What became of the money a payment reserved."""
    return payments_money([decision])[decision.pk]


def payments_money(decisions: list[Decision]) -> dict[int, PaymentMoney]:
    """payment_money of several payments in two queries, whatever their number (a page of the
    history)."""
    holds = Transfer.objects.filter(decision_hold__decision__in=decisions).select_related(
        "resolution", "decision_hold"
    )
    held = dict.fromkeys((d.pk for d in decisions), 0)
    captured = dict(held)
    capture_of = {}
    for hold in holds:
        decision_id = hold.decision_hold.decision_id
        resolution = getattr(hold, "resolution", None)
        if resolution is None:
            held[decision_id] += hold.amount
        elif resolution.kind == Transfer.Kind.CAPTURE:
            captured[decision_id] += resolution.amount
            capture_of[resolution.pk] = decision_id
    refunded = dict.fromkeys(held, 0)
    refunds = Transfer.objects.filter(kind=Transfer.Kind.REFUND, refund_of__in=list(capture_of))
    for refund_of, amount in refunds.values_list("refund_of", "amount"):
        refunded[capture_of[refund_of]] += amount
    return {pk: PaymentMoney(held[pk], captured[pk], refunded[pk]) for pk in held}


def payment_pocket_names(decision: Decision) -> dict[int, str]:
    """The aid name of each pocket the payment's trace mentions (pockets of its wallet)."""
    ids = [verdict["pocket_id"] for verdict in decision.trace.get("verdicts", [])]
    return dict(
        Pocket.objects.filter(wallet_id=decision.wallet_id, pk__in=ids).values_list(
            "pk", "allocation__program__name"
        )
    )


def payment_funders(decision: Decision) -> list[Funder]:
    """The funders of the aid a payment concerned (the pockets it weighed, or paid with), the
    one the refusal names first: whom to call about it. Without any, the funders of the
    wallet's active aid."""
    ids = [verdict["pocket_id"] for verdict in decision.trace.get("verdicts", [])]
    ids += [hold.pocket_id for hold in decision.holds.all()]
    pockets = Pocket.objects.filter(wallet_id=decision.wallet_id).select_related(
        "allocation__program__funder"
    )
    chosen = list(pockets.filter(pk__in=ids)) or list(pocket_list(wallet=decision.wallet))
    named = decision.reason_pocket
    chosen.sort(key=lambda pocket: pocket.allocation.program.name != named)
    funders: dict[int, Funder] = {}
    for pocket in chosen:
        funder = pocket.allocation.program.funder
        funders.setdefault(funder.pk, funder)
    return list(funders.values())


# --- where to spend -----------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceToSpend:
    merchant: Merchant
    distance_km: float | None


def merchant_category_label(mcc: str) -> str:
    """What kind of shop: the name of its category group ("food shops"), else the ISO name."""
    for name, label in categories.GROUP_LABELS.items():
        if mcc in categories.GROUPS[name]:
            return str(label)
    if categories.is_known_mcc(mcc):
        return iso18245.get_mcc(mcc).iso_description
    return mcc


def postcode_position(postcode: str) -> tuple[float, float] | None:
    """Roughly where a postcode is, without any outside service: the mean position of the
    approved merchants of that postcode, else of its communes (engine/data names them). None
    when no merchant of ours is there: the reference data has no coordinates."""
    merchants = Merchant.objects.filter(
        status=Merchant.Status.APPROVED, latitude__isnull=False, longitude__isnull=False
    )
    for scope in (
        Q(postcode=postcode),
        Q(commune_code__in=sorted(geo.communes_of_postcode(postcode))),
    ):
        points = list(merchants.filter(scope).values_list("latitude", "longitude"))
        if points:
            return (
                sum(float(lat) for lat, _ in points) / len(points),
                sum(float(lon) for _, lon in points) / len(points),
            )
    return None


def places_to_spend(
    *,
    pocket: Pocket,
    latitude: float | None = None,
    longitude: float | None = None,
    postcode: str | None = None,
) -> list[PlaceToSpend]:
    """The approved merchants whose category, identity and place the pocket's rules accept
    (the same pure checks as a payment), nearest first: by distance from a position, or from
    where the postcode is (postcode_position); a postcode whose place is not known puts its
    own shops first, then those of its département; merchants with no known distance after
    the others, by name. When and how much (schedule, limits) is the payment's matter."""
    if (latitude is None or longitude is None) and postcode:
        latitude, longitude = postcode_position(postcode) or (None, None)
    places = []
    for merchant, place in merchants_accepting(rules=pocket_rules(pocket)):
        distance = None
        if latitude is not None and longitude is not None and place.latitude is not None:
            distance = geo.haversine_km(latitude, longitude, place.latitude, place.longitude)
        places.append(PlaceToSpend(merchant, distance))
    # By name, then nearness (sort is stable).
    places.sort(key=lambda p: trade_name_key(p.merchant.trade_name))
    if latitude is not None and longitude is not None:
        places.sort(key=lambda p: (p.distance_km is None, p.distance_km or 0.0))
    elif postcode:
        departement = geo.departement_from_postcode(postcode)

        def closeness(p: PlaceToSpend) -> int:
            if p.merchant.postcode == postcode:
                return 0
            if departement and geo.departement_from_postcode(p.merchant.postcode) == departement:
                return 1
            return 2

        places.sort(key=closeness)
    return places
