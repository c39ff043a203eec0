"""Reversals: what a merchant releases of an authorization's hold without capturing it, in whole
or in part; it returns to the beneficiary's pockets."""

from drf_spectacular.utils import OpenApiExample, extend_schema

from merchant_api.base import (
    ERROR_EXAMPLE,
    IDEMPOTENCY_KEY,
    MerchantApi,
    Page,
    json_body,
    validated,
)
from merchant_api.errors import DETAIL_ERRORS, ERRORS, LIST_ERRORS
from merchant_api.operations import (
    OPERATION_LIST_PARAMETERS,
    AmountInput,
    OperationCreateApi,
    OperationOutput,
    operation_detail,
    operation_page,
    own_authorization,
)
from merchants.models import Reversal
from merchants.payments import payment_reverse
from merchants.sandbox import sandbox_reverse


class ReversalOutput(OperationOutput):
    class Meta(OperationOutput.Meta):
        model = Reversal

    def get_object(self, reversal) -> str:
        return "reversal"


REVERSAL_EXAMPLE = OpenApiExample(
    "Reversal",
    response_only=True,
    value={
        "id": "rev_Q2f7mZ1kPx0aB9cD3eF5gH7j",
        "object": "reversal",
        "livemode": True,
        "authorization": "auth_8fJ2kQ0wV3m1nX7aL5pR9sT4",
        "amount": 1000,
        "created": "2026-11-22T10:20:00+01:00",
    },
)


class ReversalCreateApi(OperationCreateApi):
    @extend_schema(
        summary="Reverse an authorization",
        operation_id="authorizations_reverse",
        description="Release what is held, in whole or in part, without capturing it.",
        request=AmountInput,
        responses={201: ReversalOutput, **ERRORS},
        parameters=[IDEMPOTENCY_KEY],
        examples=[
            OpenApiExample("Reverse all", request_only=True, value={}),
            REVERSAL_EXAMPLE,
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request, reference: str):
        data = validated(AmountInput, json_body(request))
        decision = own_authorization(
            merchant=self.merchant, reference=reference, livemode=self.livemode
        )
        service = payment_reverse if self.livemode else sandbox_reverse
        key = self.service_key()
        # The ORM's path writes the reversal; its stored answer still commits with it (the
        # one statement `committed` opens then holds the answer alone).
        return self.committed(
            ReversalOutput,
            lambda _writes: service(
                merchant=self.merchant, decision=decision, idempotency_key=key, **data
            ),
        )


class ReversalPage(Page):
    results = ReversalOutput(many=True)


class ReversalListApi(MerchantApi):
    @extend_schema(
        summary="List reversals, newest first",
        operation_id="reversals_list",
        parameters=OPERATION_LIST_PARAMETERS,
        responses={200: ReversalPage, **LIST_ERRORS},
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={
                    "livemode": True,
                    "next": None,
                    "previous": None,
                    "results": [REVERSAL_EXAMPLE.value],
                },
            )
        ],
    )
    def get(self, request):
        return operation_page(self, Reversal, ReversalOutput)


class ReversalDetailApi(MerchantApi):
    @extend_schema(
        summary="Retrieve a reversal",
        responses={200: ReversalOutput, **DETAIL_ERRORS},
        examples=[REVERSAL_EXAMPLE],
    )
    def get(self, request, reference: str):
        return operation_detail(self, Reversal, ReversalOutput, reference)
