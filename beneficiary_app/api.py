"""The beneficiary app API, /api/app/v1/. Views parse input, call one service or selector,
shape output; each endpoint has its own small input and output serializers.

Every object is looked up through the token's wallet, so another wallet's pocket, card or
payment answers 404. An aidant's token is read-only: every write answers 403 read_only.
Amounts are integers of minor units, each with a `_display` twin formatted in the request's
language (Accept-Language: French by default, English)."""

from datetime import datetime, time, timedelta

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import get_language, gettext, ngettext
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from beneficiary_app import selectors
from beneficiary_app.authentication import AppTokenAuthentication
from beneficiary_app.services import (
    ReadOnly,
    aidant_authorize,
    aidant_revoke,
    app_token_expires_at,
    app_token_revoke,
    app_token_revoke_everywhere,
    beneficiary_language_set,
    card_freeze,
    card_report_lost,
    card_unfreeze,
    contact_parse,
    sign_in_code_verify,
)
from beneficiary_app.tasks import sign_in_code_send
from beneficiary_app.throttles import (
    AppTokenThrottle,
    SignInCodeContactDailyThrottle,
    SignInCodeContactThrottle,
    SignInCodeIpThrottle,
    SignInTokenContactDailyThrottle,
    SignInTokenIpThrottle,
)
from core.money import MAX_AMOUNT, format_money
from core.time import format_until
from engine.codes import beneficiary_message
from ledger.models import Transfer
from notifications.channels import mask_email, mask_phone
from wallet.authorize import pocket_rules
from wallet.models import Beneficiary, Card, Decision, Pocket
from wallet.models.access import Aidant
from wallet.payment_codes import payment_code_create, payment_code_format, payment_code_qr_svg

# --- shared pieces ------------------------------------------------------------------------


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True)


class ErrorOutput(serializers.Serializer):
    error = ErrorDetail()


ERRORS = {
    400: ErrorOutput,
    401: ErrorOutput,
    403: ErrorOutput,
    404: ErrorOutput,
    409: ErrorOutput,
    415: ErrorOutput,
    429: ErrorOutput,
    503: ErrorOutput,
}
ERROR_EXAMPLE = OpenApiExample(
    "Error",
    response_only=True,
    status_codes=["400"],
    value={
        "error": {
            "code": "invalid_code",
            "message": "Ce code ne fonctionne pas. Vérifiez-le, ou demandez un nouveau code.",
            "field": "code",
        }
    },
)
LANGUAGE = OpenApiParameter(
    "Accept-Language",
    str,
    OpenApiParameter.HEADER,
    enum=["fr", "en"],
    description="The language of the texts (amounts, dates, rules, explanations). French "
    "by default.",
)


def money(amount: int, currency: str) -> str:
    return format_money(amount, currency)


class WalletWritable(BasePermission):
    """Aidants' tokens read; only the beneficiary's own token writes."""

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS or getattr(view, "read_only_tokens_allowed", False):
            return True
        if request.auth.read_only:
            raise ReadOnly()
        return True


class AppApi(APIView):
    authentication_classes = [AppTokenAuthentication]
    permission_classes = [IsAuthenticated, WalletWritable]
    throttle_classes = [AppTokenThrottle]

    @property
    def wallet(self):
        return self.request.user.wallet

    @property
    def beneficiary(self) -> Beneficiary:
        return self.request.user.beneficiary


# --- sign-in ------------------------------------------------------------------------------


