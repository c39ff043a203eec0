"""Money: amounts are integers of minor units with an ISO 4217 currency, never floats. The
limits of an amount, reading one typed in euros, and writing one as people read it."""

import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.formats import number_format
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from core.errors import (
    AmountTooLarge,
    InvalidAmount,
)

MAX_AMOUNT = 10**12  # ten billion euros in cents: anything larger is a client bug, not a payment
# What a cashier may type at the till (shop/): 100,000 €. Far above any basket paid in part with
# aid, far below what a slipped finger types (99,999,999 €), which MAX_AMOUNT lets through to a
# decision, a refusal and the person's "payment refused" message.
MAX_TILL_AMOUNT = 10**7


def validate_amount(amount: object, *, field: str = "amount") -> int:
    # bool is an int subclass: True must not pass as one cent.
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidAmount(field=field)
    if amount > MAX_AMOUNT:
        raise AmountTooLarge(field=field)
    return amount


MINOR_UNIT_EXPONENTS = {"XPF": 0, "JPY": 0, "KRW": 0}  # ISO 4217; 2 for every other currency


_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


def format_money(amount: int, currency: str) -> str:
    """Minor units as people write them: "25,00 €" in French, "€25.00" in English.

    Integer arithmetic only. French uses a narrow no-break space between thousands and a
    no-break space before the symbol, so that "25,00 €" never breaks across two lines."""
    exponent = MINOR_UNIT_EXPONENTS.get(currency, 2)
    units, minor = divmod(abs(amount), 10**exponent)
    sign = "-" if amount < 0 else ""
    french = (get_language() or "").startswith("fr")
    number = f"{units:,}".replace(",", "\u202f" if french else ",")
    if exponent:
        number += ("," if french else ".") + f"{minor:0{exponent}d}"
    symbol = _SYMBOLS.get(currency)
    if french:
        return f"{sign}{number}\u00a0{symbol or currency}"
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{currency}\u00a0{number}"


# Spaces people (and French number formatting) put between thousands: "1 234,50".
_SPACES = re.compile(r"[\s\u00a0\u202f]")


_EURO_TEXT = re.compile(r"-?\d+(?:[.,]\d+)?")


def euros_to_cents(text: str) -> int:
    """ "12,50", "12.50", "1 234,50 €" -> cents. ValidationError (code invalid_amount,
    too_many_decimals, not_positive or too_large) for anything else: a third decimal is refused,
    not rounded, and "1.234,50" is refused rather than guessed."""
    compact = _SPACES.sub("", str(text)).removesuffix("€")
    if not _EURO_TEXT.fullmatch(compact):
        raise ValidationError(_("Write an amount in euros, like 12,50."), code="invalid_amount")
    value = Decimal(compact.replace(",", "."))
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # digits only (the pattern): no NaN ('n') nor Infinity ('F')
    if exponent < -2:
        raise ValidationError(
            _("Write at most 2 digits after the decimal comma (cents)."),
            code="too_many_decimals",
        )
    if value <= 0:
        raise ValidationError(_("The amount must be more than 0 €."), code="not_positive")
    cents = int(value.scaleb(2))
    if cents > MAX_AMOUNT:
        raise ValidationError(_("This amount is too large."), code="too_large")
    return cents


def cents_to_euros_text(cents: int) -> str:
    """Cents as staff type them, in the active language: 1250 -> "12,50" in French."""
    return number_format(Decimal(cents).scaleb(-2), decimal_pos=2)
