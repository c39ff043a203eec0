"""The aid a refusal names when no aid can pay: the one meant for this shop, for its own reason.

A wallet holding a food aid (grocers only, not on Sundays nor public holidays) and a transport
aid, at a grocer: the food aid is the one this payment was for, so its own failing check is the
reason, never the transport aid's category."""

from datetime import datetime, timedelta

import pytest
from django.utils import translation

from core.time import PARIS
from engine.codes import merchant_message
from engine.decide import PocketState, decide
from engine.periods import Usage
from engine.request import AuthorizationRequest, MerchantPlace
from engine.rules import PocketRules

TUESDAY = datetime(2027, 6, 15, 10, 0, tzinfo=PARIS)
SUNDAY = datetime(2027, 6, 13, 10, 0, tzinfo=PARIS)
BASTILLE_DAY = datetime(2027, 7, 14, 10, 0, tzinfo=PARIS)  # a Wednesday, a public holiday
GROCER = MerchantPlace(name="Épicerie", mcc="5411", country="FR", merchant_id=12, postcode="38000")

FOOD_RULES = {
    "categories": {"allow_groups": ["food"]},
    "schedule": {"weekdays": [0, 1, 2, 3, 4, 5], "refuse_public_holidays": True},
}
TRANSPORT_RULES = {"categories": {"allow_groups": ["transport"]}}


def aid(pocket_id, name, rules, *, available=5000, valid_until=None):
    return PocketState(
        pocket_id=pocket_id,
        name=name,
        funder_name="CCAS",
        rules=PocketRules.from_dict(rules, valid_until=valid_until),
        available=available,
        currency="EUR",
        created_at=TUESDAY - timedelta(days=30),
        usage=Usage({}),
    )


def food(**kwargs):
    return aid(1, "Food aid", FOOD_RULES, **kwargs)


def transport(**kwargs):
    return aid(2, "Transport aid", TRANSPORT_RULES, **kwargs)


def pay(at, wallet, amount=2000, merchant=GROCER):
    request = AuthorizationRequest(
        amount=amount, currency="EUR", merchant=merchant, at=at, channel="api"
    )
    return decide(request, wallet)


EXPIRED = {"valid_until": SUNDAY - timedelta(days=1)}  # expired on every day above


@pytest.mark.parametrize(
    ("at", "wallet", "reason", "named"),
    [
        pytest.param(SUNDAY, [food()], "outside_allowed_hours", "Food aid", id="sunday"),
        pytest.param(
            SUNDAY,
            [food(), transport()],
            "outside_allowed_hours",
            "Food aid",
            id="sunday-with-transport",
        ),
        pytest.param(
            SUNDAY,
            [transport(), food(available=0)],
            "outside_allowed_hours",
            "Food aid",
            id="sunday-empty-food-rich-transport",
        ),
        pytest.param(BASTILLE_DAY, [food()], "outside_allowed_hours", "Food aid", id="holiday"),
        pytest.param(
            BASTILLE_DAY,
            [food(), transport()],
            "outside_allowed_hours",
            "Food aid",
            id="holiday-with-transport",
        ),
        pytest.param(TUESDAY, [food(**EXPIRED)], "aid_expired", "Food aid", id="expired"),
        pytest.param(
            TUESDAY,
            [food(**EXPIRED), transport()],
            "aid_expired",
            "Food aid",
            id="expired-with-transport",
        ),
        pytest.param(
            SUNDAY,
            [food(**EXPIRED), transport()],
            "aid_expired",  # the food aid's first failing check: validity comes first
            "Food aid",
            id="expired-on-sunday-with-transport",
        ),
        pytest.param(
            TUESDAY,
            [transport()],
            "merchant_category_not_allowed",
            "Transport aid",
            id="only-transport",
        ),
        pytest.param(
            TUESDAY,
            [
                transport(),
                aid(3, "Food aid in Savoie", {**FOOD_RULES, "zone": {"departements": ["73"]}}),
            ],
            "outside_zone",  # no aid is meant for this shop: the one that came closest to it
            "Food aid in Savoie",
            id="no-aid-meant-for-the-shop",
        ),
        pytest.param(
            TUESDAY,
            [
                transport(),
                aid(3, "Restaurant aid", {"categories": {"allow_groups": ["restaurants"]}}),
            ],
            "merchant_category_not_allowed",
            "Restaurant aid",  # both fail at the categories: split order (the narrower)
            id="no-aid-of-this-kind",
        ),
    ],
)
def test_the_aid_meant_for_the_shop_is_named_for_its_own_reason(at, wallet, reason, named):
    outcome = pay(at, wallet)
    assert (outcome.status, outcome.reason, outcome.pocket_name) == ("declined", reason, named)


def test_a_holiday_refusal_says_it_is_a_holiday():
    outcome = pay(BASTILLE_DAY, [food(), transport()])
    assert outcome.details["public_holiday"] is True


def test_the_shop_is_told_the_time_is_wrong_not_the_shop():
    outcome = pay(SUNDAY, [food(), transport()])
    with translation.override("en"):
        assert merchant_message(outcome.reason) == (
            "Payment refused: the customer's aid cannot be used at this time."
        )


@pytest.mark.parametrize(
    ("wallet", "reason", "named"),
    [
        pytest.param(
            [aid(3, "Weekday aid", FOOD_RULES, available=0), food(**EXPIRED)],
            "aid_expired",
            "Food aid",
            id="money-over-none",
        ),
        pytest.param(
            [food(**EXPIRED), aid(3, "Weekday aid", FOOD_RULES)],
            "outside_allowed_hours",
            "Weekday aid",
            id="latest-failing-check",
        ),
        pytest.param(
            [
                aid(3, "Later aid", FOOD_RULES, valid_until=SUNDAY + timedelta(days=60)),
                aid(4, "Sooner aid", FOOD_RULES, valid_until=SUNDAY + timedelta(days=10)),
            ],
            "outside_allowed_hours",
            "Sooner aid",
            id="split-order",
        ),
    ],
)
def test_among_aids_meant_for_the_shop_the_closest_is_named(wallet, reason, named):
    outcome = pay(SUNDAY, wallet)
    assert (outcome.reason, outcome.pocket_name) == (reason, named)


def test_an_aid_meant_for_the_shop_but_empty_answers_insufficient_funds():
    outcome = pay(TUESDAY, [transport(), food(available=0)])
    assert (outcome.reason, outcome.pocket_name) == ("insufficient_funds", "Food aid")
