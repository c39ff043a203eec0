"""Basket lines: an aid pays only the lines of the product families its rules allow."""

from datetime import datetime, timedelta

import pytest
from django.utils import translation

from core.time import PARIS
from engine import codes
from engine.decide import PocketState, decide
from engine.periods import Usage
from engine.request import AuthorizationRequest, BasketLine, MerchantPlace
from engine.rules import PocketRules, RulesError

NOW = datetime(2027, 6, 15, 10, 0, tzinfo=PARIS)
SHOP = MerchantPlace(name="Épicerie", mcc="5411", country="FR", merchant_id=12, postcode="38000")
FOOD_ONLY = {"products": {"allow": ["food"]}}
HYGIENE_ONLY = {"products": {"allow": ["hygiene"]}}


def request(lines, *, partial=True):
    basket = tuple(BasketLine(amount, category) for amount, category in lines)
    return AuthorizationRequest(
        amount=sum(line.amount for line in basket),
        currency="EUR",
        merchant=SHOP,
        at=NOW,
        channel="api",
        partial_allowed=partial,
        lines=basket,
    )


def pocket(pocket_id, available, rules=None, *, created_days_ago=30):
    return PocketState(
        pocket_id=pocket_id,
        name=f"Aid {pocket_id}",
        funder_name="Funder",
        rules=PocketRules.from_dict(rules or {}),
        available=available,
        currency="EUR",
        created_at=NOW - timedelta(days=created_days_ago),
        usage=Usage(),
    )


def test_a_food_aid_does_not_pay_the_tobacco():
    outcome = decide(request([(3000, "food"), (1200, "tobacco")]), [pocket(1, 10000, FOOD_ONLY)])
    assert outcome.status == "partially_approved"
    assert outcome.approved_amount == 3000
    assert outcome.split == ((1, 3000),)
    assert outcome.eligible_amount == 3000
    assert outcome.reason == "product_not_covered"
    assert outcome.details == {"families": ["tobacco"]}
    assert [(s.line.category, s.paid, s.rest) for s in outcome.lines] == [
        ("food", ((1, 3000),), 0),
        ("tobacco", (), 1200),
    ]


def test_without_partial_approval_a_mixed_basket_is_declined():
    outcome = decide(
        request([(3000, "food"), (1200, "tobacco")], partial=False), [pocket(1, 10000, FOOD_ONLY)]
    )
    assert (outcome.status, outcome.reason, outcome.split) == (
        "declined",
        "product_not_covered",
        (),
    )


def test_an_aid_that_pays_none_of_the_lines_is_refused_for_the_products():
    outcome = decide(request([(1200, "tobacco")]), [pocket(1, 10000, FOOD_ONLY)])
    assert outcome.status == "declined"
    assert outcome.reason == "product_not_covered"
    assert outcome.details == {"families": ["tobacco"]}
    assert outcome.verdicts[0].to_dict()["reason"] == "product_not_covered"


def test_two_aids_each_pay_their_own_lines():
    outcome = decide(
        request([(3000, "food"), (800, "hygiene"), (500, "alcohol")]),
        [pocket(1, 10000, FOOD_ONLY), pocket(2, 10000, HYGIENE_ONLY)],
    )
    assert sorted(outcome.split) == [(1, 3000), (2, 800)]
    assert outcome.approved_amount == 3800
    assert outcome.eligible_amount == 3800
    assert outcome.reason == "product_not_covered"


def test_a_broad_aid_leaves_the_food_to_a_food_only_aid_after_it():
    broad = {"products": {"allow": ["food", "hygiene"]}}
    # The broad aid is older, so it comes first in the split order.
    outcome = decide(
        request([(3000, "food"), (800, "hygiene")]),
        [pocket(1, 800, broad, created_days_ago=60), pocket(2, 3000, FOOD_ONLY)],
    )
    assert outcome.status == "approved"
    assert outcome.split == ((1, 800), (2, 3000))


def test_an_aid_without_a_products_rule_pays_every_line():
    outcome = decide(request([(3000, "food"), (1200, "tobacco")]), [pocket(1, 10000)])
    assert outcome.status == "approved"
    assert outcome.eligible_amount == 4200


def test_the_outcome_json_has_the_lines_only_with_a_basket():
    outcome = decide(request([(3000, "food"), (1200, "tobacco")]), [pocket(1, 10000, FOOD_ONLY)])
    assert outcome.to_dict()["lines"][1] == {"amount": 1200, "category": "tobacco", "paid": []}
    assert outcome.to_dict()["eligible_amount"] == 3000
    plain = AuthorizationRequest(amount=1000, currency="EUR", merchant=SHOP, at=NOW, channel="api")
    assert "lines" not in decide(plain, [pocket(1, 10000, FOOD_ONLY)]).to_dict()


def test_without_lines_the_products_rule_says_nothing():
    plain = AuthorizationRequest(amount=1000, currency="EUR", merchant=SHOP, at=NOW, channel="api")
    outcome = decide(plain, [pocket(1, 10000, FOOD_ONLY)])
    assert (outcome.status, outcome.split) == ("approved", ((1, 1000),))


def test_lines_must_add_up_and_name_a_family():
    with pytest.raises(ValueError):
        AuthorizationRequest(
            amount=1000,
            currency="EUR",
            merchant=SHOP,
            at=NOW,
            channel="api",
            lines=(BasketLine(900, "food"),),
        )
    with pytest.raises(ValueError):
        BasketLine(100, "jewellery")


def test_an_unknown_family_in_the_rules_is_pointed_at():
    with pytest.raises(RulesError) as error:
        PocketRules.from_dict({"products": {"allow": ["food", "jewels"]}})
    assert error.value.field == "products.allow[1]"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fr", "Aide alimentaire\u00a0: cette aide ne paie pas le tabac."),
        ("en", "Food aid: this aid does not pay for tobacco."),
    ],
)
def test_the_refusal_in_plain_words(language, expected):
    with translation.override(language):
        message = codes.beneficiary_message(
            "product_not_covered",
            pocket_name="Aide alimentaire" if language == "fr" else "Food aid",
            details={"families": ["tobacco"]},
        )
    assert message.startswith(expected)


def test_the_rules_in_plain_words():
    rules = PocketRules.from_dict({"products": {"allow": ["hygiene", "food"]}})
    with translation.override("en"):
        assert rules.describe()[-1] == (
            "When the shop lists the basket, pays only for: food, hygiene products."
        )
