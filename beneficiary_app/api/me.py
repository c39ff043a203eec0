"""Who is signed in, and the language of the messages sent to the holder."""

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from beneficiary_app.api.base import ERROR_EXAMPLE, ERRORS, AppApi, mask_contact
from beneficiary_app.services import beneficiary_language_set
from notifications.channels import mask_email, mask_phone
from wallet.models import Beneficiary


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


def _me_data(request) -> dict:
    beneficiary = request.user.beneficiary
    aidant = request.user.aidant
    return MeOutput(
        {
            "first_name": beneficiary.first_name,
            "language": beneficiary.preferred_language,
            "email": mask_email(beneficiary.email) if beneficiary.email else None,
            "phone": mask_phone(beneficiary.phone.as_e164) if beneficiary.phone else None,
            "read_only": request.auth.read_only,
            "aidant": (
                {"name": aidant.name, "contact": mask_contact(aidant.contact)} if aidant else None
            ),
        }
    ).data


ME_EXAMPLE = {
    "first_name": "Marie",
    "language": "fr",
    "email": "m•••@example.org",
    "phone": "••••••••78",
    "read_only": False,
    "aidant": None,
}


class MeGetApi(AppApi):
    @extend_schema(
        summary="Who is signed in",
        responses={200: MeOutput, **ERRORS},
        examples=[OpenApiExample("Holder", response_only=True, value=ME_EXAMPLE)],
    )
    def get(self, request):
        return Response(_me_data(request))


class MeLanguageSetApi(AppApi):
    class MeInput(serializers.Serializer):
        language = serializers.ChoiceField(choices=Beneficiary.Language.choices)

    @extend_schema(
        summary="Choose the language of messages",
        operation_id="me_update",
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
        return Response(_me_data(request))


# Django routes one view per path: /me's operations, composed.
class MeView(MeGetApi, MeLanguageSetApi):
    pass
