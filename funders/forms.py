"""Form fields and forms of the back office that more than one page uses."""

import re
import secrets
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from funders.models import Program
from wallet.authorization.periods import PARIS
from wallet.ledger.services import MAX_AMOUNT

# --- euros -----------------------------------------------------------------------------------

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
    if value.as_tuple().exponent < -2:
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


class EuroField(forms.CharField):
    """An amount in euros, typed as text (so that "12,50" and "12.50" both work), cleaned to
    cents (an int), or None when left empty."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "size": 12}))
        super().__init__(**kwargs)

    def to_python(self, value):
        text = super().to_python(value)
        return euros_to_cents(text) if text else None

    def prepare_value(self, value):
        return cents_to_euros_text(value) if isinstance(value, int) else value


def start_of_day(day: date) -> datetime:
    """Midnight in Paris, where funders count their days."""
    return datetime.combine(day, time(0, 0), tzinfo=PARIS)


def end_of_day(day: date) -> datetime:
    """The first instant after `day` in Paris: validity ends are exclusive in the ledger, and
    people say "until the 31st" meaning the 31st included."""
    return start_of_day(day + timedelta(days=1))


class OneTimeTokenForm(forms.Form):
    """A form carrying a token drawn when it was shown: a second submission of the same form
    (a double click, the back button) reuses the idempotency keys of the first, and moves no
    money twice."""

    token = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("token", secrets.token_urlsafe(24))
        super().__init__(*args, **kwargs)


class GrantForm(OneTimeTokenForm):
    """Grant aid from a program to one or several beneficiaries."""

    program = forms.ModelChoiceField(queryset=Program.objects.none(), label=_("Aid program"))
    amount = EuroField(label=_("Amount in euros"))
    valid_from = forms.DateField(
        label=_("Valid from"), widget=forms.DateInput(attrs={"type": "date"})
    )
    valid_until = forms.DateField(
        label=_("Valid until (included)"),
        required=False,
        help_text=_("Last day the aid can be spent. Leave empty for no end."),
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args, programs, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("valid_from", date.today())
        super().__init__(*args, **kwargs)
        self.fields["program"].queryset = programs.filter(is_active=True)

    def clean(self):
        data = super().clean()
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and end < start:
            self.add_error("valid_until", _("The last day cannot come before the first."))
        return data

    def validity(self) -> tuple[datetime, datetime | None]:
        end = self.cleaned_data["valid_until"]
        return start_of_day(self.cleaned_data["valid_from"]), end and end_of_day(end)
