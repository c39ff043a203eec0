"""Form fields and forms of the back office that more than one page uses."""

import re
import secrets
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from funders.models import Program
from wallet.authorization.periods import PARIS

_NUMBER = re.compile(r"\d{1,13}(\.\d+)?")  # digits only: no sign, exponent, NaN or Infinity
_CENTS = re.compile(r"\d{1,13}(\.\d{1,2})?")


class EuroAmountField(forms.CharField):
    """An amount typed in euros ("50", "12,50", "1 234.5"), cleaned to integer cents. Parsed as a
    Decimal, never a float, and refused beyond two decimals rather than rounded."""

    def __init__(self, *, allow_zero: bool = False, **kwargs):
        self.allow_zero = allow_zero
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "size": 10}))
        super().__init__(**kwargs)

    def to_python(self, value) -> int | None:
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        text = re.sub(r"[\s€\u202f\u00a0]", "", value).replace(",", ".")
        if text.startswith("-") and _NUMBER.fullmatch(text[1:]):
            raise ValidationError(_("The amount must be more than zero."), code="not_positive")
        if not _NUMBER.fullmatch(text):
            raise ValidationError(
                _("Type an amount in euros, for example 50 or 12,50."), code="invalid"
            )
        if not _CENTS.fullmatch(text):
            raise ValidationError(_("Give at most two decimals (cents)."), code="too_precise")
        cents = int(Decimal(text) * 100)
        if cents == 0 and not self.allow_zero:
            raise ValidationError(_("The amount must be more than zero."), code="not_positive")
        if cents > 10**12:
            raise ValidationError(_("This amount is too large."), code="too_large")
        return cents

    def prepare_value(self, value):
        # The form shows back cents as euros ("1250" → "12.50") when it is redrawn.
        if isinstance(value, int):
            return f"{Decimal(value) / 100:.2f}"
        return value


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
    amount = EuroAmountField(label=_("Amount in euros"))
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
