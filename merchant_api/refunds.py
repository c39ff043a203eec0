"""Refunds: money a merchant gives back on a captured payment, up to what was captured minus
earlier refunds."""

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers

from merchant_api.base import (
    ERROR_EXAMPLE,
    IDEMPOTENCY_KEY,
    AmountField,
    MerchantApi,
    Page,
    json_body,
    validated,
)
from merchant_api.errors import DETAIL_ERRORS, ERRORS, LIST_ERRORS
from merchant_api.operations import (
    OPERATION_LIST_PARAMETERS,
    OperationCreateApi,
    OperationOutput,
    operation_detail,
    operation_page,
    own_authorization,
)
from merchants.models import Refund
from merchants.payments import payment_refund
from merchants.sandbox import sandbox_refund


class RefundOutput(OperationOutput):
    class Meta(OperationOutput.Meta):
        model = Refund
        fields = ["id", "object", "livemode", "authorization", "amount", "reason", "created"]

    def get_object(self, refund) -> str:
        return "refund"


REFUND_EXAMPLE = OpenApiExample(
    "Refund",
    response_only=True,
    value={
        "id": "re_Q2f7mZ1kPx0aB9cD3eF5gH7j",
        "object": "refund",
        "livemode": True,
        "authorization": "auth_8fJ2kQ0wV3m1nX7aL5pR9sT4",
        "amount": 1000,
        "reason": "returned item",
        "created": "2026-11-22T10:20:00+01:00",
    },
)


class RefundInput(serializers.Serializer):
    amount = AmountField()
    reason = serializers.CharField(max_length=200, default="", allow_blank=True)


class RefundCreateApi(OperationCreateApi):
    @extend_schema(
        summary="Refund a captured payment",
        operation_id="refunds_create",
        description="Up to what was captured minus earlier refunds. The money returns to the "
        "beneficiary's pockets it came from, or to the funder where the aid has ended.",
        request=RefundInput,
        responses={201: RefundOutput, **ERRORS},
        parameters=[IDEMPOTENCY_KEY],
        examples=[
            OpenApiExample(
                "Refund", request_only=True, value={"amount": 500, "reason": "returned item"}
            ),
            REFUND_EXAMPLE,
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request, reference: str):
        data = validated(RefundInput, json_body(request))
        decision = own_authorization(
            merchant=self.merchant, reference=reference, livemode=self.livemode
        )
        key = self.service_key()
        if not self.livemode:
            return self.committed(
                RefundOutput,
                lambda writes: sandbox_refund(
                    merchant=self.merchant, decision=decision, idempotency_key=key, **data
                ),
            )
        return self.committed(
            RefundOutput,
            lambda writes: payment_refund(
                merchant=self.merchant,
                decision=decision,
                idempotency_key=key,
                writes=writes,
                **data,
            ),
        )


class RefundPage(Page):
    results = RefundOutput(many=True)


class RefundListApi(MerchantApi):
    @extend_schema(
        summary="List refunds, newest first",
        operation_id="refunds_list",
        parameters=OPERATION_LIST_PARAMETERS,
        responses={200: RefundPage, **LIST_ERRORS},
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={
                    "livemode": True,
                    "next": None,
                    "previous": None,
                    "results": [REFUND_EXAMPLE.value],
                },
            )
        ],
    )
    def get(self, request):
        return operation_page(self, Refund, RefundOutput)


class RefundDetailApi(MerchantApi):
    @extend_schema(
        summary="Retrieve a refund",
        responses={200: RefundOutput, **DETAIL_ERRORS},
        examples=[REFUND_EXAMPLE],
    )
    def get(self, request, reference: str):
        return operation_detail(self, Refund, RefundOutput, reference)
