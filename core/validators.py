"""Validators for French identifiers and codes shared by several apps, and the one canonical
form of an email address."""

import unicodedata

import idna
import iso18245
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, validate_email
from django.utils.translation import gettext_lazy as _
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

# RFC 5321's limit on a path: a longer address cannot be delivered.
EMAIL_MAX_LENGTH = 254
NON_ASCII_EMAIL_MESSAGE = _(
    "The part of an email address before the @ can only have letters without accents, digits "
    "and signs such as . - _ +: check it."
)


def email_canonical(value: str) -> str:
    """The form in which an email address is stored and compared, with "=" only:
    "Marie.Dupont@Bücher.DE" is "marie.dupont@xn--bcher-kva.de".

    The part after the @ names a domain: NFKC, then IDNA 2008 (UTS 46, which also folds its
    case, but keeps "ß": casefold() would turn "straße.de" into another domain, "strasse.de"),
    written in punycode. The part before the @ is the receiving server's to interpret, so it
    must be ASCII as typed: mapping a look-alike (the long s U+017F, the dotless i U+0131) to a
    plain letter would call two mailboxes one; it is then folded to lower case, as every provider
    does. ValidationError (code non_ascii_email or invalid_email) when that is not possible.
    The result is ASCII, and canonical again: email_canonical(email_canonical(x)) is itself."""
    text = value.strip()
    local, at, domain = text.rpartition("@")
    invalid = ValidationError(_("Enter a valid email address."), code="invalid_email")
    if not (local and at and domain):
        raise invalid
    if not local.isascii():
        raise ValidationError(NON_ASCII_EMAIL_MESSAGE, code="non_ascii_email")
    try:
        domain = idna.encode(unicodedata.normalize("NFKC", domain), uts46=True).decode("ascii")
    except (UnicodeError, ValueError) as exc:  # idna.IDNAError is a UnicodeError
        raise invalid from exc
    address = f"{local.lower()}@{domain.lower()}"
    if len(address) > EMAIL_MAX_LENGTH:
        raise invalid
    try:
        validate_email(address)
    except ValidationError as exc:
        raise invalid from exc
    return address


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


def validate_iban(value: str) -> None:
    try:
        iban = IBAN(value)
    except SchwiftyException as error:
        raise ValidationError(
            _("This IBAN is not valid (%(reason)s). Check it against the bank details (RIB)."),
            code="invalid_iban",
            params={"reason": error},
        ) from error
    if not iban.in_sepa_zone:
        raise ValidationError(
            _("This IBAN is outside the SEPA area: we can only pay accounts in the SEPA area."),
            code="iban_outside_sepa",
        )


def validate_bic(value: str) -> None:
    try:
        BIC(value)
    except SchwiftyException as error:
        raise ValidationError(
            _("This BIC is not valid (%(reason)s). It has 8 or 11 letters and digits."),
            code="invalid_bic",
            params={"reason": error},
        ) from error
