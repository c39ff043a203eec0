import pytest
from django.utils import timezone

from engine.request import AuthorizationRequest
from merchants.payments import merchant_place
from stripe_issuing.accounts import card_settlement_account
from tests.beneficiary_app.conftest import error_code
from wallet.authorize import authorize
from wallet.models import Card, Decision


def test_the_cards_show_status_last4_and_kind(api, card, other_card):
    Card.objects.create(wallet=card.wallet, kind="virtual", status="canceled", last4="0000")

    assert api.read("/cards").json() == {
        "data": [
            {"reference": card.reference, "kind": "physical", "status": "active", "last4": "4242"}
        ]
    }


def test_freeze_then_unfreeze(api, card):
    frozen = api.send(f"/cards/{card.reference}/freeze")

    assert frozen.status_code == 200
    assert frozen.json()["status"] == "frozen"
    card.refresh_from_db()
    assert card.status == Card.Status.FROZEN

    unfrozen = api.send(f"/cards/{card.reference}/unfreeze")

    assert unfrozen.json()["status"] == "active"
    card.refresh_from_db()
    assert card.status == Card.Status.ACTIVE


def test_a_frozen_card_cannot_pay(api, card, food_pocket, grocer):
    api.send(f"/cards/{card.reference}/freeze")

    # the card network asks, as for a Stripe Issuing authorization
    decision = authorize(
        request=AuthorizationRequest(
            amount=500,
            currency="EUR",
            merchant=merchant_place(grocer),
            at=timezone.now(),
            channel=Decision.Channel.CARD,
        ),
        wallet=card.wallet,
        card=Card.objects.get(pk=card.pk),
        credit_account=card_settlement_account("EUR"),
        idempotency_key="f",
    )

    assert (decision.status, decision.reason) == ("declined", "card_frozen")


def test_freezing_twice_changes_nothing(api, card):
    api.send(f"/cards/{card.reference}/freeze")

    again = api.send(f"/cards/{card.reference}/freeze")

    assert again.status_code == 200
    assert again.json()["status"] == "frozen"


def test_a_card_reported_lost_stays_lost(api, card):
    assert api.send(f"/cards/{card.reference}/report-lost").json()["status"] == "lost"

    for action in ("unfreeze", "freeze"):
        response = api.send(f"/cards/{card.reference}/{action}")
        assert response.status_code == 409
        assert error_code(response) == "card_closed"
    card.refresh_from_db()
    assert card.status == Card.Status.LOST


def test_a_card_not_yet_active_cannot_be_frozen(api, card):
    Card.objects.filter(pk=card.pk).update(status=Card.Status.INACTIVE)

    response = api.send(f"/cards/{card.reference}/freeze")

    assert response.status_code == 409
    assert error_code(response) == "card_not_active"


@pytest.mark.parametrize("action", ["freeze", "unfreeze", "report-lost"])
def test_another_beneficiarys_card_answers_404(api, other_card, action):
    response = api.send(f"/cards/{other_card.reference}/{action}")

    assert response.status_code == 404
    other_card.refresh_from_db()
    assert other_card.status == Card.Status.ACTIVE
