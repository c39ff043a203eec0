"""Authorizations: a payment asked for with the beneficiary's one-time code, approved (held, or
captured at once) or declined; listed and retrieved by the merchant that asked for it."""

from collections.abc import Mapping

import django_filters
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.response import Response

from core.errors import DomainError, PaymentCodeInvalid
from engine.codes import DECLINED, REASONS, merchant_message, merchant_partial_message
from engine.request import PRODUCT_FAMILIES
from merchant_api.base import (
    CREATED_GTE,
    CREATED_LT,
    CURSOR,
    DETAIL_ERRORS,
    ERROR_EXAMPLE,
    ERRORS,
    IDEMPOTENCY_KEY,
    LIMIT,
    LIST_ERRORS,
    LIVEMODE_HELP,
    MerchantApi,
    MetadataField,
    Page,
    UtcDateTimeFilter,
    amount_field,
    paginated,
)
from merchant_api.code_guessing import PaymentCodeGuessing
from merchants.payments import payment_authorize
from merchants.sandbox import sandbox_authorize, sandbox_description
from merchants.selectors import authorization_list, capture_status
from wallet.models import Decision


# Why the aid paid nothing, or (on a partial approval) not the whole amount. Its message is in
# the request's language; "decline" is null on a full approval.
class DeclineOutput(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=[
            (code, reason.merchant_text)
            for code, reason in REASONS.items()
            if reason.http_status == DECLINED
        ]
    )
    message = serializers.CharField()


# The product families of a basket line, described for the schema's enum.
PRODUCT_FAMILY_CHOICES = list(
    zip(
        PRODUCT_FAMILIES,
        [
            "Food and non-alcoholic drinks.",
            "Alcoholic drinks.",
            "Tobacco and smoking products.",
            "Hygiene and care products (soap, nappies, sanitary products).",
            "School supplies (exercise books, pens, school bags).",
            "Transport tickets and passes.",
            "Anything else.",
        ],
        strict=True,
    )
)


# One line of the basket as decided: what the aid paid of it, and the rest.
class BasketLineOutput(serializers.Serializer):
    amount = serializers.IntegerField()
    category = serializers.ChoiceField(choices=PRODUCT_FAMILY_CHOICES)
    paid_amount = serializers.IntegerField(help_text="What the aid paid of this line.")
    rest_amount = serializers.IntegerField(help_text="What is left to pay another way.")


# What one aid paid, and the funder whose money it is (for the receipt).
class ShareOutput(serializers.Serializer):
    aid = serializers.CharField(help_text="The aid's name.")
    funder = serializers.CharField(help_text="The funder that gives this aid.")
    amount = serializers.IntegerField()


# Present only when the request sent basket lines.
class BasketOutput(serializers.Serializer):
    eligible_amount = serializers.IntegerField(
        help_text="What the customer's aid pays for in this basket, by its rules (the lines of "
        "the product families it accepts), whatever the money left on it."
    )
    rest_amount = serializers.IntegerField(
        help_text="amount - approved_amount: to pay another way."
    )
    lines = BasketLineOutput(many=True)
    shares = ShareOutput(
        many=True, help_text="Each aid's share of approved_amount, in the order used."
    )


def basket_data(decision: Decision) -> dict | None:
    """The basket of a decision, from its trace; None when no basket lines were sent."""
    trace = decision.trace or {}
    if "lines" not in trace:
        return None
    lines = [
        {
            "amount": line["amount"],
            "category": line["category"],
            "paid_amount": paid,
            "rest_amount": line["amount"] - paid,
        }
        for line in trace["lines"]
        for paid in [sum(part["amount"] for part in line["paid"])]
    ]
    return {
        "eligible_amount": trace["eligible_amount"],
        "rest_amount": decision.amount - decision.approved_amount,
        "lines": lines,
        "shares": [
            {"aid": s["aid"], "funder": s["funder"], "amount": s["amount"]}
            for s in trace.get("shares", [])
        ],
    }


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
    livemode = serializers.BooleanField(read_only=True, help_text=LIVEMODE_HELP)
    basket = serializers.SerializerMethodField(
        help_text="When the request sent basket lines: what the aid paid of each line, each "
        "aid's share with its funder, and the rest to pay another way; null otherwise."
    )

    class Meta:
        model = Decision
        fields = [
            "id", "object", "livemode", "status", "amount", "approved_amount", "currency",
            "decline", "capture_status", "amount_held", "amount_captured", "amount_reversed",
            "amount_refunded", "merchant_reference", "metadata", "created", "basket",
        ]  # fmt: skip

    @extend_schema_field(BasketOutput(allow_null=True))
    def get_basket(self, decision):
        return basket_data(decision)

    def get_object(self, decision) -> str:
        return "authorization"

    @extend_schema_field(DeclineOutput(allow_null=True))
    def get_decline(self, decision):
        if not decision.reason:
            return None
        if decision.status == Decision.Status.PARTIALLY_APPROVED:
            message = merchant_partial_message(
                approved=decision.approved_amount,
                amount=decision.amount,
                currency=decision.currency,
            )
        else:
            message = merchant_message(decision.reason)
        return {"code": decision.reason, "message": message}

    @extend_schema_field(
        serializers.ChoiceField(
            choices=["requires_capture", "captured", "refunded", "reversed", "expired"],
            allow_null=True,
        )
    )
    def get_capture_status(self, decision):
        return capture_status(decision)


