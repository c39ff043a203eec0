"""The merchant API, /api/merchant/v1/. Views parse input, call one service, shape output."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from merchants.authentication import ApiKeyAuthentication
from merchants.services import payment_authorize
from wallet.authorization.codes import merchant_message
from wallet.ledger.services import MAX_AMOUNT
from wallet.models import Decision


class StrictIntegerField(serializers.IntegerField):
    """Amounts are JSON integers of minor units: "12", 12.0 and true are refused, not coerced."""

    default_error_messages = {"invalid": "A whole number of cents is required, such as 1250."}

    def to_internal_value(self, data):
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class MerchantApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]

    @property
    def merchant(self):
        return self.request.user.merchant


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Any unique string (a UUID): a retry with the same key returns the first result.",
)


class AuthorizationOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="reference")
    object = serializers.SerializerMethodField()
    decline = serializers.SerializerMethodField()
    created = serializers.DateTimeField(source="decided_at")

    class Meta:
        model = Decision
        fields = [
            "id",
            "object",
            "status",
            "amount",
            "approved_amount",
            "currency",
            "decline",
            "created",
        ]

    def get_object(self, decision) -> str:
        return "authorization"

    def get_decline(self, decision) -> dict | None:
        if not decision.reason:
            return None
        return {"code": decision.reason, "message": merchant_message(decision.reason)}


class AuthorizationListCreateApi(MerchantApi):
    class InputSerializer(serializers.Serializer):
        amount = StrictIntegerField(min_value=1, max_value=MAX_AMOUNT)
        currency = serializers.RegexField(r"^[A-Z]{3}$", max_length=3)
        card = serializers.CharField(max_length=40)
        partial_approval_allowed = serializers.BooleanField(default=False)

    @extend_schema(
        request=InputSerializer, responses={201: AuthorizationOutput}, parameters=[IDEMPOTENCY_KEY]
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decision = payment_authorize(
            merchant=self.merchant,
            idempotency_key=request.headers.get("Idempotency-Key"),
            **data.validated_data,
        )
        return Response(AuthorizationOutput(decision).data, status=status.HTTP_201_CREATED)


class AuthorizationDetailApi(MerchantApi):
    @extend_schema(responses={200: AuthorizationOutput})
    def get(self, request, reference: str):
        decision = get_object_or_404(Decision, reference=reference, merchant=self.merchant)
        return Response(AuthorizationOutput(decision).data)
