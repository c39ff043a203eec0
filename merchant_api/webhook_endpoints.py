"""A merchant's webhook endpoints: where its events are POSTed, signed with the endpoint's
secret; registered (the secret shown once), listed and disabled."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from merchant_api.base import ERROR_EXAMPLE, IDEMPOTENCY_KEY, LIVEMODE_HELP, MerchantApi
from merchant_api.errors import ERRORS, READ_ERRORS
from merchants.events import EventType
from merchants.models.webhooks import WebhookEndpoint
from merchants.webhooks import webhook_endpoint_create, webhook_endpoint_disable


def event_types_field(**kwargs) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices),
        help_text="The events sent to the endpoint (see the webhooks); empty for every event.",
        **kwargs,
    )


class WebhookEndpointOutput(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    enabled_events = event_types_field()
    secret = serializers.CharField(source="masked_secret", read_only=True)
    created = serializers.DateTimeField(source="created_at")
    livemode = serializers.BooleanField(
        read_only=True,
        help_text="A test key's endpoints (false) receive only sandbox events; a live key's "
        "(true) only live ones. Each key sees and disables only the endpoints of its mode.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "object", "livemode", "url", "enabled_events", "is_active", "secret",
                  "created"]  # fmt: skip

    def get_object(self, endpoint) -> str:
        return "webhook_endpoint"


WEBHOOK_ENDPOINT_EXAMPLE = {
    "id": 3,
    "object": "webhook_endpoint",
    "livemode": True,
    "url": "https://shop.example.org/hooks/aidwallet",
    "enabled_events": ["payment.captured", "refund.succeeded"],
    "is_active": True,
    "secret": "whsec_••••••••Zx3Q",
    "created": "2026-11-22T09:00:00+01:00",
}


class WebhookEndpointListOutput(serializers.Serializer):
    livemode = serializers.BooleanField(help_text=LIVEMODE_HELP)
    data = WebhookEndpointOutput(many=True)


class WebhookEndpointListApi(MerchantApi):
    @extend_schema(
        summary="List your webhook endpoints",
        operation_id="webhook_endpoints_list",
        responses={200: WebhookEndpointListOutput, **READ_ERRORS},
        examples=[
            OpenApiExample(
                "Endpoints",
                response_only=True,
                value={"livemode": True, "data": [WEBHOOK_ENDPOINT_EXAMPLE]},
            )
        ],
    )
    def get(self, request):
        endpoints = self.merchant.webhook_endpoints.filter(livemode=self.livemode)
        data = WebhookEndpointOutput(endpoints.order_by("-created_at"), many=True).data
        return Response({"livemode": self.livemode, "data": data})


class WebhookEndpointInput(serializers.ModelSerializer):
    # The model's own validators run here: https only, no credentials; the event types are the
    # enum's.
    enabled_events = event_types_field(required=False, max_length=len(EventType.choices))

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "enabled_events"]


class WebhookEndpointCreatedOutput(WebhookEndpointOutput):
    secret = serializers.CharField(read_only=True, help_text="Shown in this response only.")


class WebhookEndpointCreateApi(MerchantApi):
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
        data = WebhookEndpointInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_create(
            merchant=self.merchant, livemode=self.livemode, **data.validated_data
        )
        return Response(WebhookEndpointCreatedOutput(endpoint).data, status=status.HTTP_201_CREATED)

    def finalize_response(self, request, response, *args, **kwargs):
        # The signing secret must not be kept for replays, as for API keys.
        self.idempotency = None
        return super().finalize_response(request, response, *args, **kwargs)


# Django routes one view per path: /webhook-endpoints lists (GET) and registers (POST).
class WebhookEndpointsView(WebhookEndpointListApi, WebhookEndpointCreateApi):
    pass


class WebhookEndpointDisableApi(MerchantApi):
    @extend_schema(
        summary="Disable a webhook endpoint",
        operation_id="webhook_endpoints_disable",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
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
        endpoint = get_object_or_404(
            self.merchant.webhook_endpoints, pk=endpoint_id, livemode=self.livemode
        )
        return Response(WebhookEndpointOutput(webhook_endpoint_disable(endpoint=endpoint)).data)
