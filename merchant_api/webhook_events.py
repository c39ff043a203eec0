"""The events the platform POSTs to a merchant's webhook endpoints, as OpenAPI 3.1 `webhooks`
(settings SPECTACULAR_SETTINGS["WEBHOOKS"]): one per event type, with its payload as
merchants/payments.py writes it. The receiver answers any 2xx; anything else is retried."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiWebhook, extend_schema
from rest_framework import serializers

from merchant_api.authorizations import BASKET_EXAMPLE, DECLINE_CODE_CHOICES, BasketOutput
from merchant_api.base import LIVEMODE_HELP, MetadataField
from merchants.events import EventType
from wallet.models import Decision

SIGNATURE = OpenApiParameter(
    "Aidwallet-Signature",
    str,
    OpenApiParameter.HEADER,
    required=True,
    description="`t=<unix time>,v1=<hex HMAC-SHA256(endpoint secret, t + '.' + raw body)>`: "
    "compute the HMAC over the raw body as received, compare in constant time, and refuse a "
    "`t` more than 5 minutes old.",
)


# The payloads' schemas (comments, not docstrings: a docstring would be the schema's text).
class WebhookAuthorization(serializers.Serializer):
    object = serializers.ChoiceField(choices=["authorization"])
    id = serializers.CharField()
    livemode = serializers.BooleanField(help_text=LIVEMODE_HELP)
    status = serializers.ChoiceField(choices=Decision.Status.choices)
    amount = serializers.IntegerField(help_text="Asked, in cents.")
    approved_amount = serializers.IntegerField(help_text="Approved, in cents (0 if declined).")
    currency = serializers.CharField()
    decline_code = serializers.ChoiceField(
        choices=DECLINE_CODE_CHOICES,
        allow_null=True,
        help_text="Why the aid paid nothing (declined) or not the whole amount (partially "
        "approved); null on a full approval.",
    )
    merchant_reference = serializers.CharField(allow_blank=True)
    metadata = MetadataField()
    basket = BasketOutput(
        allow_null=True,
        help_text="As in the authorization's answer: when the payment had basket lines, what the "
        "aid paid of each line, the eligible subtotal, each aid's share with its funder, and the "
        "rest to pay another way; null otherwise.",
    )


class WebhookOperation(serializers.Serializer):
    object = serializers.ChoiceField(choices=["capture", "reversal", "refund"])
    id = serializers.CharField()
    livemode = serializers.BooleanField(help_text=LIVEMODE_HELP)
    amount = serializers.IntegerField(help_text="In cents.")
    currency = serializers.CharField()
    authorization = WebhookAuthorization()


def _event(data: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    return type(
        name,
        (serializers.Serializer,),
        {
            "id": serializers.CharField(
                help_text="The event's id: deliveries of one event share it."
            ),
            "livemode": serializers.BooleanField(
                help_text="false for a sandbox event, sent only to endpoints registered with a "
                "test key."
            ),
            "type": serializers.ChoiceField(choices=EventType.choices),
            "created": serializers.IntegerField(help_text="Unix time the event happened."),
            "data": data(),
        },
    )


AuthorizationEvent = _event(WebhookAuthorization, "AuthorizationEvent")
OperationEvent = _event(WebhookOperation, "OperationEvent")

AUTHORIZATION = {
    "object": "authorization",
    "id": "auth_8fJ2kQ0wV3m1nX7aL5pR9sT4",
    "livemode": True,
    "status": "approved",
    "amount": 4250,
    "approved_amount": 4250,
    "currency": "EUR",
    "decline_code": None,
    "merchant_reference": "order-1042",
    "metadata": {"till": "2"},
    "basket": None,
}


def _webhook(event: EventType, payload: type[serializers.Serializer], data: dict) -> OpenApiWebhook:
    return OpenApiWebhook(
        name=event.value,
        decorator=extend_schema(
            summary=event.label,
            request=payload,
            parameters=[SIGNATURE],
            responses={200: None},
            examples=[
                OpenApiExample(
                    event.value,
                    value={
                        "id": "evt_3kQ9mW2xV7pL1nR8aT5sJ0fB",
                        "livemode": True,
                        "type": event.value,
                        "created": 1795341600,
                        "data": data,
                    },
                )
            ],
        ),
    )


def _operation(kind: str, amount: int) -> dict:
    return {"object": kind, "id": f"{kind[:3]}_7hT2pQ9xL4mW1nV8aK5sR3jD", "livemode": True,
            "amount": amount, "currency": "EUR", "authorization": AUTHORIZATION}  # fmt: skip


APPROVED = _webhook(EventType.AUTHORIZATION_APPROVED, AuthorizationEvent, AUTHORIZATION)
PARTIALLY_APPROVED = _webhook(
    EventType.AUTHORIZATION_PARTIALLY_APPROVED,
    AuthorizationEvent,
    # A basket's payment: the aid paid the lines its rules accept, each aid's share named.
    {
        **AUTHORIZATION,
        "status": "partially_approved",
        "amount": 5000,
        "approved_amount": 3800,
        "decline_code": "product_not_covered",
        "basket": BASKET_EXAMPLE.value["basket"],
    },
)
DECLINED = _webhook(
    EventType.AUTHORIZATION_DECLINED,
    AuthorizationEvent,
    {
        **AUTHORIZATION,
        "status": "declined",
        "approved_amount": 0,
        "decline_code": "insufficient_funds",
    },
)
REVERSED = _webhook(EventType.AUTHORIZATION_REVERSED, OperationEvent, _operation("reversal", 4250))
EXPIRED = _webhook(EventType.AUTHORIZATION_EXPIRED, AuthorizationEvent, AUTHORIZATION)
CAPTURED = _webhook(EventType.PAYMENT_CAPTURED, OperationEvent, _operation("capture", 4250))
REFUNDED = _webhook(EventType.REFUND_SUCCEEDED, OperationEvent, _operation("refund", 1000))
