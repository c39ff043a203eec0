"""The merchant API, /api/merchant/v1/. Views parse input, call one service, shape output.

Every POST takes an `Idempotency-Key` header (see merchants/idempotency.py); every object is
looked up through the authenticated merchant, so another merchant's id answers 404."""

from collections.abc import Mapping
from datetime import UTC

import django_filters
from django import forms
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle
from rest_framework.views import APIView

from core.errors import DomainError, PaymentCodeInvalid
from core.money import MAX_AMOUNT
from engine.codes import merchant_message
from merchant_api import idempotency
from merchant_api.authentication import ApiKeyAuthentication
from merchant_api.code_guessing import PaymentCodeGuessing
from merchants.models import ApiKey, Capture, Merchant, Refund, Reversal
from merchants.models.webhooks import WebhookEndpoint
from merchants.payments import payment_authorize, payment_capture, payment_refund, payment_reverse
from merchants.selectors import authorization_list, capture_status
from merchants.services import api_key_create, api_key_revoke, merchant_create
from merchants.webhooks import webhook_endpoint_create, webhook_endpoint_disable
from wallet.models import Decision


class StrictIntegerField(serializers.IntegerField):
    """Amounts are JSON integers of minor units: "12", 12.0 and true are refused, not coerced."""

    default_error_messages = {"invalid": "A whole number of cents is required, such as 1250."}

    def to_internal_value(self, data):
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


def amount_field(**kwargs) -> StrictIntegerField:
    return StrictIntegerField(min_value=1, max_value=MAX_AMOUNT, **kwargs)


class MetadataField(serializers.DictField):
    """Up to 20 string keys and values the merchant wants back, e.g. its order number."""

    child = serializers.CharField(max_length=500, allow_blank=True)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > 20 or any(len(key) > 40 for key in value):
            raise serializers.ValidationError("At most 20 keys of at most 40 characters.")
        return value


class MerchantKeyThrottle(SimpleRateThrottle):
    """Requests per API key (rate: settings REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])."""

    scope = "merchant_key"

    def get_cache_key(self, request, view):
        # The key's digest, not its id: an id can be reused (a rolled-back insert), a digest not.
        return self.cache_format % {"scope": self.scope, "ident": request.auth.digest}


class CardNotAccepted(DomainError):
    code = "card_not_accepted"
    default_message = _(
        "Cards are not accepted by the merchant API: send the payment_code shown in the "
        "beneficiary's app. Cards pay through the card network."
    )

    def __init__(self):
        super().__init__(field="card")


class MerchantKeyCreationThrottle(SimpleRateThrottle):
    """API keys a merchant may create (rate: DEFAULT_THROTTLE_RATES["merchant_key_creation"]),
    all its keys together: with the cap of active keys, a merchant cannot mint keys to spread
    anything per key."""

    scope = "merchant_key_creation"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request.user.merchant.pk}


class MerchantApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [MerchantKeyThrottle]

    @property
    def merchant(self) -> Merchant:
        return self.request.user.merchant

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.idempotency = None
        if request.method == "POST":
            key = idempotency.request_key(request)
            if key is not None:
                fingerprint = idempotency.request_fingerprint(request)
                self.idempotency = (key, fingerprint)
                replayed = idempotency.replay(
                    merchant=self.merchant, key=key, fingerprint=fingerprint
                )
                if replayed is not None:
                    raise _Replay(replayed)

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        key = getattr(self, "idempotency", None)
        if key is not None and response.status_code < 500 and "Idempotent-Replayed" not in response:
            response.render()
            idempotency.remember(
                merchant=self.merchant, key=key[0], fingerprint=key[1], response=response
            )
        return response

    def service_key(self) -> str | None:
        return self.idempotency[0] if self.idempotency else None


class _Replay(Exception):  # control flow carrying a stored response, not an error
    def __init__(self, response):
        self.response = response


IDEMPOTENCY_KEY = OpenApiParameter(
    idempotency.HEADER,
    str,
    OpenApiParameter.HEADER,
    description="A unique string per operation (a UUID). A retry with the same key and body "
    "gets the first response back, byte for byte, and moves no money; the same key with another "
    "body is refused with 409 idempotency_conflict.",
)


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True)


class ErrorOutput(serializers.Serializer):
    error = ErrorDetail()


class DeclineOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class AuthorizationOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="reference")
    object = serializers.SerializerMethodField()
    decline = serializers.SerializerMethodField()
    capture_status = serializers.SerializerMethodField()
    amount_held = serializers.IntegerField(read_only=True)
    amount_captured = serializers.IntegerField(read_only=True)
    amount_reversed = serializers.IntegerField(read_only=True)
    amount_refunded = serializers.IntegerField(read_only=True)
    created = serializers.DateTimeField(source="decided_at")

    class Meta:
        model = Decision
        fields = [
            "id", "object", "status", "amount", "approved_amount", "currency", "decline",
            "capture_status", "amount_held", "amount_captured", "amount_reversed",
            "amount_refunded", "merchant_reference", "metadata", "created",
        ]  # fmt: skip

    def get_object(self, decision) -> str:
        return "authorization"

    @extend_schema_field(DeclineOutput(allow_null=True))
    def get_decline(self, decision):
        if not decision.reason:
            return None
        return {"code": decision.reason, "message": merchant_message(decision.reason)}

    @extend_schema_field(
        serializers.ChoiceField(
            choices=["requires_capture", "captured", "refunded", "reversed", "expired"],
            allow_null=True,
        )
    )
    def get_capture_status(self, decision):
        return capture_status(decision)


def _operation_output(model, object_name: str, extra: tuple[str, ...] = ()):
    class Output(serializers.ModelSerializer):
        id = serializers.CharField(source="reference")
        object = serializers.SerializerMethodField()
        authorization = serializers.CharField(source="decision.reference")
        created = serializers.DateTimeField(source="created_at")

        class Meta:
            fields = ["id", "object", "authorization", "amount", *extra, "created"]

        def get_object(self, operation) -> str:
            return object_name

    Output.Meta.model = model
    Output.__name__ = f"{model.__name__}Output"
    return Output


CaptureOutput = _operation_output(Capture, "capture")
ReversalOutput = _operation_output(Reversal, "reversal")
RefundOutput = _operation_output(Refund, "refund", ("reason",))


def page_of(output, name: str):
    """The schema of a cursor-paginated list of `output` (the shape Cursor answers)."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": output(many=True),
        },
    )


class Cursor(CursorPagination):
    page_size = 25
    max_page_size = 100
    page_size_query_param = "limit"


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, read in UTC: any offset a client sends (ISO allows +17:28;
    PostgreSQL refuses offsets past ±15:59) names the same instant. An instant that exists only
    with its offset (9999-12-31T23:59:59-23:59 is in year 10000 in UTC) is invalid input."""

    default_error_messages = {
        "out_of_range": _("This date is outside the range of dates the API handles."),
    }

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise forms.ValidationError(
                self.error_messages["out_of_range"], code="out_of_range"
            ) from exc


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class AuthorizationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Decision.Status.choices)
    created_gte = UtcDateTimeFilter(field_name="decided_at", lookup_expr="gte")
    created_lt = UtcDateTimeFilter(field_name="decided_at", lookup_expr="lt")
    merchant_reference = django_filters.CharFilter()

    class Meta:
        model = Decision
        fields = ["status", "created_gte", "created_lt", "merchant_reference"]


class OperationFilter(django_filters.FilterSet):
    created_gte = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_lt = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    authorization = django_filters.CharFilter(field_name="decision__reference")


def _paginated(view, queryset, output, filterset_class):
    filtered = filterset_class(view.request.query_params, queryset=queryset)
    if not filtered.is_valid():
        raise serializers.ValidationError(filtered.errors)
    paginator = Cursor()
    paginator.ordering = "-decided_at" if queryset.model is Decision else "-created_at"
    page = paginator.paginate_queryset(filtered.qs, view.request, view=view)
    return paginator.get_paginated_response(output(page, many=True).data)


