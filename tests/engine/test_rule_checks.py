"""One table of cases per rule, with its edges."""

from datetime import UTC, datetime, timedelta

import pytest

from core.time import PARIS
from engine import geo
from engine.periods import Usage
from engine.request import MerchantPlace
from engine.rules import (
    PocketRules,
    check_categories,
    check_limits,
    check_merchant,
    check_schedule,
    check_validity,
    check_zone,
)


def paris(*args, fold=0):
    return datetime(*args, tzinfo=PARIS, fold=fold)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def place(**kwargs):
    return MerchantPlace(**{"name": "Shop", "mcc": "5411", "country": "FR", **kwargs})


# --- validity ------------------------------------------------------------------------------------

SPRING_END = paris(2027, 3, 28, 3, 0)  # the clocks jump from 02:00 to 03:00 that night
AUTUMN_END = paris(2027, 10, 31, 2, 30)  # 02:30 happens twice; fold=0 is the first (UTC+2)


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "at", "reason"),
    [
        # the first instant of validity is included, the one before is not
        (paris(2027, 3, 1), None, paris(2027, 3, 1), None),
        (paris(2027, 3, 1), None, paris(2027, 3, 1) - timedelta(microseconds=1), "not_yet"),
        (paris(2027, 3, 1), None, utc(2027, 2, 28, 23, 0), None),  # midnight in Paris
        (paris(2027, 3, 1), None, utc(2027, 2, 28, 22, 59, 59), "not_yet"),
        # valid_until is exclusive. On the spring-forward night 03:00 Paris is 01:00 UTC, and the
        # last valid second is 01:59:59 Paris winter time: 02:xx never happens that night.
        (None, SPRING_END, utc(2027, 3, 28, 0, 59, 59), None),
        (None, SPRING_END, paris(2027, 3, 28, 1, 59, 59), None),
        (None, SPRING_END, utc(2027, 3, 28, 1, 0), "expired"),
        (None, SPRING_END, SPRING_END, "expired"),
        # On the autumn night the second 02:15 (winter time) comes after the first 02:30.
        (None, AUTUMN_END, paris(2027, 10, 31, 2, 29, 59), None),
        (None, AUTUMN_END, utc(2027, 10, 31, 0, 30), "expired"),
        (None, AUTUMN_END, paris(2027, 10, 31, 2, 15, fold=1), "expired"),
        # a window with both ends
        (paris(2027, 1, 1), paris(2027, 4, 1), paris(2027, 3, 31, 23, 59, 59), None),
        (paris(2027, 1, 1), paris(2027, 4, 1), paris(2027, 4, 1), "expired"),
        (None, None, paris(2099, 1, 1), None),
    ],
)
def test_check_validity(valid_from, valid_until, at, reason):
    rules = PocketRules(valid_from=valid_from, valid_until=valid_until)
    verdict = check_validity(rules, at)
    expected = {None: None, "not_yet": "aid_not_yet_valid", "expired": "aid_expired"}[reason]
    assert verdict.reason == expected
    assert verdict.eligible == (expected is None)


def test_expired_verdict_tells_the_end_of_validity():
    verdict = check_validity(PocketRules(valid_until=SPRING_END), SPRING_END)
    assert verdict.details == {"valid_until": "2027-03-28T03:00:00+02:00"}


# --- schedule ------------------------------------------------------------------------------------

MORNINGS = {"hours": [["08:00", "12:30"]]}
WORKDAYS = {"weekdays": [0, 1, 2, 3, 4]}
HOLIDAYS_OFF = {"refuse_public_holidays": True}


