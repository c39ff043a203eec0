"""merchant_api.authorizations.authorization_answer: the authorization's answer written
without DRF's walk over the fields is AuthorizationOutput's, key for key and in its order,
for every kind of authorization, live or sandbox, just decided or read back."""

import uuid

import pytest

from merchant_api.authorizations import AuthorizationOutput, authorization_answer
from merchant_api.base import represented
from merchants.selectors import authorization_just_recorded, authorization_list
from wallet.models import Decision

pytestmark = pytest.mark.django_db(transaction=True)


def pay(client, code, amount, **extra):
    body = {"amount": amount, "currency": "EUR", "payment_code": code, **extra}
    response = client.send("/authorizations", body, key=str(uuid.uuid4()))
    assert response.status_code == 201, response.content
    return response.json()


def test_every_kind_of_authorization_is_answered_as_the_serializer_answers_it(
    api, sandbox, payment_code
):
    answers = [
        pay(api, payment_code(), 100, merchant_reference="ticket-1", metadata={"till": "2"}),
        pay(api, payment_code(), 1_000_000),  # declined
        pay(api, payment_code(), 9_950, partial_approval_allowed=True),  # partially approved
        pay(
            api,
            payment_code(),
            1_500,
            partial_approval_allowed=True,
            lines=[{"amount": 1_000, "category": "food"}, {"amount": 500, "category": "tobacco"}],
        ),
        pay(sandbox, "0000 000 001", 1_250),
        pay(sandbox, "0000 000 006", 1_250),
    ]
    captured = answers[0]["id"]
    assert api.send(f"/authorizations/{captured}/capture", {}).status_code == 201
    statuses = {answer["status"] for answer in answers}
    assert statuses == {"approved", "declined", "partially_approved"}

    decisions = [
        *authorization_list(merchant=api.merchant, livemode=True),
        *authorization_list(merchant=api.merchant, livemode=False),
    ]
    assert len(decisions) == len(answers)
    for decision in decisions:
        expected = represented(AuthorizationOutput, decision)
        assert list(authorization_answer(decision).items()) == list(expected.items())
        if decision.livemode and decision.reference != captured:
            fresh = authorization_just_recorded(Decision.objects.get(pk=decision.pk))
            assert list(authorization_answer(fresh).items()) == list(expected.items())
    # and each POST's answer is the one read back (the first has been captured since)
    read = {d.reference: represented(AuthorizationOutput, d) for d in decisions}
    for answer in answers[1:]:
        assert answer == read[answer["id"]]
