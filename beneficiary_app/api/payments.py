"""One payment, explained: what was asked and accepted, which aid paid what, and why an aid
could not pay. The shape of a payment is also the one the history shows."""

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from beneficiary_app import selectors
from beneficiary_app.api.base import (
    ERRORS,
    FUNDER_EXAMPLE,
    LANGUAGE,
    AppApi,
    FunderOutput,
    funder_data,
)
from core.money import format_money
from engine.codes import (
    beneficiary_message,
    beneficiary_partial_message,
    format_distance,
    nearby_message,
)
from merchants.selectors import ShopsNearby, refusal_shops_nearby
from wallet.models import Decision


class ReasonOutput(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, e.g. outside_zone.")
    message = serializers.CharField(help_text="Why, in plain words, and what to do.")


class PaymentPocketOutput(serializers.Serializer):
    pocket_id = serializers.IntegerField()
    aid_name = serializers.CharField()
    amount = serializers.IntegerField()
    amount_display = serializers.CharField()


class PaymentOutput(serializers.Serializer):
    reference = serializers.CharField()
    status = serializers.ChoiceField(choices=Decision.Status.choices)
    merchant_name = serializers.CharField()
    amount = serializers.IntegerField(help_text="Asked by the shop, in minor units.")
    amount_display = serializers.CharField()
    approved_amount = serializers.IntegerField()
    approved_amount_display = serializers.CharField()
    currency = serializers.CharField()
    at = serializers.DateTimeField()
    pockets = PaymentPocketOutput(many=True, help_text="The aid each part was paid with.")
    reason = ReasonOutput(
        allow_null=True,
        help_text="Why the payment was refused, or only partly accepted; null when accepted.",
    )


def payment_data(decision: Decision) -> dict:
    currency = decision.currency
    reason = None
    if decision.status == Decision.Status.PARTIALLY_APPROVED:
        message = beneficiary_partial_message(
            decision.reason,
            approved=decision.approved_amount,
            amount=decision.amount,
            currency=currency,
            pocket_name=decision.reason_pocket or None,
            details=decision.details,
        )
        reason = {"code": decision.reason, "message": message}
    elif decision.reason:
        message = beneficiary_message(
            decision.reason, pocket_name=decision.reason_pocket or None, details=decision.details
        )
        reason = {"code": decision.reason, "message": message}
    return {
        "reference": decision.reference,
        "status": decision.status,
        "merchant_name": selectors.payment_merchant_name(decision),
        "amount": decision.amount,
        "amount_display": format_money(decision.amount, currency),
        "approved_amount": decision.approved_amount,
        "approved_amount_display": format_money(decision.approved_amount, currency),
        "currency": currency,
        "at": decision.decided_at,
        "pockets": [
            {
                "pocket_id": hold.pocket_id,
                "aid_name": hold.pocket.allocation.program.name,
                "amount": hold.amount,
                "amount_display": format_money(hold.amount, currency),
            }
            for hold in decision.holds.all()
        ],
        "reason": reason,
    }


DECLINED_PAYMENT_EXAMPLE = {
    "reference": "auth_Yq1c7T2uVb0pZk3rN8wH6eJ5",
    "status": "declined",
    "merchant_name": "Bar du Centre",
    "amount": 1800,
    "amount_display": "18,00 €",
    "approved_amount": 0,
    "approved_amount_display": "0,00 €",
    "currency": "EUR",
    "at": "2026-11-22T10:16:00+01:00",
    "pockets": [],
    "reason": {
        "code": "merchant_category_not_allowed",
        "message": "Aide alimentaire : cette aide ne peut pas être utilisée dans ce type de "
        "commerce. Elle peut être utilisée dans : commerces alimentaires.",
    },
}


class PocketCheckOutput(serializers.Serializer):
    pocket_id = serializers.IntegerField()
    aid_name = serializers.CharField()
    accepted = serializers.BooleanField(help_text="Whether this aid's rules allowed it.")
    message = serializers.CharField(
        allow_null=True, help_text="Why this aid could not pay, in plain words."
    )


class NearbyShopOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    address = serializers.CharField()
    postcode = serializers.CharField()
    city = serializers.CharField()
    distance_m = serializers.IntegerField(
        allow_null=True,
        help_text="In metres, from the shop that refused the payment; null when its place "
        "is not known (the shops are then those of its département).",
    )
    distance_display = serializers.CharField(allow_null=True, help_text='"450 m", "1,2 km".')


class NearbyOutput(serializers.Serializer):
    message = serializers.CharField(
        help_text="The shops below in one sentence, or that no shop near here (or none at "
        "all) accepts this aid."
    )
    shops = NearbyShopOutput(many=True, help_text="Up to three, nearest first.")


class PaymentDetailOutput(PaymentOutput):
    held = serializers.IntegerField(help_text="Still reserved: the shop has not taken it yet.")
    held_display = serializers.CharField()
    captured = serializers.IntegerField(help_text="Taken by the shop.")
    captured_display = serializers.CharField()
    refunded = serializers.IntegerField()
    refunded_display = serializers.CharField()
    checks = PocketCheckOutput(many=True, help_text="Each aid considered, and its answer.")
    funders = FunderOutput(
        many=True,
        help_text="Who gives the aid this payment concerned, and whom to call about it; the "
        "funder of the aid the refusal names first.",
    )
    nearby = NearbyOutput(
        allow_null=True,
        help_text="For a payment refused because of the shop (its kind, the shop itself, its "
        "place): the nearest shops where the aid the refusal names is accepted. Null otherwise.",
    )


def nearby_data(nearby: ShopsNearby | None) -> dict | None:
    if nearby is None:
        return None
    pairs = [(shop.merchant.trade_name, shop.distance_m) for shop in nearby.shops]
    return {
        "message": nearby_message(pairs, accepting=nearby.accepting),
        "shops": [
            {
                "id": shop.merchant.pk,
                "name": shop.merchant.trade_name,
                "address": shop.merchant.address,
                "postcode": shop.merchant.postcode,
                "city": shop.merchant.city,
                "distance_m": shop.distance_m,
                "distance_display": (
                    format_distance(shop.distance_m) if shop.distance_m is not None else None
                ),
            }
            for shop in nearby.shops
        ],
    }


class PaymentDetailApi(AppApi):
    @extend_schema(
        summary="One payment, explained",
        description="What was asked and accepted, which aid paid what, what the shop took and "
        "refunded, for each aid considered whether its rules allowed the payment and, if "
        "not, why in plain words, and for a payment refused because of the shop, the nearest "
        "shops where that aid is accepted.",
        parameters=[LANGUAGE],
        responses={200: PaymentDetailOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "Refused",
                response_only=True,
                value={
                    **DECLINED_PAYMENT_EXAMPLE,
                    "held": 0,
                    "held_display": "0,00 €",
                    "captured": 0,
                    "captured_display": "0,00 €",
                    "refunded": 0,
                    "refunded_display": "0,00 €",
                    "checks": [
                        {
                            "pocket_id": 17,
                            "aid_name": "Aide alimentaire",
                            "accepted": False,
                            "message": "Cette aide ne peut pas être utilisée dans ce type de "
                            "commerce. Elle peut être utilisée dans : commerces alimentaires.",
                        }
                    ],
                    "funders": [FUNDER_EXAMPLE],
                    "nearby": {
                        "message": "Où utiliser cette aide près d\u2019ici\u00a0: Épicerie du "
                        "Vieux Temple (450\u00a0m), Marché Saint-Bruno (1,2\u00a0km).",
                        "shops": [
                            {
                                "id": 42,
                                "name": "Épicerie du Vieux Temple",
                                "address": "4 rue du Vieux Temple",
                                "postcode": "38000",
                                "city": "Grenoble",
                                "distance_m": 450,
                                "distance_display": "450\u00a0m",
                            },
                            {
                                "id": 57,
                                "name": "Marché Saint-Bruno",
                                "address": "Place Saint-Bruno",
                                "postcode": "38000",
                                "city": "Grenoble",
                                "distance_m": 1214,
                                "distance_display": "1,2\u00a0km",
                            },
                        ],
                    },
                },
            )
        ],
    )
    def get(self, request, reference: str):
        decision = selectors.payment_get(wallet=self.wallet, reference=reference)
        currency = decision.currency
        trail = selectors.payment_money(decision)
        names = selectors.payment_pocket_names(decision)
        checks = []
        for verdict in decision.trace.get("verdicts", []):
            message = None
            if not verdict["eligible"]:
                message = beneficiary_message(
                    verdict["reason"], details={**verdict["details"], "currency": currency}
                )
            checks.append(
                {
                    "pocket_id": verdict["pocket_id"],
                    "aid_name": names.get(verdict["pocket_id"], ""),
                    "accepted": verdict["eligible"],
                    "message": message,
                }
            )
        body = {
            **payment_data(decision),
            "held": trail.held,
            "held_display": format_money(trail.held, currency),
            "captured": trail.captured,
            "captured_display": format_money(trail.captured, currency),
            "refunded": trail.refunded,
            "refunded_display": format_money(trail.refunded, currency),
            "checks": checks,
            "funders": [funder_data(funder) for funder in selectors.payment_funders(decision)],
            "nearby": nearby_data(refusal_shops_nearby(decision=decision)),
        }
        return Response(PaymentDetailOutput(body).data)
