"""decide(): checks in order, the split, the outcome and the reason it gives."""

import json
from datetime import datetime, timedelta

import pytest

from core.time import PARIS
from engine.decide import (
    MAX_AMOUNT,
    PocketState,
    decide,
    restrictiveness,
)
from engine.periods import Usage
from engine.request import AuthorizationRequest, MerchantPlace
from engine.rules import PocketRules

NOW = datetime(2027, 6, 15, 10, 0, tzinfo=PARIS)  # a Tuesday
GROCER_IN_GRENOBLE = MerchantPlace(
    name="Épicerie", mcc="5411", country="FR", merchant_id=12, postcode="38000"
)


def request(amount=1000, *, currency="EUR", merchant=GROCER_IN_GRENOBLE, partial=False):
    return AuthorizationRequest(
        amount=amount,
        currency=currency,
        merchant=merchant,
        at=NOW,
        channel="api",
        partial_allowed=partial,
    )


def pocket(
    pocket_id,
    available,
    rules=None,
    *,
    valid_from=None,
    valid_until=None,
    created_days_ago=30,
    spent=None,
    currency="EUR",
    name=None,
):
    return PocketState(
        pocket_id=pocket_id,
        name=name or f"Aid {pocket_id}",
        funder_name="Département de l'Isère",
        rules=PocketRules.from_dict(rules or {}, valid_from=valid_from, valid_until=valid_until),
        available=available,
        currency=currency,
        created_at=NOW - timedelta(days=created_days_ago),
        usage=Usage(spent or {}),
    )


FOOD = {"categories": {"allow_groups": ["food"]}}
IN_ISERE = {"zone": {"departements": ["38"]}}
IN_SAVOIE = {"zone": {"departements": ["73"]}}


def test_one_pocket_pays_in_full():
    outcome = decide(request(1000), [pocket(1, 5000)])
    assert outcome.status == "approved"
    assert outcome.approved_amount == 1000
    assert outcome.reason is None
    assert outcome.split == ((1, 1000),)


@pytest.mark.parametrize(
    ("amount", "reason"),
    [(0, "invalid_amount"), (-100, "invalid_amount"), (MAX_AMOUNT + 1, "amount_too_large")],
)
def test_bad_amounts_are_refused_before_any_pocket(amount, reason):
    outcome = decide(request(amount), [pocket(1, 5000)])
    assert (outcome.status, outcome.reason, outcome.verdicts) == ("declined", reason, ())


def test_the_largest_amount_is_accepted():
    assert decide(request(MAX_AMOUNT), [pocket(1, MAX_AMOUNT)]).status == "approved"


def test_a_wallet_without_pockets_has_no_aid():
    assert decide(request(), []).reason == "no_aid_available"


def test_pockets_in_another_currency_are_not_candidates():
    outcome = decide(request(currency="USD"), [pocket(1, 5000)])
    assert outcome.reason == "currency_not_supported"
    assert outcome.verdicts[0].verdict.reason == "currency_not_supported"


def test_a_pocket_in_another_currency_is_traced_but_not_used():
    outcome = decide(request(1000), [pocket(1, 5000, currency="XPF"), pocket(2, 5000)])
    assert outcome.split == ((2, 1000),)
    assert [v.verdict.reason for v in outcome.verdicts] == ["currency_not_supported", None]


def test_the_first_failing_check_is_the_reason():
    expired_and_outside = pocket(1, 5000, IN_SAVOIE, valid_until=NOW - timedelta(days=1))
    outcome = decide(request(), [expired_and_outside])
    assert outcome.reason == "aid_expired"


# --- the split order ------------------------------------------------------------------------


def test_the_pocket_that_expires_first_pays_first():
    later = pocket(1, 5000, valid_until=NOW + timedelta(days=60))
    sooner = pocket(2, 5000, valid_until=NOW + timedelta(days=10))
    never = pocket(3, 5000)
    outcome = decide(request(12_000), [never, later, sooner])
    assert outcome.split == ((2, 5000), (1, 5000), (3, 2000))


def test_the_most_restrictive_pays_first_at_equal_expiry():
    free = pocket(1, 5000)
    food = pocket(2, 5000, FOOD)
    food_in_isere = pocket(3, 5000, {**FOOD, **IN_ISERE})
    outcome = decide(request(12_000), [free, food, food_in_isere])
    assert outcome.split == ((3, 5000), (2, 5000), (1, 2000))