@pytest.mark.parametrize(
    ("schedule", "at", "departement", "eligible"),
    [
        # hour ranges include their start and exclude their end, in Paris time
        (MORNINGS, paris(2027, 6, 15, 8, 0), None, True),
        (MORNINGS, paris(2027, 6, 15, 7, 59, 59), None, False),
        (MORNINGS, paris(2027, 6, 15, 12, 29, 59), None, True),
        (MORNINGS, paris(2027, 6, 15, 12, 30), None, False),
        (MORNINGS, utc(2027, 6, 15, 6, 0), "38", True),  # 08:00 summer time
        (MORNINGS, utc(2027, 1, 12, 6, 30), "38", False),  # 07:30 winter time
        (MORNINGS, utc(2027, 1, 12, 7, 0), "38", True),  # 08:00 winter time
        # on the spring-forward day 08:00 Paris is 06:00 UTC, the day before 07:00 UTC
        (MORNINGS, utc(2027, 3, 28, 6, 0), None, True),
        (MORNINGS, utc(2027, 3, 27, 6, 59, 59), None, False),
        (
            {"hours": [["08:00", "12:30"], ["14:00", "19:00"]]},
            paris(2027, 6, 15, 13, 0),
            None,
            False,
        ),
        (
            {"hours": [["08:00", "12:30"], ["14:00", "19:00"]]},
            paris(2027, 6, 15, 14, 0),
            None,
            True,
        ),
        ({"hours": [["20:00", "24:00"]]}, paris(2027, 6, 15, 23, 59, 59), None, True),
        ({"hours": [["00:00", "06:00"]]}, paris(2027, 6, 16, 0, 0), None, True),
        # weekdays: 0 is Monday
        (WORKDAYS, paris(2027, 6, 14, 10, 0), None, True),  # Monday
        (WORKDAYS, paris(2027, 6, 18, 23, 59), None, True),  # Friday
        (WORKDAYS, paris(2027, 6, 19, 0, 0), None, False),  # Saturday
        (WORKDAYS, utc(2027, 6, 18, 22, 30), None, False),  # Saturday 00:30 in Paris
        # French public holidays
        (HOLIDAYS_OFF, paris(2027, 7, 14, 10, 0), "38", False),  # national day
        (HOLIDAYS_OFF, paris(2027, 3, 29, 10, 0), "38", False),  # Easter Monday
        (HOLIDAYS_OFF, paris(2027, 3, 29, 10, 0), None, False),  # unknown place: France
        (HOLIDAYS_OFF, paris(2027, 7, 15, 10, 0), "38", True),
        ({}, paris(2027, 7, 14, 10, 0), "38", True),  # holidays allowed unless refused
        # Alsace-Moselle only: Good Friday and 26 December
        (HOLIDAYS_OFF, paris(2027, 3, 26, 10, 0), "57", False),
        (HOLIDAYS_OFF, paris(2027, 3, 26, 10, 0), "67", False),
        (HOLIDAYS_OFF, paris(2027, 3, 26, 10, 0), "38", True),
        (HOLIDAYS_OFF, paris(2028, 12, 26, 10, 0), "68", False),
        (HOLIDAYS_OFF, paris(2028, 12, 26, 10, 0), "75", True),
        # overseas: the local calendar and the local clock
        (HOLIDAYS_OFF, utc(2027, 12, 20, 8, 0), "974", False),  # abolition of slavery
        (HOLIDAYS_OFF, utc(2027, 12, 20, 8, 0), "38", True),
        (MORNINGS, utc(2027, 6, 15, 4, 30), "974", True),  # 08:30 in La Réunion
        (MORNINGS, utc(2027, 6, 15, 4, 30), "38", False),  # 06:30 in Grenoble
        (MORNINGS, utc(2027, 6, 15, 12, 0), "971", True),  # 08:00 in Guadeloupe
    ],
)
def test_check_schedule(schedule, at, departement, eligible):
    rules = PocketRules.from_dict({"schedule": schedule})
    verdict = check_schedule(rules.schedule, at, departement)
    assert verdict.eligible == eligible
    assert verdict.reason == (None if eligible else "outside_allowed_hours")


def test_no_schedule_allows_any_time():
    assert check_schedule(None, paris(2027, 7, 14, 3, 0), "38").eligible


def test_schedule_refusal_tells_the_allowed_days_and_hours():
    rules = PocketRules.from_dict({"schedule": {**WORKDAYS, **MORNINGS, **HOLIDAYS_OFF}})
    verdict = check_schedule(rules.schedule, paris(2027, 7, 14, 10, 0), "38")
    assert verdict.details == {
        "weekdays": [0, 1, 2, 3, 4],
        "hours": [["08:00", "12:30"]],
        "public_holiday": True,
    }


