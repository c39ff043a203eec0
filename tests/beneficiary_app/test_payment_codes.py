import re

from django.db import transaction

from tests.beneficiary_app.conftest import error_code
from wallet.models.payment_codes import PaymentCode
from wallet.payment_codes import payment_code_redeem
from wallet.services import wallet_freeze


def test_a_payment_code_comes_as_digits_and_a_qr_code(api, beneficiary):
    response = api.send("/payment-codes")

    assert response.status_code == 201
    body = response.json()
    assert re.fullmatch(r"\d{4} \d{3} \d{3}", body["code"])
    assert body["qr_svg"].startswith("<svg")
    assert (body["max_amount"], body["currency"]) == (None, "EUR")
    code = PaymentCode.objects.get()
    assert code.wallet == beneficiary.wallet
    assert body["expires_at"]


def test_the_code_pays_once_at_a_merchant(api, beneficiary):
    code = api.send("/payment-codes", {"max_amount": 2000}).json()["code"]

    with transaction.atomic():
        used = payment_code_redeem(code=code, amount=1500, currency="EUR")

    assert used.wallet == beneficiary.wallet
    assert used.max_amount == 2000


def test_a_frozen_wallet_gets_no_code(api, beneficiary):
    wallet_freeze(wallet=beneficiary.wallet, reason="fraud check")

    response = api.send("/payment-codes")

    assert response.status_code == 409
    assert error_code(response) == "wallet_frozen"
    assert not PaymentCode.objects.exists()


def test_a_bad_maximum_is_refused(api):
    response = api.send("/payment-codes", {"max_amount": 0})

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "max_amount"
