"""Captures: what a merchant takes of an authorization's hold, once per authorization; the rest
is released to the beneficiary's pockets."""

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
from merchants.models import Capture
from merchants.payments import payment_capture
from merchants.sandbox import sandbox_capture


class CaptureOutput(OperationOutput):
    class Meta(OperationOutput.Meta):
        model = Capture

    def get_object(self, capture) -> str:
        return "capture"


CAPTURE_EXAMPLE = OpenApiExample(
    "Capture",
    response_only=True,
    value={
        "id": "cap_Q2f7mZ1kPx0aB9cD3eF5gH7j",
        "object": "capture",
        "livemode": True,
        "authorization": "auth_8fJ2kQ0wV3m1nX7aL5pR9sT4",
        "amount": 1000,
        "created": "2026-11-22T10:20:00+01:00",
    },
)


class CaptureCreateApi(OperationCreateApi):
    @extend_schema(
        summary="Capture an authorization",
        operation_id="authorizations_capture",
        description="Capture what is held, or part of it: the rest is released to the "
        "beneficiary's pockets. One capture per authorization.",
        request=AmountInput,
        responses={201: CaptureOutput, **ERRORS},
        parameters=[IDEMPOTENCY_KEY],
        examples=[
            OpenApiExample("Capture part", request_only=True, value={"amount": 1000}),
            CAPTURE_EXAMPLE,
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request, reference: str):
        data = validated(AmountInput, json_body(request))
        decision = own_authorization(
            merchant=self.merchant, reference=reference, livemode=self.livemode
        )
        key = self.service_key()
        if not self.livemode:
            return self.committed(
                CaptureOutput,
                lambda writes: sandbox_capture(
                    merchant=self.merchant, decision=decision, idempotency_key=key, **data
                ),
            )
        return self.committed(
            CaptureOutput,
            lambda writes: payment_capture(
                merchant=self.merchant,
                decision=decision,
                idempotency_key=key,
                writes=writes,
                **data,
            ),
        )


class CapturePage(Page):
    results = CaptureOutput(many=True)


class CaptureListApi(MerchantApi):
    @extend_schema(
        summary="List captures, newest first",
        operation_id="captures_list",
        parameters=OPERATION_LIST_PARAMETERS,
        responses={200: CapturePage, **LIST_ERRORS},
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={
                    "livemode": True,
                    "next": None,
                    "previous": None,
                    "results": [CAPTURE_EXAMPLE.value],
                },
            )
        ],
    )
    def get(self, request):
        return operation_page(self, Capture, CaptureOutput)


class CaptureDetailApi(MerchantApi):
    @extend_schema(
        summary="Retrieve a capture",
        responses={200: CaptureOutput, **DETAIL_ERRORS},
        examples=[CAPTURE_EXAMPLE],
    )
    def get(self, request, reference: str):
        return operation_detail(self, Capture, CaptureOutput, reference)
