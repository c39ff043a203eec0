"""merchant_api.authorizations.authorization_input: a plain payment's body read without DRF's
fields gives exactly the serializer's validated data; any body it is not sure of goes to the
serializer, whose errors stay the API's."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from core.errors import DomainError
from core.money import MAX_AMOUNT
from merchant_api.authorizations import AuthorizationInput, _plain, authorization_input

GOOD = {"amount": 1250, "currency": "EUR", "payment_code": "1234 567 890"}
FULL = {
    **GOOD,
    "partial_approval_allowed": True,
    "capture": False,
    "merchant_reference": "  ticket-42 ",
    "metadata": {"till": " 2", "k" * 40: "v" * 500, "": ""},
}


def _serializer(body):
    serializer = AuthorizationInput(data=body)
    try:
        serializer.is_valid(raise_exception=True)
    except ValidationError as exc:
        return ("invalid", exc.detail)
    except DomainError as exc:
        return ("refused", exc.code, exc.field)
    return ("valid", dict(serializer.validated_data))


def _ours(body):
    try:
        return ("valid", authorization_input(body))
    except ValidationError as exc:
        return ("invalid", exc.detail)
    except DomainError as exc:
        return ("refused", exc.code, exc.field)


@pytest.mark.parametrize("body", [GOOD, FULL, {**GOOD, "amount": MAX_AMOUNT, "metadata": {}}])
def test_a_plain_body_is_read_without_the_serializer_as_the_serializer_reads_it(body):
    assert _plain(body) is not None
    assert _ours(body) == _serializer(body)


@pytest.mark.parametrize(
    "body",
    [
        {**GOOD, "amount": True},
        {**GOOD, "amount": 12.0},
        {**GOOD, "amount": MAX_AMOUNT + 1},
        {**GOOD, "amount": 0},
        {**GOOD, "currency": " EUR"},
        {**GOOD, "currency": "eur"},
        {**GOOD, "currency": "ÉUR"},
        {**GOOD, "payment_code": "   "},
        {**GOOD, "payment_code": 1234567890},
        {**GOOD, "payment_code": "1" * 33},
        {**GOOD, "payment_code": "12\x0034"},
        {**GOOD, "payment_code": "١٢٣٤ ٥٦٧ ٨٩٠"},
        {**GOOD, "capture": "true"},
        {**GOOD, "partial_approval_allowed": None},
        {**GOOD, "merchant_reference": None},
        {**GOOD, "merchant_reference": "r" * 201},
        {**GOOD, "merchant_reference": "café"},
        {**GOOD, "metadata": None},
        {**GOOD, "metadata": []},
        {**GOOD, "metadata": {"k": 1}},
        {**GOOD, "metadata": {"k" * 41: "v"}},
        {**GOOD, "metadata": {str(i): "v" for i in range(21)}},
        {**GOOD, "lines": [{"amount": 1250, "category": "food"}]},
        {**GOOD, "card": "crd_1"},
        {**GOOD, "unknown": 1},
        {"currency": "EUR", "payment_code": "1"},
        [],
        "body",
    ],
)
def test_anything_else_goes_to_the_serializer(body):
    assert _plain(body) is None
    assert _ours(body) == _serializer(body)


_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from(" \t\n\x00\x1fAZaz09é"), max_size=40),
    st.sampled_from(["EUR", "USD", "eur", "", "   ", "1234 567 890", "1" * 32, "1" * 33]),
)
_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-2, MAX_AMOUNT + 2), st.floats(allow_nan=False), _TEXT,
    st.dictionaries(_TEXT, st.one_of(_TEXT, st.integers(), st.none()), max_size=22),
    st.lists(st.integers(), max_size=2),
)  # fmt: skip
_FIELDS = st.sampled_from(
    ["amount", "currency", "payment_code", "partial_approval_allowed", "capture",
     "merchant_reference", "metadata", "lines", "card", "other"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    changes=st.dictionaries(_FIELDS, _VALUE, max_size=4),
    dropped=st.sets(st.sampled_from(["amount", "currency", "payment_code"])),
)
def test_any_body_is_read_as_the_serializer_reads_it(changes, dropped):
    body = {key: value for key, value in {**GOOD, **changes}.items() if key not in dropped}
    assert _ours(body) == _serializer(body)
