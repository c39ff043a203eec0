"""Issue 17, end to end: a wallet holding a food aid (grocers only, never on Sundays) and a
transport aid, at a grocer on a Sunday. Whether the till sends the app's payment code or the
card goes through Stripe, the payment is refused because of the day, naming the food aid: the
shop is told the aid cannot be used at this time (not in this shop), and the beneficiary's
payment page still gives each aid's own answer."""

from datetime import datetime

import pytest
import time_machine
from django.utils import translation

from core.time import PARIS
from engine.codes import merchant_message
from tests.beneficiary_app.conftest import AppClient
from tests.factories import (
    BeneficiaryFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
)
from tests.merchant_api.conftest import MerchantClient
from tests.stripe_issuing import stripe_events as se
from tests.stripe_issuing.hooks import webhook_secret
from wallet.models import Card, Decision

__all__ = ["webhook_secret"]

# Run on both databases: CI's PostgreSQL run is the one the issue asks for.
pytestmark = [pytest.mark.django_db]

SUNDAY = datetime(2026, 11, 22, 11, 0, tzinfo=PARIS)
FOOD = {
    "categories": {"allow_groups": ["food"]},
    "schedule": {"weekdays": [0, 1, 2, 3, 4, 5], "refuse_public_holidays": True},
}
TRANSPORT = {"categories": {"allow_groups": ["transport"]}}
AT_THIS_TIME = "Payment refused: the customer's aid cannot be used at this time."


def sunday():
    return time_machine.travel(SUNDAY, tick=False)


@pytest.fixture
def wallet(db):
    """The wallet of the issue: food aid and transport aid, both with money."""
    beneficiary = BeneficiaryFactory()
    with sunday():
        for name, rules in (("Aide alimentaire", FOOD), ("Mobilité", TRANSPORT)):
            make_allocation(
                program=make_program(name=name, rules=rules), beneficiary=beneficiary, amount=5_000
            )
    return beneficiary.wallet


@pytest.fixture
def refused_by_code(wallet):
    """The merchant API's answer to a grocer on Sunday, and the decision behind it."""
    grocer = make_merchant()
    api = MerchantClient(grocer, HTTP_ACCEPT_LANGUAGE="en")
    with sunday():
        body = {"amount": 2_000, "currency": "EUR", "payment_code": make_payment_code(wallet)}
        response = api.send("/authorizations", body)
    assert response.status_code == 201, response.content
    return response.json(), Decision.objects.get(reference=response.json()["id"])


def test_the_merchant_api_refuses_for_the_day_naming_the_food_aid(refused_by_code):
    answer, decision = refused_by_code

    assert answer["status"] == "declined"
    assert answer["decline"] == {"code": "outside_allowed_hours", "message": AT_THIS_TIME}
    assert decision.reason_pocket == "Aide alimentaire"


@pytest.mark.usefixtures("webhook_secret")
def test_the_card_channel_refuses_for_the_day_naming_the_food_aid(client, wallet):
    card = Card.objects.create(
        wallet=wallet, kind="virtual", status="active", last4="4242", stripe_card_id="ic_1Sunday"
    )
    with sunday():
        auth = se.authorization(card=card.stripe_card_id, amount=2_000, merchant=se.GROCERY)
        response = se.post(client, se.event("issuing_authorization.request", auth))

    assert response.status_code == 200
    assert response.json()["approved"] is False
    assert response.json()["metadata"]["reason"] == "outside_allowed_hours"
    decision = Decision.objects.get(merchant_reference=auth["id"])
    assert (decision.reason, decision.reason_pocket) == (
        "outside_allowed_hours",
        "Aide alimentaire",
    )
    # The card network shows the till ISO 8583 code 57; the words behind it are these.
    with translation.override("en"):
        assert merchant_message(decision.reason) == AT_THIS_TIME


def test_the_payment_page_gives_each_aid_its_own_answer(refused_by_code, wallet):
    _, decision = refused_by_code
    app = AppClient(wallet, language="en")

    page = app.read(f"/history/{decision.reference}").json()

    assert page["reason"] == {
        "code": "outside_allowed_hours",
        "message": "Aide alimentaire: this aid cannot be used at this time. It can be used on "
        "these days: Monday, Tuesday, Wednesday, Thursday, Friday, Saturday.",
    }
    assert {
        check["aid_name"]: (check["accepted"], check["message"]) for check in page["checks"]
    } == {
        "Aide alimentaire": (
            False,
            "This aid cannot be used at this time. It can be used on these days: Monday, "
            "Tuesday, Wednesday, Thursday, Friday, Saturday.",
        ),
        "Mobilité": (
            False,
            "This aid cannot be used in this kind of shop. "
            "It can be used in: public transport and taxis.",
        ),
    }
    [entry] = [e for e in app.read("/history").json()["results"] if e["type"] == "payment"]
    assert entry["payment"]["reason"] == page["reason"]