APPROVED_EXAMPLE = OpenApiExample(
    "Approved",
    response_only=True,
    value={
        "id": "auth_8fJ2kQ0wV3m1nX7aL5pR9sT4",
        "object": "authorization",
        "status": "approved",
        "amount": 1250,
        "approved_amount": 1250,
        "currency": "EUR",
        "decline": None,
        "capture_status": "requires_capture",
        "amount_held": 1250,
        "amount_captured": 0,
        "amount_reversed": 0,
        "amount_refunded": 0,
        "merchant_reference": "order-1042",
        "metadata": {},
        "created": "2026-11-22T10:15:00+01:00",
    },
)
DECLINED_EXAMPLE = OpenApiExample(
    "Declined",
    response_only=True,
    value={
        "id": "auth_Yq1c7T2uVb0pZk3rN8wH6eJ5",
        "object": "authorization",
        "status": "declined",
        "amount": 4500,
        "approved_amount": 0,
        "currency": "EUR",
        "decline": {
            "code": "merchant_category_not_allowed",
            "message": "Paiement refusé : l'aide ne peut pas être utilisée pour ce type d'achat.",
        },
        "capture_status": None,
        "amount_held": 0,
        "amount_captured": 0,
        "amount_reversed": 0,
        "amount_refunded": 0,
        "merchant_reference": "",
        "metadata": {},
        "created": "2026-11-22T10:16:00+01:00",
    },
)
ERROR_EXAMPLE = OpenApiExample(
    "Error",
    response_only=True,
    status_codes=["400"],
    value={
        "error": {
            "code": "invalid_request",
            "message": "A whole number of cents is required, such as 1250.",
            "field": "amount",
        }
    },
)


def operation_example(object_name: str, prefix: str, **extra) -> OpenApiExample:
    return OpenApiExample(
        object_name.capitalize(),
        response_only=True,
        value={
            "id": f"{prefix}_Q2f7mZ1kPx0aB9cD3eF5gH7j",
            "object": object_name,
            "authorization": "auth_8fJ2kQ0wV3m1nX7aL5pR9sT4",
            "amount": 1000,
            **extra,
            "created": "2026-11-22T10:20:00+01:00",
        },
    )


ERRORS = {
    400: ErrorOutput,
    401: ErrorOutput,
    404: ErrorOutput,
    409: ErrorOutput,
    415: ErrorOutput,
    422: ErrorOutput,
    429: ErrorOutput,
    503: ErrorOutput,
}


class AuthorizationListCreateApi(MerchantApi):
    class AuthorizationInput(serializers.Serializer):
        amount = amount_field(help_text="In minor units: 1250 is 12.50 EUR.")
        currency = serializers.RegexField(r"^[A-Z]{3}$", max_length=3)
        payment_code = serializers.CharField(
            max_length=32,
            help_text="The one-time code shown by the beneficiary's app, e.g. 1234 567 890.",
        )
        partial_approval_allowed = serializers.BooleanField(default=False)
        capture = serializers.BooleanField(
            default=False, help_text="Capture what is approved at once (a one-step purchase)."
        )
        merchant_reference = serializers.CharField(max_length=200, default="", allow_blank=True)
        metadata = MetadataField(default=dict)

        def to_internal_value(self, data):
            # Cards were once accepted here by their reference; an old integration that still
            # sends one learns why it is refused, before any other error and instead of seeing
            # the field ignored.
            if isinstance(data, Mapping) and "card" in data:
                raise CardNotAccepted()
            return super().to_internal_value(data)

    @extend_schema(
        summary="Authorize a payment",
        request=AuthorizationInput,
        responses={201: AuthorizationOutput, **ERRORS},
        parameters=[IDEMPOTENCY_KEY],
        examples=[
            OpenApiExample(
                "Request",
                request_only=True,
                value={
                    "amount": 1250,
                    "currency": "EUR",
                    "payment_code": "4821 930 517",
                    "merchant_reference": "order-1042",
                },
            ),
            APPROVED_EXAMPLE,
            DECLINED_EXAMPLE,
        ],
    )
    def post(self, request):
        data = self.AuthorizationInput(data=request.data)
        data.is_valid(raise_exception=True)
        guard = PaymentCodeGuessing(self.merchant)
        guard.check()
        try:
            decision = payment_authorize(
                merchant=self.merchant, idempotency_key=self.service_key(), **data.validated_data
            )
        except PaymentCodeInvalid:
            guard.count_failure()
            raise
        decision = authorization_list(merchant=self.merchant).get(pk=decision.pk)
        return Response(AuthorizationOutput(decision).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="List authorizations, newest first",
        operation_id="authorizations_list",
        parameters=[
            OpenApiParameter("status", str, enum=[c for c, _ in Decision.Status.choices]),
            OpenApiParameter("created_gte", OpenApiTypes.DATETIME),
            OpenApiParameter("created_lt", OpenApiTypes.DATETIME),
            OpenApiParameter("merchant_reference", str),
            OpenApiParameter("cursor", str),
            OpenApiParameter("limit", int),
        ],
        responses={200: page_of(AuthorizationOutput, "AuthorizationPage"), **ERRORS},
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={
                    "next": "https://wallet.example.org/api/merchant/v1/authorizations?cursor=cD0y",
                    "previous": None,
                    "results": [APPROVED_EXAMPLE.value, DECLINED_EXAMPLE.value],
                },
            ),
            ERROR_EXAMPLE,
        ],
    )
    def get(self, request):
        return _paginated(
            self, authorization_list(merchant=self.merchant), AuthorizationOutput,
            AuthorizationFilter,
        )  # fmt: skip


