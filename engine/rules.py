"""The rules a funder sets on aid, parsed from JSON, and the pure checks of one payment.

Rules are stored as JSON on the program (defaults) and on the allocation (overrides), every key
optional:

    {
      "schedule": {"weekdays": [0, 1, 2, 3, 4, 5],
                   "hours": [["08:00", "12:30"], ["14:00", "19:00"]],
                   "refuse_public_holidays": true},
      "categories": {"allow_groups": ["food"], "allow_mccs": ["5411", "5811-5814"],
                     "block_groups": [], "block_mccs": ["5921"], "allow_cash": false},
      "merchants": {"allow": [12, 15],
                    "deny": [7, {"network_id": "123456789012345"},
                             {"name": "Tabac du Centre", "postcode": "38000"}]},
      "zone": {"countries": ["FR"], "departements": ["38", "2A", "974"], "communes": ["38185"],
               "departements_with_neighbours": ["73"], "postcode_prefixes": ["380"],
               "circles": [{"lat": 45.19, "lon": 5.72, "radius_km": 10}]},
      "limits": {"per_payment": 5000, "day": 2500, "week": null, "month": null, "year": null,
                 "validity": null},
      "products": {"allow": ["food", "hygiene"]}
    }

A top-level key set to null means "no such rule", so an allocation can lift a program's rule.
Validity is not in the JSON: it is the allocation's valid_from / valid_until columns, and
valid_until is exclusive (the first instant the aid no longer works).

"products" is about what is bought, not where: when the shop sends basket lines (each with a
product family of request.PRODUCT_FAMILIES), the aid pays only the lines of the families it
allows. Without basket lines it says nothing, and the payment is decided as before.

A deny list names our merchants by id, and card shops we may not know by the card network's id
or by name and postcode. "departements_with_neighbours" is the titres-restaurant convention:
those départements and the ones that share a border with them (geo.departement_neighbours).

Each check returns a Verdict: eligible, or a reason code from codes.py with the details a
message needs. Nothing here reads a clock, a database or the network.
"""

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache, cached_property
from typing import TypeVar

import holidays
from django.utils.formats import number_format
from django.utils.functional import Promise, lazy
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.money import format_money
from core.time import format_instant, format_until
from core.types import JSONDict, JSONList, JSONValue
from engine import categories, codes, geo
from engine.categories import MccRange
from engine.periods import PERIODS, Usage
from engine.request import PRODUCT_FAMILIES, BasketLine, MerchantPlace

ALL_WEEKDAYS = frozenset(range(7))


