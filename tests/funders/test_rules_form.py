"""The rules form: what staff type becomes the rules document the engine reads, and a document
shown in the form and saved again comes back identical."""

import json

import pytest
from django.core.exceptions import ValidationError

from backoffice.rules_form import RulesForm
from core.money import cents_to_euros_text, euros_to_cents
from merchants.models import Merchant
from tests.factories import make_merchant

pytestmark = pytest.mark.django_db


def as_sent(form: RulesForm) -> dict:
    """What a browser sends back for a form shown unchanged: each field's shown value; an
    unticked checkbox sends nothing."""
    data = {}
    for bound in form:
        value = bound.value()
        if value in (None, False, [], ""):
            continue
        data[bound.name] = "on" if value is True else value
    return data


def submit(**data) -> RulesForm:
    form = RulesForm(data)
    form.is_valid()
    return form


def error_codes(form: RulesForm) -> dict[str, list[str]]:
    return {field: [e.code for e in errors] for field, errors in form.errors.as_data().items()}


def canonical(document: dict) -> str:
    # JSON text, so that 10 and 10.0 (equal in Python) are told apart.
    return json.dumps(document, sort_keys=True)


ROUND_TRIPS = {
    "nothing": {},
    "weekdays": {"schedule": {"weekdays": [0, 1, 2, 3, 4]}},
    "every day listed": {"schedule": {"weekdays": [0, 1, 2, 3, 4, 5, 6]}},
    "hours": {"schedule": {"hours": [["08:00", "12:30"], ["14:00", "19:00"]]}},
    "public holidays": {"schedule": {"refuse_public_holidays": True}},
    "whole schedule": {
        "schedule": {
            "weekdays": [5, 6],
            "hours": [["00:00", "24:00"]],
            "refuse_public_holidays": True,
        }
    },
    "allowed groups": {"categories": {"allow_groups": ["food", "restaurants"]}},
    "codes": {"categories": {"allow_mccs": ["5411", "5811-5814"], "block_mccs": ["5921"]}},
    "blocked group and cash": {
        "categories": {
            "block_groups": ["alcohol_tobacco_betting"],
            "allow_mccs": ["6011"],
            "allow_cash": True,
        }
    },
    "countries": {"zone": {"countries": ["FR", "BE"]}},
    "départements": {"zone": {"departements": ["2A", "38", "974", "975"]}},
    "départements and their neighbours": {
        "zone": {"departements": ["74"], "departements_with_neighbours": ["2A", "38", "971"]}
    },
    "card shops denied": {
        "merchants": {
            "deny": [
                {"network_id": "123456789012345"},
                {"name": "Tabac du Centre, Place Grenette", "postcode": "38000"},
            ]
        }
    },
    "communes and postcodes": {
        "zone": {"communes": ["38185", "2A004"], "postcode_prefixes": ["380", "73"]}
    },
    "circles": {
        "zone": {
            "circles": [
                {"lat": 45.19, "lon": 5.72, "radius_km": 10},
                {"lat": -21.1151, "lon": 55.5364, "radius_km": 2.5},
                {"lat": 45, "lon": -1.123456789, "radius_km": 0.3},
            ]
        }
    },
    "limits": {
        "limits": {
            "per_payment": 5000,
            "day": 2550,
            "week": 1,
            "month": 123456,
            "year": 100_000_000,
            "validity": 99,
        }
    },
    "all sections": {
        "schedule": {"weekdays": [0, 2], "hours": [["09:00", "17:00"]]},
        "categories": {"allow_groups": ["food"], "block_mccs": ["5499"]},
        "zone": {
            "departements": ["38", "73"],
            "circles": [{"lat": 45.5, "lon": 6, "radius_km": 30}],
        },
        "limits": {"per_payment": 3000},
    },
}


