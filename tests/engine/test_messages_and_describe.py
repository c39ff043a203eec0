"""Reason codes, plain-words messages and rule descriptions.

The French catalogue is compiled separately, so the text is checked in English; money and
dates, which come from Django's locale formats and not from our catalogue, are checked in
French too."""

from datetime import datetime

import pytest
from django.utils import translation

from core.time import PARIS
from engine import codes
from engine.rules import PocketRules

EXPECTED_ISO8583 = {
    "approved": "00",
    "aid_not_yet_valid": "57",
    "aid_expired": "57",
    "outside_allowed_hours": "57",
    "merchant_category_not_allowed": "57",
    "merchant_not_accepted": "57",
    "outside_zone": "57",
    "merchant_not_recognised": "57",
    "limit_exceeded": "61",
    "product_not_covered": "57",
    "insufficient_funds": "51",
    "no_aid_available": "51",
    "wallet_frozen": "62",
    "card_frozen": "62",
    "card_inactive": "62",
    "merchant_suspended": "03",
    "currency_not_supported": "57",
    "invalid_amount": "13",
    "amount_too_large": "13",
    "internal_error": "96",
}


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def test_every_reason_has_its_iso8583_code():
    assert {code: r.iso8583 for code, r in codes.REASONS.items()} == EXPECTED_ISO8583


def test_declines_are_402_and_bad_input_422():
    assert codes.REASONS["approved"].http_status == 200
    assert codes.REASONS["outside_zone"].http_status == 402
    assert codes.REASONS["insufficient_funds"].http_status == 402
    assert codes.REASONS["invalid_amount"].http_status == 422
    assert codes.REASONS["amount_too_large"].http_status == 422


@pytest.mark.parametrize("code", sorted(EXPECTED_ISO8583))
def test_every_reason_has_both_messages(code):
    assert codes.merchant_message(code).endswith(".")
    message = codes.beneficiary_message(code, pocket_name="Food aid", details={})
    assert message.startswith("Food aid: ")
    assert codes.beneficiary_message(code)[0].isupper()


@pytest.mark.parametrize("code", sorted(EXPECTED_ISO8583))
def test_merchant_message_reveals_no_aid_name_nor_amount(code):
    message = codes.merchant_message(code)
    assert "€" not in message
    assert "Food aid" not in message


@pytest.mark.parametrize(
    ("code", "details", "expected"),
    [
        (
            "outside_zone",
            {"departements": ["38"], "countries": []},
            "Food aid: this shop is outside the area where this aid can be used: Isère (38). "
            "The app shows where you can use it.",
        ),
        (
            "outside_zone",
            {"departements": ["2A", "2B"], "unknown_location": False},
            "Food aid: this shop is outside the area where this aid can be used: "
            "Corse-du-Sud (2A), Haute-Corse (2B). The app shows where you can use it.",
        ),
        (
            "outside_zone",
            {"departements": ["38"], "unknown_location": True},
            "Food aid: the place of this shop is not known, and this aid can only be used in "
            "a limited area. The app shows where you can use it.",
        ),
        (
            "limit_exceeded",
            {"limit": "day", "cap": 2500, "used": 2000, "currency": "EUR"},
            "Food aid: this aid can pay up to €25.00 per day, and €20.00 has already been paid "
            "today. You can pay the rest another way.",
        ),
        (
            "limit_exceeded",
            {"limit": "per_payment", "cap": 5000},
            "Food aid: a single payment with this aid cannot be more than €50.00. "
            "You can pay the rest another way.",
        ),
        (
            "insufficient_funds",
            {"available": 1250, "amount": 3000, "currency": "EUR"},
            "Food aid: there is not enough money left on your aid for this payment. "
            "€12.50 can be paid with it; please pay the rest another way.",
        ),
        (
            "merchant_category_not_allowed",
            {"mcc": "5812", "cause": "not_allowed", "allow_groups": ["food"]},
            "Food aid: this aid cannot be used in this kind of shop. "
            "It can be used in: food shops.",
        ),
        (
            "merchant_category_not_allowed",
            {"mcc": "6011", "cause": "cash"},
            "Food aid: this aid cannot be used to get cash or anything that works like cash.",
        ),
        (
            "outside_allowed_hours",
            {"weekdays": [0, 1, 2, 3, 4], "hours": [["08:00", "12:30"]], "public_holiday": False},
            "Food aid: this aid cannot be used at this time. It can be used on these days: "
            "Monday, Tuesday, Wednesday, Thursday, Friday. "
            "It can be used at these times: 08:00 to 12:30.",
        ),
        (
            "outside_allowed_hours",
            {"weekdays": [0, 1, 2, 3, 4, 5, 6], "hours": [], "public_holiday": True},
            "Food aid: this aid cannot be used on public holidays.",
        ),
        (
            "aid_expired",
            {"valid_until": "2027-04-01T00:00:00+02:00"},
            "Food aid: this aid could be used until March 31, 2027 included. It has expired.",
        ),
        (
            "aid_expired",
            {"valid_until": "2027-03-28T03:00:00+02:00"},
            "Food aid: this aid could be used until March 28, 2027 at 03:00. It has expired.",
        ),
        (
            "aid_not_yet_valid",
            {"valid_from": "2027-04-01T00:00:00+02:00"},
            "Food aid: this aid can be used from April 1, 2027.",
        ),
        (
            "merchant_not_recognised",
            {"cause": "allow_list"},
            "Food aid: this shop is not recognised for this aid. This aid can only be used in "
            "its partner shops, which are listed in the app. If this is one of them, pay with a "
            "code from the app: we do not know its card terminal yet.",
        ),
        (
            "merchant_not_recognised",
            {"cause": "circle"},
            "Food aid: this shop is not recognised for this aid. This aid can only be used near "
            "a given place, and the place of this shop is not known. The app shows where you "
            "can use it.",
        ),
        (
            "outside_zone",
            {"departements": ["38"], "departements_with_neighbours": ["73", "2A", "974"]},
            "Food aid: this shop is outside the area where this aid can be used: Isère (38), "
            "Savoie (73) and its neighbouring départements, Corse-du-Sud (2A) and its "
            "neighbouring départements, La Réunion (974). The app shows where you can use it.",
        ),
    ],
)
def test_beneficiary_message(code, details, expected):
    assert codes.beneficiary_message(code, pocket_name="Food aid", details=details) == expected


