"""A one-time payment code for a shop to type or scan."""

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from beneficiary_app.api.base import ERROR_EXAMPLE, ERRORS, AppApi
from core.money import MAX_AMOUNT
from wallet.payment_codes import payment_code_create, payment_code_format, payment_code_qr_svg


class PaymentCodeCreateApi(AppApi):
    class PaymentCodeInput(serializers.Serializer):
        max_amount = serializers.IntegerField(
            min_value=1,
            max_value=MAX_AMOUNT,
            required=False,
            help_text="The most the shop may ask with this code, in minor units.",
        )
        currency = serializers.RegexField(r"^[A-Z]{3}$", default="EUR")

    class PaymentCodeOutput(serializers.Serializer):
        code = serializers.CharField(help_text="10 digits, shown as 1234 567 890.")
        expires_at = serializers.DateTimeField()
        qr_svg = serializers.CharField(help_text="The code as a QR code, an SVG document.")
        max_amount = serializers.IntegerField(allow_null=True)
        currency = serializers.CharField()

    @extend_schema(
        summary="Show a payment code",
        description="A one-time code for a shop to type or scan; it works a few minutes and "
        "once. Refused with 409 wallet_frozen for a frozen wallet, 429 payment_code_locked "
        "after too many wrong codes.",
        request=PaymentCodeInput,
        responses={201: PaymentCodeOutput, **ERRORS},
        examples=[
            OpenApiExample("Any amount", request_only=True, value={}),
            OpenApiExample(
                "Code",
                response_only=True,
                status_codes=["201"],
                value={
                    "code": "1234 567 890",
                    "expires_at": "2026-11-22T10:20:00+01:00",
                    "qr_svg": '<svg xmlns="http://www.w3.org/2000/svg" …</svg>',
                    "max_amount": None,
                    "currency": "EUR",
                },
            ),
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request):
        data = self.PaymentCodeInput(data=request.data)
        data.is_valid(raise_exception=True)
        payment_code, digits = payment_code_create(wallet=self.wallet, **data.validated_data)
        body = {
            "code": payment_code_format(digits),
            "expires_at": payment_code.expires_at,
            "qr_svg": payment_code_qr_svg(digits),
            "max_amount": payment_code.max_amount,
            "currency": payment_code.currency,
        }
        return Response(self.PaymentCodeOutput(body).data, status=status.HTTP_201_CREATED)
