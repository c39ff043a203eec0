from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from funders.services import allocation_expire, allocation_revoke
from merchants.payments import payment_authorize, payment_capture, payment_refund
from tests.beneficiary_app.conftest import AppClient, error_code
from tests.factories import make_allocation, make_merchant, make_payment_code

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2026, 11, 22, 10, 0, tzinfo=PARIS)
FOOD_ONLY = {"categories": {"allow_groups": ["food"]}}


def at(minutes: int):
    return time_machine.travel(START + timedelta(minutes=minutes), tick=False)


def plain(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


@pytest.fixture
def bar(db):
    return make_merchant(trade_name="Bar du Centre", mcc="5813")


@pytest.fixture
def story(beneficiary, card, grocer, bar):
    """A food pocket granted, a payment made, captured and partly refunded, a payment at a
    bar refused, a second aid granted then revoked: one event a minute."""
    with at(0):
        pocket = make_allocation(beneficiary=beneficiary, amount=10_000, rules=FOOD_ONLY).pocket
    with at(1):
        paid = payment_authorize(
            merchant=grocer,
            amount=1250,
            currency="EUR",
            payment_code=make_payment_code(card.wallet),
            idempotency_key="a",
        )
    with at(2):
        payment_capture(merchant=grocer, decision=paid, idempotency_key="c")
    with at(3):
        payment_refund(merchant=grocer, decision=paid, amount=500, idempotency_key="r")
    with at(4):
        refused = payment_authorize(
            merchant=bar,
            amount=1800,
            currency="EUR",
            payment_code=make_payment_code(card.wallet),
            idempotency_key="b",
        )
    with at(5):
        other = make_allocation(beneficiary=beneficiary, amount=3_000)
    with at(6):
        allocation_revoke(allocation=other)
    return {"pocket": pocket, "paid": paid, "refused": refused, "other": other}


def test_the_history_lists_every_event_newest_first(api_en, story):
    results = api_en.read("/history").json()["results"]

    assert [(e["type"], e["amount"]) for e in results] == [
        ("aid_ended", 3000),
        ("aid_granted", 3000),
        ("payment", 1800),
        ("refund", 500),
        ("payment", 1250),
        ("aid_granted", 10000),
    ]


def test_a_payment_shows_the_merchant_and_the_pockets_used(api_en, story):
    results = api_en.read("/history").json()["results"]

    payment = results[4]["payment"]
    pocket = story["pocket"]
    assert payment["reference"] == story["paid"].reference
    assert (payment["status"], payment["merchant_name"]) == ("approved", "Épicerie du Vieux Temple")
    assert payment["pockets"] == [
        {
            "pocket_id": pocket.pk,
            "aid_name": pocket.allocation.program.name,
            "amount": 1250,
            "amount_display": "€12.50",
        }
    ]
    assert payment["reason"] is None
    assert results[4]["summary"] == "You paid €12.50 at Épicerie du Vieux Temple."


def test_a_declined_payment_is_explained_in_plain_words(api, api_en, story):
    aid = story["pocket"].allocation.program.name

    english = api_en.read("/history").json()["results"][2]
    french = api.read("/history").json()["results"][2]

    assert english["payment"]["status"] == "declined"
    assert english["payment"]["reason"] == {
        "code": "merchant_category_not_allowed",
        "message": f"{aid}: this aid cannot be used in this kind of shop. "
        "It can be used in: food shops.",
    }
    in_french = plain(french["payment"]["reason"]["message"])
    assert in_french.startswith(
        f"{aid} : cette aide ne peut pas être utilisée dans ce type de commerce."
    )
    assert in_french.endswith("commerces alimentaires.")


def test_a_refund_names_the_payment_and_whether_it_went_back_to_the_aid(api_en, story):
    refund = api_en.read("/history").json()["results"][3]

    assert refund["payment_reference"] == story["paid"].reference
    assert refund["merchant_name"] == "Épicerie du Vieux Temple"
    assert refund["back_to_aid"] is True
    assert refund["summary"] == "Épicerie du Vieux Temple refunded €5.00."


def test_an_ended_aid_says_what_went_back_to_the_funder(api_en, story):
    ended = api_en.read("/history").json()["results"][0]

    program = story["other"].program
    assert ended["pocket_id"] == story["other"].pocket.pk
    assert ended["summary"] == (
        f"{program.funder.name} ended this aid: {program.name}. "
        f"€30.00 that was left went back to {program.funder.name}."
    )


def test_an_expired_aid_is_in_the_history(api_en, beneficiary):
    with at(0):
        allocation = make_allocation(beneficiary=beneficiary, amount=2_000, days=1)
    with at(60 * 48):
        allocation_expire(allocation=allocation)
        [ended, granted] = api_en.read("/history").json()["results"]

    assert (ended["type"], ended["amount"]) == ("aid_ended", 2000)
    assert ended["summary"].startswith("This aid has ended")
    assert granted["type"] == "aid_granted"


def test_a_partly_approved_payment_says_what_to_do(api_en, beneficiary, card, grocer):
    pocket = make_allocation(beneficiary=beneficiary, amount=1_000).pocket
    program = pocket.allocation.program
    payment_authorize(
        merchant=grocer,
        amount=2500,
        currency="EUR",
        payment_code=make_payment_code(card.wallet),
        partial_approval_allowed=True,
        idempotency_key="p",
    )

    payment = api_en.read("/history").json()["results"][0]["payment"]

    assert (payment["status"], payment["approved_amount"]) == ("partially_approved", 1000)
    assert payment["reason"]["code"] == "insufficient_funds"
    assert plain(payment["reason"]["message"]) == (
        f"Your aid paid €10.00: please pay the rest (€15.00) another way. {program.name}: "
        "there is not enough money left on your aid for this payment."
    )
    assert payment["pockets"][0]["pocket_id"] == pocket.pk


def test_pages_follow_each_other_without_gaps_even_at_the_same_instant(api, beneficiary, card):
    grocer = make_merchant()
    with at(0):  # every event at one instant: the order falls back on type and id
        for _ in range(3):
            make_allocation(beneficiary=beneficiary, amount=1_000)
        for n in range(4):
            payment_authorize(
                merchant=grocer, amount=100, currency="EUR",
                payment_code=make_payment_code(card.wallet),
                idempotency_key=f"same-{n}",
            )  # fmt: skip
        everything = api.read("/history", limit=100).json()["results"]

        seen, url = [], "/api/app/v1/history?limit=2"
        while url:
            page = api.get(url).json()
            assert len(page["results"]) <= 2
            seen += page["results"]
            url = page["next"]

    assert len(everything) == 7
    assert seen == everything
    assert [e["type"] for e in everything] == ["payment"] * 4 + ["aid_granted"] * 3


def test_a_bad_cursor_is_refused(api, beneficiary):
    for cursor in ("not-base64!", "bm9wZQ==", "MjAyNi0xMS0yMnwwfDE="):
        response = api.read("/history", cursor=cursor)
        assert response.status_code == 400, cursor
        assert error_code(response) == "invalid_cursor"


def test_one_payment_explained(api_en, story):
    refused = story["refused"]

    body = api_en.read(f"/history/{refused.reference}").json()

    assert body["merchant_name"] == "Bar du Centre"
    assert body["reason"]["code"] == "merchant_category_not_allowed"
    [check] = [c for c in body["checks"] if c["pocket_id"] == story["pocket"].pk]
    assert check["accepted"] is False
    assert check["message"] == (
        "This aid cannot be used in this kind of shop. It can be used in: food shops."
    )


def test_one_payment_shows_what_was_taken_and_refunded(api_en, story):
    body = api_en.read(f"/history/{story['paid'].reference}").json()

    assert (body["held"], body["captured"], body["refunded"]) == (0, 1250, 500)
    assert body["refunded_display"] == "€5.00"


def test_another_beneficiarys_payment_answers_404(story, other_beneficiary):
    client = AppClient(other_beneficiary.wallet)

    response = client.read(f"/history/{story['paid'].reference}")

    assert response.status_code == 404
    assert client.read("/history").json()["results"] == []


def test_the_number_of_queries_does_not_grow_with_the_history(api, story, card, grocer):
    with CaptureQueriesContext(connection) as before:
        api.read("/history")
    for n in range(3):
        paid = payment_authorize(
            merchant=grocer, amount=100, currency="EUR",
            payment_code=make_payment_code(card.wallet),
            idempotency_key=f"more-{n}",
        )  # fmt: skip
        payment_capture(merchant=grocer, decision=paid, idempotency_key=f"more-c-{n}")
        payment_refund(merchant=grocer, decision=paid, amount=50, idempotency_key=f"more-r-{n}")
    with CaptureQueriesContext(connection) as after:
        assert len(api.read("/history").json()["results"]) == 12

    assert len(after) == len(before)
