"""A merchant's API keys: listed, created (the secret shown once) and revoked through the API
itself, with the key in use."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from merchant_api.base import IDEMPOTENCY_KEY, LIVEMODE_HELP, MerchantApi
from merchant_api.errors import ERRORS, READ_ERRORS, LiveKeyNeedsLiveKey
from merchants.models import ApiKey
from merchants.services import api_key_create, api_key_revoke


class ApiKeyOutput(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    created = serializers.DateTimeField(source="created_at")
    livemode = serializers.SerializerMethodField(
        help_text="false for a test key. A key lists, creates and revokes only keys of its "
        "own mode: a test key never mints a live one."
    )

    class Meta:
        model = ApiKey
        fields = ["id", "object", "livemode", "name", "mode", "prefix", "created",
                  "last_used_at", "revoked_at"]  # fmt: skip

    def get_object(self, key) -> str:
        return "api_key"

    def get_livemode(self, key) -> bool:
        return key.mode == ApiKey.Mode.LIVE


API_KEY_EXAMPLE = {
    "id": 12,
    "object": "api_key",
    "livemode": True,
    "name": "Caisse 1",
    "mode": "live",
    "prefix": "sk_live_4fT9qLm",
    "created": "2026-11-22T09:00:00+01:00",
    "last_used_at": "2026-11-22T10:15:00+01:00",
    "revoked_at": None,
}


class ApiKeyListOutput(serializers.Serializer):
    livemode = serializers.BooleanField(help_text=LIVEMODE_HELP)
    data = ApiKeyOutput(many=True)


class ApiKeyListApi(MerchantApi):
    @extend_schema(
        summary="List your API keys",
        operation_id="api_keys_list",
        responses={200: ApiKeyListOutput, **READ_ERRORS},
        examples=[
            OpenApiExample(
                "Keys", response_only=True, value={"livemode": True, "data": [API_KEY_EXAMPLE]}
            )
        ],
    )
    def get(self, request):
        keys = self.merchant.api_keys.filter(mode=request.auth.mode).order_by("-created_at")
        return Response({"livemode": self.livemode, "data": ApiKeyOutput(keys, many=True).data})


class MerchantKeyCreationThrottle(SimpleRateThrottle):
    """API keys a merchant may create (rate: DEFAULT_THROTTLE_RATES["merchant_key_creation"]),
    all its keys together: with the cap of active keys, a merchant cannot mint keys to spread
    anything per key."""

    scope = "merchant_key_creation"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request.user.merchant.pk}


class ApiKeyInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    mode = serializers.ChoiceField(
        choices=ApiKey.Mode.choices,
        required=False,
        help_text="Leave out for the mode of the key in use. A test key creates test keys only.",
    )


class ApiKeyCreatedOutput(ApiKeyOutput):
    secret = serializers.SerializerMethodField()

    class Meta(ApiKeyOutput.Meta):
        fields = [*ApiKeyOutput.Meta.fields, "secret"]

    def get_secret(self, key) -> str:
        return self.context["secret"]


class ApiKeyCreateApi(MerchantApi):
    def get_throttles(self):
        # Only creations count: the list shares this view's path (ApiKeysView).
        if self.request.method == "POST":
            return [*super().get_throttles(), MerchantKeyCreationThrottle()]
        return super().get_throttles()

    @extend_schema(
        summary="Create an API key",
        description="The secret is in this response only: store it now, it is never shown "
        "again (only its digest is kept).",
        request=ApiKeyInput,
        responses={201: ApiKeyCreatedOutput, **ERRORS},
        parameters=[IDEMPOTENCY_KEY],
        examples=[
            OpenApiExample("New key", request_only=True, value={"name": "Caisse 2"}),
            OpenApiExample(
                "Created",
                response_only=True,
                value={
                    **API_KEY_EXAMPLE,
                    "last_used_at": None,
                    "secret": "sk_live_4fT9qLm…(43 characters, shown once)",
                },
            ),
        ],
    )
    def post(self, request):
        data = ApiKeyInput(data=request.data)
        data.is_valid(raise_exception=True)
        mode = data.validated_data.get("mode", request.auth.mode)
        if mode == ApiKey.Mode.LIVE and not self.livemode:
            # A sandbox key is shared with developers and CI: it must not open the live API.
            raise LiveKeyNeedsLiveKey()
        key, secret = api_key_create(
            merchant=self.merchant, name=data.validated_data["name"], mode=mode
        )
        output = ApiKeyCreatedOutput(key, context={"secret": secret})
        return Response(output.data, status=status.HTTP_201_CREATED)

    def finalize_response(self, request, response, *args, **kwargs):
        # A key's secret must not be kept for replays: a retry creates nothing more but does not
        # get the secret again.
        self.idempotency = None
        return super().finalize_response(request, response, *args, **kwargs)


# Django routes one view per path: /api-keys lists (GET) and creates (POST).
class ApiKeysView(ApiKeyListApi, ApiKeyCreateApi):
    pass


class ApiKeyRevokeApi(MerchantApi):
    @extend_schema(
        summary="Revoke an API key",
        operation_id="api_keys_revoke",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: ApiKeyOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "Revoked",
                response_only=True,
                value={**API_KEY_EXAMPLE, "revoked_at": "2026-11-22T11:00:00+01:00"},
            )
        ],
    )
    def post(self, request, key_id: int):
        key = get_object_or_404(self.merchant.api_keys, pk=key_id, mode=request.auth.mode)
        return Response(ApiKeyOutput(api_key_revoke(key=key)).data)
