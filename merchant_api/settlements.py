"""The merchant API's settlements: each batch that paid (or will pay) the merchant, its lines,
and its statement as CSV. A merchant reaches only its own batches; another's answers 404."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from merchant_api.base import CURSOR, LIMIT, MerchantApi, Page, paginated
from merchant_api.errors import DETAIL_ERRORS, LIST_ERRORS
from merchants.models.settlement import Payout, SettlementBatch, SettlementLine
from merchants.statements import statement_csv, statement_filename


class PayoutOutput(serializers.ModelSerializer):
    class Meta:
        model = Payout
        fields = ["method", "status", "amount", "currency", "sent_at", "paid_at"]


class SettlementOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="reference")
    object = serializers.SerializerMethodField()
    payout = serializers.SerializerMethodField()
    created = serializers.DateTimeField(source="created_at")
    livemode = serializers.SerializerMethodField(
        help_text="Always true: settlements pay real money, and the sandbox never settles (a "
        "test key lists none)."
    )

    class Meta:
        model = SettlementBatch
        fields = ["id", "object", "livemode", "currency", "period_start", "period_end", "captured",
                  "refunded", "carried", "net", "payout", "created"]  # fmt: skip

    def get_object(self, batch) -> str:
        return "settlement"

    def get_livemode(self, batch) -> bool:
        return True

    @extend_schema_field(PayoutOutput(allow_null=True))
    def get_payout(self, batch):
        payout = getattr(batch, "payout", None)
        return PayoutOutput(payout).data if payout is not None else None


class SettlementLineOutput(serializers.ModelSerializer):
    type = serializers.ChoiceField(source="kind", choices=SettlementLine.Kind.choices)
    # A carried line has no payment, a payment or refund line no batch it was carried from.
    authorization = serializers.CharField(
        source="decision.reference", default=None, allow_null=True
    )
    merchant_reference = serializers.CharField(
        source="decision.merchant_reference", default=None, allow_null=True
    )
    carried_from = serializers.CharField(
        source="carried_from.reference", default=None, allow_null=True
    )
    date = serializers.DateTimeField(source="occurred_at")

    class Meta:
        model = SettlementLine
        fields = ["type", "amount", "authorization", "merchant_reference", "carried_from", "date"]


class SettlementDetailOutput(SettlementOutput):
    lines = serializers.SerializerMethodField()

    class Meta(SettlementOutput.Meta):
        fields = [*SettlementOutput.Meta.fields, "lines"]

    @extend_schema_field(SettlementLineOutput(many=True))
    def get_lines(self, batch):
        lines = batch.lines.select_related("decision", "carried_from").order_by("occurred_at", "pk")
        return SettlementLineOutput(lines, many=True).data


class SettlementPage(Page):
    results = SettlementOutput(many=True)


SETTLEMENT_EXAMPLE = {
    "id": "STL-3F9A0C2E71B4D855",
    "object": "settlement",
    "livemode": True,
    "currency": "EUR",
    "period_start": "2026-11-21T00:00:00+01:00",
    "period_end": "2026-11-22T00:00:00+01:00",
    "captured": 12500,
    "refunded": 1000,
    "carried": 0,
    "net": 11500,
    "payout": {
        "method": "sepa",
        "status": "sent",
        "amount": 11500,
        "currency": "EUR",
        "sent_at": "2026-11-22T09:00:00+01:00",
        "paid_at": None,
    },
    "created": "2026-11-22T00:15:00+01:00",
}


def _own_batches(view: MerchantApi):
    if not view.livemode:
        return SettlementBatch.objects.none()  # sandbox payments move no money to settle
    return SettlementBatch.objects.filter(merchant=view.merchant).select_related("payout")


class SettlementListApi(MerchantApi):
    @extend_schema(
        summary="List your settlements, newest first",
        operation_id="settlements_list",
        description="One settlement a day with payments or refunds: what was captured, "
        "refunded, carried from a previous settlement whose refunds exceeded its payments, the "
        "net, and its payout.",
        parameters=[CURSOR, LIMIT],
        responses={200: SettlementPage, **LIST_ERRORS},
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={
                    "livemode": True,
                    "next": None,
                    "previous": None,
                    "results": [SETTLEMENT_EXAMPLE],
                },
            )
        ],
    )
    def get(self, request):
        return paginated(self, _own_batches(self), SettlementOutput, ordering="-created_at")


class SettlementDetailApi(MerchantApi):
    @extend_schema(
        summary="Retrieve a settlement with its lines",
        operation_id="settlements_retrieve",
        responses={200: SettlementDetailOutput, **DETAIL_ERRORS},
        examples=[
            OpenApiExample(
                "A settlement",
                response_only=True,
                value={
                    **SETTLEMENT_EXAMPLE,
                    "lines": [
                        {
                            "type": "payment",
                            "amount": 12500,
                            "authorization": "auth_8fJ2kQ0wV3m1nX7aL5pR9sT4",
                            "merchant_reference": "order-1042",
                            "carried_from": None,
                            "date": "2026-11-21T10:15:00+01:00",
                        },
                        {
                            "type": "refund",
                            "amount": -1000,
                            "authorization": "auth_8fJ2kQ0wV3m1nX7aL5pR9sT4",
                            "merchant_reference": "order-1042",
                            "carried_from": None,
                            "date": "2026-11-21T16:40:00+01:00",
                        },
                    ],
                },
            )
        ],
    )
    def get(self, request, reference: str):
        batch = get_object_or_404(_own_batches(self), reference=reference)
        return Response(SettlementDetailOutput(batch).data)


class CsvRenderer(BaseRenderer):
    """Lets a client that asks for `Accept: text/csv` have the statement instead of a 406; the
    view writes the CSV itself, so this renderer only passes the text through."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class SettlementStatementCsvApi(MerchantApi):
    renderer_classes = [JSONRenderer, CsvRenderer]

    def finalize_response(self, request, response, *args, **kwargs):
        # An error is the API's JSON error whatever the client accepts, as documented.
        if isinstance(response, Response):
            request.accepted_renderer, request.accepted_media_type = (
                JSONRenderer(),
                JSONRenderer.media_type,
            )
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(
        summary="Download a settlement's statement (CSV)",
        description="Semicolon-separated, one row per payment, refund and carried amount, then "
        "the net; amounts in cents and written in French (1 234,50 €).",
        operation_id="settlements_statement_csv",
        responses={(200, "text/csv"): OpenApiTypes.STR, **DETAIL_ERRORS},
        examples=[
            OpenApiExample(
                "Statement",
                response_only=True,
                media_type="text/csv",
                value="date;type;authorization;merchant_reference;amount_cents;amount\r\n"
                "21/11/2026 10:15;payment;auth_8fJ2kQ0wV3m1nX7aL5pR9sT4;order-1042;12500;"
                "125,00 €\r\n"
                "22/11/2026 00:00;net;STL-3F9A0C2E71B4D855;;12500;125,00 €\r\n",
            )
        ],
    )
    def get(self, request, reference: str):
        batch = get_object_or_404(_own_batches(self), reference=reference)
        response = HttpResponse(statement_csv(batch), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="{statement_filename(batch, "csv")}"'
        )
        return response
