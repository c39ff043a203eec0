"""What every operation of the app API shares: the base view (token authentication, the
read-only rule for aidants, the per-token throttle), the error schema and its example, the
Accept-Language parameter and the masking of contacts."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.views import APIView

from beneficiary_app.authentication import AppTokenAuthentication
from beneficiary_app.services import ReadOnly
from beneficiary_app.throttles import AppTokenThrottle
from beneficiary_app.web.views import funder_logo_url
from core.api_errors import ErrorOutput
from core.phones import format_phone
from funders.models import Funder
from notifications.channels import mask_email, mask_phone
from wallet.models import Beneficiary


class TextField(serializers.CharField):
    """A JSON string, as the schema says: 0 or 1.5 is refused, not read as "0" or "1.5"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


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


class FunderOutput(serializers.Serializer):
    name = serializers.CharField()
    logo_url = serializers.CharField(allow_null=True, help_text="Same origin; null without one.")
    phone = serializers.CharField(allow_null=True, help_text="E.164, for a tel: link.")
    phone_display = serializers.CharField(
        allow_null=True, help_text='As people dial it: "04 76 00 38 38".'
    )


def funder_data(funder: Funder) -> dict:
    """Who gives an aid and whom to call about it, as the app shows it beside the aid."""
    phone = funder.contact_phone.as_e164 if funder.contact_phone else None
    return {
        "name": funder.name,
        "logo_url": funder_logo_url(funder),
        "phone": phone,
        "phone_display": format_phone(phone) if phone else None,
    }


FUNDER_EXAMPLE = {
    "name": "Département de l'Isère",
    "logo_url": "/app/funders/3/logo?v=4f1c2a9e",
    "phone": "+33476003838",
    "phone_display": "04 76 00 38 38",
}


def mask_contact(contact: str) -> str:
    """An aidant's contact, an email address or a phone number, masked for display."""
    return mask_email(contact) if "@" in contact else mask_phone(contact)


class WalletWritable(BasePermission):
    """Aidants' tokens read; only the beneficiary's own token writes."""

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS or getattr(view, "read_only_tokens_allowed", False):
            return True
        if request.auth.read_only:
            raise ReadOnly()
        return True


# No docstring on the view classes: drf-spectacular would publish it as the description of
# every operation that has none of its own.
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
