"""The rules of aid as a form that funder staff fill in, read from and written to the rules JSON
documented in engine/rules.py.

Each form field knows where its value lives in the document (`RulesForm.PLACES`), how to show a
document's value as text (`prepare_value`) and how to turn what was typed back into the
document's value (`clean`), so a field's initial value is the document's value itself. The form
leaves out every empty setting and every empty section, then has the authorization engine
validate the result: it never accepts a document the engine would refuse. Euro amounts are
parsed with Decimal and stored as cents, exactly."""

import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.dates import WEEKDAYS
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from backoffice.forms import EuroField
from engine import categories, geo
from engine.rules import PocketRules, RulesError
from merchants.models import Merchant

# --- fields that speak the rules document ------------------------------------------------------

# A hyphen or the en dash that word processors put between times, with any spaces around it.
_DASH = re.compile(r"\s*[-\u2013]\s*")


class ChoiceListField(forms.TypedMultipleChoiceField):
    """Several choices, cleaned to a list without repeats: in the order of the choices, or
    sorted by value (`by_value`) where the choices' order means nothing to a reader of the
    JSON (merchant ids)."""

    def __init__(self, *, by_value: bool = False, **kwargs):
        self.by_value = by_value
        super().__init__(**kwargs)

    def clean(self, value):
        chosen = list(dict.fromkeys(super().clean(value)))
        if self.by_value:
            return sorted(chosen)
        order = {str(key): index for index, (key, _label) in enumerate(self.choices)}
        return sorted(chosen, key=lambda item: order[str(item)])


class ListAsTextField(forms.CharField):
    """Text that stands for a list of the rules document: the list is the field's value, so a
    document shown and sent back unchanged counts as unchanged."""

    def has_changed(self, initial, data):
        try:
            return (initial or []) != self.to_python(data)
        except ValidationError:
            return True


class TextListField(ListAsTextField):
    """Codes typed in one line, separated by commas, semicolons or spaces: "38185, 2A004"."""

    _SEPARATORS = re.compile(r"[\s,;]+")

    def __init__(self, *, upper: bool = False, **kwargs):
        self.upper = upper
        super().__init__(**kwargs)

    def _items(self, text: str) -> list[str]:
        return [item for item in self._SEPARATORS.split(text) if item]

    def to_python(self, value):
        text = super().to_python(value)
        items = self._items(text.upper() if self.upper else text)
        return list(dict.fromkeys(items))

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value


class MccListField(TextListField):
    """Merchant category codes and ranges: "5411, 5811-5814" (a range may be typed
    "5811 - 5814")."""

    def _items(self, text: str) -> list[str]:
        return super()._items(_DASH.sub("-", text))


_CLOCK = re.compile(r"(\d{1,2})(?:[:hH](\d{2})?)?")


class HoursField(ListAsTextField):
    """Opening hours: "08:00-12:30, 14:00-19:00" (also "8h-12h30") -> [["08:00", "12:30"], ...].
    The engine checks the times themselves (no 25:00, the end after the start)."""

    def to_python(self, value):
        text = _DASH.sub("-", super().to_python(value))
        spans = []
        for span in filter(None, re.split(r"[\s,;]+", text)):
            ends = span.split("-")
            if len(ends) != 2:
                raise ValidationError(
                    _("“%(value)s” is not a time range. Write it like 08:00-12:30."),
                    code="invalid_hours",
                    params={"value": span},
                )
            spans.append([self._clock(end) for end in ends])
        return spans

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(f"{start}-{end}" for start, end in value)
        return value

    @staticmethod
    def _clock(text: str) -> str:
        match = _CLOCK.fullmatch(text)
        if not match:
            raise ValidationError(
                _("“%(value)s” is not a time. Write it like 08:00 or 8h30."),
                code="invalid_time",
                params={"value": text},
            )
        return f"{int(match[1]):02d}:{match[2] or '00'}"


