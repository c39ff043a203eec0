"""Merchants register and disable their webhook endpoints through the API."""

import pytest

from merchants.models.webhooks import WebhookEndpoint
from merchants.webhooks import webhook_signature_header, webhook_signature_verify
from tests.factories import make_merchant
from tests.merchant_api.conftest import MerchantClient

pytestmark = pytest.mark.django_db

URL = "https://shop.example.org/hooks/aidwallet"


def test_an_endpoint_is_registered_and_its_secret_shown_once(api):
    created = api.send("/webhook-endpoints", {"url": URL, "enabled_events": ["payment.captured"]})
    assert created.status_code == 201
    secret = created.json()["secret"]
    endpoint = WebhookEndpoint.objects.get(merchant=api.merchant)
    assert secret == endpoint.secret and secret.startswith("whsec_")
    listed = api.read("/webhook-endpoints").json()["data"]
    assert [e["url"] for e in listed] == [URL]
    assert secret not in str(listed)
    # the secret really signs: a body signed with it verifies
    header = webhook_signature_header(payload=b"{}", secret=secret, timestamp=1_700_000_000)
    webhook_signature_verify(payload=b"{}", header=header, secret=secret, now=1_700_000_000)


def test_a_replayed_creation_does_not_show_the_secret_again_nor_create_twice(api):
    first = api.send("/webhook-endpoints", {"url": URL}, key="hook-1")
    assert first.status_code == 201
    assert WebhookEndpoint.objects.filter(merchant=api.merchant).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://shop.example.org/hook"}, "url"),
        ({"url": "https://user:pw@shop.example.org/hook"}, "url"),
        ({"url": "ftp://shop.example.org/hook"}, "url"),
        ({"url": URL, "enabled_events": ["payment.stolen"]}, "enabled_events"),
    ],
)
def test_a_bad_endpoint_is_a_400(api, body, field):
    response = api.send("/webhook-endpoints", body)
    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == (
        "invalid_request", field,
    )  # fmt: skip
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_is_disabled_by_its_merchant_only(api):
    endpoint_id = api.send("/webhook-endpoints", {"url": URL}).json()["id"]
    other = MerchantClient(make_merchant())
    assert other.send(f"/webhook-endpoints/{endpoint_id}/disable").status_code == 404
    disabled = api.send(f"/webhook-endpoints/{endpoint_id}/disable")
    assert (disabled.status_code, disabled.json()["is_active"]) == (200, False)
