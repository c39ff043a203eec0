import json
import uuid

import pytest
from rest_framework.test import APIClient

from merchants.services import api_key_create
from tests.factories import BeneficiaryFactory, make_allocation, make_payment_code, make_program

API = "/api/merchant/v1"
FOOD_IN_ISERE = {"categories": {"allow_groups": ["food"]}, "zone": {"departements": ["38"]}}


class MerchantClient(APIClient):
    """An API client authenticated as one merchant, speaking JSON."""

    def __init__(self, merchant, *, mode: str = "live", **kwargs):
        super().__init__(**kwargs)
        self.merchant = merchant
        secret = api_key_create(merchant=merchant, name="t", mode=mode)[1]
        self.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    def send(self, path: str, body: dict | None = None, *, key: str | None = None):
        """POSTs `body` with the Idempotency-Key `key`, a fresh one when none is given."""
        return self.post(
            f"{API}{path}",
            data=json.dumps(body or {}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()),
        )

    def read(self, path: str, **params):
        return self.get(f"{API}{path}", params)


@pytest.fixture
def api(merchant):
    return MerchantClient(merchant)


@pytest.fixture
def sandbox(merchant):
    """The same merchant, through a test key (sk_test_)."""
    return MerchantClient(merchant, mode="test")


@pytest.fixture
def beneficiary(db):
    return BeneficiaryFactory()


@pytest.fixture
def food_pocket(beneficiary):
    program = make_program(rules=FOOD_IN_ISERE)
    return make_allocation(program=program, beneficiary=beneficiary, amount=10_000).pocket


@pytest.fixture
def payment_code(beneficiary, food_pocket):
    """Makes a fresh one-time code of the beneficiary's wallet at each call, as the app does."""
    return lambda **fields: make_payment_code(beneficiary.wallet, **fields)


@pytest.fixture
def authorize(api, payment_code):
    """POST /authorizations for `amount` with a fresh payment code of the beneficiary's wallet;
    returns the JSON body."""

    def call(amount: int, **extra):
        response = api.send(
            "/authorizations",
            {"amount": amount, "currency": "EUR", "payment_code": payment_code(), **extra},
        )
        assert response.status_code == 201, response.content
        return response.json()

    return call
