"""A shop's application to take aid payments: the one operation of the merchant API without a
key, since the shop has none yet."""

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from merchant_api.base import ERROR_EXAMPLE, ERRORS
from merchants.models import Merchant
from merchants.services import merchant_create


class ApplicationThrottle(AnonRateThrottle):
    scope = "merchant_application"


class MerchantApplicationInput(serializers.ModelSerializer):
    # The model takes any two characters; the zone rules compare ISO codes.
    country = serializers.RegexField(
        r"^[A-Z]{2}$", required=False, help_text="ISO 3166 country code (FR by default)."
    )

    class Meta:
        model = Merchant
        fields = ["siret", "legal_name", "trade_name", "mcc", "address", "postcode", "city",
                  "commune_code", "country", "latitude", "longitude", "iban", "bic",
                  "stripe_account_id"]  # fmt: skip
        extra_kwargs = {
            "iban": {"help_text": "Where we pay you by SEPA transfer (spaces allowed)."},
            "bic": {"help_text": "Your bank's BIC, 8 or 11 characters (optional)."},
        }


class MerchantApplicationOutput(serializers.ModelSerializer):
    class Meta:
        model = Merchant
        fields = ["id", "siret", "trade_name", "status", "created_at"]


class MerchantApplicationCreateApi(APIView):
    """A shop applies to take aid payments; a platform operator approves it in the admin."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = [ApplicationThrottle]

    @extend_schema(
        summary="Apply to accept aid payments",
        request=MerchantApplicationInput,
        responses={201: MerchantApplicationOutput, **ERRORS},
        auth=[],
        examples=[
            OpenApiExample(
                "Application",
                request_only=True,
                value={
                    "siret": "44306184100047",
                    "legal_name": "Épicerie du Vieux Temple SAS",
                    "trade_name": "Épicerie du Vieux Temple",
                    "mcc": "5411",
                    "address": "4 rue du Vieux Temple",
                    "postcode": "38000",
                    "city": "Grenoble",
                    "commune_code": "38185",
                    "country": "FR",
                    "latitude": "45.19302",
                    "longitude": "5.73086",
                    "iban": "FR76 3000 6000 0112 3456 7890 189",
                    "bic": "AGRIFRPP",
                },
            ),
            OpenApiExample(
                "Received",
                response_only=True,
                value={
                    "id": 42,
                    "siret": "44306184100047",
                    "trade_name": "Épicerie du Vieux Temple",
                    "status": "pending",
                    "created_at": "2026-11-22T09:00:00+01:00",
                },
            ),
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request):
        data = MerchantApplicationInput(data=request.data)
        data.is_valid(raise_exception=True)
        merchant = merchant_create(**data.validated_data)
        return Response(MerchantApplicationOutput(merchant).data, status=status.HTTP_201_CREATED)
