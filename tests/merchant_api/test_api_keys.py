"""A merchant's API keys through the API: how many it may hold and create."""

import pytest

from merchant_api.api_keys import MerchantKeyCreationThrottle
from tests.factories import make_merchant
from tests.merchant_api.conftest import MerchantClient

pytestmark = pytest.mark.django_db


def create(api):
    return api.send("/api-keys", {"name": "caisse"})


def test_a_merchant_holds_a_limited_number_of_active_keys(api, settings):
    # given a cap of 3 active keys, and the one the client uses
    settings.MERCHANT_API_KEYS_MAX = 3
    assert [create(api).status_code for _ in range(2)] == [201, 201]

    # when a fourth is asked for
    refused = create(api)

    # then it is refused and said why; revoking a key makes room again
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "api_key_limit_reached")
    assert api.merchant.api_keys.count() == 3
    newest = api.merchant.api_keys.order_by("-pk").first()
    api.send(f"/api-keys/{newest.pk}/revoke")
    assert create(api).status_code == 201


def test_key_creation_is_throttled_per_merchant_whatever_the_key(api, monkeypatch):
    monkeypatch.setattr(
        MerchantKeyCreationThrottle, "THROTTLE_RATES", {"merchant_key_creation": "2/day"}
    )
    assert [create(api).status_code for _ in range(2)] == [201, 201]

    # another key of the same merchant does not start a count of its own
    refused = create(MerchantClient(api.merchant))

    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "rate_limited")
    assert int(refused["Retry-After"]) > 0
    assert api.merchant.api_keys.count() == 4  # the two keys of the clients, two created
    assert api.read("/api-keys").status_code == 200  # listing is not creating
    assert create(MerchantClient(make_merchant())).status_code == 201