APPROVED_EXAMPLE = OpenApiExample(
    "Approved",
    response_only=True,
    value={
        "id": "auth_8fJ2kQ0wV3m1nX7aL5pR9sT4",
        "object": "authorization",
        "livemode": True,
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
        "basket": None,
    },
)
DECLINED_EXAMPLE = OpenApiExample(
    "Declined",
    response_only=True,
    value={
        "id": "auth_Yq1c7T2uVb0pZk3rN8wH6eJ5",
        "object": "authorization",
        "livemode": True,
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
        "basket": None,
    },
)

BASKET_EXAMPLE = OpenApiExample(
    "A basket, approved in part",
    response_only=True,
    value={
        **APPROVED_EXAMPLE.value,
        "id": "auth_3Hs8dLq0ZpW2xT6nB4vC1mK7",
        "status": "partially_approved",
        "amount": 5000,
        "approved_amount": 3800,
        "decline": {
            "code": "product_not_covered",
            "message": "Paiement refusé\u00a0: l'aide du client ne paie pas certains produits de "
            "ce panier. Faites-les régler autrement.",
        },
        "amount_held": 3800,
        "basket": {
            "eligible_amount": 3800,
            "rest_amount": 1200,
            "lines": [
                {"amount": 3000, "category": "food", "paid_amount": 3000, "rest_amount": 0},
                {"amount": 800, "category": "hygiene", "paid_amount": 800, "rest_amount": 0},
                {"amount": 1200, "category": "tobacco", "paid_amount": 0, "rest_amount": 1200},
            ],
            "shares": [
                {"aid": "Aide alimentaire", "funder": "Département de l'Isère", "amount": 3000},
                {"aid": "Aide hygiène", "funder": "CCAS de Grenoble", "amount": 800},
            ],
        },
    },
)


class CardNotAccepted(DomainError):
    code = "card_not_accepted"
    default_message = _(
        "Cards are not accepted by the merchant API: send the payment_code shown in the "
        "beneficiary's app. Cards pay through the card network."
    )

    def __init__(self):
        super().__init__(field="card")


MAX_BASKET_LINES = 100


class BasketTotalMismatch(DomainError):
    code = "basket_total_mismatch"
    default_message = _("The basket lines must add up to the amount.")

    def __init__(self):
        super().__init__(field="lines")


class BasketLineInput(serializers.Serializer):
    amount = amount_field(help_text="In minor units.")
    category = serializers.ChoiceField(
        choices=PRODUCT_FAMILY_CHOICES, help_text="The product family of this line."
    )


class AuthorizationInput(serializers.Serializer):
    amount = amount_field(help_text="In minor units: 1250 is 12.50 EUR.")
    currency = serializers.RegexField(r"^[A-Z]{3}$", max_length=3)
    payment_code = serializers.CharField(
        max_length=32,
        help_text="The one-time code shown by the beneficiary's app, e.g. 1234 567 890. "
        "With a test key, one of the test payment codes of the sandbox (see the description).",
    )
    partial_approval_allowed = serializers.BooleanField(default=False)
    capture = serializers.BooleanField(
        default=False, help_text="Capture what is approved at once (a one-step purchase)."
    )
    merchant_reference = serializers.CharField(max_length=200, default="", allow_blank=True)
    metadata = MetadataField(default=dict)
    lines = BasketLineInput(
        many=True,
        required=False,
        min_length=1,
        max_length=MAX_BASKET_LINES,
        help_text="Optional: the basket, in lines of one product family each, adding up to "
        "amount. The aid then pays only the lines its rules accept; the answer's basket says "
        "what it paid and what is left to pay another way (allow partial approval to take "
        "what the aid pays). A cashier may send two lines (what the aid may pay, the rest) "
        "or one per product family.",
    )

    def validate(self, attrs):
        lines = attrs.get("lines")
        if lines and sum(line["amount"] for line in lines) != attrs["amount"]:
            raise BasketTotalMismatch()
        return attrs

    def to_internal_value(self, data):
        # Cards were once accepted here by their reference; an old integration that still
        # sends one learns why it is refused, before any other error and instead of seeing
        # the field ignored.
        if isinstance(data, Mapping) and "card" in data:
            raise CardNotAccepted()
        return super().to_internal_value(data)