def test_a_narrower_zone_pays_first():
    france = pocket(1, 5000, {"zone": {"countries": ["FR"]}})
    isere = pocket(2, 5000, IN_ISERE)
    grenoble = pocket(3, 5000, {"zone": {"communes": ["38185"]}})
    merchant = MerchantPlace(
        name="Épicerie", mcc="5411", country="FR", postcode="38000", commune_code="38185"
    )
    outcome = decide(request(12_000, merchant=merchant), [france, isere, grenoble])
    assert [pid for pid, _ in outcome.split] == [3, 2, 1]


def test_partner_shops_are_narrower_than_any_category():
    food = pocket(1, 5000, FOOD)
    partners = pocket(2, 5000, {"merchants": {"allow": [12, 13]}})
    assert restrictiveness(partners.rules) < restrictiveness(food.rules)
    assert decide(request(1000), [food, partners]).split == ((2, 1000),)


def test_the_oldest_pays_first_then_the_smallest_id():
    new = pocket(1, 5000, created_days_ago=1)
    old = pocket(2, 5000, created_days_ago=100)
    twin = pocket(3, 5000, created_days_ago=100)
    outcome = decide(request(12_000), [new, twin, old])
    assert outcome.split == ((2, 5000), (3, 5000), (1, 2000))


def test_an_empty_pocket_is_skipped_in_the_split():
    outcome = decide(
        request(1000), [pocket(1, 0, valid_until=NOW + timedelta(days=1)), pocket(2, 5000)]
    )
    assert outcome.split == ((2, 1000),)


def test_limits_cap_a_pocket_and_the_next_pays_the_rest():
    capped = pocket(1, 10_000, {"limits": {"day": 2500}}, spent={"day": 2000})
    other = pocket(2, 10_000)
    outcome = decide(request(1000), [capped, other])
    assert outcome.status == "approved"
    assert outcome.split == ((1, 500), (2, 500))


# --- shortfalls -----------------------------------------------------------------------------


def test_short_of_money_is_declined_unless_partial_is_allowed():
    pockets = [pocket(1, 1000), pocket(2, 500)]
    declined = decide(request(3000), pockets)
    assert (declined.status, declined.approved_amount, declined.split) == ("declined", 0, ())
    assert declined.reason == "insufficient_funds"
    assert declined.details == {"available": 1500, "amount": 3000, "currency": "EUR"}

    partial = decide(request(3000, partial=True), pockets)
    assert (partial.status, partial.approved_amount) == ("partially_approved", 1500)
    assert partial.reason == "insufficient_funds"
    assert partial.split == ((1, 1000), (2, 500))


def test_a_single_short_pocket_is_named():
    outcome = decide(request(3000), [pocket(1, 1000, name="Food aid")])
    assert outcome.pocket_name == "Food aid"


def test_a_limit_that_holds_back_a_rich_pocket_is_the_reason():
    pockets = [pocket(1, 10_000, {"limits": {"day": 2500}}, spent={"day": 2000}, name="Food aid")]
    declined = decide(request(1000), pockets)
    assert declined.reason == "limit_exceeded"
    assert declined.pocket_name == "Food aid"
    assert declined.details == {"limit": "day", "cap": 2500, "used": 2000, "currency": "EUR"}

    partial = decide(request(1000, partial=True), pockets)
    assert (partial.status, partial.approved_amount, partial.reason) == (
        "partially_approved",
        500,
        "limit_exceeded",
    )


def test_per_payment_limit_with_enough_money_elsewhere_is_not_a_shortfall():
    pockets = [pocket(1, 10_000, {"limits": {"per_payment": 3000}}), pocket(2, 10_000)]
    assert decide(request(5000), pockets).split == ((1, 3000), (2, 2000))


def test_money_short_overall_is_insufficient_funds_even_with_a_limit():
    pockets = [pocket(1, 10_000, {"limits": {"per_payment": 3000}}), pocket(2, 1000)]
    outcome = decide(request(12_000), pockets)
    assert outcome.reason == "insufficient_funds"


# --- the reason when no pocket can pay --------------------------------------------------------