# --- categories ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "mcc", "cause"),
    [
        # a range includes both its ends
        ({"allow_mccs": ["5811-5814"]}, "5811", None),
        ({"allow_mccs": ["5811-5814"]}, "5814", None),
        ({"allow_mccs": ["5811-5814"]}, "5810", "not_allowed"),
        ({"allow_mccs": ["5811-5814"]}, "5815", "not_allowed"),
        ({"allow_groups": ["food"]}, "5462", None),
        ({"allow_groups": ["food"]}, "5812", "not_allowed"),
        ({"allow_groups": ["food"], "allow_mccs": ["5812"]}, "5812", None),
        # no allow list: everything but cash
        ({}, "5411", None),
        ({}, "7011", None),
        ({}, "6010", "cash"),
        ({}, "6011", "cash"),
        ({}, "6051", "cash"),
        ({}, "6540", "cash"),
        ({}, "4829", "cash"),
        ({"allow_cash": True}, "6011", None),
        ({"allow_cash": True, "allow_groups": ["food"]}, "6011", None),
        ({"allow_cash": True, "allow_groups": ["food"]}, "5812", "not_allowed"),
        # a block beats an allow
        ({"allow_groups": ["food"], "block_mccs": ["5411"]}, "5411", "blocked"),
        ({"allow_mccs": ["5000-5999"], "block_mccs": ["5921"]}, "5921", "blocked"),
        ({"allow_mccs": ["5000-5999"], "block_mccs": ["5921"]}, "5920", None),
        ({"allow_cash": True, "block_mccs": ["6011"]}, "6011", "blocked"),
        ({"block_groups": ["alcohol_tobacco_betting"]}, "5921", "blocked"),
        ({"block_groups": ["alcohol_tobacco_betting"]}, "5411", None),
    ],
)
def test_check_categories(rule, mcc, cause):
    rules = PocketRules.from_dict({"categories": rule})
    verdict = check_categories(rules.categories, mcc)
    assert verdict.eligible == (cause is None)
    if cause:
        assert verdict.reason == "merchant_category_not_allowed"
        assert verdict.details["cause"] == cause
        assert verdict.details["mcc"] == mcc


def test_category_refusal_names_the_allowed_groups():
    rules = PocketRules.from_dict({"categories": {"allow_groups": ["food", "restaurants"]}})
    verdict = check_categories(rules.categories, "5732")
    assert verdict.details["allow_groups"] == ["food", "restaurants"]


# --- merchants -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "merchant_id", "cause"),
    [
        ({"allow": [12, 15]}, 12, None),
        ({"allow": [12, 15]}, 13, "not_listed"),
        ({"deny": [7]}, 7, "denied"),
        ({"deny": [7]}, 8, None),
        ({"deny": [7]}, None, None),
        ({"allow": [12], "deny": [7]}, 7, "denied"),
        ({}, None, None),
    ],
)
def test_check_merchant(rule, merchant_id, cause):
    rules = PocketRules.from_dict({"merchants": rule})
    verdict = check_merchant(rules.merchants, place(merchant_id=merchant_id))
    assert verdict.eligible == (cause is None)
    if cause:
        assert verdict.reason == "merchant_not_accepted"
        assert verdict.details == {"cause": cause}


# --- zone ----------------------------------------------------------------------------------------

CENTRE = (45.19, 5.72)  # Grenoble


def north_of_centre(km):
    """A point `km` north of CENTRE: along a meridian, distance is proportional to latitude."""
    return {
        "latitude": CENTRE[0] + km / geo.EARTH_RADIUS_KM * 57.29577951308232,
        "longitude": CENTRE[1],
    }


CIRCLE = {"circles": [{"lat": CENTRE[0], "lon": CENTRE[1], "radius_km": 10}]}


