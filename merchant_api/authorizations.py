"""Authorizations: a payment asked for with the beneficiary's one-time code, approved (held, or
captured at once) or declined; listed and retrieved by the merchant that asked for it."""

from collections.abc import Mapping, Sequence
from typing import Any

import django_filters
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.response import Response

from core.errors import PaymentCodeError, PaymentCodeInvalid
from core.money import MAX_AMOUNT
from core.one_statement import OneStatement, one_statement_available
from engine.codes import DECLINED, REASONS, merchant_message, merchant_partial_message
from engine.request import PRODUCT_FAMILIES
from merchant_api import idempotency
from merchant_api.base import (
    CREATED_GTE,
    CREATED_LT,
    CURSOR,
    ERROR_EXAMPLE,
    IDEMPOTENCY_KEY,
    LIMIT,
    LIVEMODE_HELP,
    METADATA_KEY_LENGTH,
    METADATA_KEYS,
    METADATA_VALUE_LENGTH,
    AmountField,
    MerchantApi,
    MetadataField,
    Page,
    UtcDateTimeFilter,
    json_body,
    paginated,
    represented,
    shared,
    validated,
)
from merchant_api.code_guessing import PaymentCodeGuessing, code_guessing_keys
from merchant_api.errors import (
    AUTHORIZE_ERRORS,
    DETAIL_ERRORS,
    LIST_ERRORS,
    BasketTotalMismatch,
    CardNotAccepted,
)
from merchants.payments import basket_data, payment_authorize
from merchants.sandbox import sandbox_authorize, sandbox_description
from merchants.selectors import (
    authorization_just_recorded,
    authorization_list,
    capture_status,
)
from wallet.models import Decision

# Tries of a new payment's one statement (see AuthorizationCreateApi.post).
_ATTEMPTS = 3

# What each decline code means, for the schema (in English, as all its texts). Not the
# merchant's messages: these codes also say why a partial approval paid no more, and a partial
# approval is an acceptance, never "Payment refused" (its message says what was approved).
DECLINE_CODES = {
    "aid_not_yet_valid": "The customer's aid has not started yet.",
    "aid_expired": "The customer's aid has ended.",
    "outside_allowed_hours": "The aid cannot be used on this day or at this hour.",
    "merchant_category_not_allowed": "The aid cannot be used for this kind of purchase.",
    "merchant_not_accepted": "The aid cannot be used in this shop.",
    "outside_zone": "The shop is outside the area where the aid can be used.",
    "merchant_not_recognised": "The shop is not recognised for this aid (card payments only).",
    "limit_exceeded": "The amount is above a limit of the aid (per payment, day, week or month): "
    "declined, or partially approved up to the limit when partial approvals are allowed.",
    "insufficient_funds": "The aid holds less than the amount: declined, or partially approved "
    "for what it holds when partial approvals are allowed.",
    "no_aid_available": "No aid of the customer can pay in this shop.",
    "wallet_frozen": "The customer's wallet is frozen by the organisation giving the aid.",
    "card_frozen": "The card is frozen (card payments only).",
    "card_inactive": "The card is not active (card payments only).",
    "currency_not_supported": "The aid cannot be used in this currency.",
    "product_not_covered": "The customer's aid does not pay for some products of the basket "
    "(basket lines only): declined, or partially approved for the lines it pays when partial "
    "approvals are allowed.",
}


DECLINE_CODE_CHOICES = [
    (code, DECLINE_CODES[code])
    for code, reason in REASONS.items()
    if reason.http_status == DECLINED
]


# Why the aid paid nothing, or (on a partial approval) not the whole amount. Its message is in
# the request's language; "decline" is null on a full approval.
class DeclineOutput(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=DECLINE_CODE_CHOICES,
        help_text="Why the aid paid nothing (status declined) or not the whole amount (status "
        "partially_approved).",
    )
    message = serializers.CharField(
        help_text="For the till, in the request's language: why the payment was refused, or, "
        "on a partial approval, what was approved and what to collect another way."
    )


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
    metadata = MetadataField(read_only=True)
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


