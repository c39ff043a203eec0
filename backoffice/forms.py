"""Form fields and forms of the back office that more than one page uses."""

import secrets
from datetime import datetime

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.money import cents_to_euros_text, euros_to_cents
from core.time import end_of_day, start_of_day
from funders.models import Program

# --- dates and times ----------------------------------------------------------------------------


class AccessibleSplitDateTime(AdminSplitDateTime):
    """The admin's date and time boxes, each named for screen readers: the admin writes "Date:"
    and "Time:" next to them as plain text, not as their labels (WCAG 2.1, 1.3.1 and 4.1.2)."""

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        labels = (context["date_label"], context["time_label"])
        for subwidget, label in zip(context["widget"]["subwidgets"], labels, strict=True):
            subwidget["attrs"]["aria-label"] = str(label).rstrip(" :\u00a0")
        return context


# --- euros -----------------------------------------------------------------------------------


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


class OneTimeTokenForm(forms.Form):
    """A form carrying a token drawn when it was shown: a second submission of the same form
    (a double click, the back button) reuses the idempotency keys of the first, and moves no
    money twice."""

    token = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("token", secrets.token_urlsafe(24))
        super().__init__(*args, **kwargs)


class ProgramSelect(forms.Select):
    """The programs, each option carrying the program's default validity: the page's script
    fills the dates in when a program is chosen (backoffice/static/backoffice/grant.js)."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        program = getattr(value, "instance", None)
        if program is not None:
            start, end = program.default_validity()
            option["attrs"]["data-valid-from"] = start.isoformat()
            option["attrs"]["data-valid-until"] = end.isoformat() if end else ""
        return option


class GrantForm(OneTimeTokenForm):
    """Grant aid from a program to one or several beneficiaries."""

    program = forms.ModelChoiceField(
        queryset=Program.objects.none(), label=_("Aid program"), widget=ProgramSelect
    )
    amount = EuroField(label=_("Amount in euros"))
    valid_from = forms.DateField(
        label=_("Valid from"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    valid_until = forms.DateField(
        label=_("Valid until (included)"),
        required=False,
        help_text=_("Last day the aid can be spent. Leave empty for no end."),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    grant_again = forms.BooleanField(
        label=_("Grant it again to the people who already hold this aid"),
        required=False,
        help_text=_("Left unticked, they are skipped."),
    )
    # Set once the page has shown its warnings (people already holding the aid, no shop
    # accepting it): the next submission grants.
    warned = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, programs, **kwargs):
        programs = programs.filter(is_active=True)
        initial = kwargs.setdefault("initial", {})
        initial.setdefault("valid_from", timezone.localdate())
        # One program to choose from: its default validity is there from the start.
        if len(only := list(programs[:2])) == 1:
            start, end = only[0].default_validity()
            initial.setdefault("program", only[0].pk)
            initial.update(valid_from=start, valid_until=end)
        super().__init__(*args, **kwargs)
        self.fields["program"].queryset = programs

    def clean(self):
        data = super().clean()
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and end < start:
            self.add_error("valid_until", _("The last day cannot come before the first."))
        return data

    def validity(self) -> tuple[datetime, datetime | None]:
        end = self.cleaned_data["valid_until"]
        return start_of_day(self.cleaned_data["valid_from"]), end and end_of_day(end)
