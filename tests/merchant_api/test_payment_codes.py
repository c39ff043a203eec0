"""Paying with a one-time code from the beneficiary's app, through the merchant API."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.factories import make_merchant
from tests.merchant_api.conftest import MerchantClient
from wallet.models.payment_codes import PaymentCode
from wallet.payment_codes import MAX_FAILED_ATTEMPTS, payment_code_create

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


def wrong_secret(code: str, n: int = 0) -> str:
    """The same slot with another secret: a guess that reaches the code."""
    return f"{code[:4]}{(int(code[4:]) + 1 + n) % 1_000_000:06d}"


def test_a_merchant_that_sends_many_wrong_codes_must_wait_whatever_its_keys(api, code, settings):
    # given a limit of 3 wrong codes per merchant, and a second key of the same merchant
    settings.PAYMENT_CODE_FAILURES_PER_MERCHANT = 3
    second_key = MerchantClient(api.merchant)

    # when the merchant's keys take turns at guessing
    answers = [pay(client, f"9{n:03d}000000") for n, client in enumerate([api, second_key] * 2)]

    # then the fourth wrong code waits, on a new key too, even with the right code
    codes = [answer.json()["error"]["code"] for answer in answers]
    assert codes == ["payment_code_invalid"] * 3 + ["payment_code_attempts_exceeded"]
    refused = pay(MerchantClient(api.merchant), code)
    assert (refused.status_code, refused.json()["error"]["code"]) == (
        429, "payment_code_attempts_exceeded",
    )  # fmt: skip
    assert 0 < int(refused["Retry-After"]) <= settings.PAYMENT_CODE_FAILURE_WINDOW_SECONDS
    # another merchant is not affected
    assert pay(MerchantClient(make_merchant()), code).status_code == 201


def test_the_merchant_s_limit_ends_with_its_window(api, code, beneficiary, settings):
    settings.PAYMENT_CODE_FAILURES_PER_MERCHANT = 1
    pay(api, "9000000000")
    assert pay(api, code).status_code == 429

    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        fresh = payment_code_create(wallet=beneficiary.wallet)[1]
        assert pay(api, fresh).status_code == 201


def test_a_merchant_reaching_its_limit_is_flagged_for_review(api, settings, caplog):
    settings.PAYMENT_CODE_FAILURES_PER_MERCHANT = 2

    for n in range(4):
        pay(api, f"9{n:03d}000000")

    api.merchant.refresh_from_db()
    assert api.merchant.flagged_at is not None
    assert "wrong payment codes" in api.merchant.flag_reason
    assert [r.levelname for r in caplog.records if "flagged" in r.getMessage()] == ["WARNING"]


def test_a_spray_over_many_merchants_pauses_codes_for_everyone(code, settings):
    # given a platform-wide limit of 3 wrong codes, and merchants that send one each
    settings.PAYMENT_CODE_FAILURES_PLATFORM = 3
    for n in range(3):
        assert pay(MerchantClient(make_merchant()), f"9{n:03d}000000").status_code == 404

    # when an honest merchant sends the right code
    refused = pay(MerchantClient(make_merchant()), code)

    # then it waits too, told why and for how long; the code is not used
    assert (refused.status_code, refused.json()["error"]["code"]) == (
        429, "payment_code_attempts_paused",
    )  # fmt: skip
    assert int(refused["Retry-After"]) > 0
    assert PaymentCode.objects.get().status == PaymentCode.Status.ACTIVE


def test_a_merchant_s_wrong_codes_do_not_lock_the_beneficiary_out(api, code, beneficiary, settings):
    # when one merchant sends five wrong secrets on the beneficiary's code
    for n in range(MAX_FAILED_ATTEMPTS):
        assert pay(api, wrong_secret(code, n)).json()["error"]["code"] == "payment_code_invalid"

    # then that merchant is refused on the wallet's codes, the right one included...
    locked = pay(api, code)
    assert (locked.status_code, locked.json()["error"]["code"]) == (429, "payment_code_locked")
    assert 0 < int(locked["Retry-After"]) <= settings.PAYMENT_CODE_LOCKOUT_SECONDS
    # ...while the code still pays at another shop, and the beneficiary creates new codes
    assert pay(MerchantClient(make_merchant()), code).json()["status"] == "approved"
    assert payment_code_create(wallet=beneficiary.wallet)[0].status == PaymentCode.Status.ACTIVE
