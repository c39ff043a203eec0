"""What the schema promises an integrator about requests: every POST needs an Idempotency-Key,
a retried application answers what the first did, and list parameters out of their documented
bounds are a 400 that names the parameter, never a silent reading."""

import json

import pytest
from rest_framework.test import APIClient

from merchants.models import Merchant
from tests.factories import siret
from tests.merchant_api.conftest import API
from wallet.models import Decision

pytestmark = pytest.mark.django_db


def test_a_post_without_an_idempotency_key_is_refused_and_moves_nothing(api, payment_code):
    body = {"amount": 500, "currency": "EUR", "payment_code": payment_code()}

    response = api.post(f"{API}/authorizations", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert response.json()["error"]["field"] == "Idempotency-Key"
    assert not Decision.objects.exists()


def test_a_refused_request_is_not_kept_and_its_corrected_retry_runs(api, payment_code):
    code = payment_code()
    refused = api.send(
        "/authorizations", {"amount": 0, "currency": "EUR", "payment_code": code}, key="k"
    )
    retried = api.send(
        "/authorizations", {"amount": 500, "currency": "EUR", "payment_code": code}, key="k"
    )

    assert refused.status_code == 400
    assert retried.status_code == 201


APPLICATION = {
    "siret": siret(77_001),
    "legal_name": "Boulangerie des Alpes SARL",
    "trade_name": "Boulangerie des Alpes",
    "mcc": "5462",
    "address": "2 place Grenette",
    "postcode": "38000",
    "city": "Grenoble",
}


def test_a_retried_application_answers_the_first_answer():
    client = APIClient()
    first = client.post(
        f"{API}/applications", APPLICATION, format="json", HTTP_IDEMPOTENCY_KEY="apply-1"
    )
    retry = client.post(
        f"{API}/applications", APPLICATION, format="json", HTTP_IDEMPOTENCY_KEY="apply-1"
    )
    other_key = client.post(
        f"{API}/applications", APPLICATION, format="json", HTTP_IDEMPOTENCY_KEY="apply-2"
    )

    assert first.status_code == retry.status_code == 201
    assert retry.content == first.content
    assert retry["Idempotent-Replayed"] == "true"
    assert Merchant.objects.filter(siret=APPLICATION["siret"]).count() == 1
    assert other_key.status_code == 400  # a new application for the same SIRET


def test_an_application_without_a_key_is_refused():
    response = APIClient().post(f"{API}/applications", APPLICATION, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert not Merchant.objects.filter(siret=APPLICATION["siret"]).exists()


@pytest.mark.parametrize("path", ["/authorizations", "/captures", "/refunds", "/reversals"])
@pytest.mark.parametrize(
    "params, field",
    [
        ({"created_gte": "2026-11-22T09:00:00"}, "created_gte"),
        ({"created_lt": "2026-11-22"}, "created_lt"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"created_after": "2026-11-22T09:00:00Z"}, "created_after"),  # not a filter of theirs
        ({"": "x"}, None),
    ],
)
def test_a_list_parameter_out_of_its_bounds_is_a_400_naming_it(api, path, params, field):
    response = api.read(path, **params)

    assert response.status_code == 400, response.content
    assert response.json()["error"] == {
        "code": "invalid_request",
        "message": response.json()["error"]["message"],
        "field": field,
    }


def test_the_settlement_list_checks_its_paging_too(api):
    assert api.read("/settlements", limit="500").status_code == 400
    assert api.read("/settlements", cursor="x").status_code == 400


def test_the_documented_bounds_and_offsets_are_accepted(api, authorize):
    authorize(300)
    authorize(400)

    first = api.read("/authorizations", limit="1", created_gte="2000-01-01T00:00:00Z")
    second = api.get(first.json()["next"])
    offset = api.read("/authorizations", limit="100", created_lt="2999-01-01T00:00:00+01:00")

    assert first.status_code == second.status_code == offset.status_code == 200
    assert len(first.json()["results"]) == len(second.json()["results"]) == 1
    assert len(offset.json()["results"]) == 2
    assert json.loads(second.content)["results"][0]["id"] != first.json()["results"][0]["id"]
