"""The wallet's cards: list them, freeze and unfreeze one, report one lost or stolen."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from beneficiary_app.api.base import ERROR_EXAMPLE, ERRORS, AppApi
from beneficiary_app.services import card_freeze, card_report_lost, card_unfreeze
from wallet.models import Card


class CardOutput(serializers.ModelSerializer):
    class Meta:
        model = Card
        fields = ["reference", "kind", "status", "last4"]


CARD_EXAMPLE = {
    "reference": "card_bWTP5uYrZZcJLPD_MIxfr2tU",
    "kind": "physical",
    "status": "active",
    "last4": "4242",
}


def _wallet_card(wallet, reference: str) -> Card:
    return get_object_or_404(Card, reference=reference, wallet=wallet)


class CardListApi(AppApi):
    class CardListOutput(serializers.Serializer):
        data = CardOutput(many=True)

    @extend_schema(
        summary="The cards",
        operation_id="cards_list",
        responses={200: CardListOutput, **ERRORS},
        examples=[OpenApiExample("Cards", response_only=True, value={"data": [CARD_EXAMPLE]})],
    )
    def get(self, request):
        cards = self.wallet.cards.exclude(status=Card.Status.CANCELED).order_by("-created_at")
        return Response({"data": CardOutput(cards, many=True).data})


class CardFreezeApi(AppApi):
    @extend_schema(
        summary="Freeze a card",
        operation_id="cards_freeze",
        description="Card payments are refused until the card is unfrozen. Freezing a frozen "
        "card changes nothing.",
        request=None,
        responses={200: CardOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "Done", response_only=True, value={**CARD_EXAMPLE, "status": Card.Status.FROZEN}
            ),
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request, reference: str):
        card = card_freeze(card=_wallet_card(self.wallet, reference))
        return Response(CardOutput(card).data)


class CardUnfreezeApi(AppApi):
    @extend_schema(
        summary="Unfreeze a card",
        operation_id="cards_unfreeze",
        description="The card works again.",
        request=None,
        responses={200: CardOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "Done", response_only=True, value={**CARD_EXAMPLE, "status": Card.Status.ACTIVE}
            ),
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request, reference: str):
        card = card_unfreeze(card=_wallet_card(self.wallet, reference))
        return Response(CardOutput(card).data)


class CardReportLostApi(AppApi):
    @extend_schema(
        summary="Report a card lost or stolen",
        operation_id="cards_report_lost",
        description="The card is blocked for good; this cannot be undone.",
        request=None,
        responses={200: CardOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "Done", response_only=True, value={**CARD_EXAMPLE, "status": Card.Status.LOST}
            ),
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request, reference: str):
        card = card_report_lost(card=_wallet_card(self.wallet, reference))
        return Response(CardOutput(card).data)
