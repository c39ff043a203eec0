"""EligibilityCriterion as a model: what full_clean() keeps and refuses, the database constraint
behind it, and its audit history. The checks themselves are in test_eligibility.py."""

import json
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import translation

from funders import eligibility
from funders.models import EligibilityCriterion
from tests.factories import FunderFactory, make_program

Kind = EligibilityCriterion.Kind

pytestmark = pytest.mark.django_db


@pytest.fixture
def program(funder):
    return make_program(funder=funder, funded=0)


@pytest.fixture
def food_aid(funder):
    return make_program(funder=funder, funded=0)


def cleaned(**fields) -> EligibilityCriterion:
    criterion = EligibilityCriterion(**fields)
    criterion.full_clean()
    return criterion


def refusal(**fields) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        EligibilityCriterion(**fields).full_clean()
    return caught.value.message_dict


# --- fields the kind does not read are dropped --------------------------------------------------


def test_a_zone_criterion_drops_bounds_program_condition_and_name(program, food_aid):
    criterion = cleaned(
        program=program,
        kind=Kind.DEPARTEMENT,
        values=["38"],
        minimum=1,
        maximum=2,
        other_program=food_aid,
        aid_condition="holds",
        attribute="boursier",
    )

    assert (criterion.values, criterion.minimum, criterion.maximum) == (["38"], None, None)
    assert (criterion.other_program, criterion.aid_condition, criterion.attribute) == (None, "", "")


def test_a_number_criterion_drops_values_program_condition_and_name(program, food_aid):
    criterion = cleaned(
        program=program,
        kind=Kind.AGE,
        values=["38"],
        minimum=18,
        maximum=25,
        other_program=food_aid,
        aid_condition="holds",
        attribute="boursier",
    )

    assert (criterion.values, criterion.minimum, criterion.maximum) == ([], 18, 25)
    assert (criterion.other_program, criterion.aid_condition, criterion.attribute) == (None, "", "")


def test_an_other_aid_criterion_drops_values_bounds_and_name(program, food_aid):
    criterion = cleaned(
        program=program,
        kind=Kind.OTHER_AID,
        values=["38"],
        minimum=1,
        other_program=food_aid,
        aid_condition="never_received",
        attribute="boursier",
    )

    assert (criterion.values, criterion.minimum, criterion.maximum) == ([], None, None)
    assert (criterion.other_program, criterion.aid_condition) == (food_aid, "never_received")
    assert criterion.attribute == ""


def test_an_attribute_criterion_keeps_its_name_and_values(program, food_aid):
    criterion = cleaned(
        program=program,
        kind=Kind.ATTRIBUTE,
        attribute="boursier",
        values=[" oui ", "Non"],
        other_program=food_aid,
        aid_condition="holds",
    )

    assert (criterion.attribute, criterion.values) == ("boursier", ["oui", "Non"])
    assert (criterion.other_program, criterion.aid_condition) == (None, "")


@pytest.mark.parametrize(
    ("kind", "given", "values"),
    [
        (Kind.DEPARTEMENT, ["38", 38, "2a", " 974 ", 1], ["38", "2A", "974", "01"]),
        (Kind.COMMUNE, ["2a004", " 38185 "], ["2A004", "38185"]),
        (Kind.POSTCODE, [" 38000 ", "38000", "73"], ["38000", "73"]),
    ],
)
def test_values_are_cleaned_before_they_are_checked(program, kind, given, values):
    assert cleaned(program=program, kind=kind, values=given).values == values


@pytest.mark.parametrize("given", [38, "38"], ids=["number", "text"])
def test_one_departement_given_without_a_list_is_one_value(program, given):
    # The admin's CriterionForm always gives a list, but the model is also written from code
    # (shell, fixtures, a future API): one value must not be a TypeError (38), nor "3" and "8"
    # silently cleaned into Allier (03) and Ardennes (08) ("38").
    criterion = cleaned(program=program, kind=Kind.DEPARTEMENT, values=given)

    assert criterion.values == ["38"]


def test_errors_of_the_criterion_are_reported_by_field(program):
    errors = refusal(program=program, kind=Kind.DEPARTEMENT, values=["99"])

    assert set(errors) == {"values"}


def test_bounds_in_the_wrong_order_are_refused_on_the_maximum(program):
    errors = refusal(program=program, kind=Kind.AGE, minimum=30, maximum=20)

    assert "maximum" in errors


# --- the other program --------------------------------------------------------------------------


def test_other_aid_of_another_funders_program_is_refused(program, other_funder):
    elsewhere = make_program(funder=other_funder, funded=0)

    errors = refusal(
        program=program, kind=Kind.OTHER_AID, other_program=elsewhere, aid_condition="holds"
    )

    assert set(errors) == {"other_program"}


def test_other_aid_of_the_programs_own_aid_is_refused(program):
    errors = refusal(
        program=program, kind=Kind.OTHER_AID, other_program=program, aid_condition="holds"
    )

    assert set(errors) == {"other_program"}


def test_other_aid_of_another_program_of_the_same_funder_is_accepted(program, food_aid):
    criterion = cleaned(
        program=program, kind=Kind.OTHER_AID, other_program=food_aid, aid_condition="exhausted"
    )

    assert criterion.other_program == food_aid


def test_other_aid_without_a_program_is_refused(program):
    errors = refusal(program=program, kind=Kind.OTHER_AID, aid_condition="holds")

    assert set(errors) == {"other_program"}


# --- the database -------------------------------------------------------------------------------


def test_the_database_refuses_bounds_in_the_wrong_order():
    program = make_program(funder=FunderFactory(), funded=0)

    with pytest.raises(IntegrityError), transaction.atomic():
        EligibilityCriterion.objects.create(program=program, kind=Kind.AGE, minimum=30, maximum=20)

    assert not EligibilityCriterion.objects.filter(program=program).exists()


def test_the_database_accepts_equal_bounds(program):
    EligibilityCriterion.objects.create(program=program, kind=Kind.AGE, minimum=30, maximum=30)

    assert EligibilityCriterion.objects.filter(program=program, minimum=30, maximum=30).exists()


def test_the_history_records_each_change(program):
    criterion = EligibilityCriterion.objects.create(program=program, kind=Kind.AGE, minimum=65)

    criterion.minimum = 70
    criterion.full_clean()
    criterion.save()

    assert criterion.history.count() == 2
    assert [h.minimum for h in criterion.history.order_by("history_date")] == [65, 70]
    assert [h.history_type for h in criterion.history.order_by("history_date")] == ["+", "~"]


def test_a_stored_reason_still_explains_itself_after_the_criterion_is_edited(program, food_aid):
    criterion = EligibilityCriterion.objects.create(
        program=program, kind=Kind.OTHER_AID, other_program=food_aid, aid_condition="holds"
    )
    snapshot = eligibility.Criterion.of(
        EligibilityCriterion.objects.select_related("other_program").get(pk=criterion.pk)
    )
    facts = eligibility.Facts(aid={food_aid.pk: eligibility.HOLDS}, birth_date=date(1954, 1, 10))
    stored = json.loads(json.dumps(eligibility.check(snapshot, facts, date(2026, 6, 15))))
    words = f"Holds the aid “{food_aid.name}” now (here: holds it)"

    criterion.aid_condition = "never_received"
    criterion.save()
    food_aid.name = "Renamed aid"
    food_aid.save()

    with translation.override("en"):
        assert eligibility.explain(stored) == words