class AuthorizationDetailApi(MerchantApi):
    @extend_schema(
        summary="Retrieve an authorization",
        responses={200: AuthorizationOutput, **ERRORS},
        examples=[APPROVED_EXAMPLE],
    )
    def get(self, request, reference: str):
        decision = get_object_or_404(
            authorization_list(merchant=self.merchant), reference=reference
        )
        return Response(AuthorizationOutput(decision).data)


class AmountInput(serializers.Serializer):
    amount = amount_field(required=False, help_text="Leave out for the whole amount held.")


class RefundInput(serializers.Serializer):
    amount = amount_field()
    reason = serializers.CharField(max_length=200, default="", allow_blank=True)


class _AuthorizationOperationApi(MerchantApi):
    """POST /authorizations/{id}/<operation>: parse, call the operation's service on the
    merchant's own authorization, answer with the operation and the authorization's state."""

    input_serializer: type[serializers.Serializer]
    output: type[serializers.Serializer]
    service = None

    def post(self, request, reference: str):
        data = self.input_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        decision = get_object_or_404(Decision, reference=reference, merchant=self.merchant)
        operation = type(self).service(
            merchant=self.merchant,
            decision=decision,
            idempotency_key=self.service_key(),
            **data.validated_data,
        )
        fresh = authorization_list(merchant=self.merchant).get(pk=decision.pk)
        body = self.output(operation).data | {
            "authorization_state": AuthorizationOutput(fresh).data
        }
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema_view(
    post=extend_schema(
        summary="Capture an authorization",
        description="Capture what is held, or part of it: the rest is released to the "
        "beneficiary's pockets. One capture per authorization.",
        request=AmountInput,
        responses={201: CaptureOutput, **ERRORS},
        parameters=[IDEMPOTENCY_KEY],
        examples=[
            OpenApiExample("Capture part", request_only=True, value={"amount": 1000}),
            operation_example("capture", "cap"),
            ERROR_EXAMPLE,
        ],
    )
)
class CaptureApi(_AuthorizationOperationApi):
    input_serializer, output, service = AmountInput, CaptureOutput, payment_capture


@extend_schema_view(
    post=extend_schema(
        summary="Reverse an authorization",
        description="Release what is held, in whole or in part, without capturing it.",
        request=AmountInput,
        responses={201: ReversalOutput, **ERRORS},
        parameters=[IDEMPOTENCY_KEY],
        examples=[
            OpenApiExample("Reverse all", request_only=True, value={}),
            operation_example("reversal", "rev"),
            ERROR_EXAMPLE,
        ],
    )
)
class ReverseApi(_AuthorizationOperationApi):
    input_serializer, output, service = AmountInput, ReversalOutput, payment_reverse


@extend_schema_view(
    post=extend_schema(
        summary="Refund a captured payment",
        description="Up to what was captured minus earlier refunds. The money returns to the "
        "beneficiary's pockets it came from, or to the funder where the aid has ended.",
        request=RefundInput,
        responses={201: RefundOutput, **ERRORS},
        parameters=[IDEMPOTENCY_KEY],
        examples=[
            OpenApiExample(
                "Refund", request_only=True, value={"amount": 500, "reason": "returned item"}
            ),
            operation_example("refund", "re", reason="returned item"),
            ERROR_EXAMPLE,
        ],
    )
)
class RefundCreateApi(_AuthorizationOperationApi):
    input_serializer, output, service = RefundInput, RefundOutput, payment_refund


