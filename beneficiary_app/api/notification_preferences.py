"""Which messages the beneficiary wants on which channel."""

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from beneficiary_app.api.base import ERRORS, AppApi
from notifications.preferences import notification_preferences, notification_preferences_set
from notifications.push import push_enabled
from wallet.models.notifications import Notification


class PreferenceOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Notification.Kind.choices)
    kind_display = serializers.CharField(help_text="The kind, in the request's language.")
    channel = serializers.ChoiceField(choices=Notification.Channel.choices)
    enabled = serializers.BooleanField()
    locked = serializers.BooleanField(help_text="Always sent: this choice cannot be turned off.")


class PreferencesOutput(serializers.Serializer):
    preferences = PreferenceOutput(many=True)
    push_public_key = serializers.CharField(
        allow_null=True,
        help_text="The VAPID public key for `PushManager.subscribe()`; null when the platform "
        "sends no push messages.",
    )


def _preferences(beneficiary) -> dict:
    labels = dict(Notification.Kind.choices)
    return {
        "preferences": [
            {
                "kind": p.kind,
                "kind_display": str(labels[p.kind]),
                "channel": p.channel,
                "enabled": p.enabled,
                "locked": p.locked,
            }
            for p in notification_preferences(beneficiary=beneficiary)
        ],
        "push_public_key": settings.WEBPUSH_VAPID_PUBLIC_KEY if push_enabled() else None,
    }


PREFERENCES_EXAMPLE = OpenApiExample(
    "Choices",
    response_only=True,
    value={
        "preferences": [
            {
                "kind": "allocation_granted",
                "kind_display": "Aide attribuée",
                "channel": "sms",
                "enabled": True,
                "locked": True,
            },
            {
                "kind": "payment_approved",
                "kind_display": "Paiement accepté",
                "channel": "sms",
                "enabled": False,
                "locked": False,
            },
        ],
        "push_public_key": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-"
        "Ts1XbjhazAkj7I99e8QcYP7DkM",
    },
)


class NotificationPreferencesGetApi(AppApi):
    @extend_schema(
        summary="Which messages arrive on which channel",
        responses={200: PreferencesOutput, **ERRORS},
        examples=[PREFERENCES_EXAMPLE],
    )
    def get(self, request):
        return Response(_preferences(self.beneficiary))


class NotificationPreferencesSetApi(AppApi):
    class PreferencesInput(serializers.Serializer):
        choices = serializers.DictField(
            child=serializers.DictField(child=serializers.BooleanField()),
            help_text="{kind: {channel: on}} for the choices to change; the others keep theirs.",
        )

    @extend_schema(
        summary="Change some choices",
        description="All or nothing: an unknown kind or channel, or a message that is always "
        "sent turned off, changes nothing.",
        request=PreferencesInput,
        examples=[
            OpenApiExample(
                "Payments by SMS off",
                request_only=True,
                value={
                    "choices": {"payment_approved": {"sms": False}, "low_balance": {"push": True}}
                },
            ),
            PREFERENCES_EXAMPLE,
        ],
        responses={200: PreferencesOutput, **ERRORS},
    )
    def put(self, request):
        data = self.PreferencesInput(data=request.data)
        data.is_valid(raise_exception=True)
        notification_preferences_set(
            beneficiary=self.beneficiary, choices=data.validated_data["choices"]
        )
        return Response(_preferences(self.beneficiary))


# Django routes one view per path: /notification-preferences's operations, composed.
class NotificationPreferencesView(NotificationPreferencesGetApi, NotificationPreferencesSetApi):
    pass
