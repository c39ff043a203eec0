"""Who a program's aid is for: its eligibility criteria, checked against what the funder knows
of a person. Pure functions with no database, like the authorization engine's rules: the
campaign service (funders/campaigns.py) loads the facts and the criteria, this module decides.

A person is eligible when they meet every criterion of the program. A criterion on a fact the
funder does not know (an empty field) is not met: nobody is proposed aid on a guess.

Each check gives a *reason*: the criterion as it stood (a snapshot, so that a proposal still
explains itself after the criterion is edited), whether it was met, and the fact it read. Reasons
are stored on proposals as JSON and put into words only when shown, in the reader's language."""

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import cached_property

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from engine import geo

# The kinds, as EligibilityCriterion.Kind names them (kept as plain strings: no model import).
DEPARTEMENT = "departement"
COMMUNE = "commune"
POSTCODE = "postcode"
AGE = "age"
HOUSEHOLD_SIZE = "household_size"
DEPENDENT_CHILDREN = "dependent_children"
INCOME_BRACKET = "income_bracket"
OTHER_AID = "other_aid"
ATTRIBUTE = "attribute"

# Why a pending proposal is withdrawn when it is not a criterion that the person stopped meeting.
ALREADY_HOLDS = "already_holds"
NOT_FOLLOWED = "not_followed"

ZONE_KINDS = (DEPARTEMENT, COMMUNE, POSTCODE)
NUMBER_KINDS = (AGE, HOUSEHOLD_SIZE, DEPENDENT_CHILDREN, INCOME_BRACKET)

# What the funder knows of one other aid of a person (Facts.aid); absent: never received.
HOLDS = "holds"  # an aid of that program still valid with money left
EXHAUSTED = "exhausted"  # an aid of that program still valid with nothing left
RECEIVED = "received"  # received once, no longer valid

MAX_AGE = 130
MAX_HOUSEHOLD = 30
MAX_BRACKET = 20
MAX_ATTRIBUTE_LENGTH = 100
OLDEST_BIRTH_DATE = date(1900, 1, 1)  # before, a date of birth is surely a typing mistake


@dataclass(frozen=True)
class Facts:
    """What a funder knows of one person on the day of the evaluation."""

    postcode: str = ""
    commune: str = ""
    birth_date: date | None = None
    household_size: int | None = None
    dependent_children: int | None = None
    income_bracket: int | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    aid: Mapping[int, str] = field(default_factory=dict)  # other program's id → HOLDS...

    @property
    def departement(self) -> str | None:
        # The commune code is exact; a postcode is the post office's, which can be a
        # neighbouring département's for a few border communes.
        if self.commune:
            return geo.departement_from_commune(self.commune)
        return geo.departement_from_postcode(self.postcode) if self.postcode else None


@dataclass(frozen=True)
class Criterion:
    """A criterion as the checks read it, and as a reason keeps it (`snapshot()`)."""

    kind: str
    values: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    other_program: int | None = None
    other_program_name: str = ""
    aid_condition: str = ""
    attribute: str = ""

    @classmethod
    def of(cls, criterion) -> "Criterion":
        """From an EligibilityCriterion (its other program's name included) or a snapshot."""
        if isinstance(criterion, Criterion):
            return criterion
        if isinstance(criterion, Mapping):
            return cls(**{**criterion, "values": tuple(criterion.get("values") or ())})
        other = criterion.other_program
        return cls(
            kind=criterion.kind,
            values=tuple(criterion.values or ()),
            minimum=criterion.minimum,
            maximum=criterion.maximum,
            other_program=other.pk if other else None,
            other_program_name=other.name if other else "",
            aid_condition=criterion.aid_condition,
            attribute=criterion.attribute,
        )

    @cached_property
    def _snapshot(self) -> dict:
        data = asdict(self)
        data["values"] = list(self.values)
        return {key: value for key, value in data.items() if value not in (None, "", [])}

    def snapshot(self) -> dict:
        # Computed once per criterion: a campaign checks it for every person.
        return self._snapshot


@dataclass(frozen=True)
class Evaluation:
    eligible: bool
    met: list[dict]
    unmet: list[dict]


# --- facts --------------------------------------------------------------------------------------