def _operation_views(model, output, name: str, prefix: str):
    class ListApi(MerchantApi):
        @extend_schema(
            summary=f"List {name}s, newest first",
            operation_id=f"{name}s_list",
            parameters=[
                OpenApiParameter("authorization", str),
                OpenApiParameter("created_gte", OpenApiTypes.DATETIME),
                OpenApiParameter("created_lt", OpenApiTypes.DATETIME),
                OpenApiParameter("cursor", str),
                OpenApiParameter("limit", int),
            ],
            responses={200: page_of(output, f"{model.__name__}Page"), **ERRORS},
            examples=[
                OpenApiExample(
                    "A page",
                    response_only=True,
                    value={
                        "next": None,
                        "previous": None,
                        "results": [operation_example(name, prefix).value],
                    },
                )
            ],
        )
        def get(self, request):
            queryset = model.objects.filter(decision__merchant=self.merchant).select_related(
                "decision"
            )
            return _paginated(self, queryset, output, OperationFilter)

    class DetailApi(MerchantApi):
        @extend_schema(
            summary=f"Retrieve a {name}",
            responses={200: output, **ERRORS},
            examples=[operation_example(name, prefix)],
        )
        def get(self, request, reference: str):
            operation = get_object_or_404(
                model.objects.select_related("decision"),
                reference=reference,
                decision__merchant=self.merchant,
            )
            return Response(output(operation).data)

    ListApi.__name__ = f"{model.__name__}ListApi"
    DetailApi.__name__ = f"{model.__name__}DetailApi"
    return ListApi, DetailApi


CaptureListApi, CaptureDetailApi = _operation_views(Capture, CaptureOutput, "capture", "cap")
ReversalListApi, ReversalDetailApi = _operation_views(Reversal, ReversalOutput, "reversal", "rev")
RefundListApi, RefundDetailApi = _operation_views(Refund, RefundOutput, "refund", "re")


