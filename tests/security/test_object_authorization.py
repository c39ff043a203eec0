"""Object-level authorization (OWASP API1): a merchant reaches only its own authorizations,
captures, refunds, reversals, settlements, API keys and webhook endpoints; a beneficiary only
their own pockets, cards, payments and aidants. Another tenant's id answers 404, exactly as an
id that does not exist, and changes nothing.

Every endpoint with an id in its path is found by walking the URL resolvers (see
tests/security/conftest.py), so a new object endpoint is tried as soon as it exists."""

import json

import pytest

from tests.factories import make_payment_code
from tests.security.conftest import (
    ROUTES,
    VALID_BODIES,
    body_for,
    client_for,
    error_of,
    url_of,
    world_state,
)

OBJECT_ROUTES = [route for route in ROUTES if route.takes_id]
LIST_ROUTES = [route for route in ROUTES if not route.takes_id and "GET" in route.methods]


def test_every_object_endpoint_is_tried():
    names = {route.name for route in OBJECT_ROUTES}
    # The ones known when this test was written; a new one is tried without being listed here.
    assert {
        "merchant_api:authorization", "merchant_api:capture", "merchant_api:reverse",
        "merchant_api:refund", "merchant_api:capture-detail", "merchant_api:reversal-detail",
        "merchant_api:refund-detail", "merchant_api:api-key-revoke",
        "merchant_api:webhook-endpoint-disable", "merchant_api:settlement",
        "merchant_api:settlement-statement", "app_api:aidant", "app_api:pocket",
        "app_api:pocket-merchants", "app_api:payment", "app_api:card-freeze",
        "app_api:card-unfreeze", "app_api:card-report-lost",
    } <= names  # fmt: skip


@pytest.fixture
def mine(shop, alice):
    return shop, alice


@pytest.fixture
def theirs(rival, bob):
    return rival, bob


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=lambda r: r.name)
def test_another_tenants_id_answers_404_and_changes_nothing(route, mine, theirs):
    client = client_for(route, mine)
    their_url = url_of(route, theirs)
    assert their_url != url_of(route, mine)
    before = world_state()

    for method in route.methods:
        body = VALID_BODIES.get((route.name, method))
        text = json.dumps(body_for(route, method, mine)) if body else ""
        response = client.generic(method, their_url, text, content_type="application/json")

        assert response.status_code == 404, (method, response.status_code, response.content[:300])
        assert error_of(response)["code"] == "not_found"

    assert world_state() == before


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=lambda r: r.name)
def test_the_owner_reaches_the_same_endpoint(route, mine, theirs):
    """The other side of the test above: the 404 comes from the owner check, not a broken URL."""
    client = client_for(route, theirs)
    method = next(m for m in ("GET", "POST", "DELETE") if m in route.methods)
    body = VALID_BODIES.get((route.name, method))
    text = json.dumps(body_for(route, method, theirs)) if body else ""

    response = client.generic(method, url_of(route, theirs), text, content_type="application/json")

    assert response.status_code < 400, (method, response.status_code, response.content[:300])


def identifiers(shop, holder) -> list[str]:
    """What would betray, in a list, that another tenant's object was in it."""
    return [
        shop.held.reference, shop.captured.reference, shop.reversed.reference,
        shop.capture.reference, shop.refund.reference, shop.reversal.reference,
        shop.settlement.reference, shop.key.prefix, shop.endpoint.url,
        holder.card.reference, holder.aidant.contact.split("@")[0][1:],
        holder.pocket.allocation.program.name,
    ]  # fmt: skip


@pytest.mark.parametrize("route", LIST_ROUTES, ids=lambda r: r.name)
def test_a_list_shows_nothing_of_another_tenant(route, mine, theirs):
    client = client_for(route, mine)
    rival, bob = theirs
    rival.endpoint.url = "https://rival.example.org/hooks"
    rival.endpoint.save(update_fields=["url"])

    response = client.get(url_of(route, mine))

    assert response.status_code == 200, response.content[:300]
    text = response.content.decode()
    assert not [word for word in identifiers(rival, bob) if word in text]


def code_of(holder) -> str:
    return make_payment_code(holder.beneficiary.wallet)


def test_the_same_idempotency_key_of_two_merchants_is_two_payments(mine, theirs):
    (shop, alice), (rival, bob) = mine, theirs
    path = "/api/merchant/v1/authorizations"
    headers = {"HTTP_IDEMPOTENCY_KEY": "order-1"}

    first = shop.api.post(
        path, {"amount": 100, "currency": "EUR", "payment_code": code_of(alice)}, format="json",
        **headers,
    )  # fmt: skip
    second = rival.api.post(
        path, {"amount": 200, "currency": "EUR", "payment_code": code_of(bob)}, format="json",
        **headers,
    )  # fmt: skip

    assert first.status_code == second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
    assert "Idempotent-Replayed" not in second
    assert second.json()["amount"] == 200


def test_a_merchant_cannot_authorize_on_a_card_reference(mine, theirs):
    """A card pays through the card network only: the merchant API refuses any card reference,
    a real one (the other merchant's customer's) as a made-up one, and moves nothing."""
    (shop, _alice), (_rival, bob) = mine, theirs
    before = world_state()

    for reference in (bob.card.reference, "card_" + "A" * 24):
        response = shop.api.post(
            "/api/merchant/v1/authorizations",
            {"amount": 100, "currency": "EUR", "card": reference},
            format="json",
        )
        assert (response.status_code, error_of(response)["code"]) == (400, "card_not_accepted")
    assert world_state() == before