def age_on(birth_date: date, day: date) -> int:
    """Age in whole years on `day`: one more on the birthday itself. Someone born on 29 February
    turns a year older on 1 March in the years without one."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


AGE_BANDS = [
    ("0-17", _("under 18")),
    ("18-25", _("18 to 25")),
    ("26-39", _("26 to 39")),
    ("40-59", _("40 to 59")),
    ("60-74", _("60 to 74")),
    ("75+", _("75 and over")),
    ("", _("not known")),
]
_AGE_BAND_FLOORS = [(75, "75+"), (60, "60-74"), (40, "40-59"), (26, "26-39"), (18, "18-25")]

HOUSEHOLD_TYPES = [
    ("alone", _("living alone")),
    ("no_children", _("several people, no dependent child")),
    ("children_1_2", _("1 or 2 dependent children")),
    ("children_3_plus", _("3 dependent children or more")),
    ("", _("not known")),
]


def age_band(age: int | None) -> str:
    if age is None:
        return ""
    return next((band for floor, band in _AGE_BAND_FLOORS if age >= floor), "0-17")


def household_type(size: int | None, children: int | None) -> str:
    if children:
        return "children_3_plus" if children >= 3 else "children_1_2"
    if size is None:
        return ""
    if size == 1:
        return "alone"
    return "no_children" if children == 0 else ""


def groups(facts: Facts, today: date) -> dict[str, str]:
    """The person's group in each dimension of the fairness view."""
    age = age_on(facts.birth_date, today) if facts.birth_date else None
    return {
        "departement": facts.departement or "",
        "age_band": age_band(age),
        "household_type": household_type(facts.household_size, facts.dependent_children),
    }


def group_label(dimension: str, key: str) -> str:
    if dimension == "departement":
        return geo.territory_label(key) if key else gettext("not known")
    labels = dict(AGE_BANDS if dimension == "age_band" else HOUSEHOLD_TYPES)
    return str(labels.get(key, key))


# --- the checks ---------------------------------------------------------------------------------


def _in_range(value: int, criterion: Criterion) -> bool:
    return (criterion.minimum is None or value >= criterion.minimum) and (
        criterion.maximum is None or value <= criterion.maximum
    )


def _number(text: str) -> int | None:
    # "1 200": French thousands are separated by a space, often a (narrow) no-break one.
    try:
        return int("".join(text.split()))
    except ValueError:
        return None


def _postcode_matches(postcode: str, values: Iterable[str]) -> bool:
    return any(postcode.startswith(value) for value in values)


def check(criterion: Criterion, facts: Facts, today: date) -> dict:
    """One criterion against one person: the reason, with `met` and the fact read (None when
    the funder does not know it)."""
    kind = criterion.kind
    fact: object = None
    met = False
    if kind == DEPARTEMENT:
        fact = facts.departement
        met = fact in criterion.values
    elif kind == COMMUNE:
        fact = facts.commune or None
        met = fact in criterion.values
    elif kind == POSTCODE:
        fact = facts.postcode or None
        met = fact is not None and _postcode_matches(fact, criterion.values)
    elif kind in NUMBER_KINDS:
        if kind == AGE:
            fact = age_on(facts.birth_date, today) if facts.birth_date else None
        else:
            fact = getattr(facts, kind)
        met = fact is not None and _in_range(fact, criterion)
    elif kind == OTHER_AID:
        state = facts.aid.get(criterion.other_program)
        fact = state or "never_received"
        met = {
            "holds": state == HOLDS,
            "does_not_hold": state != HOLDS,
            "exhausted": state == EXHAUSTED,
            "never_received": state is None,
        }.get(criterion.aid_condition, False)
    elif kind == ATTRIBUTE:
        # Imported as text, but a JSON number (or a cell of spaces) must not stop a run.
        text = facts.attributes.get(criterion.attribute)
        fact = str(text).strip() if text is not None else ""
        fact = fact or None
        if fact is not None:
            if criterion.values:
                met = fact.strip().casefold() in {v.strip().casefold() for v in criterion.values}
            else:
                number = _number(fact)
                met = number is not None and _in_range(number, criterion)
    return {"criterion": criterion.snapshot(), "met": met, "fact": fact}