def test_the_refusal_that_came_closest_is_told():
    expired = pocket(1, 5000, IN_SAVOIE, valid_until=NOW - timedelta(days=1))
    outside = pocket(2, 5000, IN_SAVOIE, name="Energy aid")
    wrong_shop = pocket(3, 5000, {"categories": {"allow_groups": ["fuel"]}})
    outcome = decide(request(), [expired, wrong_shop, outside])
    assert outcome.status == "declined"
    # No aid is meant for this shop; the zone comes after validity and categories.
    assert outcome.reason == "outside_zone"
    assert outcome.pocket_name == "Energy aid"
    assert outcome.details["departements"] == ["73"]


def test_ties_go_to_the_split_order():
    later = pocket(1, 5000, IN_SAVOIE, valid_until=NOW + timedelta(days=60), name="Later")
    sooner = pocket(2, 5000, IN_SAVOIE, valid_until=NOW + timedelta(days=10), name="Sooner")
    assert decide(request(), [later, sooner]).pocket_name == "Sooner"


def test_a_refused_pocket_with_money_is_told_before_an_empty_one():
    empty_but_allowed = pocket(1, 0, name="Empty aid")
    rich_but_weekends = pocket(2, 5000, {"schedule": {"weekdays": [5, 6]}}, name="Rich aid")
    outcome = decide(request(), [empty_but_allowed, rich_but_weekends])
    assert (outcome.reason, outcome.pocket_name) == ("outside_allowed_hours", "Rich aid")


def test_an_empty_pocket_meant_for_the_shop_is_told_before_a_rich_one_that_is_not():
    empty_but_allowed = pocket(1, 0, name="Empty aid")
    rich_but_outside = pocket(2, 5000, IN_SAVOIE, name="Rich aid")
    outcome = decide(request(), [empty_but_allowed, rich_but_outside])
    assert (outcome.reason, outcome.pocket_name) == ("insufficient_funds", "Empty aid")


def test_when_no_pocket_has_money_an_allowed_one_says_so():
    empty_but_allowed = pocket(1, 0, name="Empty aid")
    empty_and_outside = pocket(2, 0, IN_SAVOIE)
    outcome = decide(request(), [empty_and_outside, empty_but_allowed])
    assert (outcome.reason, outcome.pocket_name) == ("insufficient_funds", "Empty aid")


def test_an_expired_pocket_stays_expired_once_emptied():
    # The expiry task returns what is left to the program: the reason must not change then.
    emptied = pocket(1, 0, valid_until=NOW - timedelta(days=1))
    assert decide(request(), [emptied]).reason == "aid_expired"


def test_a_reached_limit_is_the_reason():
    spent = pocket(1, 5000, {"limits": {"day": 2500}}, spent={"day": 2500})
    outcome = decide(request(), [spent])
    assert outcome.reason == "limit_exceeded"
    assert outcome.details["currency"] == "EUR"


def test_a_card_shop_we_do_not_know_is_not_recognised_by_a_partner_shops_pocket():
    card_merchant = MerchantPlace(name="Épicerie", mcc="5411", country="FR", postcode="38000")
    outcome = decide(
        request(merchant=card_merchant), [pocket(1, 5000, {"merchants": {"allow": [12]}})]
    )
    assert outcome.reason == "merchant_not_recognised"
    assert outcome.details == {"cause": "allow_list"}


# --- the trace -------------------------------------------------------------------------------


def test_the_outcome_is_json_with_every_pocket_verdict():
    pockets = [pocket(1, 600, FOOD), pocket(2, 5000, IN_SAVOIE), pocket(3, 5000)]
    outcome = decide(request(1000), pockets)
    data = json.loads(json.dumps(outcome.to_dict()))
    assert data["status"] == "approved"
    assert data["split"] == [{"pocket_id": 1, "amount": 600}, {"pocket_id": 3, "amount": 400}]
    assert [(v["pocket_id"], v["eligible"], v["reason"]) for v in data["verdicts"]] == [
        (1, True, None),
        (2, False, "outside_zone"),
        (3, True, None),
    ]


def test_a_departement_with_its_neighbours_is_regional_like_a_departement():
    france = pocket(1, 5000, {"zone": {"countries": ["FR"]}})
    isere = pocket(2, 5000, IN_ISERE)
    around_isere = pocket(3, 5000, {"zone": {"departements_with_neighbours": ["38"]}})
    assert restrictiveness(around_isere.rules) == restrictiveness(isere.rules)
    assert restrictiveness(around_isere.rules) < restrictiveness(france.rules)
