"""Rules documents: what parses, what is refused and which field the error points at."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.categories import MccRange
from engine.rules import (
    Circle,
    Limits,
    PocketRules,
    RulesError,
    merge_rules,
)

PARIS = ZoneInfo("Europe/Paris")

FULL = {
    "schedule": {
        "weekdays": [0, 1, 2, 3, 4, 5],
        "hours": [["14:00", "19:00"], ["08:00", "12:30"]],
        "refuse_public_holidays": True,
    },
    "categories": {
        "allow_groups": ["food"],
        "allow_mccs": ["5411", "5811-5814"],
        "block_groups": [],
        "block_mccs": ["5921"],
        "allow_cash": False,
    },
    "merchants": {"allow": [12, 15], "deny": [7]},
    "zone": {
        "countries": ["FR"],
        "departements": ["38", "2A", "974"],
        "communes": ["38185"],
        "postcode_prefixes": ["380"],
        "circles": [{"lat": 45.19, "lon": 5.72, "radius_km": 10}],
    },
    "limits": {
        "per_payment": 5000,
        "day": 2500,
        "week": None,
        "month": None,
        "year": None,
        "validity": None,
    },
}


def test_the_documented_example_parses():
    rules = PocketRules.from_dict(FULL)
    assert rules.schedule.weekdays == frozenset({0, 1, 2, 3, 4, 5})
    assert rules.schedule.hours == ((8 * 60, 12 * 60 + 30), (14 * 60, 19 * 60))
    assert rules.categories.allow_mccs == (MccRange(5411, 5411), MccRange(5811, 5814))
    assert rules.merchants.allow == frozenset({12, 15})
    assert rules.zone.circles == (Circle(45.19, 5.72, 10.0),)
    assert rules.limits == Limits(per_payment=5000, day=2500)


def test_empty_rules_restrict_nothing_but_cash():
    rules = PocketRules.from_dict({})
    assert rules.schedule is None
    assert rules.zone is None
    assert not rules.categories.has_allow_list
    assert not rules.categories.allow_cash


def test_a_null_section_means_no_such_rule():
    assert PocketRules.from_dict({"zone": None, "limits": None}) == PocketRules()


def test_merge_replaces_whole_top_level_sections():
    program = {"zone": {"departements": ["38"]}, "limits": {"day": 2500}}
    allocation = {"zone": {"communes": ["38185"]}, "schedule": None}
    assert merge_rules(program, allocation) == {
        "zone": {"communes": ["38185"]},
        "limits": {"day": 2500},
        "schedule": None,
    }


def test_merge_with_nothing():
    assert merge_rules({"limits": {"day": 1}}, {}) == {"limits": {"day": 1}}
    assert merge_rules(None, None) == {}


def test_validity_comes_from_the_columns():
    start = datetime(2027, 1, 1, tzinfo=PARIS)
    rules = PocketRules.from_dict({}, valid_from=start, valid_until=start + timedelta(days=90))
    assert rules.valid_from == start


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "rules"),
        ({"validity": {}}, "validity"),  # validity is not in the JSON
        ({"zones": {}}, "zones"),
        # schedule
        ({"schedule": []}, "schedule"),
        ({"schedule": {"days": [0]}}, "schedule.days"),
        ({"schedule": {"weekdays": [7]}}, "schedule.weekdays[0]"),
        ({"schedule": {"weekdays": [0, -1]}}, "schedule.weekdays[1]"),
        ({"schedule": {"weekdays": ["monday"]}}, "schedule.weekdays[0]"),
        ({"schedule": {"weekdays": [True]}}, "schedule.weekdays[0]"),
        ({"schedule": {"weekdays": []}}, "schedule.weekdays"),
        ({"schedule": {"hours": [["8:00", "12:00"]]}}, "schedule.hours[0][0]"),
        ({"schedule": {"hours": [["08:00", "25:00"]]}}, "schedule.hours[0][1]"),
        ({"schedule": {"hours": [["08:60", "12:00"]]}}, "schedule.hours[0][0]"),
        ({"schedule": {"hours": [["08:00", "24:30"]]}}, "schedule.hours[0][1]"),
        ({"schedule": {"hours": [["22:00", "02:00"]]}}, "schedule.hours[0]"),
        ({"schedule": {"hours": [["08:00", "08:00"]]}}, "schedule.hours[0]"),
        ({"schedule": {"hours": [["08:00"]]}}, "schedule.hours[0]"),
        ({"schedule": {"hours": "08:00-12:00"}}, "schedule.hours"),
        ({"schedule": {"refuse_public_holidays": "yes"}}, "schedule.refuse_public_holidays"),
        # categories
        ({"categories": {"allow_mccs": ["541"]}}, "categories.allow_mccs[0]"),
        ({"categories": {"allow_mccs": [5411]}}, "categories.allow_mccs[0]"),
        ({"categories": {"allow_mccs": ["5411", "0000"]}}, "categories.allow_mccs[1]"),
        ({"categories": {"allow_mccs": ["5814-5811"]}}, "categories.allow_mccs[0]"),
        ({"categories": {"allow_mccs": ["5811-581"]}}, "categories.allow_mccs[0]"),
        ({"categories": {"allow_mccs": ["6011"]}}, "categories.allow_mccs[0]"),  # cash
        ({"categories": {"block_mccs": ["abcd"]}}, "categories.block_mccs[0]"),
        ({"categories": {"allow_groups": ["groceries"]}}, "categories.allow_groups[0]"),
        ({"categories": {"block_groups": ["food", "vices"]}}, "categories.block_groups[1]"),
        ({"categories": {"allow_cash": 1}}, "categories.allow_cash"),
        ({"categories": {"allow": ["food"]}}, "categories.allow"),
        # merchants
        ({"merchants": {"allow": []}}, "merchants.allow"),
        ({"merchants": {"allow": ["12"]}}, "merchants.allow[0]"),
        ({"merchants": {"deny": [0]}}, "merchants.deny[0]"),
        ({"merchants": {"allow": [12], "deny": [12]}}, "merchants.deny"),
        ({"merchants": {"only": [12]}}, "merchants.only"),
        # zone
        ({"zone": {}}, "zone"),
        ({"zone": {"countries": ["fr"]}}, "zone.countries[0]"),
        ({"zone": {"countries": ["FRA"]}}, "zone.countries[0]"),
        ({"zone": {"departements": ["20"]}}, "zone.departements[0]"),  # Corsica is 2A / 2B
        ({"zone": {"departements": ["96"]}}, "zone.departements[0]"),
        ({"zone": {"departements": [38]}}, "zone.departements[0]"),
        ({"zone": {"departements": ["38", "2a"]}}, "zone.departements[1]"),
        ({"zone": {"communes": ["3818"]}}, "zone.communes[0]"),
        ({"zone": {"communes": ["20004"]}}, "zone.communes[0]"),
        ({"zone": {"postcode_prefixes": ["38-"]}}, "zone.postcode_prefixes[0]"),
        ({"zone": {"postcode_prefixes": ["380000"]}}, "zone.postcode_prefixes[0]"),
        ({"zone": {"circles": [{"lat": 95, "lon": 5, "radius_km": 1}]}}, "zone.circles[0].lat"),
        ({"zone": {"circles": [{"lat": 45, "lon": 181, "radius_km": 1}]}}, "zone.circles[0].lon"),
        (
            {"zone": {"circles": [{"lat": 45, "lon": 5, "radius_km": 0}]}},
            "zone.circles[0].radius_km",
        ),
        (
            {"zone": {"circles": [{"lat": 45, "lon": 5, "radius_km": -2}]}},
            "zone.circles[0].radius_km",
        ),
        ({"zone": {"circles": [{"lat": 45, "lon": 5}]}}, "zone.circles[0].radius_km"),
        ({"zone": {"circles": [{"lat": "45", "lon": 5, "radius_km": 1}]}}, "zone.circles[0].lat"),
        ({"zone": {"circles": [{"lat": 45, "lon": 5, "r": 1}]}}, "zone.circles[0].r"),
        # limits
        ({"limits": {"day": -1}}, "limits.day"),
        ({"limits": {"day": 0}}, "limits.day"),
        ({"limits": {"per_payment": 12.5}}, "limits.per_payment"),
        ({"limits": {"week": "2500"}}, "limits.week"),
        ({"limits": {"month": True}}, "limits.month"),
        ({"limits": {"daily": 2500}}, "limits.daily"),
    ],
)
def test_invalid_rules_say_which_field(data, field):
    with pytest.raises(RulesError) as error:
        PocketRules.from_dict(data)
    assert error.value.field == field
    assert str(error.value.message)  # a message for the admin form, rendered on demand


def test_an_unknown_key_error_lists_the_known_ones():
    with pytest.raises(RulesError) as error:
        PocketRules.from_dict({"limits": {"daily": 2500}})
    assert "per_payment, day, week, month, year, validity" in str(error.value.message)


def test_a_range_may_span_codes_not_assigned():
    # 5810 and 5815-5816 are not all assigned codes, yet a range across them is fine.
    rules = PocketRules.from_dict({"categories": {"allow_mccs": ["5810-5816"]}})
    assert rules.categories.allow_mccs == (MccRange(5810, 5816),)


def test_a_cash_code_can_be_listed_when_cash_is_allowed():
    rules = PocketRules.from_dict({"categories": {"allow_mccs": ["6011"], "allow_cash": True}})
    assert rules.categories.allow_cash


def test_overseas_collectivities_are_accepted_as_zones():
    rules = PocketRules.from_dict({"zone": {"departements": ["977", "978", "975"]}})
    assert rules.zone.departements == ("977", "978", "975")


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "field"),
    [
        (datetime(2027, 1, 1), None, "valid_from"),
        (None, datetime(2027, 1, 1), "valid_until"),
        (datetime(2027, 1, 2, tzinfo=PARIS), datetime(2027, 1, 1, tzinfo=PARIS), "valid_until"),
        (datetime(2027, 1, 1, tzinfo=PARIS), datetime(2027, 1, 1, tzinfo=PARIS), "valid_until"),
    ],
)
def test_invalid_validity(valid_from, valid_until, field):
    with pytest.raises(RulesError) as error:
        PocketRules.from_dict({}, valid_from=valid_from, valid_until=valid_until)
    assert error.value.field == field


def test_rules_error_is_a_value_error_with_field_and_message():
    error = RulesError("limits.day", "Bad.")
    assert isinstance(error, ValueError)
    assert str(error) == "limits.day: Bad."
