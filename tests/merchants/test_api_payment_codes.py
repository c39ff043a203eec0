"""Paying with a one-time code from the beneficiary's app, through the merchant API."""

from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from tests.factories import make_merchant
from tests.merchants.conftest import MerchantClient
from wallet.payment_codes import payment_code_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def code(beneficiary, food_pocket):
    return payment_code_create(wallet=beneficiary.wallet)[1]


def pay(api, code, amount=1_000, key=None):
    return api.send(
        "/authorizations", {"amount": amount, "currency": "EUR", "payment_code": code}, key=key
    )


def test_a_payment_code_pays_from_the_beneficiary_s_wallet(api, code, food_pocket):
    response = pay(api, f"{code[:4]} {code[4:7]} {code[7:]}")
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["amount_held"]) == ("approved", 1_000)
    food_pocket.account.refresh_from_db()
    assert food_pocket.account.pending == 1_000


def test_a_used_code_is_refused(api, code):
    pay(api, code)
    response = pay(api, code)
    assert (response.status_code, response.json()["error"]["code"]) == (409, "payment_code_used")


def test_an_expired_code_is_refused(api, code, food_pocket):
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        response = pay(api, code)
    assert response.json()["error"]["code"] == "payment_code_expired"
    food_pocket.account.refresh_from_db()
    assert food_pocket.account.pending == 0


def test_a_retry_with_the_same_key_gets_the_same_answer(api, code, food_pocket):
    first = pay(api, code, key="till-7")
    again = pay(api, code, key="till-7")
    assert again.content == first.content
    food_pocket.account.refresh_from_db()
    assert food_pocket.account.pending == 1_000


@pytest.mark.parametrize("bad", ["12345", "abcdefghij", "١٢٣٤٥٦٧٨٩٠"])
def test_a_malformed_code_is_a_400(api, bad):
    response = pay(api, bad)
    assert (response.status_code, response.json()["error"]["code"]) == (
        400, "payment_code_malformed",
    )  # fmt: skip


def test_card_and_code_together_are_refused(api, card, code):
    response = api.send(
        "/authorizations",
        {"amount": 100, "currency": "EUR", "card": card.reference, "payment_code": code},
    )
    assert (response.status_code, response.json()["error"]["field"]) == (400, "card")


def test_a_key_that_sends_many_wrong_codes_must_wait(api, code, settings):
    settings.PAYMENT_CODE_FAILURES_PER_KEY = 3
    cache.clear()
    wrong = f"{int(code) + 1:010d}"[:4] + "000000"
    statuses = [pay(api, wrong).json()["error"]["code"] for _ in range(4)]
    assert statuses == ["payment_code_invalid"] * 3 + ["payment_code_attempts_exceeded"]
    # Even the right code waits for this key; another merchant's key is not affected.
    assert pay(api, code).status_code == 429
    assert pay(MerchantClient(make_merchant()), code).status_code == 201
    cache.clear()