def authorization_answer(decision: Decision) -> dict:
    """represented(AuthorizationOutput, decision), the same keys in the same order, without
    DRF's walk over the fields (each field's attribute lookup and representation, about a
    hundred and fifty calls an answer; BENCHMARKS.md, issue 19 part 9). The dates and the
    metadata are still written by the serializer's own fields, and the decline, the capture
    status and the basket by its methods; tests/merchant_api/test_plain_answer.py holds both
    equal. The schema stays AuthorizationOutput's."""
    output = shared(AuthorizationOutput)
    fields = output.fields
    metadata, created = decision.metadata, decision.decided_at
    return {
        "id": _str(decision.reference),
        "object": "authorization",
        "livemode": None if decision.livemode is None else bool(decision.livemode),
        "status": _str(decision.status),
        "amount": _int(decision.amount),
        "approved_amount": _int(decision.approved_amount),
        "currency": _str(decision.currency),
        "decline": output.get_decline(decision),
        "capture_status": output.get_capture_status(decision),
        "amount_held": _int(decision.amount_held),
        "amount_captured": _int(decision.amount_captured),
        "amount_reversed": _int(decision.amount_reversed),
        "amount_refunded": _int(decision.amount_refunded),
        "merchant_reference": _str(decision.merchant_reference),
        "metadata": None if metadata is None else fields["metadata"].to_representation(metadata),
        "created": None if created is None else fields["created"].to_representation(created),
        "basket": output.get_basket(decision),
    }


