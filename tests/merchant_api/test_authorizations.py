import json

import pytest
from rest_framework.test import APIClient

from ledger.models import Transfer
from merchants.services import api_key_create, api_key_revoke
from tests.factories import (
    BeneficiaryFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
)
from wallet.models import Decision
from wallet.models.payment_codes import PaymentCode

pytestmark = pytest.mark.django_db

URL = "/api/merchant/v1/authorizations"


@pytest.fixture
def key(merchant):
    return api_key_create(merchant=merchant, name="till 1")


@pytest.fixture
def client(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key[1]}")
    return client


@pytest.fixture
def wallet():
    beneficiary = BeneficiaryFactory()
    program = make_program(rules={"categories": {"allow_groups": ["food"]}})
    make_allocation(program=program, beneficiary=beneficiary, amount=10_000)
    return beneficiary.wallet


def post(client, body, key="idem-1"):
    return client.post(
        URL, data=json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
    )


def test_an_authorization_is_approved(client, wallet):
    response = post(
        client, {"amount": 1250, "currency": "EUR", "payment_code": make_payment_code(wallet)}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "approved"
    assert body["approved_amount"] == 1250
    assert body["id"].startswith("auth_")
    assert body["decline"] is None


def test_a_decline_says_why_without_private_details(client, wallet, merchant):
    response = post(
        client, {"amount": 20_000, "currency": "EUR", "payment_code": make_payment_code(wallet)}
    )
    body = response.json()
    assert body["status"] == "declined"
    assert body["decline"]["code"] == "insufficient_funds"
    assert "10" not in body["decline"]["message"]  # no balance revealed


def test_a_replay_returns_the_same_body_and_moves_nothing(client, wallet):
    body = {"amount": 1250, "currency": "EUR", "payment_code": make_payment_code(wallet)}
    first = post(client, body)
    holds = Transfer.objects.filter(is_pending=True).count()
    second = post(client, body)
    assert second.content == first.content
    assert Transfer.objects.filter(is_pending=True).count() == holds


def test_the_same_key_with_another_body_is_a_conflict(client, wallet):
    post(client, {"amount": 1250, "currency": "EUR", "payment_code": make_payment_code(wallet)})
    response = post(
        client, {"amount": 1251, "currency": "EUR", "payment_code": make_payment_code(wallet)}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"amount": "1250", "currency": "EUR"}, "invalid_amount", "amount"),
        ({"amount": 12.5, "currency": "EUR"}, "invalid_amount", "amount"),
        ({"amount": True, "currency": "EUR"}, "invalid_amount", "amount"),
        ({"amount": None, "currency": "EUR"}, "invalid_amount", "amount"),
        ({"amount": 0, "currency": "EUR"}, "invalid_amount", "amount"),
        ({"amount": -100, "currency": "EUR"}, "invalid_amount", "amount"),
        ({"amount": 10**30, "currency": "EUR"}, "amount_too_large", "amount"),
        ({"amount": 100, "currency": "euro"}, "invalid_request", "currency"),
        ({"currency": "EUR"}, "invalid_request", "amount"),
    ],
)
def test_bad_input_is_a_400_with_a_code_and_moves_nothing(client, wallet, body, code, field):
    response = post(client, {**body, "payment_code": make_payment_code(wallet)})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"]
    assert not Decision.objects.exists()


def test_malformed_json_is_a_400(client):
    response = client.post(
        URL, data="{not json", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_a_card_reference_is_refused_with_a_400_that_says_why(client, wallet):
    code = make_payment_code(wallet)
    response = post(
        client, {"amount": 100, "currency": "EUR", "card": "card_bWTP5uYrZZcJLPD_MIxfr2tU"}
    )
    with_a_code = post(
        client, {"amount": 100, "currency": "EUR", "card": "card_x", "payment_code": code}, "k2"
    )

    for refused in (response, with_a_code):
        error = refused.json()["error"]
        assert (refused.status_code, error["code"], error["field"]) == (
            400, "card_not_accepted", "card",
        )  # fmt: skip
        assert "payment_code" in error["message"]
    assert not Decision.objects.exists()
    assert PaymentCode.objects.get().status == PaymentCode.Status.ACTIVE


@pytest.mark.parametrize("header", [None, "Bearer sk_live_wrong", "Basic abc", "Bearer a b"])
def test_without_a_valid_key_it_is_a_401(wallet, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = post(
        client, {"amount": 100, "currency": "EUR", "payment_code": make_payment_code(wallet)}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"authentication_required", "authentication_failed"}


def test_a_revoked_key_is_refused(client, key, wallet):
    api_key_revoke(key=key[0])
    response = post(
        client, {"amount": 100, "currency": "EUR", "payment_code": make_payment_code(wallet)}
    )
    assert response.status_code == 401


def test_a_merchant_reads_its_own_authorizations_only(client, wallet):
    created = post(
        client, {"amount": 100, "currency": "EUR", "payment_code": make_payment_code(wallet)}
    ).json()
    assert client.get(f"{URL}/{created['id']}").json()["id"] == created["id"]

    other = APIClient()
    other.credentials(
        HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=make_merchant(), name='x')[1]}"
    )
    response = other.get(f"{URL}/{created['id']}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