@pytest.mark.parametrize(
    ("zone", "merchant", "eligible"),
    [
        ({"departements": ["38"]}, {"postcode": "38000"}, True),
        ({"departements": ["38"]}, {"postcode": "73000"}, False),
        ({"departements": ["38"]}, {"commune_code": "38185"}, True),
        ({"departements": ["38"]}, {"postcode": "38000", "country": "DE"}, False),
        # Corsica
        ({"departements": ["2A"]}, {"postcode": "20000"}, True),
        ({"departements": ["2A"]}, {"postcode": "20200"}, False),
        ({"departements": ["2B"]}, {"postcode": "20200"}, True),
        ({"departements": ["2A"]}, {"commune_code": "2A004"}, True),
        ({"departements": ["2A"]}, {"commune_code": "2B033"}, False),
        # overseas
        ({"departements": ["971"]}, {"postcode": "97110"}, True),
        ({"departements": ["971"]}, {"commune_code": "97105"}, True),
        ({"departements": ["971"]}, {"postcode": "97133"}, False),  # Saint-Barthélemy
        ({"departements": ["977"]}, {"postcode": "97133"}, True),
        ({"departements": ["974"]}, {"postcode": "97400", "country": "RE"}, True),
        # countries: FR is the whole Republic, overseas included
        ({"countries": ["FR"]}, {}, True),  # no known place, but in France
        ({"countries": ["FR"]}, {"country": "RE"}, True),
        ({"countries": ["FR"]}, {"country": "DE"}, False),
        ({"countries": ["BE"]}, {"country": "BE"}, True),
        ({"countries": ["BE"]}, {}, False),
        # no known place is outside every zone narrower than a country
        ({"departements": ["38"]}, {}, False),
        ({"communes": ["38185"]}, {}, False),
        ({"postcode_prefixes": ["380"]}, {}, False),
        (CIRCLE, {}, False),
        # communes and postcode prefixes
        ({"communes": ["38185"]}, {"commune_code": "38185"}, True),
        ({"communes": ["38185"]}, {"postcode": "38000"}, True),  # 38000 is Grenoble's only
        ({"communes": ["38185"]}, {"postcode": "38400"}, False),  # Saint-Martin-d'Hères
        ({"postcode_prefixes": ["380"]}, {"postcode": "38000"}, True),
        ({"postcode_prefixes": ["380"]}, {"postcode": "38100"}, False),
        ({"postcode_prefixes": ["380"]}, {"postcode": "38000", "country": "DE"}, False),
        # circles: the radius is inclusive
        (CIRCLE, north_of_centre(0), True),
        (CIRCLE, north_of_centre(9.999), True),
        (CIRCLE, north_of_centre(10.001), False),
        # the union of the parts
        ({"departements": ["73"], **CIRCLE}, {"postcode": "38000", **north_of_centre(5)}, True),
        ({"departements": ["73"], **CIRCLE}, {"postcode": "73000"}, True),
        ({"departements": ["73"], **CIRCLE}, {"postcode": "38000", **north_of_centre(50)}, False),
    ],
)
def test_check_zone(zone, merchant, eligible):
    # A shop of ours; a card shop we do not know: tests/engine/test_unmatched_card_shop.py
    rules = PocketRules.from_dict({"zone": zone})
    verdict = check_zone(rules.zone, place(merchant_id=1, **merchant))
    assert verdict.eligible == eligible
    assert verdict.reason == (None if eligible else "outside_zone")


def test_circle_radius_is_inclusive_to_the_exact_distance():
    point = north_of_centre(7.3)
    distance = geo.haversine_km(*CENTRE, point["latitude"], point["longitude"])
    rule = PocketRules.from_dict(
        {"zone": {"circles": [{"lat": CENTRE[0], "lon": CENTRE[1], "radius_km": distance}]}}
    ).zone
    assert check_zone(rule, place(**point)).eligible


def test_no_zone_allows_anywhere():
    assert check_zone(None, place(country="JP")).eligible


def test_zone_refusal_says_the_zone_and_whether_the_place_was_known():
    rule = PocketRules.from_dict({"zone": {"departements": ["38"]}}).zone
    assert check_zone(rule, place()).details["unknown_location"] is True
    verdict = check_zone(rule, place(postcode="73000"))
    assert verdict.details["departements"] == ["38"]
    assert verdict.details["unknown_location"] is False


# --- limits --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "amount", "spent", "capacity", "limit"),
    [
        ({}, 10_000, {}, None, None),
        ({"per_payment": 5000}, 3000, {}, 5000, None),
        ({"per_payment": 5000}, 6000, {}, 5000, "per_payment"),
        ({"day": 2500}, 1000, {"day": 2000}, 500, "day"),
        ({"day": 2500}, 500, {"day": 2000}, 500, None),  # exactly what is left
        ({"day": 2500}, 100, {"day": 2500}, 0, "day"),  # nothing left: refused
        ({"day": 2500}, 100, {"day": 2600}, 0, "day"),
        ({"per_payment": 5000, "day": 2500, "week": 10_000}, 3000, {"week": 9000}, 1000, "week"),
        ({"month": 20_000, "year": 50_000}, 5000, {"month": 1000, "year": 49_000}, 1000, "year"),
        ({"validity": 10_000}, 1, {"validity": 10_000}, 0, "validity"),
        # ties go to the first limit in order
        ({"per_payment": 1000, "day": 1000}, 2000, {}, 1000, "per_payment"),
        # a refund of an older payment does not raise the cap
        ({"day": 2500}, 3000, {"day": -1000}, 2500, "day"),
    ],
)
def test_check_limits(limits, amount, spent, capacity, limit):
    rules = PocketRules.from_dict({"limits": limits})
    verdict = check_limits(rules.limits, amount, Usage(spent))
    if capacity == 0:
        assert not verdict.eligible
        assert verdict.reason == "limit_exceeded"
    else:
        assert verdict.eligible
        assert verdict.capacity == capacity
    assert verdict.details.get("limit") == limit


def test_limit_refusal_details_say_cap_and_use():
    rules = PocketRules.from_dict({"limits": {"day": 2500}})
    verdict = check_limits(rules.limits, 1000, Usage({"day": 2500}))
    assert verdict.details == {"limit": "day", "cap": 2500, "used": 2500}