class RulesError(ValueError):
    """A rules document that cannot be applied. `field` is a path into the JSON
    ("zone.circles[0].radius_km") so the admin form can point at it."""

    def __init__(self, field: str, message: str | Promise) -> None:
        super().__init__(field, message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


# --- the rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    weekdays: frozenset[int] = ALL_WEEKDAYS  # 0 = Monday .. 6 = Sunday
    hours: tuple[tuple[int, int], ...] = ()  # [start, end) in minutes after local midnight
    refuse_public_holidays: bool = False


@dataclass(frozen=True)
class CategoryRule:
    allow_groups: tuple[str, ...] = ()
    allow_mccs: tuple[MccRange, ...] = ()
    block_groups: tuple[str, ...] = ()
    block_mccs: tuple[MccRange, ...] = ()
    allow_cash: bool = False

    @property
    def has_allow_list(self) -> bool:
        return bool(self.allow_groups or self.allow_mccs)

    # Cached on the rule (fields never change): each payment asks them of every pocket, and a
    # rule dry run a million times.
    @cached_property
    def allowed(self) -> tuple[MccRange, ...]:
        return categories.group_ranges(self.allow_groups) + self.allow_mccs

    @cached_property
    def blocked(self) -> tuple[MccRange, ...]:
        return categories.group_ranges(self.block_groups) + self.block_mccs

    @cached_property
    def allowed_count(self) -> int:
        """How many codes the allow list covers (categories.count_codes)."""
        return categories.count_codes(self.allowed)


@dataclass(frozen=True)
class MerchantRule:
    allow: frozenset[int] | None = None  # None: every merchant; else only these
    deny: frozenset[int] = frozenset()
    deny_network_ids: frozenset[str] = frozenset()  # the card network's merchant ids
    deny_shops: frozenset[tuple[str, str]] = frozenset()  # (shop_name_key(name), postcode)

    @property
    def deny_count(self) -> int:
        return len(self.deny) + len(self.deny_network_ids) + len(self.deny_shops)


def shop_name_key(name: str) -> str:
    """A shop's name as a deny list compares it: "TABAC  DU CENTRE" and "Tabac-du-Centre" are
    "tabac du centre". Card networks write names in capitals without accents, people with."""
    letters = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(re.findall(r"[a-z0-9]+", letters.casefold()))


@dataclass(frozen=True)
class Circle:
    lat: float
    lon: float
    radius_km: float


@dataclass(frozen=True)
class ZoneRule:
    countries: tuple[str, ...] = ()
    departements: tuple[str, ...] = ()
    communes: tuple[str, ...] = ()
    postcode_prefixes: tuple[str, ...] = ()
    circles: tuple[Circle, ...] = ()
    departements_with_neighbours: tuple[str, ...] = ()

    @property
    def covered_departements(self) -> frozenset[str]:
        """The départements named, and those with their neighbours."""
        covered = set(self.departements)
        for code in self.departements_with_neighbours:
            covered |= {code, *geo.departement_neighbours(code)}
        return frozenset(covered)


@dataclass(frozen=True)
class Limits:
    per_payment: int | None = None
    day: int | None = None
    week: int | None = None
    month: int | None = None
    year: int | None = None
    validity: int | None = None

    def caps(self) -> list[tuple[str, int]]:
        """The period caps that are set, in PERIODS order."""
        return [(p, cap) for p in PERIODS if (cap := getattr(self, p)) is not None]


@dataclass(frozen=True)
class PocketRules:
    valid_from: datetime | None = None
    valid_until: datetime | None = None  # exclusive
    schedule: Schedule | None = None
    categories: CategoryRule = CategoryRule()
    merchants: MerchantRule = MerchantRule()
    zone: ZoneRule | None = None
    limits: Limits = Limits()
    products: frozenset[str] | None = None  # the product families it pays; None: all

    def pays_for(self, category: str) -> bool:
        return self.products is None or category in self.products

    @classmethod
    def from_dict(
        cls,
        data: JSONDict | None,
        *,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
    ) -> "PocketRules":
        """Parse and validate a rules document (see the module docstring); RulesError if bad."""
        data = _mapping({} if data is None else data, "", _SECTIONS)
        for name, value in (("valid_from", valid_from), ("valid_until", valid_until)):
            if value is not None and value.utcoffset() is None:
                raise RulesError(name, _("Give a date and time with its time zone."))
        if valid_from and valid_until and valid_until.timestamp() <= valid_from.timestamp():
            raise RulesError("valid_until", _("The end of validity must come after its start."))
        return cls(
            valid_from=valid_from,
            valid_until=valid_until,
            schedule=_or_none(data.get("schedule"), _parse_schedule),
            categories=_or_none(data.get("categories"), _parse_categories) or CategoryRule(),
            merchants=_or_none(data.get("merchants"), _parse_merchants) or MerchantRule(),
            zone=_or_none(data.get("zone"), _parse_zone),
            limits=_or_none(data.get("limits"), _parse_limits) or Limits(),
            products=_or_none(data.get("products"), _parse_products),
        )

    def describe(self, *, currency: str = "EUR") -> list[str]:
        """The rules in plain words, one sentence per rule, in the active language."""
        return [
            *_describe_validity(self),
            *_describe_schedule(self.schedule),
            *_describe_categories(self.categories),
            *_describe_merchants(self.merchants),
            *_describe_zone(self.zone),
            *_describe_limits(self.limits, currency),
            *_describe_products(self.products),
        ]


def merge_rules(program_rules: JSONDict | None, allocation_rules: JSONDict | None) -> JSONDict:
    """The rules of one allocation: its own top-level keys replace the program's whole.

    Replacing per section rather than merging deeper keeps every section as one decision of
    one person: an allocation's "zone" never inherits half of the program's zone."""
    return {**(program_rules or {}), **(allocation_rules or {})}


def override_rules(program_rules: JSONDict | None, rules: JSONDict) -> JSONDict:
    """The allocation overrides that make merge_rules(program_rules, ...) give `rules`: its
    sections that differ from the program's, and null for each program section it leaves out
    (null lifts the program's rule)."""
    program_rules = program_rules or {}
    return {
        **{
            section: value
            for section, value in rules.items()
            if program_rules.get(section) != value
        },
        **{section: None for section in program_rules if section not in rules},
    }


# --- verdicts and checks ------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    eligible: bool
    reason: str | None = None  # a code from codes.py when not eligible
    details: JSONDict = field(default_factory=dict)  # what a message needs
    capacity: int | None = None  # when eligible: the most the limits let it pay (None: no limit)


ELIGIBLE = Verdict(True)


def _refuse(reason: str, **details: JSONValue) -> Verdict:
    return Verdict(False, reason, details)


def check_validity(rules: PocketRules, at: datetime) -> Verdict:
    """Aid works from valid_from (included) until valid_until (excluded).

    Compared as UTC instants: Python compares two datetimes of the same tzinfo by wall clock,
    which is wrong in the repeated hour of an autumn night (02:15 the second time comes after
    02:30 the first time)."""
    instant = at.astimezone(UTC)
    if rules.valid_from is not None and instant < rules.valid_from.astimezone(UTC):
        return _refuse("aid_not_yet_valid", valid_from=rules.valid_from.isoformat())
    if rules.valid_until is not None and instant >= rules.valid_until.astimezone(UTC):
        return _refuse("aid_expired", valid_until=rules.valid_until.isoformat())
    return ELIGIBLE


# The holidays package's subdivisions for the places whose public holidays differ from
# metropolitan France: Alsace-Moselle (Good Friday, 26 December) and overseas.
_HOLIDAY_SUBDIVISIONS = {
    "57": "57",
    "67": "6AE",
    "68": "6AE",
    "971": "971",
    "972": "972",
    "973": "973",
    "974": "974",
    "976": "976",
    "975": "PM",
    "977": "BL",
    "978": "MF",
    "986": "WF",
    "987": "PF",
    "988": "NC",
}


@cache
def _public_holidays(subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holidays.France(subdiv=subdivision, years=year))


def is_public_holiday(day: date, departement: str | None) -> bool:
    subdivision = _HOLIDAY_SUBDIVISIONS.get(departement or "")
    return day in _public_holidays(subdivision, day.year)


def check_schedule(schedule: Schedule | None, at: datetime, departement: str | None) -> Verdict:
    """Days, hours and public holidays, on the shop's local clock: Europe/Paris in
    metropolitan France and when the place is unknown, the territory's own time overseas
    (08:00 in La Réunion is 08:00 at the till there). Hour ranges include their start and
    exclude their end: "08:00"-"12:30" accepts 12:29:59 and refuses 12:30:00."""
    if schedule is None:
        return ELIGIBLE
    local = at.astimezone(geo.local_time_zone(departement))
    if not schedule_allows(schedule, local, departement):
        return _refuse(
            "outside_allowed_hours",
            weekdays=sorted(schedule.weekdays),
            hours=[[_hhmm(start), _hhmm(end)] for start, end in schedule.hours],
            public_holiday=schedule.refuse_public_holidays
            and is_public_holiday(local.date(), departement),
        )
    return ELIGIBLE


def schedule_allows(schedule: Schedule, local: datetime, departement: str | None) -> bool:
    """check_schedule's answer without its details, `local` being the instant on the shop's
    clock (geo.local_time_zone): what a rule dry run asks a million times."""
    if local.weekday() not in schedule.weekdays:
        return False
    if schedule.hours:
        second = local.hour * 3600 + local.minute * 60 + local.second
        if not any(start * 60 <= second < end * 60 for start, end in schedule.hours):
            return False
    return not (schedule.refuse_public_holidays and is_public_holiday(local.date(), departement))


def check_categories(rule: CategoryRule, mcc: str) -> Verdict:
    """A block beats an allow; without an allow list every code is allowed; cash and quasi-cash
    codes (categories.CASH_MCCS) are refused unless allow_cash, which then allows them even
    beside an allow list that does not name them."""
    cash = mcc in categories.CASH_MCCS
    # The code as a number once, rather than in each range (MccRange.__contains__); a place's
    # code is always 4 digits (MerchantPlace).
    code = int(mcc)
    if any(r.first <= code <= r.last for r in rule.blocked):
        return _refuse("merchant_category_not_allowed", mcc=mcc, cause="blocked")
    if cash and not rule.allow_cash:
        return _refuse("merchant_category_not_allowed", mcc=mcc, cause="cash")
    if (
        rule.has_allow_list
        and not cash
        and not any(r.first <= code <= r.last for r in rule.allowed)
    ):
        return _refuse(
            "merchant_category_not_allowed",
            mcc=mcc,
            cause="not_allowed",
            allow_groups=list(rule.allow_groups),
        )
    return ELIGIBLE


def check_merchant(rule: MerchantRule, merchant: MerchantPlace) -> Verdict:
    """Deny and allow lists. A card shop that is not one of our merchants (merchant_id None)
    is still denied by its network id or by its name and postcode. An allow list names our
    merchants only: such a shop is refused as not recognised, since we cannot tell whether it
    is one on the list, never as "not one of the partner shops"."""
    if _denied(rule, merchant):
        return _refuse("merchant_not_accepted", cause="denied")
    if rule.allow is not None:
        if merchant.merchant_id is None:
            return _refuse("merchant_not_recognised", cause="allow_list")
        if merchant.merchant_id not in rule.allow:
            return _refuse("merchant_not_accepted", cause="not_listed")
    return ELIGIBLE


def _denied(rule: MerchantRule, merchant: MerchantPlace) -> bool:
    # Every way of naming the shop counts, on a shop of ours too: a deny list only narrows.
    network_id = (merchant.network_id or "").strip()
    postcode = (merchant.postcode or "").strip()
    return (
        (merchant.merchant_id is not None and merchant.merchant_id in rule.deny)
        or (bool(network_id) and network_id in rule.deny_network_ids)
        or (bool(postcode) and (shop_name_key(merchant.name), postcode) in rule.deny_shops)
    )


def _communes(merchant: MerchantPlace) -> frozenset[str]:
    """The communes the shop may be in: its own when known, else every commune its French
    postcode serves (a card shop we do not know only has a postcode)."""
    commune = (merchant.commune_code or "").strip().upper()
    if commune:
        return frozenset({commune})
    if merchant.postcode and geo.is_french(merchant.country):
        return geo.communes_of_postcode(merchant.postcode)
    return frozenset()


def _in_communes(allowed: tuple[str, ...], merchant: MerchantPlace) -> bool:
    # Every commune must be allowed: a postcode shared with a town outside the zone could be
    # a shop in that town. A rule naming Paris, Lyon or Marseille covers its arrondissements.
    communes = _communes(merchant)
    return bool(communes) and all(
        any(code in allowed for code in geo.commune_and_city(commune)) for commune in communes
    )


def check_zone(rule: ZoneRule | None, merchant: MerchantPlace) -> Verdict:
    """The zone is the union of its parts. Country "FR" covers the whole French Republic,
    overseas included, whether the network reports "FR" or the territory's own ISO code
    ("RE", "GP", ...). Postcode prefixes apply to French postcodes only. A shop known by its
    postcode only is in the communes when every commune of that postcode is (`_in_communes`).
    Circle radii are inclusive. A shop with no known place (no postcode, commune nor
    coordinates) can only be inside a country.

    A card shop that is not one of our merchants has no coordinates: when only a circle could
    have taken it in, it is refused as not recognised (whether it is within the circle cannot
    be told), never as outside the zone."""
    if rule is None:
        return ELIGIBLE
    french = geo.is_french(merchant.country)
    departement = merchant.departement
    postcode = (merchant.postcode or "").strip()
    inside = (
        any(c == merchant.country or (c == "FR" and french) for c in rule.countries)
        or (departement is not None and departement in rule.covered_departements)
        or (bool(rule.communes) and _in_communes(rule.communes, merchant))
        or (french and bool(postcode) and postcode.startswith(rule.postcode_prefixes))
        or (
            merchant.latitude is not None
            and merchant.longitude is not None
            and any(
                geo.haversine_km(c.lat, c.lon, merchant.latitude, merchant.longitude) <= c.radius_km
                for c in rule.circles
            )
        )
    )
    if inside:
        return ELIGIBLE
    if rule.circles and merchant.merchant_id is None and merchant.latitude is None:
        return _refuse("merchant_not_recognised", cause="circle")
    return _refuse(
        "outside_zone",
        countries=list(rule.countries),
        departements=list(rule.departements),
        departements_with_neighbours=list(rule.departements_with_neighbours),
        communes=list(rule.communes),
        postcode_prefixes=list(rule.postcode_prefixes),
        circles=len(rule.circles),
        unknown_location=not merchant.has_location,
    )


def check_products(rules: PocketRules, lines: tuple[BasketLine, ...]) -> Verdict:
    """Without basket lines, or without a products rule, the aid may pay all. Otherwise it is
    eligible when it pays for at least one line, and then pays only those lines (decide)."""
    if not lines or rules.products is None:
        return ELIGIBLE
    if any(rules.pays_for(line.category) for line in lines):
        return ELIGIBLE
    families = list(dict.fromkeys(line.category for line in lines))
    return _refuse("product_not_covered", families=families)


def check_limits(limits: Limits, amount: int, usage: Usage) -> Verdict:
    """capacity = min(per_payment, each period cap - what was spent in that period).

    A pocket whose capacity is below the amount is still eligible: it pays up to its capacity
    and the rest is asked of other pockets. When a limit holds this payment back (capacity
    below the amount) or refuses it, the details name that limit (ties go to the first of
    per_payment, day, week, month, year, validity), so the shortfall can be explained."""
    bounds: list[tuple[int, JSONDict]] = []
    if limits.per_payment is not None:
        bounds.append((limits.per_payment, {"limit": "per_payment", "cap": limits.per_payment}))
    for period, cap in limits.caps():
        used = _used(usage.spent, period)
        bounds.append((cap - used, {"limit": period, "cap": cap, "used": used}))
    if not bounds:
        return ELIGIBLE
    capacity, details = min(bounds, key=lambda bound: bound[0])
    if capacity <= 0:
        return Verdict(False, "limit_exceeded", details)
    return Verdict(True, details=details if capacity < amount else {}, capacity=capacity)


def limits_capacity(caps: tuple[tuple[str, int], ...], spent: Mapping[str, int]) -> int | None:
    """check_limits' capacity without its details (None: no limit; refused when not above 0),
    `caps` being ("per_payment", cap) if set, then Limits.caps(): what a rule dry run asks a
    million times."""
    capacity = None
    for period, cap in caps:
        bound = cap if period == "per_payment" else cap - _used(spent, period)
        if capacity is None or bound < capacity:
            capacity = bound
    return capacity


def _used(spent: Mapping[str, int], period: str) -> int:
    # A refund of an older payment can make a period's net spending negative; it gives back
    # money, not a bigger cap: a day never allows more than its cap.
    return max(spent.get(period, 0), 0)


# --- parsing ------------------------------------------------------------------------------------

_SECTIONS = ("schedule", "categories", "merchants", "zone", "limits", "products")
_TIME = re.compile(r"(\d{2}):(\d{2})")
_MCC_SPEC = re.compile(r"(\d{4})(?:-(\d{4}))?")
_COUNTRY = re.compile(r"[A-Z]{2}")
_POSTCODE_PREFIX = re.compile(r"\d{1,5}")
_POSTCODE = re.compile(r"\d{5}")
_NETWORK_ID = re.compile(r"[A-Za-z0-9_-]+")


def _interpolate(message: Promise, params: Mapping[str, object]) -> str:
    return str(message) % params


# Error messages stay lazy, placeholders included: they are rendered in the language of
# whoever reads them (the admin's), not of whatever parsed the rules.
_fmt = lazy(_interpolate, str)


T = TypeVar("T")


def _or_none(value: JSONValue, parse: Callable[[JSONValue], T]) -> T | None:
    return None if value is None else parse(value)


def _mapping(value: JSONValue, path: str, keys: tuple[str, ...]) -> JSONDict:
    """`value` as a JSON object with only these keys; path "" is the document itself."""
    if not isinstance(value, dict):
        raise RulesError(path or "rules", _("Expected an object with named settings."))
    for key in value:
        if key not in keys:
            raise RulesError(
                f"{path}.{key}" if path else key,
                _fmt(
                    _("Unknown setting “%(key)s”. The settings here are: %(keys)s."),
                    {"key": key, "keys": ", ".join(keys)},
                ),
            )
    return value


def _list(value: JSONValue, path: str) -> JSONList:
    if not isinstance(value, list):
        raise RulesError(path, _("Expected a list."))
    return value


def _bool(value: JSONValue, path: str) -> bool:
    if not isinstance(value, bool):
        raise RulesError(path, _("Expected true or false."))
    return value


def _strings(value: JSONValue, path: str) -> list[str]:
    items = _list(value, path)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise RulesError(f"{path}[{i}]", _("Expected text, in quotes."))
    return items


def _parse_schedule(data: JSONValue) -> Schedule:
    data = _mapping(data, "schedule", ("weekdays", "hours", "refuse_public_holidays"))
    weekdays = ALL_WEEKDAYS
    if "weekdays" in data:
        days = _list(data["weekdays"], "schedule.weekdays")
        for i, day in enumerate(days):
            if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
                raise RulesError(
                    f"schedule.weekdays[{i}]",
                    _("Days are numbers from 0 (Monday) to 6 (Sunday)."),
                )
        if not days:
            raise RulesError(
                "schedule.weekdays",
                _("Choose at least one day, or remove the setting to allow every day."),
            )
        weekdays = frozenset(days)
    hours = []
    for i, span in enumerate(_list(data.get("hours", []), "schedule.hours")):
        path = f"schedule.hours[{i}]"
        if not (isinstance(span, list) and len(span) == 2):
            raise RulesError(path, _('Write a time range as two times, like ["08:00", "12:30"].'))
        start, end = (_minutes(value, f"{path}[{j}]") for j, value in enumerate(span))
        if end <= start:
            raise RulesError(
                path,
                _(
                    "A time range must end after it starts. Split a range that goes past "
                    "midnight in two."
                ),
            )
        hours.append((start, end))
    refuse_holidays = _bool(
        data.get("refuse_public_holidays", False), "schedule.refuse_public_holidays"
    )
    return Schedule(weekdays, tuple(sorted(hours)), refuse_holidays)


def _minutes(value: JSONValue, path: str) -> int:
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    hour, minute = (int(match[1]), int(match[2])) if match else (-1, -1)
    if not (0 <= hour <= 24 and 0 <= minute <= 59) or (hour == 24 and minute):
        raise RulesError(
            path,
            _fmt(
                _("“%(value)s” is not a time. Write it as HH:MM, from 00:00 to 24:00."),
                {"value": value},
            ),
        )
    return hour * 60 + minute


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_categories(data: JSONValue) -> CategoryRule:
    keys = ("allow_groups", "allow_mccs", "block_groups", "block_mccs", "allow_cash")
    data = _mapping(data, "categories", keys)
    allow_cash = _bool(data.get("allow_cash", False), "categories.allow_cash")
    allow_mccs = _mcc_ranges(data.get("allow_mccs", []), "categories.allow_mccs")
    for i, r in enumerate(allow_mccs):
        if len(r) == 1 and str(r) in categories.CASH_MCCS and not allow_cash:
            raise RulesError(
                f"categories.allow_mccs[{i}]",
                _fmt(
                    _("%(mcc)s is a cash code. Set allow_cash to true to allow cash."),
                    {"mcc": str(r)},
                ),
            )
    return CategoryRule(
        allow_groups=_groups(data.get("allow_groups", []), "categories.allow_groups"),
        allow_mccs=allow_mccs,
        block_groups=_groups(data.get("block_groups", []), "categories.block_groups"),
        block_mccs=_mcc_ranges(data.get("block_mccs", []), "categories.block_mccs"),
        allow_cash=allow_cash,
    )


def _parse_products(data: JSONValue) -> frozenset[str]:
    data = _mapping(data, "products", ("allow",))
    names = _strings(data.get("allow", []), "products.allow")
    for i, name in enumerate(names):
        if name not in PRODUCT_FAMILIES:
            raise RulesError(
                f"products.allow[{i}]",
                _fmt(
                    _("Unknown product family “%(name)s”. The families are: %(families)s."),
                    {"name": name, "families": ", ".join(PRODUCT_FAMILIES)},
                ),
            )
    return frozenset(names)


def _describe_products(products: frozenset[str] | None) -> list[str]:
    if products is None:
        return []
    if not products:
        return [gettext("When the shop lists the basket, pays for no product.")]
    return [
        gettext("When the shop lists the basket, pays only for: %(products)s.")
        % {"products": categories.format_products(tuple(products))}
    ]


def _groups(value: JSONValue, path: str) -> tuple[str, ...]:
    names = _strings(value, path)
    for i, name in enumerate(names):
        if name not in categories.GROUPS:
            raise RulesError(
                f"{path}[{i}]",
                _fmt(
                    _("Unknown category group “%(name)s”. The groups are: %(groups)s."),
                    {"name": name, "groups": ", ".join(sorted(categories.GROUPS))},
                ),
            )
    return tuple(dict.fromkeys(names))


def _mcc_ranges(value: JSONValue, path: str) -> tuple[MccRange, ...]:
    ranges = []
    for i, spec in enumerate(_strings(value, path)):
        match = _MCC_SPEC.fullmatch(spec.strip())
        if not match:
            raise RulesError(
                f"{path}[{i}]",
                _fmt(
                    _(
                        "“%(value)s” is not a merchant category code. Write 4 digits, like 5411, "
                        "or a range, like 5811-5814."
                    ),
                    {"value": spec},
                ),
            )
        first, last = match[1], match[2]
        if last is None:
            # A single code must exist; a range may span codes not assigned (yet).
            if not categories.is_known_mcc(first):
                raise RulesError(
                    f"{path}[{i}]",
                    _fmt(_("%(value)s is not a known merchant category code."), {"value": first}),
                )
            ranges.append(MccRange.single(first))
        elif int(last) < int(first):
            raise RulesError(
                f"{path}[{i}]",
                _fmt(_("The range “%(value)s” must start with the smaller code."), {"value": spec}),
            )
        else:
            ranges.append(MccRange(int(first), int(last)))
    return tuple(ranges)


def _parse_merchants(data: JSONValue) -> MerchantRule:
    data = _mapping(data, "merchants", ("allow", "deny"))
    allow = None
    if data.get("allow") is not None:
        allow = _merchant_ids(data["allow"], "merchants.allow")
        if not allow:
            raise RulesError(
                "merchants.allow",
                _("Name at least one merchant, or remove the list to accept every merchant."),
            )
    deny, network_ids, shops = _deny_list(data.get("deny") or [], "merchants.deny")
    if allow and allow & deny:
        raise RulesError(
            "merchants.deny",
            _fmt(
                _("A merchant cannot be both allowed and denied: %(ids)s."),
                {"ids": ", ".join(str(i) for i in sorted(allow & deny))},
            ),
        )
    return MerchantRule(allow, deny, network_ids, shops)


def _merchant_ids(value: JSONValue, path: str) -> frozenset[int]:
    return frozenset(
        _merchant_id(item, f"{path}[{i}]") for i, item in enumerate(_list(value, path))
    )


def _merchant_id(value: JSONValue, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise RulesError(path, _("A merchant is named by its number (id)."))
    return value


def _deny_list(
    value: JSONValue, path: str
) -> tuple[frozenset[int], frozenset[str], frozenset[tuple[str, str]]]:
    """A deny list's merchant ids, network ids and (name key, postcode) pairs."""
    ids, network_ids, shops = set(), set(), set()
    for i, entry in enumerate(_list(value, path)):
        where = f"{path}[{i}]"
        if isinstance(entry, dict) and "network_id" in entry:
            entry = _mapping(entry, where, ("network_id",))
            network_id = entry["network_id"]
            if not isinstance(network_id, str) or not _NETWORK_ID.fullmatch(network_id):
                raise RulesError(
                    f"{where}.network_id",
                    _(
                        "Write the card network's id of the shop, in letters and digits "
                        "without spaces. To name a shop by its name, add its postcode."
                    ),
                )
            network_ids.add(network_id)
        elif isinstance(entry, dict):
            entry = _mapping(entry, where, ("name", "postcode"))
            name, postcode = entry.get("name"), entry.get("postcode")
            if not isinstance(name, str) or not shop_name_key(name):
                raise RulesError(f"{where}.name", _("Write the shop's name, as on its receipts."))
            if not isinstance(postcode, str) or not _POSTCODE.fullmatch(postcode):
                raise RulesError(f"{where}.postcode", _("Write the shop's postcode: 5 digits."))
            shops.add((shop_name_key(name), postcode))
        else:
            ids.add(_merchant_id(entry, where))
    return frozenset(ids), frozenset(network_ids), frozenset(shops)


def _parse_zone(data: JSONValue) -> ZoneRule:
    keys = (
        "countries",
        "departements",
        "departements_with_neighbours",
        "communes",
        "postcode_prefixes",
        "circles",
    )
    data = _mapping(data, "zone", keys)
    countries = _codes(
        data.get("countries", []),
        "zone.countries",
        lambda code: bool(_COUNTRY.fullmatch(code)),
        _("“%(value)s” is not a country code. Write two capital letters, like FR."),
    )
    departements, with_neighbours = (
        _codes(
            data.get(key, []),
            f"zone.{key}",
            lambda code: code in geo.TERRITORY_NAMES,
            _(
                "“%(value)s” is not a French département. Write its number in quotes, "
                'like "38", "2A" or "974".'
            ),
        )
        for key in ("departements", "departements_with_neighbours")
    )
    communes = _codes(
        data.get("communes", []),
        "zone.communes",
        lambda code: geo.departement_from_commune(code) is not None and code == code.upper(),
        _("“%(value)s” is not an INSEE commune code, like 38185 or 2A004."),
    )
    prefixes = _codes(
        data.get("postcode_prefixes", []),
        "zone.postcode_prefixes",
        lambda code: bool(_POSTCODE_PREFIX.fullmatch(code)),
        _("“%(value)s” is not the start of a French postcode. Write 1 to 5 digits."),
    )
    circles = tuple(
        _circle(c, f"zone.circles[{i}]")
        for i, c in enumerate(_list(data.get("circles", []), "zone.circles"))
    )
    if not (countries or departements or with_neighbours or communes or prefixes or circles):
        raise RulesError(
            "zone",
            _("A zone must name at least one place. Remove the zone to allow every place."),
        )
    return ZoneRule(
        countries,
        departements,
        communes,
        prefixes,
        circles,
        departements_with_neighbours=with_neighbours,
    )


def _codes(
    value: JSONValue, path: str, valid: Callable[[str], bool], message: Promise
) -> tuple[str, ...]:
    items = _strings(value, path)
    for i, code in enumerate(items):
        if not valid(code):
            raise RulesError(f"{path}[{i}]", _fmt(message, {"value": code}))
    return tuple(dict.fromkeys(items))


def _circle(data: JSONValue, path: str) -> Circle:
    data = _mapping(data, path, ("lat", "lon", "radius_km"))
    lat, lon, radius = (
        _number(data.get(key), f"{path}.{key}") for key in ("lat", "lon", "radius_km")
    )
    if not -90 <= lat <= 90:
        raise RulesError(f"{path}.lat", _("A latitude is between -90 and 90."))
    if not -180 <= lon <= 180:
        raise RulesError(f"{path}.lon", _("A longitude is between -180 and 180."))
    if radius <= 0:
        raise RulesError(f"{path}.radius_km", _("The radius must be more than 0 km."))
    return Circle(float(lat), float(lon), float(radius))


def _number(value: JSONValue, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RulesError(path, _("Expected a number."))
    return value


def _parse_limits(data: JSONValue) -> Limits:
    data = _mapping(data, "limits", ("per_payment", *PERIODS))
    for key, value in data.items():
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value <= 0
        ):
            raise RulesError(
                f"limits.{key}",
                _(
                    "A limit is an amount in cents, more than 0 (2500 is 25.00), "
                    "or null for no limit."
                ),
            )
    return Limits(**data)


# --- plain words --------------------------------------------------------------------------------


def _describe_validity(rules: PocketRules) -> list[str]:
    start, end = rules.valid_from, rules.valid_until
    if start and end:
        return [
            gettext("Can be used from %(start)s until %(end)s.")
            % {"start": format_instant(start), "end": format_until(end)}
        ]
    if start:
        return [gettext("Can be used from %(start)s.") % {"start": format_instant(start)}]
    if end:
        return [gettext("Can be used until %(end)s.") % {"end": format_until(end)}]
    return []


def _describe_schedule(schedule: Schedule | None) -> list[str]:
    if schedule is None:
        return []
    lines = []
    if schedule.weekdays != ALL_WEEKDAYS:
        lines.append(
            gettext("Only on these days: %(days)s.")
            % {"days": codes.format_weekdays(sorted(schedule.weekdays))}
        )
    if schedule.hours:
        hours = [[_hhmm(start), _hhmm(end)] for start, end in schedule.hours]
        lines.append(
            gettext("Only at these times: %(hours)s.") % {"hours": codes.format_hours(hours)}
        )
    if schedule.refuse_public_holidays:
        lines.append(gettext("Not on public holidays."))
    return lines


def _mcc_phrase(r: MccRange) -> str:
    if len(r) == 1:
        return gettext("shops with category code %(code)s") % {"code": r}
    return gettext("shops with category codes %(first)04d to %(last)04d") % {
        "first": r.first,
        "last": r.last,
    }


def _kinds(groups: tuple[str, ...], ranges: tuple[MccRange, ...]) -> str:
    phrases = [str(categories.GROUP_LABELS[name]) for name in groups]
    return ", ".join(phrases + [_mcc_phrase(r) for r in ranges])


def _describe_categories(rule: CategoryRule) -> list[str]:
    lines = []
    if rule.has_allow_list:
        lines.append(
            gettext("Only in: %(kinds)s.") % {"kinds": _kinds(rule.allow_groups, rule.allow_mccs)}
        )
    if rule.block_groups or rule.block_mccs:
        lines.append(
            gettext("Not in: %(kinds)s.") % {"kinds": _kinds(rule.block_groups, rule.block_mccs)}
        )
    if rule.allow_cash:
        lines.append(gettext("Can also be used to get cash."))
    return lines


def _describe_merchants(rule: MerchantRule) -> list[str]:
    lines = []
    if rule.allow is not None:
        count = len(rule.allow)
        lines.append(
            ngettext(
                "Only in %(count)d partner shop.",
                "Only in %(count)d partner shops.",
                count,
            )
            % {"count": count}
        )
    if rule.deny_count:
        count = rule.deny_count
        lines.append(
            ngettext(
                "Not in %(count)d shop excluded by the funder.",
                "Not in %(count)d shops excluded by the funder.",
                count,
            )
            % {"count": count}
        )
    return lines


def _describe_zone(rule: ZoneRule | None) -> list[str]:
    if rule is None:
        return []
    places = [
        codes.format_places(
            {
                "countries": rule.countries,
                "departements": rule.departements,
                "departements_with_neighbours": rule.departements_with_neighbours,
            }
        )
    ]
    places += [gettext("the town with INSEE code %(code)s") % {"code": c} for c in rule.communes]
    places += [
        gettext("postcodes starting with %(prefix)s") % {"prefix": p}
        for p in rule.postcode_prefixes
    ]
    places += [
        gettext("within %(radius)s km of the place shown on the map in the app")
        % {"radius": number_format(c.radius_km, decimal_pos=None if c.radius_km % 1 else 0)}
        for c in rule.circles
    ]
    return [gettext("Only in this area: %(places)s.") % {"places": ", ".join(filter(None, places))}]


_LIMIT_LINES = {
    "per_payment": _("At most %(amount)s per payment."),
    "day": _("At most %(amount)s per day."),
    "week": _("At most %(amount)s per week, from Monday to Sunday."),
    "month": _("At most %(amount)s per calendar month."),
    "year": _("At most %(amount)s per calendar year."),
    "validity": _("At most %(amount)s in all."),
}


def _describe_limits(limits: Limits, currency: str) -> list[str]:
    caps = [("per_payment", limits.per_payment), *limits.caps()]
    return [
        str(_LIMIT_LINES[name]) % {"amount": format_money(cap, currency)}
        for name, cap in caps
        if cap is not None
    ]
