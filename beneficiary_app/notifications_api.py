"""The app's endpoints for messages: which messages the beneficiary wants on which channel,
and the devices where the installed app receives push messages."""

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from beneficiary_app.api import ERRORS, AppApi
from notifications.preferences import (
    notification_preferences,
    notification_preferences_set,
)
from notifications.push import push_enabled, push_subscribe, push_unsubscribe
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


class PreferencesInput(serializers.Serializer):
    choices = serializers.DictField(
        child=serializers.DictField(child=serializers.BooleanField()),
        help_text="{kind: {channel: on}} for the choices to change; the others keep theirs.",
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


_EXAMPLE = OpenApiExample(
    "Payments by SMS off",
    request_only=True,
    value={"choices": {"payment_approved": {"sms": False}, "low_balance": {"push": True}}},
)
_ANSWER = OpenApiExample(
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


class NotificationPreferencesApi(AppApi):
    @extend_schema(
        summary="Which messages arrive on which channel",
        responses={200: PreferencesOutput, **ERRORS},
        examples=[_ANSWER],
    )
    def get(self, request):
        return Response(_preferences(self.beneficiary))

    @extend_schema(
        summary="Change some choices",
        description="All or nothing: an unknown kind or channel, or a message that is always "
        "sent turned off, changes nothing.",
        request=PreferencesInput,
        examples=[_EXAMPLE, _ANSWER],
        responses={200: PreferencesOutput, **ERRORS},
    )
    def put(self, request):
        data = PreferencesInput(data=request.data)
        data.is_valid(raise_exception=True)
        notification_preferences_set(
            beneficiary=self.beneficiary, choices=data.validated_data["choices"]
        )
        return Response(_preferences(self.beneficiary))


class PushKeysInput(serializers.Serializer):
    p256dh = serializers.CharField(max_length=200)
    auth = serializers.CharField(max_length=100)


class PushSubscriptionInput(serializers.Serializer):
    endpoint = serializers.URLField(max_length=1000)
    keys = PushKeysInput()


class PushUnsubscribeInput(serializers.Serializer):
    endpoint = serializers.URLField(max_length=1000)


class PushSubscriptionsApi(AppApi):
    @extend_schema(
        summary="Receive push messages on this device",
        description="The body is the browser's `PushSubscription.toJSON()`.",
        request=PushSubscriptionInput,
        responses={204: None, **ERRORS},
    )
    def post(self, request):
        data = PushSubscriptionInput(data=request.data)
        data.is_valid(raise_exception=True)
        info = data.validated_data
        push_subscribe(
            beneficiary=self.beneficiary,
            subscription_info={"endpoint": info["endpoint"], "keys": dict(info["keys"])},
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Stop push messages on this device",
        request=PushUnsubscribeInput,
        responses={204: None, **ERRORS},
    )
    def delete(self, request):
        data = PushUnsubscribeInput(data=request.data)
        data.is_valid(raise_exception=True)
        push_unsubscribe(beneficiary=self.beneficiary, endpoint=data.validated_data["endpoint"])
        return Response(status=status.HTTP_204_NO_CONTENT)
