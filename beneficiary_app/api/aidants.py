"""The people the holder allows to see the wallet (read-only): list, allow, stop."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from beneficiary_app.api.base import ERROR_EXAMPLE, ERRORS, AppApi, TextField, mask_contact
from beneficiary_app.services import aidant_authorize, aidant_revoke, contact_parse
from wallet.models.access import Aidant


class AidantOutput(serializers.ModelSerializer):
    contact = serializers.SerializerMethodField(help_text="Masked.")

    class Meta:
        model = Aidant
        fields = ["id", "name", "contact", "channel", "created_at"]

    def get_contact(self, aidant) -> str:
        return mask_contact(aidant.contact)


AIDANT_EXAMPLE = {
    "id": 4,
    "name": "Mme Martin, CCAS de Grenoble",
    "contact": "c•••@ccas-grenoble.fr",
    "channel": "email",
    "created_at": "2026-11-22T09:00:00+01:00",
}


class AidantListApi(AppApi):
    class AidantListOutput(serializers.Serializer):
        data = AidantOutput(many=True)

    @extend_schema(
        summary="People allowed to see the wallet",
        operation_id="aidants_list",
        responses={200: AidantListOutput, **ERRORS},
        examples=[OpenApiExample("Aidants", response_only=True, value={"data": [AIDANT_EXAMPLE]})],
    )
    def get(self, request):
        aidants = Aidant.objects.filter(wallet=self.wallet, revoked_at__isnull=True).order_by("pk")
        return Response({"data": AidantOutput(aidants, many=True).data})


class AidantAuthorizeApi(AppApi):
    class AidantInput(serializers.Serializer):
        contact = TextField(max_length=254, help_text="Their email address or mobile phone number.")
        name = TextField(
            max_length=100, default="", allow_blank=True, help_text="To recognise them."
        )

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


# Django routes one view per path: /aidants's operations, composed.
class AidantsView(AidantListApi, AidantAuthorizeApi):
    pass


class AidantRevokeApi(AppApi):
    @extend_schema(
        summary="Stop someone seeing the wallet",
        operation_id="aidants_delete",
        description="Their tokens stop working at once.",
        responses={204: None, **ERRORS},
    )
    def delete(self, request, aidant_id: int):
        aidant = get_object_or_404(
            Aidant, pk=aidant_id, wallet=self.wallet, revoked_at__isnull=True
        )
        aidant_revoke(aidant=aidant)
        return Response(status=status.HTTP_204_NO_CONTENT)
