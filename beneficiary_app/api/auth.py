"""Signing in with a one-time code, and signing out."""

from django.conf import settings
from django.utils.translation import get_language, ngettext
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from beneficiary_app.api.base import ERROR_EXAMPLE, ERRORS, LANGUAGE, AppApi
from beneficiary_app.services import (
    app_token_expires_at,
    app_token_revoke,
    app_token_revoke_everywhere,
    contact_parse,
    sign_in_code_verify,
)
from beneficiary_app.tasks import sign_in_code_send
from beneficiary_app.throttles import (
    SignInCodeContactDailyThrottle,
    SignInCodeContactThrottle,
    SignInCodeIpThrottle,
    SignInTokenContactDailyThrottle,
    SignInTokenIpThrottle,
)


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

    @extend_schema(
        summary="Sign out this device",
        operation_id="auth_sign_out",
        request=None,
        responses={204: None, **ERRORS},
    )
    def post(self, request):
        app_token_revoke(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SignOutEverywhereApi(AppApi):
    read_only_tokens_allowed = True

    @extend_schema(
        summary="Sign out every device",
        operation_id="auth_sign_out_everywhere",
        description="For the wallet's holder: every token of the wallet stops working, "
        "aidants' included (they can sign in again while they are allowed). For an aidant: "
        "their own tokens for this wallet.",
        request=None,
        responses={204: None, **ERRORS},
    )
    def post(self, request):
        app_token_revoke_everywhere(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)