class CirclesField(ListAsTextField):
    """Places and a distance around each, one per line: "45.188, 5.724, 10" (latitude,
    longitude, radius in km). With French decimal commas, separate with semicolons:
    "45,188; 5,724; 10 km"."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3, "cols": 40}))
        super().__init__(**kwargs)

    def to_python(self, value):
        circles = []
        for line in super().to_python(value).splitlines():
            text = re.sub(r"\s*km$", "", line.strip(), flags=re.IGNORECASE)
            if not text:
                continue
            parts = (
                [part.replace(",", ".") for part in text.split(";")]
                if ";" in text
                else text.split(",")
            )
            if len(parts) != 3:
                raise ValidationError(
                    _(
                        "“%(value)s”: write a latitude, a longitude and a radius in km, "
                        "like 45.188, 5.724, 10."
                    ),
                    code="invalid_circle",
                    params={"value": line.strip()},
                )
            lat, lon, radius = (self._number(part.strip(), line) for part in parts)
            circles.append({"lat": lat, "lon": lon, "radius_km": radius})
        return circles

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(f"{c['lat']}, {c['lon']}, {c['radius_km']}" for c in value)
        return value

    @staticmethod
    def _number(text: str, line: str) -> int | float:
        try:
            finite = Decimal(text).is_finite()
        except InvalidOperation:
            finite = False
        if not finite:
            raise ValidationError(
                _("“%(value)s”: “%(number)s” is not a number."),
                code="invalid_circle",
                params={"value": line.strip(), "number": text},
            )
        # Coordinates are not money: the engine works on floats. Whole numbers stay ints so a
        # document read and saved again is written the same.
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)


class CardShopsField(ListAsTextField):
    """Card shops that may not be our merchants, one per line: a name and a postcode after the
    last comma ("Tabac du Centre, 38000"), or the card network's id of the shop alone
    ("123456789012345") -> the deny list's {"name", "postcode"} and {"network_id"} entries."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3, "cols": 40}))
        super().__init__(**kwargs)

    def to_python(self, value):
        shops = []
        for line in super().to_python(value).splitlines():
            text = line.strip()
            if "," in text:
                name, _comma, postcode = text.rpartition(",")
                shops.append({"name": name.strip(), "postcode": postcode.strip()})
            elif text:
                shops.append({"network_id": text})
        return shops

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(
                f"{shop['name']}, {shop['postcode']}" if "name" in shop else shop["network_id"]
                for shop in value
            )
        return value


class RuleCheckbox(forms.BooleanField):
    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)


def _group_choices() -> list[tuple[str, str]]:
    return [(name, categories.GROUP_LABELS[name]) for name in categories.GROUPS]


def _departement_choices() -> list[tuple[str, str]]:
    return [(code, f"{code} — {name}") for code, name in geo.TERRITORY_NAMES.items()]


def _merchant_label(merchant: Merchant) -> str:
    label = f"{merchant.trade_name} — {merchant.city}"
    if merchant.status != Merchant.Status.APPROVED:
        label += f" ({merchant.get_status_display()})"
    return label


# --- the form -----------------------------------------------------------------------------------


