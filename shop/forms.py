"""The till's forms. Each field is checked by the validators of the model or service it feeds
(the merchant's own field validators, core.money for amounts): no rule is written twice."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.errors import PaymentCodeMalformed
from core.money import MAX_TILL_AMOUNT, euros_to_cents, format_money
from core.validators import email_canonical, validate_siret
from merchants.models import ApiKey, Merchant
from merchants.validators import validate_network_id, validate_terminal_id, validate_webhook_url
from wallet.payment_codes import payment_code_normalize

_EMAIL = {"autocomplete": "email", "inputmode": "email"}


class EurosField(forms.CharField):
    """An amount typed in euros ("12,50"), kept in cents."""

    def __init__(self, **kwargs):
        attrs = {"inputmode": "decimal", "autocomplete": "off", "maxlength": "20"}
        kwargs.setdefault("widget", forms.TextInput(attrs=attrs))
        super().__init__(**kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        if len(value) > 20:
            raise ValidationError(_("This amount is too large."), code="too_large")
        return euros_to_cents(value) if value else None


class TillEurosField(EurosField):
    """An amount of a new payment at the till: at most MAX_TILL_AMOUNT, refused in the form,
    before any decision is asked for. A capture or refund needs no such bound: the payment it
    acts on bounds it."""

    def validate(self, value):
        super().validate(value)
        if value is not None and value > MAX_TILL_AMOUNT:
            raise ValidationError(
                _("A payment at the till is at most %(max)s."),
                code="too_large_for_till",
                params={"max": format_money(MAX_TILL_AMOUNT, "EUR")},
            )


class SignInForm(forms.Form):
    email = forms.CharField(
        label=_("E-mail address"), max_length=254, widget=forms.EmailInput(_EMAIL)
    )
    password = forms.CharField(
        label=_("Password"), widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class CodeForm(forms.Form):
    code = forms.RegexField(
        label=_("The 6-digit code from your authenticator app"),
        regex=r"^\s*\d{3}\s?\d{3}\s*$",
        error_messages={"invalid": _("Type the 6 digits your app shows.")},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )


class SiretForm(forms.Form):
    siret = forms.CharField(
        label=_("Your shop's SIRET number (14 digits)"),
        help_text=_("It is on your Kbis extract and on your invoices."),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )

    def clean_siret(self):
        siret = self.cleaned_data["siret"].replace(" ", "")
        validate_siret(siret)
        if Merchant.objects.filter(siret=siret).exists():
            raise ValidationError(
                _("A shop with this SIRET is already registered. Ask its owner to invite you.")
            )
        return siret


class PasswordFields(forms.Form):
    password = forms.CharField(
        label=_("Choose a password"),
        help_text=_("At least 8 characters, not only digits, not a common password."),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password_again = forms.CharField(
        label=_("The same password again"),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", _("The two passwords are not the same."))
        return data


class ShopDetailsForm(forms.ModelForm, PasswordFields):
    """A shop registering: what the register said (or what it typed), its bank details, its
    card terminal if it has one, and its owner's account."""

    network_id = forms.CharField(
        label=_("Merchant id on the card network (optional)"),
        help_text=_("If you have a card terminal: the merchant id your bank gave you."),
        required=False,
        max_length=35,
        validators=[validate_network_id],
    )
    terminal_id = forms.CharField(
        label=_("Terminal id (optional)"),
        required=False,
        max_length=16,
        validators=[validate_terminal_id],
    )
    owner_email = forms.CharField(
        label=_("Your e-mail address"),
        help_text=_("You will sign in with it. We write to you there when your shop is approved."),
        max_length=254,
        widget=forms.EmailInput(_EMAIL),
    )

    class Meta:
        model = Merchant
        fields = [
            "siret",
            "legal_name",
            "trade_name",
            "mcc",
            "address",
            "postcode",
            "city",
            "commune_code",
            "iban",
            "bic",
        ]
        labels = {
            "mcc": _("Merchant category code (MCC)"),
            "commune_code": _("Commune code (INSEE)"),
            "iban": _("IBAN of the account we pay you on"),
            "bic": _("BIC of your bank"),
        }
        help_texts = {"mcc": _("4 digits. We suggest one from your activity: check it.")}
        widgets = {"siret": forms.HiddenInput()}

    field_order = [
        "legal_name",
        "trade_name",
        "address",
        "postcode",
        "city",
        "commune_code",
        "mcc",
        "iban",
        "bic",
        "network_id",
        "terminal_id",
        "owner_email",
        "password",
        "password_again",
    ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["iban"].required = True
        for name in ("postcode", "commune_code", "mcc"):
            self.fields[name].widget.attrs["inputmode"] = "numeric"

    def clean_owner_email(self):
        return email_canonical(self.cleaned_data["owner_email"])

    def clean_terminal_id(self):
        # A terminal id alone would be dropped: the card network names the shop by both.
        terminal_id = self.cleaned_data["terminal_id"]
        if terminal_id and not self.cleaned_data.get("network_id"):
            raise ValidationError(
                _("Give the merchant id on the card network with the terminal id."),
                code="terminal_without_network_id",
            )
        return terminal_id

    def card_acceptors(self) -> list[dict]:
        network_id = self.cleaned_data.get("network_id")
        if not network_id:
            return []
        return [{"network_id": network_id, "terminal_id": self.cleaned_data.get("terminal_id", "")}]

    def merchant_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class JoinTeamForm(PasswordFields):
    pass


BASKET_LINES = 3
# The product families as a cashier picks and reads them: names, without the article that
# engine.categories.PRODUCT_LABELS carries to read inside a sentence.
PRODUCT_NAMES = {
    "food": pgettext_lazy("till product family", "Food"),
    "alcohol": pgettext_lazy("till product family", "Alcohol"),
    "tobacco": pgettext_lazy("till product family", "Tobacco"),
    "hygiene": pgettext_lazy("till product family", "Hygiene products"),
    "school_supplies": pgettext_lazy("till product family", "School supplies"),
    "transport": pgettext_lazy("till product family", "Transport"),
    "other": pgettext_lazy("till product family", "Other products"),
}
_FAMILY_CHOICES = [("", "—"), *PRODUCT_NAMES.items()]


class PaymentForm(forms.Form):
    amount = TillEurosField(label=_("Amount (€)"))
    code = forms.CharField(
        label=_("Customer's payment code (10 digits)"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    # Drawn when the form is shown: a second tap, or a retry after a lost answer, replays the
    # first payment instead of taking a new one.
    attempt = forms.UUIDField(widget=forms.HiddenInput())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The basket by product family (optional): a food aid then pays the food, never the
        # tobacco in the same basket; the rest is collected another way.
        for number in range(1, BASKET_LINES + 1):
            self.fields[f"line{number}_family"] = forms.ChoiceField(
                label=_("Products %(number)s") % {"number": number},
                choices=_FAMILY_CHOICES,
                required=False,
            )
            self.fields[f"line{number}_amount"] = TillEurosField(
                label=_("Amount of products %(number)s (€)") % {"number": number},
                required=False,
            )

    def main_fields(self):
        return [self[name] for name in ("amount", "code")]

    def line_fields(self):
        return [self[name] for name in self.fields if name.startswith("line")]

    def clean_code(self):
        try:
            return payment_code_normalize(self.cleaned_data["code"])
        except PaymentCodeMalformed as exc:
            raise ValidationError(exc.message) from exc

    def clean(self):
        cleaned = super().clean()
        lines = []
        for number in range(1, BASKET_LINES + 1):
            family = cleaned.get(f"line{number}_family")
            amount = cleaned.get(f"line{number}_amount")
            if f"line{number}_amount" in self.errors:
                continue  # an amount refused already says what is wrong with the line
            if bool(family) != bool(amount):
                self.add_error(
                    f"line{number}_amount" if family else f"line{number}_family",
                    _("Give both the products and their amount, or neither."),
                )
            elif family:
                lines.append({"amount": amount, "category": family})
        total = cleaned.get("amount")
        if lines and total is not None and sum(line["amount"] for line in lines) != total:
            raise ValidationError(_("The amounts of the products must add up to the amount."))
        cleaned["lines"] = lines or None
        return cleaned


class OperationForm(forms.Form):
    """Capture, reversal or refund of a payment: how much (all when empty, where allowed)."""

    amount = EurosField(label=_("Amount (€)"), required=False)
    attempt = forms.UUIDField(widget=forms.HiddenInput())


class InviteForm(forms.Form):
    email = forms.CharField(
        label=_("Cashier's e-mail address"), max_length=254, widget=forms.EmailInput(_EMAIL)
    )


class TillSettingsForm(forms.Form):
    capture_later = forms.BooleanField(
        label=_("Two steps: confirm (capture) each payment later"),
        help_text=_("Leave unticked to take the money as soon as the payment is approved."),
        required=False,
    )


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=_("Name of the key"), max_length=100)
    mode = forms.ChoiceField(label=_("Mode"), choices=ApiKey.Mode.choices)


class WebhookForm(forms.Form):
    url = forms.URLField(
        label=_("Address (https) that receives the events"),
        max_length=500,
        validators=[validate_webhook_url],
        assume_scheme="https",
    )
