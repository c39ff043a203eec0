"""Merchant category codes: the named groups funders pick, the cash codes, and MCC ranges.

The groups and the cash list are data, in category_groups.toml next to this file, where each
choice is documented; their labels are here so that they go through translation.
"""

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import iso18245
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

_DATA = tomllib.loads(Path(__file__).with_name("category_groups.toml").read_text("utf-8"))

CASH_MCCS: frozenset[str] = frozenset(_DATA["cash"]["mccs"])
GROUPS: dict[str, frozenset[str]] = {
    name: frozenset(group["mccs"]) for name, group in _DATA["groups"].items()
}

# How the beneficiary reads a group: a plural noun phrase that fits "Only in: %(kinds)s."
GROUP_LABELS: dict[str, Promise] = {
    "food": _("food shops"),
    "restaurants": _("restaurants"),
    "health": _("pharmacies and health care"),
    "transport": _("public transport and taxis"),
    "fuel": _("fuel and charging stations"),
    "energy": _("energy and heating suppliers"),
    "clothing": _("clothing and shoe shops"),
    "school": _("bookshops, stationers and schools"),
    "sport": _("sports shops and clubs"),
    "culture": _("cinemas, shows, museums, books and music"),
    "home": _("furniture, appliance and hardware shops"),
    "alcohol_tobacco_betting": _("bars, off-licences, tobacconists and betting"),
}

# A basket line's product family (engine.request.PRODUCT_FAMILIES), with its article so that it
# reads after "this aid does not pay for %(products)s" ("cette aide ne paie pas le tabac").
PRODUCT_LABELS: dict[str, Promise] = {
    "food": pgettext_lazy("product family", "food"),
    "alcohol": pgettext_lazy("product family", "alcohol"),
    "tobacco": pgettext_lazy("product family", "tobacco"),
    "hygiene": pgettext_lazy("product family", "hygiene products"),
    "school_supplies": pgettext_lazy("product family", "school supplies"),
    "transport": pgettext_lazy("product family", "transport"),
    "other": pgettext_lazy("product family", "other products"),
}


def format_products(families: list[str] | tuple[str, ...]) -> str:
    """ "food, hygiene products", in PRODUCT_LABELS order, in the active language."""
    return ", ".join(str(label) for name, label in PRODUCT_LABELS.items() if name in families)


MCC_COUNT = 10_000  # "0000".."9999": the size of the whole code space


@cache
def is_known_mcc(code: str) -> bool:
    """Whether iso18245 knows this code (cached: the package reads CSV files on each call)."""
    try:
        iso18245.get_mcc(code)
    except (iso18245.MCCNotFound, iso18245.InvalidMCC):
        return False
    return True


@dataclass(frozen=True, order=True)
class MccRange:
    """Codes `first`..`last`, both included; a single code is a range of one."""

    first: int
    last: int

    @classmethod
    def single(cls, code: str) -> "MccRange":
        return cls(int(code), int(code))

    def __contains__(self, mcc: object) -> bool:
        return isinstance(mcc, str) and mcc.isdigit() and self.first <= int(mcc) <= self.last

    def __len__(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        if self.first == self.last:
            return f"{self.first:04d}"
        return f"{self.first:04d}-{self.last:04d}"


# Cached: the groups are fixed data, and every payment asks for the ranges of each pocket's
# groups (a rule dry run asks a million times).
@cache
def group_ranges(names: tuple[str, ...]) -> tuple[MccRange, ...]:
    return tuple(MccRange.single(code) for name in names for code in sorted(GROUPS[name]))


@cache
def count_codes(ranges: tuple[MccRange, ...]) -> int:
    """How many distinct codes the ranges cover (overlaps counted once)."""
    total, covered_to = 0, -1
    for r in sorted(ranges):
        if r.last > covered_to:
            total += r.last - max(r.first, covered_to + 1) + 1
            covered_to = r.last
    return total