class RulesForm(forms.Form):
    """The rules of a program (or of one allocation) in plain fields, every one optional.

    `RulesForm(data, initial_rules=document)` shows an existing document; after `is_valid()`,
    `form.rules` is the document to store, already accepted by `PocketRules.from_dict`. An empty
    form gives {}."""

    weekdays = ChoiceListField(
        label=_("Days when the aid can be used"),
        choices=list(WEEKDAYS.items()),
        coerce=int,
        by_value=True,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Leave every day unticked to allow the aid every day."),
    )
    hours = HoursField(
        label=_("Hours when the aid can be used"),
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "08:00-12:30, 14:00-19:00", "size": 40}),
        help_text=_(
            "One or more time ranges, separated by commas, like 08:00-12:30, 14:00-19:00. "
            "Leave empty to allow any time of day."
        ),
    )
    refuse_public_holidays = RuleCheckbox(label=_("Refuse payments on public holidays"))

    allow_groups = ChoiceListField(
        label=_("Only in these kinds of shops"),
        choices=_group_choices(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "When you tick kinds of shops (or add codes below), every other kind of shop is "
            "refused. Leave empty to allow every kind of shop."
        ),
    )
    allow_mccs = MccListField(
        label=_("Also allow these merchant category codes"),
        required=False,
        help_text=_(
            "Merchant category codes (MCC) of 4 digits, separated by commas; a range is "
            "written 5811-5814."
        ),
    )
    block_groups = ChoiceListField(
        label=_("Never in these kinds of shops"),
        choices=_group_choices(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    block_mccs = MccListField(
        label=_("Refuse these merchant category codes"),
        required=False,
        help_text=_("Codes of 4 digits, separated by commas; a range is written 5811-5814."),
    )
    allow_cash = RuleCheckbox(
        label=_("Allow cash"),
        help_text=_(
            "Cash machines, money transfers, prepaid cards: the aid could then be spent on "
            "anything. Cash is refused unless you tick this."
        ),
    )

    merchants_allow = ChoiceListField(
        label=_("Only at these partner shops"),
        coerce=int,
        by_value=True,
        required=False,
        widget=FilteredSelectMultiple(_("shops"), is_stacked=False),
        help_text=_(
            "The aid then works only in these shops: by card where we know the shop's card "
            "terminal, or with a code from the app. Leave empty to accept every shop that the "
            "other rules allow."
        ),
    )
    merchants_deny = ChoiceListField(
        label=_("Never at these shops"),
        coerce=int,
        by_value=True,
        required=False,
        widget=FilteredSelectMultiple(_("shops"), is_stacked=False),
    )
    merchants_deny_card = CardShopsField(
        label=_("Never at these card shops"),
        required=False,
        help_text=_(
            "For shops paid by card that are not registered here, one per line: the shop's "
            "name and postcode, like Tabac du Centre, 38000 (the name is compared without "
            "capitals, accents or spaces), or the card network's id of the shop, like "
            "123456789012345."
        ),
    )

    countries = TextListField(
        label=_("Countries"),
        upper=True,
        required=False,
        help_text=_("Two-letter country codes, separated by commas, like FR."),
    )
    departements = ChoiceListField(
        label=_("Départements"),
        choices=_departement_choices(),
        required=False,
        widget=FilteredSelectMultiple(_("départements"), is_stacked=False),
    )
    departements_with_neighbours = ChoiceListField(
        label=_("Départements and their neighbours"),
        choices=_departement_choices(),
        required=False,
        widget=FilteredSelectMultiple(_("départements"), is_stacked=False),
        help_text=_(
            "Each of these départements and every département that shares a border with it, "
            "as for meal vouchers. Corsica's two départements neighbour each other only; "
            "overseas départements have no neighbour."
        ),
    )
    communes = TextListField(
        label=_("Towns (INSEE codes)"),
        upper=True,
        required=False,
        help_text=_(
            "The INSEE code of each town, not its postcode, separated by commas: 38185 for "
            "Grenoble."
        ),
    )
    postcode_prefixes = TextListField(
        label=_("Postcodes starting with"),
        required=False,
        help_text=_("The first 1 to 5 digits, separated by commas: 380 takes in 38000 to 38099."),
    )
    circles = CirclesField(
        label=_("Around a place"),
        required=False,
        help_text=_(
            "One place per line: latitude, longitude, distance in km, like 45.188, 5.724, 10."
        ),
    )

    products_allow = ChoiceListField(
        label=_("Only these products, when the shop lists the basket"),
        choices=[(name, capfirst(label)) for name, label in categories.PRODUCT_LABELS.items()],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "When a shop sends the basket line by line, the aid pays only the lines of the "
            "products ticked here; the rest is paid another way. Leave empty to pay for any "
            "product."
        ),
    )

    limit_per_payment = EuroField(label=_("Maximum per payment (€)"), required=False)
    limit_day = EuroField(label=_("Maximum per day (€)"), required=False)
    limit_week = EuroField(label=_("Maximum per week, Monday to Sunday (€)"), required=False)
    limit_month = EuroField(label=_("Maximum per calendar month (€)"), required=False)
    limit_year = EuroField(label=_("Maximum per calendar year (€)"), required=False)
    limit_validity = EuroField(
        label=_("Maximum in all, over the whole validity (€)"), required=False
    )

    # Where each field's value lives in the rules document: (section, key).
    PLACES = {
        "weekdays": ("schedule", "weekdays"),
        "hours": ("schedule", "hours"),
        "refuse_public_holidays": ("schedule", "refuse_public_holidays"),
        "allow_groups": ("categories", "allow_groups"),
        "allow_mccs": ("categories", "allow_mccs"),
        "block_groups": ("categories", "block_groups"),
        "block_mccs": ("categories", "block_mccs"),
        "allow_cash": ("categories", "allow_cash"),
        "merchants_allow": ("merchants", "allow"),
        "merchants_deny": ("merchants", "deny"),
        "countries": ("zone", "countries"),
        "departements": ("zone", "departements"),
        "departements_with_neighbours": ("zone", "departements_with_neighbours"),
        "communes": ("zone", "communes"),
        "postcode_prefixes": ("zone", "postcode_prefixes"),
        "circles": ("zone", "circles"),
        "limit_per_payment": ("limits", "per_payment"),
        "limit_day": ("limits", "day"),
        "limit_week": ("limits", "week"),
        "limit_month": ("limits", "month"),
        "limit_year": ("limits", "year"),
        "limit_validity": ("limits", "validity"),
        "products_allow": ("products", "allow"),
    }
    _FIELD_AT = {f"{section}.{key}": name for name, (section, key) in PLACES.items()}

    # The fields by theme, for admin fieldsets.
    SECTIONS = [
        (_("Days and hours"), ["weekdays", "hours", "refuse_public_holidays"]),
        (
            _("Kinds of shops"),
            ["allow_groups", "allow_mccs", "block_groups", "block_mccs", "allow_cash"],
        ),
        (_("Partner shops"), ["merchants_allow", "merchants_deny", "merchants_deny_card"]),
        (
            _("Area"),
            [
                "countries",
                "departements",
                "departements_with_neighbours",
                "communes",
                "postcode_prefixes",
                "circles",
            ],
        ),
        (
            _("Spending limits"),
            [
                "limit_per_payment",
                "limit_day",
                "limit_week",
                "limit_month",
                "limit_year",
                "limit_validity",
            ],
        ),
        (_("Products in the basket"), ["products_allow"]),
    ]

    def __init__(self, *args, initial_rules: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.rules: dict | None = None  # the document, once the form is valid
        document = initial_rules or {}
        for name, (section, key) in self.PLACES.items():
            value = (document.get(section) or {}).get(key)
            if value not in (None, [], False):
                self.initial.setdefault(name, value)
        # One deny list, two fields: our merchants by id, card shops by network id or name.
        deny = (document.get("merchants") or {}).get("deny") or []
        if deny:
            self.initial["merchants_deny"] = [entry for entry in deny if isinstance(entry, int)]
            cards = [entry for entry in deny if isinstance(entry, dict)]
            if cards:
                self.initial.setdefault("merchants_deny_card", cards)
        self._set_merchant_choices(document.get("merchants") or {})

    def _set_merchant_choices(self, merchants: dict) -> None:
        # The approved merchants, and those the document already names whatever their status
        # now: a shop suspended since must stay in an allow or deny list saved again, or saving
        # the page would quietly widen the aid.
        deny_ids = [entry for entry in merchants.get("deny") or [] if isinstance(entry, int)]
        named = {*(merchants.get("allow") or []), *deny_ids}
        found = Merchant.objects.filter(
            Q(status=Merchant.Status.APPROVED) | Q(pk__in=named)
        ).order_by("trade_name", "city", "pk")
        choices = [(merchant.pk, _merchant_label(merchant)) for merchant in found]
        gone = sorted(named - {pk for pk, _label in choices})
        choices += [
            (pk, gettext("Shop no. %(id)s (no longer registered)") % {"id": pk}) for pk in gone
        ]
        self.fields["merchants_allow"].choices = choices
        self.fields["merchants_deny"].choices = choices

    def clean(self):
        cleaned = super().clean()
        if any(name in self.errors for name in [*self.PLACES, "merchants_deny_card"]):
            return cleaned
        document: dict = {}
        for name, (section, key) in self.PLACES.items():
            value = cleaned.get(name)
            if value not in (None, "", [], False):
                document.setdefault(section, {})[key] = value
        if cards := cleaned.get("merchants_deny_card"):
            merchants = document.setdefault("merchants", {})
            merchants["deny"] = [*merchants.get("deny", []), *cards]
        try:
            PocketRules.from_dict(document)
        except RulesError as error:
            self.add_error(
                self._field_at(error.field, cleaned),
                ValidationError(error.message, code="rule"),
            )
        else:
            self.rules = document
        return cleaned

    def _field_at(self, path: str, cleaned: dict) -> str | None:
        """The form field of a RulesError path: "zone.circles[0].radius_km" -> "circles"; None
        (an error of the whole form) for a path no single field holds. In the deny list, the
        card shops come after our merchants' ids."""
        deny = re.match(r"merchants\.deny\[(\d+)\]", path)
        if deny and int(deny[1]) >= len(cleaned.get("merchants_deny") or []):
            return "merchants_deny_card"
        return self._FIELD_AT.get(re.sub(r"\[.*$", "", path))