def evaluate(criteria: Iterable[Criterion], facts: Facts, today: date) -> Evaluation:
    """Every criterion against one person. No criterion, nobody eligible: a campaign must say
    whom it is for."""
    reasons = [check(criterion, facts, today) for criterion in criteria]
    met = [reason for reason in reasons if reason["met"]]
    unmet = [reason for reason in reasons if not reason["met"]]
    return Evaluation(eligible=bool(reasons) and not unmet, met=met, unmet=unmet)


def situation(kind: str) -> dict:
    """A reason that is not a criterion: ALREADY_HOLDS or NOT_FOLLOWED."""
    return {"criterion": {"kind": kind}, "met": False, "fact": None}


def criteria_fields(criteria: Iterable) -> set[str]:
    """The profile's facts that these criteria read: what an import may bring, and no more."""
    fields = set()
    for criterion in map(Criterion.of, criteria):
        if criterion.kind == DEPARTEMENT:
            fields |= {"postcode", "commune"}
        elif criterion.kind == AGE:
            fields.add("birth_date")
        elif criterion.kind == ATTRIBUTE:
            fields.add(f"attributes.{criterion.attribute}")
        elif criterion.kind != OTHER_AID:
            fields.add(criterion.kind)
    return fields


# --- in words -----------------------------------------------------------------------------------

_NUMBER_LABELS = {
    HOUSEHOLD_SIZE: _("People in the household"),
    DEPENDENT_CHILDREN: _("Dependent children"),
    INCOME_BRACKET: _("Income bracket"),
}
_AID_WORDS = {
    "holds": _("Holds the aid “%(program)s” now"),
    "does_not_hold": _("Does not hold the aid “%(program)s” now"),
    "exhausted": _("Has spent all of the aid “%(program)s”"),
    "never_received": _("Never received the aid “%(program)s”"),
}
_AID_FACTS = {
    HOLDS: _("holds it"),
    EXHAUSTED: _("spent all of it"),
    RECEIVED: _("received it before"),
    "never_received": _("never received it"),
}


def _quoted(text: str) -> str:
    # Quotation marks are the language's: “…” in English, « … » in French.
    return gettext("“%(text)s”") % {"text": text}


def _or_list(values: Iterable[str]) -> str:
    return gettext(" or ").join(values)


def _range_words(label: str, criterion: Criterion) -> str:
    low, high = criterion.minimum, criterion.maximum
    if low is not None and high is not None:
        if low == high:
            return gettext("%(label)s: %(value)s") % {"label": label, "value": low}
        return gettext("%(label)s: from %(min)s to %(max)s") % {
            "label": label,
            "min": low,
            "max": high,
        }
    if low is not None:
        return gettext("%(label)s: at least %(min)s") % {"label": label, "min": low}
    return gettext("%(label)s: at most %(max)s") % {"label": label, "max": high}


def describe(criterion) -> str:
    """A criterion in plain words: "Lives in Isère (38) or Savoie (73)", "Aged 65 or more"."""
    criterion = Criterion.of(criterion)
    kind = criterion.kind
    if kind == DEPARTEMENT:
        places = _or_list(geo.territory_label(code) for code in criterion.values)
        return gettext("Lives in %(places)s") % {"places": places}
    if kind == COMMUNE:
        return gettext("Lives in the commune %(codes)s") % {"codes": _or_list(criterion.values)}
    if kind == POSTCODE:
        return gettext("Postcode starting with %(codes)s") % {"codes": _or_list(criterion.values)}
    if kind == AGE:
        low, high = criterion.minimum, criterion.maximum
        if low is not None and high is not None:
            return gettext("Aged %(min)s to %(max)s") % {"min": low, "max": high}
        if low is not None:
            return gettext("Aged %(min)s or more") % {"min": low}
        return gettext("Aged %(max)s or less") % {"max": high}
    if kind in _NUMBER_LABELS:
        return _range_words(str(_NUMBER_LABELS[kind]), criterion)
    if kind == OTHER_AID:
        words = _AID_WORDS.get(criterion.aid_condition)
        return str(words) % {"program": criterion.other_program_name} if words else ""
    if kind == ATTRIBUTE:
        if criterion.values:
            return gettext("“%(name)s” is %(values)s") % {
                "name": criterion.attribute,
                "values": _or_list(_quoted(value) for value in criterion.values),
            }
        return _range_words(_quoted(criterion.attribute), criterion)
    return str(_SITUATIONS.get(kind, kind))


