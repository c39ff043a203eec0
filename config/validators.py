"""Validators for French identifiers and codes shared by several apps."""

import iso18245
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def validate_siret(value: str) -> None:
    """A SIRET is 14 digits passing the Luhn check; La Poste's establishments (SIREN 356000000)
    are the documented exception, numbered so that their digit sum is a multiple of 5."""
    if not (len(value) == 14 and value.isdigit()):
        raise ValidationError(_("A SIRET number has exactly 14 digits."), code="invalid_siret")
    if value.startswith("356000000"):
        valid = sum(int(c) for c in value) % 5 == 0
    else:
        valid = _luhn_ok(value)
    if not valid:
        raise ValidationError(
            _("This SIRET number is not valid: please check its digits."), code="invalid_siret"
        )


def validate_mcc(value: str) -> None:
    try:
        iso18245.get_mcc(value)
    except (iso18245.MCCNotFound, ValueError) as exc:
        raise ValidationError(
            _("%(value)s is not a known merchant category code."),
            code="invalid_mcc",
            params={"value": value},
        ) from exc


validate_currency = RegexValidator(
    r"^[A-Z]{3}$", _("Use a three-letter ISO 4217 currency code, such as EUR."), "invalid_currency"
)
validate_insee_commune = RegexValidator(
    r"^(\d{5}|2[AB]\d{3})$",
    _("An INSEE commune code has 5 characters, such as 38185 or 2A004."),
    "invalid_commune",
)
validate_french_postcode = RegexValidator(
    r"^\d{5}$", _("A French postcode has 5 digits."), "invalid_postcode"
)