class SignInCodeApi(APIView):
    authentication_classes = []
    permission_classes = []
    throttle_classes = [
        SignInCodeIpThrottle,
        SignInCodeContactThrottle,
        SignInCodeContactDailyThrottle,
    ]

    class SignInCodeInput(serializers.Serializer):
        contact = serializers.CharField(
            max_length=254,
            help_text="The email address or mobile phone number the organisation giving the "
            "aid recorded, or that a beneficiary gave for their aidant.",
        )

    class SignInCodeOutput(serializers.Serializer):
        message = serializers.CharField()
        code_lifetime_seconds = serializers.IntegerField()

    @extend_schema(
        summary="Ask for a sign-in code",
        description="Sends a 6-digit code to the contact if it may sign in, by email or SMS "
        "according to its form. The answer is the same whether or not the contact is known. "
        "At most 5 codes per contact per hour and 10 per day. The part of an email address "
        "before the @ must be ASCII (400 non_ascii_email).",
        request=SignInCodeInput,
        responses={202: SignInCodeOutput, **ERRORS},
        auth=[],
        parameters=[LANGUAGE],
        examples=[
            OpenApiExample("By SMS", request_only=True, value={"contact": "06 12 34 56 78"}),
            OpenApiExample(
                "Sent",
                response_only=True,
                status_codes=["202"],
                value={
                    "message": "If this contact is known, a code was sent to it. It works "
                    "for 10 minutes.",
                    "code_lifetime_seconds": 600,
                },
            ),
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request):
        data = self.SignInCodeInput(data=request.data)
        data.is_valid(raise_exception=True)
        contact = contact_parse(data.validated_data["contact"])
        # The lookup and the sending are the task's: done here, the answer's time would tell
        # whether the contact is known.
        sign_in_code_send.delay(contact.value, contact.channel, get_language())
        lifetime = settings.APP_SIGN_IN_CODE_TTL_SECONDS
        minutes = lifetime // 60
        message = ngettext(
            "If this contact is known, a code was sent to it. It works for %(minutes)d minute.",
            "If this contact is known, a code was sent to it. It works for %(minutes)d minutes.",
            minutes,
        ) % {"minutes": minutes}
        return Response(
            {"message": message, "code_lifetime_seconds": lifetime},
            status=status.HTTP_202_ACCEPTED,
        )


class TokenOutput(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Bearer <token>`.")
    expires_at = serializers.DateTimeField(
        help_text="When the token stops working if it is not used; each use pushes it back, "
        "up to the token's greatest age (180 days by default)."
    )
    read_only = serializers.BooleanField(help_text="True for an aidant's token.")
    wallet_holder = serializers.CharField(help_text="The first name of the wallet's holder.")


class SignInOutput(TokenOutput):
    other_wallets = TokenOutput(
        many=True,
        help_text="Tokens for the other wallets this contact may see (an aidant helping "
        "several people); usually empty.",
    )


def _token_data(token, secret: str) -> dict:
    return {
        "token": secret,
        "expires_at": app_token_expires_at(token),
        "read_only": token.read_only,
        "wallet_holder": token.wallet.beneficiary.first_name,
    }


TOKEN_EXAMPLE = {
    "token": "app_Jx3…(47 characters)",
    "expires_at": "2027-02-20T10:15:00+01:00",
    "read_only": False,
    "wallet_holder": "Marie",
}


class SignInTokenApi(APIView):
    authentication_classes = []
    permission_classes = []
    throttle_classes = [SignInTokenIpThrottle, SignInTokenContactDailyThrottle]

    class SignInTokenInput(serializers.Serializer):
        contact = serializers.CharField(max_length=254)
        code = serializers.CharField(max_length=20, help_text="The 6 digits received.")

    @extend_schema(
        summary="Sign in with the code",
        description="Exchanges the code for a token per wallet the contact may see: the "
        "contact's own wallet (full access) first, then the wallets of the people who "
        "authorised it as their aidant (read-only), in `other_wallets`. A wrong, expired or "
        "used code answers 400 invalid_code; a code dies after 5 wrong tries. At most 20 "
        "tries per address per hour, and 20 per contact per day.",
        request=SignInTokenInput,
        responses={200: SignInOutput, **ERRORS},
        auth=[],
        parameters=[LANGUAGE],
        examples=[
            OpenApiExample(
                "Code", request_only=True, value={"contact": "06 12 34 56 78", "code": "428195"}
            ),
            OpenApiExample(
                "Signed in", response_only=True, value={**TOKEN_EXAMPLE, "other_wallets": []}
            ),
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request):
        data = self.SignInTokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        tokens = sign_in_code_verify(
            contact=contact_parse(data.validated_data["contact"]),
            code="".join(data.validated_data["code"].split()),
        )
        (first, *others) = [_token_data(token, secret) for token, secret in tokens]
        return Response(SignInOutput({**first, "other_wallets": others}).data)


class SignOutApi(AppApi):
    read_only_tokens_allowed = True

    @extend_schema(summary="Sign out this device", request=None, responses={204: None, **ERRORS})
    def post(self, request):
        app_token_revoke(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SignOutEverywhereApi(AppApi):
    read_only_tokens_allowed = True

    @extend_schema(
        summary="Sign out every device",
        description="For the wallet's holder: every token of the wallet stops working, "
        "aidants' included (they can sign in again while they are allowed). For an aidant: "
        "their own tokens for this wallet.",
        request=None,
        responses={204: None, **ERRORS},
    )
    def post(self, request):
        app_token_revoke_everywhere(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- me -----------------------------------------------------------------------------------


class AidantSelfOutput(serializers.Serializer):
    name = serializers.CharField()
    contact = serializers.CharField(help_text="Masked.")


class MeOutput(serializers.Serializer):
    first_name = serializers.CharField()
    language = serializers.ChoiceField(choices=Beneficiary.Language.choices)
    email = serializers.CharField(allow_null=True, help_text="Masked: m•••@example.org.")
    phone = serializers.CharField(allow_null=True, help_text="Masked: ••••••••78.")
    read_only = serializers.BooleanField()
    aidant = AidantSelfOutput(
        allow_null=True, help_text="Who is signed in, when it is an aidant, not the holder."
    )


def _mask(contact: str) -> str:
    return mask_email(contact) if "@" in contact else mask_phone(contact)


ME_EXAMPLE = {
    "first_name": "Marie",
    "language": "fr",
    "email": "m•••@example.org",
    "phone": "••••••••78",
    "read_only": False,
    "aidant": None,
}


class MeApi(AppApi):
    class MeInput(serializers.Serializer):
        language = serializers.ChoiceField(choices=Beneficiary.Language.choices)

    def _output(self, request) -> dict:
        beneficiary = self.beneficiary
        aidant = request.user.aidant
        return MeOutput(
            {
                "first_name": beneficiary.first_name,
                "language": beneficiary.preferred_language,
                "email": mask_email(beneficiary.email) if beneficiary.email else None,
                "phone": mask_phone(beneficiary.phone.as_e164) if beneficiary.phone else None,
                "read_only": request.auth.read_only,
                "aidant": (
                    {"name": aidant.name, "contact": _mask(aidant.contact)} if aidant else None
                ),
            }
        ).data

    @extend_schema(
        summary="Who is signed in",
        responses={200: MeOutput, **ERRORS},
        examples=[OpenApiExample("Holder", response_only=True, value=ME_EXAMPLE)],
    )
    def get(self, request):
        return Response(self._output(request))

    @extend_schema(
        summary="Choose the language of messages",
        description="The language of the emails and SMS sent to the holder. The API itself "
        "answers in the request's Accept-Language.",
        request=MeInput,
        responses={200: MeOutput, **ERRORS},
        examples=[
            OpenApiExample("English", request_only=True, value={"language": "en"}),
            OpenApiExample("Updated", response_only=True, value={**ME_EXAMPLE, "language": "en"}),
            ERROR_EXAMPLE,
        ],
    )
    def patch(self, request):
        data = self.MeInput(data=request.data)
        data.is_valid(raise_exception=True)
        beneficiary_language_set(
            beneficiary=self.beneficiary, language=data.validated_data["language"]
        )
        return Response(self._output(request))


# --- aidants ------------------------------------------------------------------------------


class AidantOutput(serializers.ModelSerializer):
    contact = serializers.SerializerMethodField(help_text="Masked.")

    class Meta:
        model = Aidant
        fields = ["id", "name", "contact", "channel", "created_at"]

    def get_contact(self, aidant) -> str:
        return _mask(aidant.contact)


class AidantListOutput(serializers.Serializer):
    data = AidantOutput(many=True)


AIDANT_EXAMPLE = {
    "id": 4,
    "name": "Mme Martin, CCAS de Grenoble",
    "contact": "c•••@ccas-grenoble.fr",
    "channel": "email",
    "created_at": "2026-11-22T09:00:00+01:00",
}


class AidantListCreateApi(AppApi):
    class AidantInput(serializers.Serializer):
        contact = serializers.CharField(
            max_length=254, help_text="Their email address or mobile phone number."
        )
        name = serializers.CharField(
            max_length=100, default="", allow_blank=True, help_text="To recognise them."
        )

    @extend_schema(
        summary="People allowed to see the wallet",
        responses={200: AidantListOutput, **ERRORS},
        examples=[OpenApiExample("Aidants", response_only=True, value={"data": [AIDANT_EXAMPLE]})],
    )
    def get(self, request):
        aidants = Aidant.objects.filter(wallet=self.wallet, revoked_at__isnull=True).order_by("pk")
        return Response({"data": AidantOutput(aidants, many=True).data})

    @extend_schema(
        summary="Allow someone to see the wallet",
        description="The person signs in with a code sent to this contact and sees the "
        "wallet without being able to change anything. At most 5 people at once. Allowing "
        "the same contact again answers 200 with the existing authorisation.",
        request=AidantInput,
        responses={201: AidantOutput, 200: AidantOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "Social worker",
                request_only=True,
                value={"contact": "c.martin@ccas-grenoble.fr", "name": AIDANT_EXAMPLE["name"]},
            ),
            OpenApiExample(
                "Allowed", response_only=True, status_codes=["201", "200"], value=AIDANT_EXAMPLE
            ),
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request):
        data = self.AidantInput(data=request.data)
        data.is_valid(raise_exception=True)
        aidant, created = aidant_authorize(
            wallet=self.wallet,
            contact=contact_parse(data.validated_data["contact"]),
            name=data.validated_data["name"],
        )
        return Response(
            AidantOutput(aidant).data, status=status.HTTP_201_CREATED if created else 200
        )


class AidantDetailApi(AppApi):
    @extend_schema(
        summary="Stop someone seeing the wallet",
        description="Their tokens stop working at once.",
        responses={204: None, **ERRORS},
    )
    def delete(self, request, aidant_id: int):
        aidant = get_object_or_404(
            Aidant, pk=aidant_id, wallet=self.wallet, revoked_at__isnull=True
        )
        aidant_revoke(aidant=aidant)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- pockets ------------------------------------------------------------------------------


class PocketOutput(serializers.Serializer):
    id = serializers.IntegerField()
    aid_name = serializers.CharField()
    funder_name = serializers.CharField()
    currency = serializers.CharField()
    available = serializers.IntegerField(help_text="In minor units: 1250 is 12.50 EUR.")
    available_display = serializers.CharField(help_text="Formatted: 12,50 € in French.")
    held = serializers.IntegerField(
        help_text="Reserved by payments the shops have not yet taken, in minor units."
    )
    held_display = serializers.CharField()
    valid_from = serializers.DateTimeField()
    valid_until = serializers.DateTimeField(
        allow_null=True, help_text="The first instant the aid no longer works."
    )
    valid_until_display = serializers.CharField(
        allow_null=True, help_text='The last day, as people say it: "31 mars".'
    )
    expires_soon = serializers.BooleanField(help_text="The aid ends within 14 days.")
    expiry_warning = serializers.CharField(allow_null=True)
    rules = serializers.ListField(
        child=serializers.CharField(), help_text="Where, when and how much, in plain words."
    )


class PocketListOutput(serializers.Serializer):
    data = PocketOutput(many=True)


def _last_day(until: datetime):
    local = timezone.localtime(until)
    return local.date() - timedelta(days=1) if local.time() == time(0, 0) else local.date()


def expiry_warning(pocket: Pocket, now: datetime) -> str | None:
    until = pocket.allocation.valid_until
    if not selectors.pocket_expires_soon(pocket, now=now):
        return None
    date = format_until(until)
    if until <= now:
        return gettext("This aid has ended: it could be used until %(date)s.") % {"date": date}
    days = (_last_day(until) - timezone.localtime(now).date()).days
    if days <= 0:
        return gettext("This aid ends today: it can be used until %(date)s.") % {"date": date}
    return ngettext(
        "This aid ends in %(days)d day: it can be used until %(date)s.",
        "This aid ends in %(days)d days: it can be used until %(date)s.",
        days,
    ) % {"days": days, "date": date}


def pocket_data(pocket: Pocket, now: datetime) -> dict:
    allocation = pocket.allocation
    account = pocket.account
    currency = account.currency
    return {
        "id": pocket.pk,
        "aid_name": allocation.program.name,
        "funder_name": allocation.program.funder.name,
        "currency": currency,
        "available": account.available,
        "available_display": money(account.available, currency),
        "held": account.pending,
        "held_display": money(account.pending, currency),
        "valid_from": allocation.valid_from,
        "valid_until": allocation.valid_until,
        "valid_until_display": (
            format_until(allocation.valid_until) if allocation.valid_until else None
        ),
        "expires_soon": selectors.pocket_expires_soon(pocket, now=now),
        "expiry_warning": expiry_warning(pocket, now),
        "rules": pocket_rules(pocket).describe(currency=currency),
    }


POCKET_EXAMPLE = {
    "id": 17,
    "aid_name": "Aide alimentaire",
    "funder_name": "Département de l'Isère",
    "currency": "EUR",
    "available": 7450,
    "available_display": "74,50 €",
    "held": 1250,
    "held_display": "12,50 €",
    "valid_from": "2026-11-01T00:00:00+01:00",
    "valid_until": "2026-12-01T00:00:00+01:00",
    "valid_until_display": "30 novembre 2026",
    "expires_soon": True,
    "expiry_warning": "Cette aide se termine dans 8 jours : elle peut être utilisée jusqu'au "
    "30 novembre 2026.",
    "rules": [
        "Peut être utilisée du 1 novembre 2026 au 30 novembre 2026.",
        "Seulement dans : commerces alimentaires.",
        "Seulement dans cette zone : Isère (38).",
        "Au plus 25,00 € par jour.",
    ],
}


class PocketListApi(AppApi):
    @extend_schema(
        summary="The pockets of aid",
        operation_id="pockets_list",
        description="Each active aid: its balance, expiry and rules in plain words, the one "
        "that ends first first.",
        parameters=[LANGUAGE],
        responses={200: PocketListOutput, **ERRORS},
        examples=[OpenApiExample("Pockets", response_only=True, value={"data": [POCKET_EXAMPLE]})],
    )
    def get(self, request):
        now = timezone.now()
        pockets = selectors.pocket_list(wallet=self.wallet)
        return Response(
            PocketListOutput({"data": [pocket_data(pocket, now) for pocket in pockets]}).data
        )


class PocketDetailApi(AppApi):
    @extend_schema(
        summary="One pocket of aid",
        parameters=[LANGUAGE],
        responses={200: PocketOutput, **ERRORS},
        examples=[OpenApiExample("Pocket", response_only=True, value=POCKET_EXAMPLE)],
    )
    def get(self, request, pocket_id: int):
        pocket = selectors.pocket_get(wallet=self.wallet, pocket_id=pocket_id)
        return Response(PocketOutput(pocket_data(pocket, timezone.now())).data)


# --- where to spend -----------------------------------------------------------------------


class PlaceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    category = serializers.CharField(help_text='What kind of shop: "food shops".')
    address = serializers.CharField()
    postcode = serializers.CharField()
    city = serializers.CharField()
    latitude = serializers.FloatField(allow_null=True)
    longitude = serializers.FloatField(allow_null=True)
    distance_km = serializers.FloatField(
        allow_null=True, help_text="From the position given; null without one."
    )


class PlacePageOutput(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = PlaceOutput(many=True)


class Page(LimitOffsetPagination):
    default_limit = 25
    max_limit = 100


class PlaceListApi(AppApi):
    class PlaceQuery(serializers.Serializer):
        lat = serializers.FloatField(min_value=-90, max_value=90, required=False)
        lon = serializers.FloatField(min_value=-180, max_value=180, required=False)
        postcode = serializers.RegexField(r"^[0-9]{5}$", required=False)

        def validate(self, attrs):
            if ("lat" in attrs) != ("lon" in attrs):
                raise serializers.ValidationError({"lat": gettext("Send lat and lon together.")})
            return attrs

    @extend_schema(
        summary="Where this aid can be spent",
        description="The shops that accept this pocket (its categories, shops and zone), "
        "nearest first: by distance from lat/lon; or with a postcode, the shops of that "
        "postcode first, then of its département. Without either, the holder's postcode is "
        "used.",
        parameters=[
            OpenApiParameter("lat", float),
            OpenApiParameter("lon", float),
            OpenApiParameter("postcode", str, pattern=r"^[0-9]{5}$"),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
            LANGUAGE,
        ],
        responses={200: PlacePageOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "Nearby",
                response_only=True,
                value={
                    "count": 1,
                    "next": None,
                    "previous": None,
                    "results": [
                        {
                            "id": 42,
                            "name": "Épicerie du Vieux Temple",
                            "category": "commerces alimentaires",
                            "address": "4 rue du Vieux Temple",
                            "postcode": "38000",
                            "city": "Grenoble",
                            "latitude": 45.19302,
                            "longitude": 5.73086,
                            "distance_km": 0.8,
                        }
                    ],
                },
            ),
            ERROR_EXAMPLE,
        ],
    )
    def get(self, request, pocket_id: int):
        pocket = selectors.pocket_get(wallet=self.wallet, pocket_id=pocket_id)
        query = self.PlaceQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        places = selectors.places_to_spend(
            pocket=pocket,
            latitude=params.get("lat"),
            longitude=params.get("lon"),
            postcode=params.get("postcode") or self.beneficiary.postcode or None,
        )
        paginator = Page()
        page = paginator.paginate_queryset(places, request, view=self)
        results = [
            {
                "id": place.merchant.pk,
                "name": place.merchant.trade_name,
                "category": selectors.merchant_category_label(place.merchant.mcc),
                "address": place.merchant.address,
                "postcode": place.merchant.postcode,
                "city": place.merchant.city,
                "latitude": place.merchant.latitude,
                "longitude": place.merchant.longitude,
                "distance_km": (
                    round(place.distance_km, 2) if place.distance_km is not None else None
                ),
            }
            for place in page
        ]
        return paginator.get_paginated_response(PlaceOutput(results, many=True).data)


# --- history ------------------------------------------------------------------------------


class ReasonOutput(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, e.g. outside_zone.")
    message = serializers.CharField(help_text="Why, in plain words, and what to do.")


class PaymentPocketOutput(serializers.Serializer):
    pocket_id = serializers.IntegerField()
    aid_name = serializers.CharField()
    amount = serializers.IntegerField()
    amount_display = serializers.CharField()


class PaymentOutput(serializers.Serializer):
    reference = serializers.CharField()
    status = serializers.ChoiceField(choices=Decision.Status.choices)
    merchant_name = serializers.CharField()
    amount = serializers.IntegerField(help_text="Asked by the shop, in minor units.")
    amount_display = serializers.CharField()
    approved_amount = serializers.IntegerField()
    approved_amount_display = serializers.CharField()
    currency = serializers.CharField()
    at = serializers.DateTimeField()
    pockets = PaymentPocketOutput(many=True, help_text="The aid each part was paid with.")
    reason = ReasonOutput(
        allow_null=True,
        help_text="Why the payment was refused, or only partly accepted; null when accepted.",
    )


def payment_data(decision: Decision) -> dict:
    currency = decision.currency
    reason = None
    if decision.reason:
        reason = {
            "code": decision.reason,
            "message": beneficiary_message(
                decision.reason,
                pocket_name=decision.reason_pocket or None,
                details=decision.details,
            ),
        }
    return {
        "reference": decision.reference,
        "status": decision.status,
        "merchant_name": selectors.payment_merchant_name(decision),
        "amount": decision.amount,
        "amount_display": money(decision.amount, currency),
        "approved_amount": decision.approved_amount,
        "approved_amount_display": money(decision.approved_amount, currency),
        "currency": currency,
        "at": decision.decided_at,
        "pockets": [
            {
                "pocket_id": hold.pocket_id,
                "aid_name": hold.pocket.allocation.program.name,
                "amount": hold.amount,
                "amount_display": money(hold.amount, currency),
            }
            for hold in decision.holds.all()
        ],
        "reason": reason,
    }


class HistoryItemOutput(serializers.Serializer):
    type = serializers.ChoiceField(choices=["aid_granted", "aid_ended", "payment", "refund"])
    at = serializers.DateTimeField()
    summary = serializers.CharField(help_text="The event in one sentence.")
    amount = serializers.IntegerField(
        help_text="Granted, returned to the funder, asked by the shop, or refunded."
    )
    amount_display = serializers.CharField()
    currency = serializers.CharField()
    pocket_id = serializers.IntegerField(allow_null=True)
    aid_name = serializers.CharField(allow_null=True)
    funder_name = serializers.CharField(allow_null=True)
    merchant_name = serializers.CharField(allow_null=True)
    payment_reference = serializers.CharField(
        allow_null=True, help_text="The payment (GET /history/{reference}) it is about."
    )
    payment = PaymentOutput(allow_null=True, help_text="For type payment.")
    back_to_aid = serializers.BooleanField(
        allow_null=True,
        help_text="For a refund: true when the money went back to the aid; false when the aid "
        "had ended and it went back to the funder.",
    )


class HistoryPageOutput(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = HistoryItemOutput(many=True)


def _aid_event(event: selectors.HistoryEvent) -> dict:
    pocket = event.obj
    allocation = pocket.allocation
    program = allocation.program
    names = {"aid": program.name, "funder": program.funder.name}
    if event.type == "aid_granted":
        amount = allocation.amount
        summary = gettext("%(funder)s granted you %(amount)s: %(aid)s.") % {
            **names,
            "amount": money(amount, allocation.currency),
        }
    else:
        amount = pocket.returned
        if allocation.status == allocation.Status.REVOKED:
            summary = gettext("%(funder)s ended this aid: %(aid)s.") % names
        else:
            summary = gettext("This aid has ended: %(aid)s.") % names
        if amount > 0:
            summary += " " + gettext("%(amount)s that was left went back to %(funder)s.") % {
                **names,
                "amount": money(amount, allocation.currency),
            }
    return {
        "amount": amount,
        "amount_display": money(amount, allocation.currency),
        "currency": allocation.currency,
        "summary": summary,
        "pocket_id": pocket.pk,
        "aid_name": program.name,
        "funder_name": program.funder.name,
    }


def _payment_event(event: selectors.HistoryEvent) -> dict:
    payment = payment_data(event.obj)
    words = {
        "amount": payment["amount_display"],
        "approved": payment["approved_amount_display"],
        "merchant": payment["merchant_name"],
    }
    summary = {
        Decision.Status.APPROVED: gettext("You paid %(amount)s at %(merchant)s."),
        Decision.Status.PARTIALLY_APPROVED: gettext(
            "%(approved)s of %(amount)s was paid with your aid at %(merchant)s."
        ),
        Decision.Status.DECLINED: gettext("A payment of %(amount)s at %(merchant)s was refused."),
    }[event.obj.status] % words
    return {
        "amount": payment["amount"],
        "amount_display": payment["amount_display"],
        "currency": payment["currency"],
        "summary": summary,
        "merchant_name": payment["merchant_name"],
        "payment_reference": payment["reference"],
        "payment": payment,
    }


def _refund_event(event: selectors.HistoryEvent) -> dict:
    refund: Transfer = event.obj
    hold = refund.refund_of.pending_transfer.decision_hold
    decision = hold.decision
    merchant_name = selectors.payment_merchant_name(decision)
    summary = gettext("%(merchant)s refunded %(amount)s.") % {
        "merchant": merchant_name,
        "amount": money(refund.amount, refund.currency),
    }
    if not refund.back_to_pocket:
        summary += " " + gettext(
            "The aid had ended, so the money went back to the organisation that gave it."
        )
    return {
        "amount": refund.amount,
        "amount_display": money(refund.amount, refund.currency),
        "currency": refund.currency,
        "summary": summary,
        "pocket_id": hold.pocket_id,
        "aid_name": hold.pocket.allocation.program.name,
        "merchant_name": merchant_name,
        "payment_reference": decision.reference,
        "back_to_aid": refund.back_to_pocket,
    }


_EVENT_DATA = {
    "aid_granted": _aid_event,
    "aid_ended": _aid_event,
    "payment": _payment_event,
    "refund": _refund_event,
}
_EMPTY_EVENT = dict.fromkeys(
    [
        "pocket_id",
        "aid_name",
        "funder_name",
        "merchant_name",
        "payment_reference",
        "payment",
        "back_to_aid",
    ]
)

DECLINED_PAYMENT_EXAMPLE = {
    "reference": "auth_Yq1c7T2uVb0pZk3rN8wH6eJ5",
    "status": "declined",
    "merchant_name": "Bar du Centre",
    "amount": 1800,
    "amount_display": "18,00 €",
    "approved_amount": 0,
    "approved_amount_display": "0,00 €",
    "currency": "EUR",
    "at": "2026-11-22T10:16:00+01:00",
    "pockets": [],
    "reason": {
        "code": "merchant_category_not_allowed",
        "message": "Aide alimentaire : cette aide ne peut pas être utilisée dans ce type de "
        "commerce. Elle peut être utilisée dans : commerces alimentaires.",
    },
}


class HistoryListApi(AppApi):
    class HistoryQuery(serializers.Serializer):
        cursor = serializers.CharField(max_length=200, required=False)
        limit = serializers.IntegerField(min_value=1, max_value=100, default=25)

    @extend_schema(
        summary="History, newest first",
        operation_id="history_list",
        description="Aid granted and ended, payments (accepted, partly accepted, refused, with "
        "the reason in plain words and what to do) and refunds. Follow `next` for older "
        "events.",
        parameters=[
            OpenApiParameter("cursor", str, description="From `next`; leave out for the newest."),
            OpenApiParameter("limit", int, description="Events per page, 1 to 100 (25)."),
            LANGUAGE,
        ],
        responses={200: HistoryPageOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={
                    "next": "https://wallet.example.org/api/app/v1/history?cursor=MjAyNi0xMS0y",
                    "results": [
                        {
                            "type": "payment",
                            "at": DECLINED_PAYMENT_EXAMPLE["at"],
                            "summary": "Un paiement de 18,00 € chez Bar du Centre a été refusé.",
                            "amount": 1800,
                            "amount_display": "18,00 €",
                            "currency": "EUR",
                            "pocket_id": None,
                            "aid_name": None,
                            "funder_name": None,
                            "merchant_name": "Bar du Centre",
                            "payment_reference": DECLINED_PAYMENT_EXAMPLE["reference"],
                            "payment": DECLINED_PAYMENT_EXAMPLE,
                            "back_to_aid": None,
                        }
                    ],
                },
            ),
            ERROR_EXAMPLE,
        ],
    )
    def get(self, request):
        query = self.HistoryQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        cursor = selectors.HistoryCursor.decode(params["cursor"]) if "cursor" in params else None
        events, following = selectors.history_page(
            wallet=self.wallet, cursor=cursor, limit=params["limit"]
        )
        results = [
            {**_EMPTY_EVENT, "type": e.type, "at": e.at, **_EVENT_DATA[e.type](e)} for e in events
        ]
        next_url = None
        if following is not None:
            next_url = replace_query_param(
                request.build_absolute_uri(), "cursor", following.encode()
            )
        return Response(HistoryPageOutput({"next": next_url, "results": results}).data)


class PocketCheckOutput(serializers.Serializer):
    pocket_id = serializers.IntegerField()
    aid_name = serializers.CharField()
    accepted = serializers.BooleanField(help_text="Whether this aid's rules allowed it.")
    message = serializers.CharField(
        allow_null=True, help_text="Why this aid could not pay, in plain words."
    )


class PaymentDetailOutput(PaymentOutput):
    held = serializers.IntegerField(help_text="Still reserved: the shop has not taken it yet.")
    held_display = serializers.CharField()
    captured = serializers.IntegerField(help_text="Taken by the shop.")
    captured_display = serializers.CharField()
    refunded = serializers.IntegerField()
    refunded_display = serializers.CharField()
    checks = PocketCheckOutput(many=True, help_text="Each aid considered, and its answer.")


class PaymentDetailApi(AppApi):
    @extend_schema(
        summary="One payment, explained",
        description="What was asked and accepted, which aid paid what, what the shop took and "
        "refunded, and for each aid considered whether its rules allowed the payment and, if "
        "not, why in plain words.",
        parameters=[LANGUAGE],
        responses={200: PaymentDetailOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "Refused",
                response_only=True,
                value={
                    **DECLINED_PAYMENT_EXAMPLE,
                    "held": 0,
                    "held_display": "0,00 €",
                    "captured": 0,
                    "captured_display": "0,00 €",
                    "refunded": 0,
                    "refunded_display": "0,00 €",
                    "checks": [
                        {
                            "pocket_id": 17,
                            "aid_name": "Aide alimentaire",
                            "accepted": False,
                            "message": "Cette aide ne peut pas être utilisée dans ce type de "
                            "commerce. Elle peut être utilisée dans : commerces alimentaires.",
                        }
                    ],
                },
            )
        ],
    )
    def get(self, request, reference: str):
        decision = selectors.payment_get(wallet=self.wallet, reference=reference)
        currency = decision.currency
        trail = selectors.payment_money(decision)
        names = selectors.payment_pocket_names(decision)
        checks = []
        for verdict in decision.trace.get("verdicts", []):
            message = None
            if not verdict["eligible"]:
                message = beneficiary_message(
                    verdict["reason"], details={**verdict["details"], "currency": currency}
                )
            checks.append(
                {
                    "pocket_id": verdict["pocket_id"],
                    "aid_name": names.get(verdict["pocket_id"], ""),
                    "accepted": verdict["eligible"],
                    "message": message,
                }
            )
        body = {
            **payment_data(decision),
            "held": trail.held,
            "held_display": money(trail.held, currency),
            "captured": trail.captured,
            "captured_display": money(trail.captured, currency),
            "refunded": trail.refunded,
            "refunded_display": money(trail.refunded, currency),
            "checks": checks,
        }
        return Response(PaymentDetailOutput(body).data)


# --- cards --------------------------------------------------------------------------------


class CardOutput(serializers.ModelSerializer):
    class Meta:
        model = Card
        fields = ["reference", "kind", "status", "last4"]


class CardListOutput(serializers.Serializer):
    data = CardOutput(many=True)


CARD_EXAMPLE = {
    "reference": "card_bWTP5uYrZZcJLPD_MIxfr2tU",
    "kind": "physical",
    "status": "active",
    "last4": "4242",
}


class CardListApi(AppApi):
    @extend_schema(
        summary="The cards",
        responses={200: CardListOutput, **ERRORS},
        examples=[OpenApiExample("Cards", response_only=True, value={"data": [CARD_EXAMPLE]})],
    )
    def get(self, request):
        cards = self.wallet.cards.exclude(status=Card.Status.CANCELED).order_by("-created_at")
        return Response({"data": CardOutput(cards, many=True).data})


def _card_action(service, summary: str, description: str, status_after: str):
    class CardActionApi(AppApi):
        @extend_schema(
            summary=summary,
            description=description,
            request=None,
            responses={200: CardOutput, **ERRORS},
            examples=[
                OpenApiExample(
                    "Done", response_only=True, value={**CARD_EXAMPLE, "status": status_after}
                ),
                ERROR_EXAMPLE,
            ],
        )
        def post(self, request, reference: str):
            card = get_object_or_404(Card, reference=reference, wallet=self.wallet)
            return Response(CardOutput(service(card=card)).data)

    CardActionApi.__name__ = "".join(part.title() for part in service.__name__.split("_")) + "Api"
    return CardActionApi


CardFreezeApi = _card_action(
    card_freeze,
    "Freeze a card",
    "Card payments are refused until the card is unfrozen. Freezing a frozen card changes nothing.",
    Card.Status.FROZEN,
)
CardUnfreezeApi = _card_action(
    card_unfreeze, "Unfreeze a card", "The card works again.", Card.Status.ACTIVE
)
CardReportLostApi = _card_action(
    card_report_lost,
    "Report a card lost or stolen",
    "The card is blocked for good; this cannot be undone.",
    Card.Status.LOST,
)


# --- payment codes ------------------------------------------------------------------------


class PaymentCodeOutput(serializers.Serializer):
    code = serializers.CharField(help_text="10 digits, shown as 1234 567 890.")
    expires_at = serializers.DateTimeField()
    qr_svg = serializers.CharField(help_text="The code as a QR code, an SVG document.")
    max_amount = serializers.IntegerField(allow_null=True)
    currency = serializers.CharField()


class PaymentCodeApi(AppApi):
    class PaymentCodeInput(serializers.Serializer):
        max_amount = serializers.IntegerField(
            min_value=1,
            max_value=MAX_AMOUNT,
            required=False,
            help_text="The most the shop may ask with this code, in minor units.",
        )
        currency = serializers.RegexField(r"^[A-Z]{3}$", default="EUR")

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
        return Response(PaymentCodeOutput(body).data, status=status.HTTP_201_CREATED)
