"""The beneficiary chooses which messages arrive on which channel, and where push goes."""

import base64

import pytest

from notifications.preferences import channels_allowed
from tests.beneficiary_app.conftest import AppClient, error_code
from wallet.models.access import Aidant
from wallet.models.notifications import PushSubscription

SUBSCRIPTION = {
    "endpoint": "https://fcm.googleapis.com/fcm/send/abc123",
    "keys": {
        "p256dh": base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode().rstrip("="),
        "auth": base64.urlsafe_b64encode(b"\x02" * 16).decode().rstrip("="),
    },
}


def test_the_choices_are_listed_with_what_cannot_be_turned_off(api):
    body = api.read("/notification-preferences").json()
    by_key = {(p["kind"], p["channel"]): p for p in body["preferences"]}
    assert by_key[("allocation_granted", "sms")]["locked"] is True
    assert by_key[("payment_approved", "sms")]["enabled"] is False  # off by default
    assert by_key[("payment_declined", "email")]["enabled"] is True
    assert by_key[("payment_declined", "email")]["kind_display"]


def test_a_choice_is_changed_and_kept(api, beneficiary):
    answer = api.send(
        "/notification-preferences",
        {"choices": {"payment_declined": {"sms": False}}},
        method="put",
    )
    assert answer.status_code == 200
    assert channels_allowed(beneficiary=beneficiary, kind="payment_declined")["sms"] is False


@pytest.mark.parametrize(
    "choices",
    [
        {"allocation_granted": {"sms": False}},  # always sent
        {"no_such_kind": {"sms": False}},
        {"payment_declined": {"pigeon": False}},
        {"payment_declined": {"sms": "perhaps"}},
    ],
)
def test_a_bad_choice_changes_nothing(api, beneficiary, choices):
    answer = api.send("/notification-preferences", {"choices": choices}, method="put")
    assert answer.status_code == 400, answer.content
    assert error_code(answer)
    assert channels_allowed(beneficiary=beneficiary, kind="payment_declined")["sms"] is True


def test_an_aidant_cannot_change_the_choices(api, beneficiary):
    api.send("/aidants", {"contact": "aidant@ccas.fr", "name": "Mme Martin"})
    aidant = AppClient(beneficiary.wallet, aidant=Aidant.objects.get())
    answer = aidant.send(
        "/notification-preferences", {"choices": {"low_balance": {"sms": False}}}, method="put"
    )
    assert answer.status_code == 403
    assert error_code(answer) == "read_only"


@pytest.fixture
def push_on(settings):
    # Keys are only read when a message is sent; subscribing needs push to be turned on.
    settings.WEBPUSH_VAPID_PRIVATE_KEY = "private-key-of-the-platform"
    settings.WEBPUSH_VAPID_PUBLIC_KEY = "public-key-of-the-platform"
    settings.WEBPUSH_VAPID_SUBJECT = "mailto:support@example.org"


def test_the_push_key_is_given_when_push_is_on(api, push_on):
    body = api.read("/notification-preferences").json()
    assert body["push_public_key"] == "public-key-of-the-platform"


def test_subscribing_while_push_is_off_is_refused(api):
    answer = api.send("/push-subscriptions", SUBSCRIPTION)
    assert answer.status_code == 409
    assert error_code(answer) == "push_disabled"


def test_a_device_subscribes_to_push_and_unsubscribes(api, beneficiary, push_on):
    assert api.send("/push-subscriptions", SUBSCRIPTION).status_code == 204
    subscription = PushSubscription.objects.get(beneficiary=beneficiary)
    assert subscription.endpoint == SUBSCRIPTION["endpoint"]
    answer = api.send(
        "/push-subscriptions", {"endpoint": SUBSCRIPTION["endpoint"]}, method="delete"
    )
    assert answer.status_code == 204
    subscription.refresh_from_db()
    assert subscription.disabled_at is not None


def test_a_push_address_that_is_not_https_is_refused(api, beneficiary, push_on):
    answer = api.send("/push-subscriptions", {**SUBSCRIPTION, "endpoint": "http://push.test/x"})
    assert answer.status_code == 400
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize(
    "endpoint",
    ["https://169.254.169.254/latest/meta-data", "https://127.0.0.1/x", "https://[::1]/x"],
)
def test_a_push_address_outside_the_known_push_services_is_refused(
    api, beneficiary, push_on, endpoint
):
    answer = api.send("/push-subscriptions", {**SUBSCRIPTION, "endpoint": endpoint})
    assert answer.status_code == 400
    assert error_code(answer) == "push_service_not_allowed"
    assert answer.json()["error"]["field"] == "endpoint"
    assert not PushSubscription.objects.exists()
