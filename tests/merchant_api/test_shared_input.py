"""merchant_api.base.validated: one input serializer per process gives what a new serializer's
is_valid gave, data and errors alike, and nothing of one request leaks into the next."""

import pytest
from rest_framework.exceptions import ValidationError

from core.errors import DomainError
from merchant_api.authorizations import AuthorizationInput
from merchant_api.base import validated

GOOD = {"amount": 1250, "currency": "EUR", "payment_code": "1234 567 890"}
BAD = [
    {},
    {**GOOD, "currency": "eur"},
    {**GOOD, "metadata": {"k" * 41: "v"}},
    {**GOOD, "lines": []},
    {**GOOD, "lines": [{"amount": 1250, "category": "nothing"}]},
    {**GOOD, "lines": [{"amount": 1000, "category": "food"}]},
    {**GOOD, "amount": "12"},
    {**GOOD, "card": "crd_1"},
    [],
]


def _fresh(body):
    serializer = AuthorizationInput(data=body)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _shared(body):
    return validated(AuthorizationInput, body)


def _outcome(check, body):
    try:
        return ("valid", dict(check(body)))
    except ValidationError as exc:
        return ("invalid", exc.detail)
    except DomainError as exc:
        return ("refused", exc.code, exc.field)


@pytest.mark.parametrize("body", [GOOD, {**GOOD, "metadata": {"till": "2"}}, *BAD])
def test_the_shared_input_answers_as_a_new_one(body):
    assert _outcome(_shared, body) == _outcome(_fresh, body)


def test_defaults_are_not_shared_between_requests():
    first = validated(AuthorizationInput, GOOD)
    first["metadata"]["till"] = "2"
    assert validated(AuthorizationInput, GOOD)["metadata"] == {}
