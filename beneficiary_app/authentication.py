from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions

from beneficiary_app.services import app_token_expires_at, app_token_touch
from core.authentication import BearerAuthentication
from wallet.models import Beneficiary, Wallet
from wallet.models.access import Aidant, AppToken

_INVALID = _("You are signed out. Please sign in again with a new code.")


class AppPrincipal:
    """What request.user is on the app API: the wallet the token opens, and the aidant when
    the token is an aidant's (read-only)."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, token: AppToken):
        self.token = token
        self.wallet: Wallet = token.wallet
        self.beneficiary: Beneficiary = token.wallet.beneficiary
        self.aidant: Aidant | None = token.aidant


class AppTokenAuthentication(BearerAuthentication):
    """`Authorization: Bearer app_...`: the token's SHA-256 digest is looked up. A revoked
    token, one idle for too long or too old (app_token_expires_at), and an aidant's whose access
    was withdrawn all answer 401."""

    malformed_message = _("Send the token as: Bearer <token>.")
    invalid_message = _INVALID

    def authenticate_secret(self, secret: str) -> tuple[AppPrincipal, AppToken]:
        token = (
            AppToken.objects.select_related("wallet__beneficiary", "aidant")
            .filter(digest=AppToken.digest_of(secret), revoked_at__isnull=True)
            .first()
        )
        if (
            token is None
            or (token.aidant is not None and token.aidant.revoked_at is not None)
            or app_token_expires_at(token) <= timezone.now()
        ):
            raise exceptions.AuthenticationFailed(_INVALID)
        app_token_touch(token=token)
        return AppPrincipal(token), token


class AppTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes the app token in the OpenAPI schema (drf-spectacular finds it by import)."""

    target_class = AppTokenAuthentication
    name = "appToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from POST /auth/token: `Authorization: Bearer app_...`.",
        }