@pytest.mark.parametrize("document", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_a_document_shown_and_saved_again_comes_back_identical(document):
    shown = RulesForm(initial_rules=document)
    saved = RulesForm(as_sent(shown), initial_rules=document)
    assert saved.is_valid(), saved.errors
    assert canonical(saved.rules) == canonical(document)
    assert not saved.has_changed()


def test_merchant_lists_come_back_identical():
    shops = sorted(make_merchant().pk for _ in range(3))
    for document in (
        {"merchants": {"allow": shops[:2]}},
        {"merchants": {"deny": [shops[2]]}},
        {"merchants": {"allow": shops[:2], "deny": [shops[2]]}},
        {"merchants": {"allow": shops[:2], "deny": [shops[2], {"network_id": "A1"}]}},
    ):
        saved = RulesForm(as_sent(RulesForm(initial_rules=document)), initial_rules=document)
        assert saved.is_valid(), saved.errors
        assert saved.rules == document


def test_an_empty_form_gives_an_empty_document():
    form = submit()
    assert form.is_valid()
    assert form.rules == {}


def test_a_section_left_empty_is_left_out():
    form = submit(hours="08:00-12:00", limit_day="")
    assert form.rules == {"schedule": {"hours": [["08:00", "12:00"]]}}


@pytest.mark.parametrize(
    ("data", "document"),
    [
        ({"weekdays": ["4", "0"]}, {"schedule": {"weekdays": [0, 4]}}),
        (
            {"hours": "8h-12h30; 14:00 \u2013 19:00"},
            {"schedule": {"hours": [["08:00", "12:30"], ["14:00", "19:00"]]}},
        ),
        ({"refuse_public_holidays": "on"}, {"schedule": {"refuse_public_holidays": True}}),
        (
            {"allow_groups": ["restaurants", "food"], "block_groups": ["sport"]},
            {"categories": {"allow_groups": ["food", "restaurants"], "block_groups": ["sport"]}},
        ),
        (
            {"allow_mccs": "5411 ,5811 - 5814", "block_mccs": "5921;5921"},
            {"categories": {"allow_mccs": ["5411", "5811-5814"], "block_mccs": ["5921"]}},
        ),
        ({"allow_cash": "on"}, {"categories": {"allow_cash": True}}),
        ({"countries": "fr, be"}, {"zone": {"countries": ["FR", "BE"]}}),
        ({"departements": ["73", "38"]}, {"zone": {"departements": ["38", "73"]}}),
        (
            {"departements_with_neighbours": ["73", "2A"]},
            {"zone": {"departements_with_neighbours": ["2A", "73"]}},
        ),
        (
            {"merchants_deny_card": "TABAC DU CENTRE , 38000\n\n 123456789012345 \n"},
            {
                "merchants": {
                    "deny": [
                        {"name": "TABAC DU CENTRE", "postcode": "38000"},
                        {"network_id": "123456789012345"},
                    ]
                }
            },
        ),
        ({"communes": "38185 2a004"}, {"zone": {"communes": ["38185", "2A004"]}}),
        ({"postcode_prefixes": "380, 73"}, {"zone": {"postcode_prefixes": ["380", "73"]}}),
        (
            {"circles": "45,19; 5,72; 10 km\n\n45.2, 5.8, 2.5"},
            {
                "zone": {
                    "circles": [
                        {"lat": 45.19, "lon": 5.72, "radius_km": 10},
                        {"lat": 45.2, "lon": 5.8, "radius_km": 2.5},
                    ]
                }
            },
        ),
        ({"limit_per_payment": "12,50"}, {"limits": {"per_payment": 1250}}),
        ({"limit_week": "12.5"}, {"limits": {"week": 1250}}),
        ({"limit_validity": "1 234,56 €"}, {"limits": {"validity": 123456}}),
    ],
)
def test_what_staff_type_becomes_the_document(data, document):
    form = submit(**data)
    assert form.is_valid(), form.errors
    assert canonical(form.rules) == canonical(document)


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({"hours": "25:00-26:00"}, "hours", "rule"),
        ({"hours": "12:00-08:00"}, "hours", "rule"),
        ({"hours": "08:00"}, "hours", "invalid_hours"),
        ({"hours": "8.30-12"}, "hours", "invalid_time"),
        ({"weekdays": ["7"]}, "weekdays", "invalid_choice"),
        ({"allow_groups": ["groceries"]}, "allow_groups", "invalid_choice"),
        ({"allow_mccs": "1234"}, "allow_mccs", "rule"),
        ({"block_mccs": "5814-5811"}, "block_mccs", "rule"),
        ({"allow_mccs": "54111"}, "allow_mccs", "rule"),
        ({"allow_mccs": "6011"}, "allow_mccs", "rule"),
        ({"countries": "FRA"}, "countries", "rule"),
        ({"departements": ["20"]}, "departements", "invalid_choice"),
        ({"departements": ["99"]}, "departements", "invalid_choice"),
        (
            {"departements_with_neighbours": ["20"]},
            "departements_with_neighbours",
            "invalid_choice",
        ),
        ({"merchants_deny_card": "Tabac du Centre"}, "merchants_deny_card", "rule"),
        ({"merchants_deny_card": "Tabac du Centre, 380"}, "merchants_deny_card", "rule"),
        ({"merchants_deny_card": ", 38000"}, "merchants_deny_card", "rule"),
        ({"communes": "99999"}, "communes", "rule"),
        ({"postcode_prefixes": "38A"}, "postcode_prefixes", "rule"),
        ({"circles": "45.19, 5.72, 0"}, "circles", "rule"),
        ({"circles": "95, 5.72, 3"}, "circles", "rule"),
        ({"circles": "45.19, 5.72"}, "circles", "invalid_circle"),
        ({"circles": "north, 5.72, 3"}, "circles", "invalid_circle"),
        ({"circles": "45.19, nan, 3"}, "circles", "invalid_circle"),
        ({"limit_day": "-5"}, "limit_day", "not_positive"),
        ({"limit_day": "0"}, "limit_day", "not_positive"),
        ({"limit_month": "12,345"}, "limit_month", "too_many_decimals"),
        ({"limit_year": "12.500"}, "limit_year", "too_many_decimals"),
        ({"limit_per_payment": "douze"}, "limit_per_payment", "invalid_amount"),
        ({"limit_per_payment": "1.234,50"}, "limit_per_payment", "invalid_amount"),
        ({"limit_validity": "100000000000"}, "limit_validity", "too_large"),
    ],
)
def test_bad_input_is_refused_on_its_field(data, field, code):
    form = submit(**data)
    assert not form.is_valid()
    assert error_codes(form) == {field: [code]}
    assert form.rules is None