class AuthorizationCreateApi(MerchantApi):
    @extend_schema(
        summary="Authorize a payment",
        description=sandbox_description(),
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
            OpenApiExample(
                "A basket",
                request_only=True,
                value={
                    "amount": 5000,
                    "currency": "EUR",
                    "payment_code": "4821 930 517",
                    "partial_approval_allowed": True,
                    "lines": [
                        {"amount": 3000, "category": "food"},
                        {"amount": 800, "category": "hygiene"},
                        {"amount": 1200, "category": "tobacco"},
                    ],
                },
            ),
            APPROVED_EXAMPLE,
            DECLINED_EXAMPLE,
            BASKET_EXAMPLE,
        ],
    )
    def post(self, request):
        data = AuthorizationInput(data=request.data)
        data.is_valid(raise_exception=True)
        if not self.livemode:
            # Test codes are public: nothing to guess, and no test call counts against the
            # merchant's live payments.
            decision = sandbox_authorize(
                merchant=self.merchant, idempotency_key=self.service_key(), **data.validated_data
            )
            return self._created(decision)
        guard = PaymentCodeGuessing(self.merchant)
        guard.check()
        try:
            decision = payment_authorize(
                merchant=self.merchant, idempotency_key=self.service_key(), **data.validated_data
            )
        except PaymentCodeInvalid:
            guard.count_failure()
            raise
        return self._created(decision)

    def _created(self, decision: Decision) -> Response:
        decision = authorization_list(merchant=self.merchant, livemode=self.livemode).get(
            pk=decision.pk
        )
        return Response(AuthorizationOutput(decision).data, status=status.HTTP_201_CREATED)


class AuthorizationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Decision.Status.choices)
    created_gte = UtcDateTimeFilter(field_name="decided_at", lookup_expr="gte")
    created_lt = UtcDateTimeFilter(field_name="decided_at", lookup_expr="lt")
    merchant_reference = django_filters.CharFilter()

    class Meta:
        model = Decision
        fields = ["status", "created_gte", "created_lt", "merchant_reference"]


class AuthorizationPage(Page):
    results = AuthorizationOutput(many=True)


class AuthorizationListApi(MerchantApi):
    @extend_schema(
        summary="List authorizations, newest first",
        operation_id="authorizations_list",
        parameters=[
            OpenApiParameter("status", str, enum=[c for c, _ in Decision.Status.choices]),
            CREATED_GTE,
            CREATED_LT,
            OpenApiParameter("merchant_reference", str),
            CURSOR,
            LIMIT,
        ],
        responses={200: AuthorizationPage, **LIST_ERRORS},
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={
                    "livemode": True,
                    "next": "https://wallet.example.org/api/merchant/v1/authorizations?cursor=cD0y",
                    "previous": None,
                    "results": [APPROVED_EXAMPLE.value, DECLINED_EXAMPLE.value],
                },
            ),
            ERROR_EXAMPLE,
        ],
    )
    def get(self, request):
        return paginated(
            self,
            authorization_list(merchant=self.merchant, livemode=self.livemode),
            AuthorizationOutput,
            ordering="-decided_at",
            filterset_class=AuthorizationFilter,
        )


# Django routes one view per path: /authorizations lists (GET) and authorizes (POST).
class AuthorizationsView(AuthorizationListApi, AuthorizationCreateApi):
    pass


class AuthorizationDetailApi(MerchantApi):
    @extend_schema(
        summary="Retrieve an authorization",
        responses={200: AuthorizationOutput, **DETAIL_ERRORS},
        examples=[APPROVED_EXAMPLE],
    )
    def get(self, request, reference: str):
        decision = get_object_or_404(
            authorization_list(merchant=self.merchant, livemode=self.livemode),
            reference=reference,
        )
        return Response(AuthorizationOutput(decision).data)
