"""Reads of merchants: the merchant API's authorizations, shared by its views, and the shops
that accept an aid, shared by the beneficiary app and the messages of a refused payment."""

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Case, F, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, Now

from engine import geo
from engine.codes import SHOP_REASONS
from engine.request import MerchantPlace
from engine.rules import PocketRules, check_categories, check_merchant, check_zone
from merchants.models import Capture, Merchant, Refund, Reversal
from merchants.payments import merchant_place
from wallet.authorize import pocket_rules
from wallet.models import Pocket
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
        ledger_held=_total(still_held),
        amount_captured=_total(Capture.objects.all()),
        amount_reversed=_total(Reversal.objects.all()),
        amount_refunded=_total(Refund.objects.all()),
    ).annotate(
        # A sandbox authorization holds no money in the ledger: what it holds is what was
        # approved less what was reversed, until its one capture or its expiry (the test code
        # that expires at once, merchants/sandbox.py).
        amount_held=Case(
            When(livemode=True, then=F("ledger_held")),
            When(Q(amount_captured__gt=0) | Q(request__expired=True), then=Value(0)),
            default=F("approved_amount") - F("amount_reversed"),
        ),
    )


# Resolving the four subqueries costs more than running them: done once, cloned per request
# (NOW() is evaluated by the database at each query, not here).
_DECISIONS_WITH_TOTALS = _with_totals()


def authorization_list(*, merchant: Merchant, livemode: bool) -> QuerySet[Decision]:
    """A merchant's authorizations on its API (and only theirs) of one mode (live, or the
    sandbox's), each with its lifecycle totals computed by the database in the same query. A
    card payment at the merchant is recorded with it too, but the card network captures and
    settles it: it is not the API's to touch."""
    return _DECISIONS_WITH_TOTALS.filter(
        merchant=merchant, channel=Decision.Channel.API, livemode=livemode
    )


def authorization_just_recorded(decision: Decision) -> Decision:
    """A live authorization that authorize() has just written (`recorded_now`) and nothing has
    captured yet, with the totals authorization_list() would read: what it approved is held,
    nothing else moved. Computed here, not read back: that query's four subqueries cost the
    hot path about a third of its time."""
    decision.ledger_held = decision.amount_held = decision.approved_amount
    decision.amount_captured = decision.amount_reversed = decision.amount_refunded = 0
    return decision


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


# --- shops that accept an aid ---------------------------------------------------------------


def merchants_accepting(*, rules: PocketRules) -> Iterator[tuple[Merchant, MerchantPlace]]:
    """The approved merchants whose category, identity and place `rules` accept (the same pure
    checks as a payment), with their place, by id. When and how much (schedule, limits) is the
    payment's matter."""
    merchants = Merchant.objects.filter(status=Merchant.Status.APPROVED).order_by("pk")
    if rules.merchants.allow is not None:
        merchants = merchants.filter(pk__in=rules.merchants.allow)
    if rules.merchants.deny:
        merchants = merchants.exclude(pk__in=rules.merchants.deny)
    for merchant in merchants.iterator():
        place = merchant_place(merchant)
        if (
            check_categories(rules.categories, place.mcc).eligible
            and check_merchant(rules.merchants, place).eligible
            and check_zone(rules.zone, place).eligible
        ):
            yield merchant, place


def trade_name_key(name: str) -> str:
    """A name as people sort it: "Échirolles" with the Es, whatever the case. Shops are sorted
    in Python: the database's collation would put "Épicerie" after "Zoo" on one engine and
    before it on another."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


NEAREST_SHOPS = 3


@dataclass(frozen=True)
class ShopNearby:
    merchant: Merchant
    distance_m: int | None  # from where the payment was refused; None when that is not known


@dataclass(frozen=True)
class ShopsNearby:
    shops: list[ShopNearby]  # nearest first, at most NEAREST_SHOPS
    accepting: int  # the shops that accept the aid, wherever they are


def shops_nearby(
    *, rules: PocketRules, place: MerchantPlace, postcode: str | None = None
) -> ShopsNearby:
    """The shops nearest to `place` that accept `rules`: by distance from its coordinates.
    Without them no distance can be told, so only the shops of the same département are named,
    those of the same postcode first, then by name: the département of `place`, else that of
    `postcode` (the beneficiary's)."""
    accepting = list(merchants_accepting(rules=rules))
    accepting.sort(key=lambda shop: trade_name_key(shop[0].trade_name))
    if place.latitude is not None and place.longitude is not None:
        origin = (place.latitude, place.longitude)
        near = [ShopNearby(merchant, _distance_m(origin, there)) for merchant, there in accepting]
        # Sorts are stable: among shops at the same distance, or with none, by name.
        near.sort(key=lambda shop: (shop.distance_m is None, shop.distance_m or 0))
    else:
        departement = place.departement or (
            geo.departement_from_postcode(postcode) if postcode else None
        )
        same_postcode = place.postcode or postcode
        near = [
            ShopNearby(merchant, None)
            for merchant, there in accepting
            if departement is not None and there.departement == departement
        ]
        near.sort(key=lambda shop: shop.merchant.postcode != same_postcode)
    return ShopsNearby(shops=near[:NEAREST_SHOPS], accepting=len(accepting))


def _distance_m(origin: tuple[float, float], place: MerchantPlace) -> int | None:
    if place.latitude is None or place.longitude is None:
        return None
    return round(geo.haversine_km(*origin, place.latitude, place.longitude) * 1000)


def refusal_shops_nearby(*, decision: Decision) -> ShopsNearby | None:
    """Where the aid a refusal names is accepted, nearest first from the shop that refused it,
    for a payment refused because of the shop (its kind, the shop itself, its place); None for
    any other decision: another shop would not change a refusal for the time, the amount or
    the money left."""
    if decision.status != Decision.Status.DECLINED or decision.reason not in SHOP_REASONS:
        return None
    pocket = _refusal_pocket(decision)
    if pocket is None:
        return None
    return shops_nearby(
        rules=pocket_rules(pocket),
        place=MerchantPlace(**decision.request["merchant"]),
        postcode=decision.wallet.beneficiary.postcode or None,
    )


def _refusal_pocket(decision: Decision) -> Pocket | None:
    # The decision names its pocket by the aid's name (what the person reads); the trace tells
    # which of the wallet's pockets gave that reason.
    refused = [
        verdict["pocket_id"]
        for verdict in decision.trace.get("verdicts", [])
        if verdict["reason"] == decision.reason
    ]
    return (
        Pocket.objects.filter(
            wallet_id=decision.wallet_id,
            pk__in=refused,
            allocation__program__name=decision.reason_pocket,
        )
        .select_related("allocation__program")
        .order_by("pk")
        .first()
    )