def test_a_merchant_both_allowed_and_refused_is_refused_on_the_refused_list():
    shop = make_merchant()
    form = submit(merchants_allow=[shop.pk], merchants_deny=[shop.pk])
    assert error_codes(form) == {"merchants_deny": ["rule"]}


def test_a_bad_card_shop_is_refused_on_the_card_shops_beside_merchants_refused():
    shop = make_merchant()
    form = submit(merchants_deny=[shop.pk], merchants_deny_card="123\nTabac, 3800")
    assert error_codes(form) == {"merchants_deny_card": ["rule"]}


def test_only_approved_merchants_are_offered_shown_by_name_and_city():
    approved = make_merchant(trade_name="Boulangerie Dupont", city="Voiron")
    pending = make_merchant(approved=False)
    choices = dict(RulesForm().fields["merchants_allow"].choices)
    assert choices[approved.pk] == "Boulangerie Dupont — Voiron"
    assert pending.pk not in choices
    assert error_codes(submit(merchants_allow=[pending.pk])) == {
        "merchants_allow": ["invalid_choice"]
    }


def test_a_merchant_named_by_the_rules_stays_when_it_is_no_longer_approved():
    # A suspended shop dropped from an allow list on save would widen the aid to every shop.
    suspended = make_merchant()
    Merchant.objects.filter(pk=suspended.pk).update(status=Merchant.Status.SUSPENDED)
    missing = suspended.pk + 1000
    document = {"merchants": {"allow": [suspended.pk, missing]}}
    form = RulesForm(initial_rules=document)
    choices = dict(form.fields["merchants_allow"].choices)
    assert {suspended.pk, missing} <= set(choices)
    saved = RulesForm(as_sent(form), initial_rules=document)
    assert saved.is_valid(), saved.errors
    assert saved.rules == document


def test_departements_are_offered_by_number_and_name():
    choices = dict(RulesForm().fields["departements"].choices)
    assert choices["38"] == "38 — Isère"
    assert choices["2A"] == "2A — Corse-du-Sud"
    assert "20" not in choices


def test_a_document_is_shown_as_staff_would_type_it():
    form = RulesForm(
        initial_rules={
            "schedule": {"hours": [["08:00", "12:30"], ["14:00", "19:00"]]},
            "categories": {"allow_mccs": ["5411", "5811-5814"]},
            "zone": {"circles": [{"lat": 45.19, "lon": 5.72, "radius_km": 10}]},
            "limits": {"day": 2550},
        }
    )
    assert form["hours"].value() == "08:00-12:30, 14:00-19:00"
    assert form["allow_mccs"].value() == "5411, 5811-5814"
    assert form["circles"].value() == "45.19, 5.72, 10"
    assert form["limit_day"].value() == cents_to_euros_text(2550)


@pytest.mark.parametrize(
    ("text", "cents"),
    [("12,50", 1250), ("12.50", 1250), ("12", 1200), ("0,01", 1), ("1\u202f234,5", 123450)],
)
def test_euros_become_exact_cents(text, cents):
    assert euros_to_cents(text) == cents


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("12,505", "too_many_decimals"),
        ("0", "not_positive"),
        ("-1", "not_positive"),
        ("1e3", "invalid_amount"),
        ("", "invalid_amount"),
    ],
)
def test_euros_that_are_not_an_amount_are_refused(text, code):
    with pytest.raises(ValidationError) as refused:
        euros_to_cents(text)
    assert refused.value.code == code


def test_the_products_ticked_become_the_products_rule_and_come_back():
    form = submit(products_allow=["hygiene", "food"])
    assert form.rules == {"products": {"allow": ["food", "hygiene"]}}
    again = RulesForm(initial_rules=form.rules)
    assert again.initial["products_allow"] == ["food", "hygiene"]
    assert submit(products_allow=["jewels"]).errors["products_allow"]