def _int(value: Any) -> int | None:
    # What a serializer's IntegerField answers (None is answered before any field).
    return None if value is None else int(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


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
            "message": "Payment refused: the customer's aid cannot be used in this shop.",
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
            "message": "Approved for €38.00: collect the rest (€12.00) another way.",
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
PARTIALLY_APPROVED_EXAMPLE = OpenApiExample(
    "Partially approved",
    response_only=True,
    value={
        **APPROVED_EXAMPLE.value,
        "id": "auth_3Lw9pQ2xT7cV1bN5mK8zR4sD",
        "status": "partially_approved",
        "amount": 1500,
        "approved_amount": 1000,
        "decline": {
            "code": "insufficient_funds",
            "message": "Approved for €10.00: collect the rest (€5.00) another way.",
        },
        "amount_held": 1000,
        "metadata": {"till": "2"},
    },
)


MAX_BASKET_LINES = 100


class BasketLineInput(serializers.Serializer):
    amount = AmountField(help_text="In minor units.")
    category = serializers.ChoiceField(
        choices=PRODUCT_FAMILY_CHOICES, help_text="The product family of this line."
    )


class AuthorizationInput(serializers.Serializer):
    amount = AmountField(help_text="In minor units: 1250 is 12.50 EUR.")
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


# The fields a plain payment may send (no basket, no retired `card`), and their defaults.
_PLAIN_FIELDS = frozenset(
    ("amount", "currency", "payment_code", "partial_approval_allowed", "capture",
     "merchant_reference", "metadata")
)  # fmt: skip
_PAYMENT_CODE_LENGTH = AuthorizationInput().fields["payment_code"].max_length
_REFERENCE_LENGTH = AuthorizationInput().fields["merchant_reference"].max_length


def authorization_input(data: Any) -> dict:
    """AuthorizationInput's validated data for `data`, as validated() gives it. A plain
    payment's body, which nearly every till sends (the fields' own types, visible ASCII text,
    within bounds, no basket), is read here in a few comparisons: DRF's fields cost about a
    hundred calls a payment (BENCHMARKS.md, issue 19 part 9). Anything else, and every error,
    goes through the serializer, so its refusals and their messages stay DRF's own; a test
    holds both readings equal (tests/merchant_api/test_plain_input.py)."""
    plain = _plain(data)
    return plain if plain is not None else validated(AuthorizationInput, data)


def _plain(data: Any) -> dict | None:
    """`data` read as the serializer would read it, or None where it might read it otherwise."""
    if type(data) is not dict or not data.keys() <= _PLAIN_FIELDS:
        return None
    amount = data.get("amount")
    currency = data.get("currency")
    code = _text(data.get("payment_code"), _PAYMENT_CODE_LENGTH)
    reference = _text(data.get("merchant_reference", ""), _REFERENCE_LENGTH)
    partial = data.get("partial_approval_allowed", False)
    capture = data.get("capture", False)
    metadata = data.get("metadata", None)
    if (
        type(amount) is not int  # not a bool either: AmountField refuses them with its codes
        or not 1 <= amount <= MAX_AMOUNT
        or type(currency) is not str
        or not (len(currency) == 3 and currency.isascii() and currency.isalpha())
        or not currency.isupper()
        or not code  # None, or blank: the serializer says which
        or reference is None
        or type(partial) is not bool
        or type(capture) is not bool
    ):
        return None
    if metadata is None:
        if "metadata" in data:
            return None  # null: refused by the serializer
        metadata = {}
    else:
        metadata = _plain_metadata(metadata)
        if metadata is None:
            return None
    return {
        "amount": amount,
        "currency": currency,
        "payment_code": code,
        "partial_approval_allowed": partial,
        "capture": capture,
        "merchant_reference": reference,
        "metadata": metadata,
    }


def _text(value: Any, max_length: int | None) -> str | None:
    """A CharField's value (whitespace trimmed) of ASCII text with no NUL, else None: other
    text (and its surrogates, its NULs) is the serializer's to read."""
    if type(value) is not str or not value.isascii() or "\x00" in value:
        return None
    value = value.strip()
    return value if max_length is None or len(value) <= max_length else None


def _plain_metadata(metadata: Any) -> dict | None:
    if type(metadata) is not dict or len(metadata) > METADATA_KEYS:
        return None
    read = {}
    for key, value in metadata.items():
        text = _text(value, METADATA_VALUE_LENGTH)
        if type(key) is not str or len(key) > METADATA_KEY_LENGTH or text is None:
            return None
        read[key] = text
    return read


class AuthorizationCreateApi(MerchantApi):
    @extend_schema(
        summary="Authorize a payment",
        description=sandbox_description(),
        request=AuthorizationInput,
        responses={201: AuthorizationOutput, **AUTHORIZE_ERRORS},
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
            PARTIALLY_APPROVED_EXAMPLE,
            DECLINED_EXAMPLE,
            BASKET_EXAMPLE,
        ],
    )
    def post(self, request):
        data = authorization_input(json_body(request))
        if not self.livemode:
            # Test codes are public: nothing to guess, and no test call counts against the
            # merchant's live payments.
            with transaction.atomic():
                decision = sandbox_authorize(
                    merchant=self.merchant,
                    idempotency_key=self.service_key(),
                    **data,
                )
                return self.remembered(self._created(decision))
        guard = PaymentCodeGuessing(self.merchant)
        guard.check(getattr(request, "counts_read", {}))
        attempt = 1
        while True:
            try:
                return self._authorize(data, guard)
            except IntegrityError:
                # Only the one statement's writes get here (the portable path settles its races
                # itself): a concurrent first call under this key committed first, or a sweep
                # took the money a hold counted on. The transaction is rolled back whole: the
                # first call's answer, or a decision taken again on fresh balances.
                if self.writes is None or attempt == _ATTEMPTS:
                    raise
                attempt += 1
                replayed = idempotency.replay(
                    merchant=self.merchant, key=self._stored_key(), fingerprint=self.idempotency[1]
                )
                if replayed is not None:
                    return replayed

    def counts_to_read(self, merchant_id: int) -> Sequence[str]:
        # A code payment's guard reads its two counts before the code is tried.
        return code_guessing_keys(merchant_id) if self.request.method == "POST" else ()

    def _authorize(self, data: dict, guard: PaymentCodeGuessing) -> Response:
        refused: PaymentCodeError | None = None
        # PostgreSQL writes a new payment and its answer in one statement (core/one_statement.py).
        self.writes = OneStatement() if one_statement_available() else None
        # One transaction for the money and the answer a retry will get.
        with transaction.atomic():
            try:
                decision = payment_authorize(
                    merchant=self.merchant,
                    idempotency_key=self.service_key(),
                    writes=self.writes,
                    **data,
                )
            except PaymentCodeError as error:
                # payment_authorize kept the wrong guess in its own savepoint: it must commit.
                refused = error
            else:
                if getattr(decision, "recorded_now", False) and not data["capture"]:
                    answer = self.remembered(self._answer(authorization_just_recorded(decision)))
                else:
                    answer = self.remembered(self._created(decision))
                if self.writes is not None:
                    self.writes.run(commit=True)
                return answer
        if isinstance(refused, PaymentCodeInvalid):
            guard.count_failure()
        raise refused

    def _created(self, decision: Decision) -> Response:
        decision = authorization_list(merchant=self.merchant, livemode=self.livemode).get(
            pk=decision.pk
        )
        return self._answer(decision)

    def _answer(self, decision: Decision) -> Response:
        return Response(authorization_answer(decision), status=status.HTTP_201_CREATED)


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
        return Response(represented(AuthorizationOutput, decision))