def test_beneficiary_message_without_aid_name_starts_with_a_capital():
    assert codes.beneficiary_message("card_frozen") == (
        "Your card is blocked. You can unblock it in the app."
    )


@pytest.mark.parametrize(
    ("amount", "currency", "in_english", "in_french"),
    [
        (2500, "EUR", "€25.00", "25,00\u00a0€"),
        (5, "EUR", "€0.05", "0,05\u00a0€"),
        (0, "EUR", "€0.00", "0,00\u00a0€"),
        (123456789, "EUR", "€1,234,567.89", "1\u202f234\u202f567,89\u00a0€"),
        (-1250, "EUR", "-€12.50", "-12,50\u00a0€"),
        (1000, "XPF", "XPF\u00a01,000", "1\u202f000\u00a0XPF"),
        (999, "USD", "$9.99", "9,99\u00a0$"),
    ],
)
def test_format_money(amount, currency, in_english, in_french):
    assert codes.format_money(amount, currency) == in_english
    with translation.override("fr"):
        assert codes.format_money(amount, currency) == in_french


def test_format_until_tells_a_midnight_end_as_the_whole_day_before_included():
    assert codes.format_until(datetime(2027, 4, 1, tzinfo=PARIS)) == "March 31, 2027 included"
    with translation.override("fr"):
        assert codes.format_until(datetime(2027, 4, 1, tzinfo=PARIS)) == "31 mars 2027 inclus"


def test_describe_every_rule():
    rules = PocketRules.from_dict(
        {
            "schedule": {
                "weekdays": [0, 1, 2, 3, 4, 5],
                "hours": [["08:00", "12:30"], ["14:00", "19:00"]],
                "refuse_public_holidays": True,
            },
            "categories": {
                "allow_groups": ["food"],
                "allow_mccs": ["5811-5814"],
                "block_mccs": ["5921"],
            },
            "merchants": {"deny": [7]},
            "zone": {"departements": ["38"], "postcode_prefixes": ["730"]},
            "limits": {"per_payment": 5000, "day": 2500},
        },
        valid_from=datetime(2027, 1, 1, tzinfo=PARIS),
        valid_until=datetime(2027, 4, 1, tzinfo=PARIS),
    )
    assert rules.describe() == [
        "Can be used from Jan. 1, 2027 until March 31, 2027 included.",
        "Only on these days: Monday, Tuesday, Wednesday, Thursday, Friday, Saturday.",
        "Only at these times: 08:00 to 12:30, 14:00 to 19:00.",
        "Not on public holidays.",
        "Only in: food shops, shops with category codes 5811 to 5814.",
        "Not in: shops with category code 5921.",
        "Not in 1 shop excluded by the funder.",
        "Only in this area: Isère (38), postcodes starting with 730.",
        "At most €50.00 per payment.",
        "At most €25.00 per day.",
    ]


def test_describe_no_rules_says_nothing():
    assert PocketRules.from_dict({}).describe() == []


def test_describe_partner_shops_and_circles():
    rules = PocketRules.from_dict(
        {
            "merchants": {"allow": [1, 2, 3]},
            "zone": {"circles": [{"lat": 45.19, "lon": 5.72, "radius_km": 2.5}]},
            "categories": {"allow_cash": True},
        }
    )
    assert rules.describe() == [
        "Can also be used to get cash.",
        "Only in 3 partner shops.",
        "Only in this area: within 2.5 km of the place shown on the map in the app.",
    ]


def test_describe_formats_money_in_the_active_language():
    rules = PocketRules.from_dict({"limits": {"day": 2500}})
    with translation.override("fr"):
        assert "25,00\u00a0€" in rules.describe()[0]


def test_describe_in_the_pocket_currency():
    rules = PocketRules.from_dict({"limits": {"validity": 100_000}})
    assert rules.describe(currency="XPF") == ["At most XPF\u00a0100,000 in all."]


def test_a_partial_approval_tells_the_till_what_was_accepted_and_what_to_collect():
    message = codes.merchant_partial_message(approved=1250, amount=2000, currency="EUR")
    assert message == "Approved for €12.50: collect the rest (€7.50) another way."


def test_a_partial_approval_tells_the_beneficiary_what_was_paid_then_why_no_more():
    message = codes.beneficiary_partial_message(
        "limit_exceeded",
        approved=500,
        amount=1000,
        currency="EUR",
        pocket_name="Food aid",
        details={"limit": "day", "cap": 2500, "used": 2000, "currency": "EUR"},
    )
    assert message == (
        "Your aid paid €5.00: please pay the rest (€5.00) another way. "
        "Food aid: this aid can pay up to €25.00 per day, and €20.00 has already been paid today."
    )