_SITUATIONS = {
    ALREADY_HOLDS: _("Already holds this aid"),
    NOT_FOLLOWED: _("No longer among the people the funder helps, or their data was erased"),
}


def _fact_words(kind: str, fact) -> str:
    if fact is None:
        return gettext("not known")
    if kind == DEPARTEMENT:
        return geo.territory_label(fact)
    if kind == AGE:
        return gettext("%(age)s years old") % {"age": fact}
    if kind == OTHER_AID:
        return str(_AID_FACTS.get(fact, fact))
    return str(fact)


def explain(reason: Mapping) -> str:
    """One reason in plain words: "Aged 65 or more (here: 72 years old)"."""
    criterion = Criterion.of(reason["criterion"])
    if criterion.kind in _SITUATIONS:
        return describe(criterion)
    if criterion.kind in (DEPARTEMENT, COMMUNE) and list(criterion.values) == [reason.get("fact")]:
        return describe(criterion)  # "Lives in Isère (38)", not "(here: Isère (38))" again
    return gettext("%(criterion)s (here: %(fact)s)") % {
        "criterion": describe(criterion),
        "fact": _fact_words(criterion.kind, reason.get("fact")),
    }


# --- validation ---------------------------------------------------------------------------------


def clean_values(kind: str, values: Iterable[str] | str | int | None) -> list[str]:
    """The values as the checks compare them: "38" and "2a" for départements, trimmed. One value
    given without a list (38, "38") is that value, not its characters ("3" and "8")."""
    if values is None:
        values = []
    elif isinstance(values, (str, int, float)):
        values = [values]
    cleaned = []
    for value in values:
        text = str(value).strip()
        if kind in (DEPARTEMENT, COMMUNE):
            text = text.upper()
            if kind == DEPARTEMENT and text.isdigit():
                text = text.zfill(2)
        if text and text not in cleaned:
            cleaned.append(text)
    return cleaned


def criterion_errors(criterion) -> dict[str, list[str]]:
    """What is wrong with a criterion, field by field (empty when it can be used)."""
    c = Criterion.of(criterion)
    errors: dict[str, list[str]] = {}

    def add(name: str, message) -> None:
        errors.setdefault(name, []).append(str(message))

    if c.kind in ZONE_KINDS:
        if not c.values:
            add("values", _("Give at least one value."))
        for value in c.values:
            if c.kind == DEPARTEMENT and value not in geo.TERRITORY_NAMES:
                add("values", _("“%(value)s” is not a département number.") % {"value": value})
            elif c.kind == COMMUNE and geo.departement_from_commune(value) is None:
                add("values", _("“%(value)s” is not an INSEE commune code.") % {"value": value})
            elif c.kind == POSTCODE and not (value.isdigit() and 2 <= len(value) <= 5):
                add(
                    "values",
                    _("“%(value)s” is not a postcode or its beginning (2 to 5 digits).")
                    % {"value": value},
                )
    elif c.kind in NUMBER_KINDS or (c.kind == ATTRIBUTE and not c.values):
        if c.minimum is None and c.maximum is None:
            add("minimum", _("Give a minimum, a maximum or both."))
        ceiling = {AGE: MAX_AGE, HOUSEHOLD_SIZE: MAX_HOUSEHOLD, INCOME_BRACKET: MAX_BRACKET}
        for name, bound in (("minimum", c.minimum), ("maximum", c.maximum)):
            if bound is None or c.kind == ATTRIBUTE:
                continue
            if bound < 0:
                add(name, _("This cannot be negative."))
            elif c.kind in ceiling and bound > ceiling[c.kind]:
                add(name, _("At most %(max)s.") % {"max": ceiling[c.kind]})
        if c.minimum is not None and c.maximum is not None and c.minimum > c.maximum:
            add("maximum", _("The maximum is below the minimum."))
    if c.kind == OTHER_AID:
        if c.other_program is None:
            add("other_program", _("Choose the other aid."))
        if c.aid_condition not in _AID_WORDS:
            add("aid_condition", _("Choose a condition on the other aid."))
    if c.kind == ATTRIBUTE:
        if not c.attribute:
            add("attribute", _("Name the fact, as the column of your file names it."))
        if c.values and (c.minimum is not None or c.maximum is not None):
            add("values", _("Give either values or a minimum and maximum, not both."))
    return errors
