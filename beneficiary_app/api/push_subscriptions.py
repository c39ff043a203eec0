"""The devices where the installed app receives push messages."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from beneficiary_app.api.base import ERRORS, AppApi
from notifications.push import push_subscribe, push_unsubscribe


class PushKeysInput(serializers.Serializer):
    p256dh = serializers.CharField(max_length=200)
    auth = serializers.CharField(max_length=100)


class PushSubscriptionInput(serializers.Serializer):
    endpoint = serializers.URLField(max_length=1000)
    keys = PushKeysInput()


class PushSubscribeApi(AppApi):
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


class PushUnsubscribeApi(AppApi):
    class PushUnsubscribeInput(serializers.Serializer):
        endpoint = serializers.URLField(max_length=1000)

    @extend_schema(
        summary="Stop push messages on this device",
        operation_id="push_subscriptions_delete",
        request=PushUnsubscribeInput,
        responses={204: None, **ERRORS},
    )
    def delete(self, request):
        data = self.PushUnsubscribeInput(data=request.data)
        data.is_valid(raise_exception=True)
        push_unsubscribe(beneficiary=self.beneficiary, endpoint=data.validated_data["endpoint"])
        return Response(status=status.HTTP_204_NO_CONTENT)


# Django routes one view per path: /push-subscriptions's operations, composed.
class PushSubscriptionsView(PushSubscribeApi, PushUnsubscribeApi):
    pass
