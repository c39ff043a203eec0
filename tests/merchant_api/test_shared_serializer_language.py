"""A serializer shared by every request of a process (merchant_api.base.shared) answers each
caller in the caller's language: DRF's bound messages keep the first text they render."""

import pytest
from django.utils import translation
from rest_framework.exceptions import ValidationError

from merchant_api.authorizations import AuthorizationInput
from merchant_api.base import METADATA_VALUE_LENGTH, validated

BODY = {"amount": 1250, "currency": "EUR", "payment_code": "1" * 33}


def _message(language: str, body: dict) -> str:
    with translation.override(language), pytest.raises(ValidationError) as refused:
        validated(AuthorizationInput, body)
    field, details = next(iter(refused.value.detail.items()))
    while isinstance(details, dict):  # a nested field's errors, by key
        details = next(iter(details.values()))
    return f"{field}: {details[0]}"


def test_a_bound_is_told_in_each_callers_language_whoever_asked_first():
    french = _message("fr", BODY)
    english = _message("en", BODY)
    assert french == "payment_code: Assurez-vous que ce champ comporte au plus 32\xa0caractères."
    assert english == "payment_code: Ensure this field has no more than 32 characters."
    assert _message("fr", BODY) == french


def test_a_nested_fields_bound_too():
    # The metadata's values are the DictField's child, shared with it.
    body = {**BODY, "payment_code": "123", "metadata": {"k": "v" * (METADATA_VALUE_LENGTH + 1)}}
    french, english = _message("fr", body), _message("en", body)
    assert "Assurez-vous" in french and "Ensure this field" in english
