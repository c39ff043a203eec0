"""A shop's application to take aid payments: the one operation of the merchant API without a
key, since the shop has none yet."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from merchant_api import idempotency
from merchant_api.base import ERROR_EXAMPLE, IDEMPOTENCY_KEY
from merchant_api.errors import APPLICATION_ERRORS
from merchants.models import Merchant
from merchants.services import merchant_create
from merchants.validators import validate_network_id, validate_terminal_id


class ApplicationThrottle(AnonRateThrottle):
    scope = "merchant_application"


class CardAcceptorInput(serializers.Serializer):
    network_id = serializers.CharField(
        max_length=35,
        validators=[validate_network_id],
        help_text="Your merchant id on the card network, as your acquirer gave it.",
    )
    terminal_id = serializers.CharField(
        max_length=16,
        required=False,
        default="",
        allow_blank=True,
        validators=[validate_terminal_id],
        help_text="A terminal id, when only this terminal is yours; leave out for all of them.",
    )


class MerchantApplicationInput(serializers.ModelSerializer):
    # The model takes any two characters; the zone rules compare ISO codes.
    country = serializers.RegexField(
        r"^[A-Z]{2}$", required=False, help_text="ISO 3166 country code (FR by default)."
    )
    card_acceptors = CardAcceptorInput(
        many=True,
        required=False,
        max_length=50,
        help_text=(
            "How the card network names your shop, so that aid cards paid at your terminals "
            "follow the same rules as payments through this API. 409 card_acceptor_taken when "
            "one is already another merchant's."
        ),
    )

    class Meta:
        model = Merchant
        fields = ["siret", "legal_name", "trade_name", "mcc", "address", "postcode", "city",
                  "commune_code", "country", "latitude", "longitude", "iban", "bic",
                  "stripe_account_id", "card_acceptors"]  # fmt: skip
        extra_kwargs = {
            "iban": {"help_text": "Where we pay you by SEPA transfer (spaces allowed)."},
            "bic": {"help_text": "Your bank's BIC, 8 or 11 characters (optional)."},
        }

    def validate_card_acceptors(self, value: list[dict]) -> list[dict]:
        ids = [(acceptor["network_id"], acceptor["terminal_id"]) for acceptor in value]
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError(_("The same card acceptor is given twice."))
        return value


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
        responses={201: MerchantApplicationOutput, **APPLICATION_ERRORS},
        parameters=[IDEMPOTENCY_KEY],
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
                    "card_acceptors": [
                        {"network_id": "493051000123456"},
                        {"network_id": "493051000999001", "terminal_id": "T0042"},
                    ],
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
        key = idempotency.request_key(request)
        fingerprint = idempotency.request_fingerprint(request)
        replayed = idempotency.application_replay(key=key, fingerprint=fingerprint)
        if replayed is not None:
            # A retry of an application that went through answers what the first call did,
            # not "this SIRET already applied".
            return replayed
        data = MerchantApplicationInput(data=request.data)
        data.is_valid(raise_exception=True)
        merchant = merchant_create(**data.validated_data)
        response = Response(
            MerchantApplicationOutput(merchant).data, status=status.HTTP_201_CREATED
        )
        self.created = (merchant, key, fingerprint)
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if created := getattr(self, "created", None):
            response.render()
            merchant, key, fingerprint = created
            idempotency.remember(
                merchant=merchant,
                key=idempotency.APPLICATION_PREFIX + key,
                fingerprint=fingerprint,
                response=response,
            )
        return response