class ApiKeyOutput(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    created = serializers.DateTimeField(source="created_at")

    class Meta:
        model = ApiKey
        fields = ["id", "object", "name", "mode", "prefix", "created", "last_used_at",
                  "revoked_at"]  # fmt: skip

    def get_object(self, key) -> str:
        return "api_key"


class ApiKeyCreatedOutput(ApiKeyOutput):
    secret = serializers.SerializerMethodField()

    class Meta(ApiKeyOutput.Meta):
        fields = [*ApiKeyOutput.Meta.fields, "secret"]

    def get_secret(self, key) -> str:
        return self.context["secret"]


class ApiKeyListOutput(serializers.Serializer):
    data = ApiKeyOutput(many=True)


API_KEY_EXAMPLE = {
    "id": 12,
    "object": "api_key",
    "name": "Caisse 1",
    "mode": "live",
    "prefix": "sk_live_4fT9qLm",
    "created": "2026-11-22T09:00:00+01:00",
    "last_used_at": "2026-11-22T10:15:00+01:00",
    "revoked_at": None,
}


class ApiKeyListCreateApi(MerchantApi):
    class ApiKeyInput(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        mode = serializers.ChoiceField(choices=ApiKey.Mode.choices, default=ApiKey.Mode.LIVE)

    def get_throttles(self):
        if self.request.method == "POST":
            return [*super().get_throttles(), MerchantKeyCreationThrottle()]
        return super().get_throttles()

    @extend_schema(
        summary="List your API keys",
        responses={200: ApiKeyListOutput, **ERRORS},
        examples=[OpenApiExample("Keys", response_only=True, value={"data": [API_KEY_EXAMPLE]})],
    )
    def get(self, request):
        keys = self.merchant.api_keys.order_by("-created_at")
        return Response({"data": ApiKeyOutput(keys, many=True).data})

    @extend_schema(
        summary="Create an API key",
        description="The secret is in this response only: store it now, it is never shown "
        "again (only its digest is kept).",
        request=ApiKeyInput,
        responses={201: ApiKeyCreatedOutput, **ERRORS},
        parameters=[IDEMPOTENCY_KEY],
        examples=[
            OpenApiExample("New key", request_only=True, value={"name": "Caisse 2"}),
            OpenApiExample(
                "Created",
                response_only=True,
                value={
                    **API_KEY_EXAMPLE,
                    "last_used_at": None,
                    "secret": "sk_live_4fT9qLm…(43 characters, shown once)",
                },
            ),
        ],
    )
    def post(self, request):
        data = self.ApiKeyInput(data=request.data)
        data.is_valid(raise_exception=True)
        key, secret = api_key_create(merchant=self.merchant, **data.validated_data)
        output = ApiKeyCreatedOutput(key, context={"secret": secret})
        return Response(output.data, status=status.HTTP_201_CREATED)

    def finalize_response(self, request, response, *args, **kwargs):
        # A key's secret must not be kept for replays: a retry creates nothing more but does not
        # get the secret again.
        self.idempotency = None
        return super().finalize_response(request, response, *args, **kwargs)


class ApiKeyRevokeApi(MerchantApi):
    @extend_schema(
        summary="Revoke an API key",
        request=None,
        responses={200: ApiKeyOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "Revoked",
                response_only=True,
                value={**API_KEY_EXAMPLE, "revoked_at": "2026-11-22T11:00:00+01:00"},
            )
        ],
    )
    def post(self, request, key_id: int):
        key = get_object_or_404(self.merchant.api_keys, pk=key_id)
        return Response(ApiKeyOutput(api_key_revoke(key=key)).data)


class WebhookEndpointOutput(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    secret = serializers.CharField(source="masked_secret", read_only=True)
    created = serializers.DateTimeField(source="created_at")

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "object", "url", "enabled_events", "is_active", "secret", "created"]

    def get_object(self, endpoint) -> str:
        return "webhook_endpoint"


class WebhookEndpointCreatedOutput(WebhookEndpointOutput):
    secret = serializers.CharField(read_only=True, help_text="Shown in this response only.")


class WebhookEndpointListOutput(serializers.Serializer):
    data = WebhookEndpointOutput(many=True)


WEBHOOK_ENDPOINT_EXAMPLE = {
    "id": 3,
    "object": "webhook_endpoint",
    "url": "https://shop.example.org/hooks/aidwallet",
    "enabled_events": ["payment.captured", "refund.succeeded"],
    "is_active": True,
    "secret": "whsec_••••••••Zx3Q",
    "created": "2026-11-22T09:00:00+01:00",
}


class WebhookEndpointListCreateApi(MerchantApi):
    class WebhookEndpointInput(serializers.ModelSerializer):
        # The model's own validators run here: https only, no credentials, known event types.
        class Meta:
            model = WebhookEndpoint
            fields = ["url", "enabled_events"]

    @extend_schema(
        summary="List your webhook endpoints",
        responses={200: WebhookEndpointListOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "Endpoints", response_only=True, value={"data": [WEBHOOK_ENDPOINT_EXAMPLE]}
            )
        ],
    )
    def get(self, request):
        endpoints = self.merchant.webhook_endpoints.order_by("-created_at")
        return Response({"data": WebhookEndpointOutput(endpoints, many=True).data})

    @extend_schema(
        summary="Register a webhook endpoint",
        description="Events are POSTed to the URL, signed with the endpoint's secret: "
        "`Aidwallet-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, t + '.' + body)>`. "
        "The secret is in this response only. Leave enabled_events empty for every event.",
        request=WebhookEndpointInput,
        responses={201: WebhookEndpointCreatedOutput, **ERRORS},
        parameters=[IDEMPOTENCY_KEY],
        examples=[
            OpenApiExample(
                "New endpoint",
                request_only=True,
                value={"url": "https://shop.example.org/hooks/aidwallet", "enabled_events": []},
            ),
            OpenApiExample(
                "Created",
                response_only=True,
                value={**WEBHOOK_ENDPOINT_EXAMPLE, "secret": "whsec_…(shown once)"},
            ),
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request):
        data = self.WebhookEndpointInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_create(merchant=self.merchant, **data.validated_data)
        return Response(WebhookEndpointCreatedOutput(endpoint).data, status=status.HTTP_201_CREATED)

    def finalize_response(self, request, response, *args, **kwargs):
        # The signing secret must not be kept for replays, as for API keys.
        self.idempotency = None
        return super().finalize_response(request, response, *args, **kwargs)


class WebhookEndpointDisableApi(MerchantApi):
    @extend_schema(
        summary="Disable a webhook endpoint",
        request=None,
        responses={200: WebhookEndpointOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "Disabled",
                response_only=True,
                value={**WEBHOOK_ENDPOINT_EXAMPLE, "is_active": False},
            )
        ],
    )
    def post(self, request, endpoint_id: int):
        endpoint = get_object_or_404(self.merchant.webhook_endpoints, pk=endpoint_id)
        return Response(WebhookEndpointOutput(webhook_endpoint_disable(endpoint=endpoint)).data)


class ApplicationThrottle(AnonRateThrottle):
    scope = "merchant_application"


class MerchantApplicationApi(APIView):
    """A shop applies to take aid payments; a platform operator approves it in the admin."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = [ApplicationThrottle]

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
        data = self.MerchantApplicationInput(data=request.data)
        data.is_valid(raise_exception=True)
        merchant = merchant_create(**data.validated_data)
        return Response(
            self.MerchantApplicationOutput(merchant).data, status=status.HTTP_201_CREATED
        )
