"""The eligibility criteria as pure functions (funders/eligibility.py): each kind met, not met and
on an unknown fact, the boundaries, the fairness groups, the plain words and the validation.

No database: criteria are built as `Criterion` values, or as unsaved EligibilityCriterion models
for the snapshot round trip. Texts are checked in English; French is checked only once the
lead's translation pass has put these texts in the catalogue (skipped until then)."""

import json
from datetime import date

import pytest
from django.utils import translation
from django.utils.translation import gettext

from funders import eligibility
from funders.eligibility import (
    AGE,
    ALREADY_HOLDS,
    ATTRIBUTE,
    COMMUNE,
    DEPARTEMENT,
    DEPENDENT_CHILDREN,
    EXHAUSTED,
    HOLDS,
    HOUSEHOLD_SIZE,
    INCOME_BRACKET,
    NOT_FOLLOWED,
    OTHER_AID,
    POSTCODE,
    RECEIVED,
    Criterion,
    Facts,
    age_band,
    age_on,
    check,
    clean_values,
    criteria_fields,
    criterion_errors,
    describe,
    evaluate,
    explain,
    group_label,
    household_type,
    situation,
)
from funders.models import EligibilityCriterion, Program

TODAY = date(2026, 6, 15)
BORN_72_YEARS_AGO = date(1954, 1, 10)
OTHER = 7  # the id of "another program" in other_aid criteria


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def crit(kind: str, *values: str, **fields) -> Criterion:
    return Criterion(kind=kind, values=tuple(values), **fields)


def aid(condition: str) -> Criterion:
    return Criterion(
        kind=OTHER_AID, other_program=OTHER, other_program_name="Food aid", aid_condition=condition
    )


# --- where a person lives -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("postcode", "commune", "departement"),
    [
        ("38000", "", "38"),
        ("38000", "73065", "73"),  # the commune code is exact: it wins over the postcode
        ("", "2B033", "2B"),
        ("20000", "", "2A"),
        ("20200", "", "2B"),
        ("97411", "", "974"),
        ("97133", "", "977"),  # Saint-Barthélemy, not Guadeloupe
        ("", "", None),
    ],
)
def test_departement_of_a_person(postcode, commune, departement):
    assert Facts(postcode=postcode, commune=commune).departement == departement


@pytest.mark.parametrize(
    ("values", "facts", "met", "fact"),
    [
        (("38",), Facts(postcode="38000"), True, "38"),
        (("73", "38"), Facts(postcode="38100"), True, "38"),
        (("38",), Facts(postcode="73000"), False, "73"),
        (("73",), Facts(postcode="38000", commune="73065"), True, "73"),
        (("38",), Facts(postcode="38000", commune="73065"), False, "73"),
        (("2A",), Facts(postcode="20000"), True, "2A"),
        (("2B",), Facts(postcode="20200"), True, "2B"),
        (("2A",), Facts(postcode="20200"), False, "2B"),
        (("974",), Facts(postcode="97411"), True, "974"),
        (("97",), Facts(postcode="97411"), False, "974"),
    ],
)
def test_departement_criterion(values, facts, met, fact):
    reason = check(crit(DEPARTEMENT, *values), facts, TODAY)
    assert (reason["met"], reason["fact"]) == (met, fact)


@pytest.mark.parametrize(
    ("given", "cleaned"),
    [
        (["38"], ["38"]),
        ([38], ["38"]),
        ([1], ["01"]),
        (["1"], ["01"]),
        (["2a", "2b"], ["2A", "2B"]),
        ([" 974 "], ["974"]),
        (["38", 38, " 38"], ["38"]),
        (["", " "], []),
    ],
)
def test_departement_values_are_cleaned(given, cleaned):
    assert clean_values(DEPARTEMENT, given) == cleaned


@pytest.mark.parametrize("given", [38, "38"], ids=["number", "text"])
def test_one_departement_given_without_a_list_is_one_value(given):
    # Not its characters: "3" and "8" would become Allier (03) and Ardennes (08), both valid.
    assert clean_values(DEPARTEMENT, given) == ["38"]


def test_departement_given_as_a_number_is_met_once_cleaned():
    criterion = crit(DEPARTEMENT, *clean_values(DEPARTEMENT, [38]))

    assert check(criterion, Facts(postcode="38000"), TODAY)["met"] is True


@pytest.mark.parametrize(
    ("given", "cleaned"),
    [(["2a004"], ["2A004"]), ([" 38185 "], ["38185"]), ([38185], ["38185"])],
)
def test_commune_values_are_cleaned(given, cleaned):
    assert clean_values(COMMUNE, given) == cleaned


@pytest.mark.parametrize(
    ("values", "facts", "met"),
    [
        (("38185",), Facts(commune="38185"), True),
        (("38421", "38185"), Facts(commune="38185"), True),
        (("38185",), Facts(commune="38186"), False),
        (("2A004",), Facts(commune="2A004"), True),
    ],
)
def test_commune_criterion(values, facts, met):
    assert check(crit(COMMUNE, *values), facts, TODAY)["met"] is met


def test_commune_criterion_does_not_guess_the_commune_from_the_postcode():
    reason = check(crit(COMMUNE, "38185"), Facts(postcode="38000"), TODAY)

    assert (reason["met"], reason["fact"]) == (False, None)


@pytest.mark.parametrize(
    ("values", "postcode", "met"),
    [
        (("38",), "38000", True),
        (("38",), "38100", True),
        (("38000",), "38000", True),
        (("38000",), "38100", False),
        (("38",), "73000", False),
        (("73", "38"), "38240", True),
        (("381",), "38100", True),
        (("381",), "38000", False),
    ],
)
def test_postcode_criterion(values, postcode, met):
    assert check(crit(POSTCODE, *values), Facts(postcode=postcode), TODAY)["met"] is met


# --- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("criterion", "facts", "met", "fact"),
    [
        (crit(AGE, minimum=65), Facts(birth_date=BORN_72_YEARS_AGO), True, 72),
        (crit(AGE, maximum=25), Facts(birth_date=BORN_72_YEARS_AGO), False, 72),
        (crit(HOUSEHOLD_SIZE, minimum=2, maximum=4), Facts(household_size=3), True, 3),
        (crit(HOUSEHOLD_SIZE, minimum=2, maximum=4), Facts(household_size=6), False, 6),
        (crit(DEPENDENT_CHILDREN, minimum=1), Facts(dependent_children=2), True, 2),
        (crit(DEPENDENT_CHILDREN, maximum=2), Facts(dependent_children=3), False, 3),
        (crit(INCOME_BRACKET, maximum=3), Facts(income_bracket=2), True, 2),
        (crit(INCOME_BRACKET, maximum=3), Facts(income_bracket=4), False, 4),
    ],
)
def test_number_criterion(criterion, facts, met, fact):
    reason = check(criterion, facts, TODAY)
    assert (reason["met"], reason["fact"]) == (met, fact)


# --- unknown facts ------------------------------------------------------------------------------

EVERY_KIND_BUT_OTHER_AID = [
    crit(DEPARTEMENT, "38"),
    crit(COMMUNE, "38185"),
    crit(POSTCODE, "38"),
    crit(AGE, minimum=18),
    crit(HOUSEHOLD_SIZE, maximum=4),
    crit(DEPENDENT_CHILDREN, minimum=0),
    crit(INCOME_BRACKET, maximum=20),
    crit(ATTRIBUTE, "oui", attribute="boursier"),
    crit(ATTRIBUTE, attribute="quotient_familial", minimum=0),
]


@pytest.mark.parametrize("criterion", EVERY_KIND_BUT_OTHER_AID, ids=lambda c: c.kind)
def test_a_criterion_on_an_unknown_fact_is_not_met(criterion):
    reason = check(criterion, Facts(), TODAY)

    assert (reason["met"], reason["fact"]) == (False, None)
    assert explain(reason).endswith("(here: not known)")


@pytest.mark.parametrize(
    "attributes", [{}, {"boursier": ""}, {"another_fact": "oui"}], ids=["none", "empty", "other"]
)
def test_an_attribute_the_funder_does_not_have_is_not_known(attributes):
    reason = check(
        crit(ATTRIBUTE, "oui", attribute="boursier"), Facts(attributes=attributes), TODAY
    )

    assert (reason["met"], reason["fact"]) == (False, None)


def test_an_attribute_of_only_spaces_is_not_known():
    reason = check(
        crit(ATTRIBUTE, "oui", attribute="boursier"), Facts(attributes={"boursier": "  "}), TODAY
    )

    assert (reason["met"], reason["fact"]) == (False, None)
    assert explain(reason).endswith("(here: not known)")


# --- other aid ----------------------------------------------------------------------------------

ABSENT = None


@pytest.mark.parametrize(
    ("condition", "state", "met"),
    [
        ("holds", HOLDS, True),
        ("holds", EXHAUSTED, False),
        ("holds", RECEIVED, False),
        ("holds", ABSENT, False),
        ("does_not_hold", HOLDS, False),
        ("does_not_hold", EXHAUSTED, True),
        ("does_not_hold", RECEIVED, True),
        ("does_not_hold", ABSENT, True),
        ("exhausted", HOLDS, False),
        ("exhausted", EXHAUSTED, True),
        ("exhausted", RECEIVED, False),
        ("exhausted", ABSENT, False),
        ("never_received", HOLDS, False),
        ("never_received", EXHAUSTED, False),
        ("never_received", RECEIVED, False),
        ("never_received", ABSENT, True),
    ],
)
def test_other_aid_criterion(condition, state, met):
    facts = Facts(aid={} if state is ABSENT else {OTHER: state})

    reason = check(aid(condition), facts, TODAY)

    assert reason["met"] is met
    assert reason["fact"] == (state or "never_received")


def test_other_aid_reads_only_the_program_it_names():
    facts = Facts(aid={OTHER + 1: HOLDS})

    assert check(aid("holds"), facts, TODAY)["met"] is False
    assert check(aid("never_received"), facts, TODAY)["met"] is True


def test_other_aid_with_an_unknown_condition_is_not_met():
    assert check(aid("bogus"), Facts(aid={OTHER: HOLDS}), TODAY)["met"] is False


# --- facts from the funder's files --------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "text", "met"),
    [
        (("oui",), "oui", True),
        (("oui",), " OUI ", True),
        ((" Oui ",), "oui", True),
        (("oui", "yes"), "Yes", True),
        (("oui",), "non", False),
        (("oui",), "ouix", False),
    ],
)
def test_attribute_values_are_compared_trimmed_and_case_insensitively(values, text, met):
    criterion = crit(ATTRIBUTE, *values, attribute="boursier")

    assert check(criterion, Facts(attributes={"boursier": text}), TODAY)["met"] is met


@pytest.mark.parametrize(
    ("text", "met"),
    [
        ("650", True),
        ("0", True),
        ("700", True),
        ("701", False),
        (" 650 ", True),
        ("1 200", False),  # 1200
        ("-5", False),
    ],
)
def test_attribute_numeric_range(text, met):
    criterion = crit(ATTRIBUTE, attribute="quotient_familial", minimum=0, maximum=700)

    assert check(criterion, Facts(attributes={"quotient_familial": text}), TODAY)["met"] is met


@pytest.mark.parametrize(
    "text", ["1 200", "1\u00a0200", "1\u202f200"], ids=["space", "nbsp", "nnbsp"]
)
def test_attribute_number_with_a_french_thousands_separator_is_read(text):
    # French spreadsheets separate thousands with a (narrow) no-break space.
    criterion = crit(ATTRIBUTE, attribute="quotient_familial", minimum=1000, maximum=1500)

    assert check(criterion, Facts(attributes={"quotient_familial": text}), TODAY)["met"] is True


@pytest.mark.parametrize("text", ["abc", "12.5", "650 €", "six cents"])
def test_attribute_text_that_is_not_a_number_does_not_meet_a_range(text):
    criterion = crit(ATTRIBUTE, attribute="quotient_familial", minimum=0, maximum=10_000)

    reason = check(criterion, Facts(attributes={"quotient_familial": text}), TODAY)

    assert (reason["met"], reason["fact"]) == (False, text)


@pytest.mark.parametrize(("value", "met"), [(650, True), (900, False)])
def test_attribute_stored_as_a_json_number_is_read_not_a_crash(value, met):
    # BeneficiaryProfile.attributes is a JSONField and profile_save does not turn numbers into
    # text: one number in one profile must not stop a whole campaign run with an AttributeError.
    criterion = crit(ATTRIBUTE, attribute="quotient_familial", minimum=0, maximum=700)

    reason = check(criterion, Facts(attributes={"quotient_familial": value}), TODAY)

    assert reason["met"] is met


# --- boundaries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "day", "age"),
    [
        (date(2008, 6, 15), date(2026, 6, 14), 17),
        (date(2008, 6, 15), date(2026, 6, 15), 18),
        (date(2008, 6, 15), date(2026, 6, 16), 18),
        (date(2008, 2, 29), date(2026, 2, 28), 17),
        (date(2008, 2, 29), date(2026, 3, 1), 18),
        (date(2008, 2, 29), date(2028, 2, 28), 19),
        (date(2008, 2, 29), date(2028, 2, 29), 20),
        (date(2008, 12, 31), date(2026, 1, 1), 17),
    ],
)
def test_age_on_the_day(born, day, age):
    assert age_on(born, day) == age


@pytest.mark.parametrize(
    ("day", "met"),
    [(date(2026, 6, 14), False), (date(2026, 6, 15), True)],
    ids=["day-before-18th-birthday", "18th-birthday"],
)
def test_minimum_age_is_met_on_the_birthday_itself(day, met):
    facts = Facts(birth_date=date(2008, 6, 15))

    assert check(crit(AGE, minimum=18), facts, day)["met"] is met


@pytest.mark.parametrize(
    ("day", "met"),
    [(date(2026, 6, 14), True), (date(2026, 6, 15), False)],
    ids=["day-before-26th-birthday", "26th-birthday"],
)
def test_maximum_age_is_met_until_the_day_before_the_next_birthday(day, met):
    facts = Facts(birth_date=date(2000, 6, 15))

    assert check(crit(AGE, maximum=25), facts, day)["met"] is met


@pytest.mark.parametrize(
    ("day", "met"),
    [(date(2026, 2, 28), False), (date(2026, 3, 1), True)],
    ids=["28-february", "1-march"],
)
def test_born_on_29_february_comes_of_age_on_1_march_of_a_common_year(day, met):
    facts = Facts(birth_date=date(2008, 2, 29))

    assert check(crit(AGE, minimum=18), facts, day)["met"] is met


@pytest.mark.parametrize(("size", "met"), [(1, False), (2, True), (3, True), (4, True), (5, False)])
def test_household_size_bounds_are_inclusive(size, met):
    criterion = crit(HOUSEHOLD_SIZE, minimum=2, maximum=4)

    assert check(criterion, Facts(household_size=size), TODAY)["met"] is met


def test_no_dependent_child_is_a_known_fact_that_does_not_meet_a_minimum_of_one():
    reason = check(crit(DEPENDENT_CHILDREN, minimum=1), Facts(dependent_children=0), TODAY)

    assert (reason["met"], reason["fact"]) == (False, 0)
    assert explain(reason) == "Dependent children: at least 1 (here: 0)"


def test_no_dependent_child_meets_a_maximum_of_zero():
    criterion = crit(DEPENDENT_CHILDREN, minimum=0, maximum=0)

    assert check(criterion, Facts(dependent_children=0), TODAY)["met"] is True
    assert check(criterion, Facts(dependent_children=1), TODAY)["met"] is False


@pytest.mark.parametrize(("size", "met"), [(2, False), (3, True), (4, False)])
def test_minimum_equal_to_maximum_means_exactly(size, met):
    criterion = crit(HOUSEHOLD_SIZE, minimum=3, maximum=3)

    assert check(criterion, Facts(household_size=size), TODAY)["met"] is met


# --- evaluate -----------------------------------------------------------------------------------

SENIOR_IN_ISERE = [crit(DEPARTEMENT, "38"), crit(AGE, minimum=65)]


def test_a_person_meeting_every_criterion_is_eligible():
    facts = Facts(postcode="38000", birth_date=BORN_72_YEARS_AGO)

    evaluation = evaluate(SENIOR_IN_ISERE, facts, TODAY)

    assert evaluation.eligible is True
    assert [r["criterion"]["kind"] for r in evaluation.met] == [DEPARTEMENT, AGE]
    assert evaluation.unmet == []


def test_a_person_missing_one_criterion_is_not_eligible():
    facts = Facts(postcode="73000", birth_date=BORN_72_YEARS_AGO)

    evaluation = evaluate(SENIOR_IN_ISERE, facts, TODAY)

    assert evaluation.eligible is False
    assert [r["criterion"]["kind"] for r in evaluation.met] == [AGE]
    assert [(r["criterion"]["kind"], r["fact"]) for r in evaluation.unmet] == [(DEPARTEMENT, "73")]


def test_an_unknown_fact_makes_a_person_not_eligible():
    evaluation = evaluate(SENIOR_IN_ISERE, Facts(postcode="38000"), TODAY)

    assert evaluation.eligible is False
    assert [(r["criterion"]["kind"], r["fact"]) for r in evaluation.unmet] == [(AGE, None)]


def test_no_criteria_makes_nobody_eligible():
    evaluation = evaluate([], Facts(postcode="38000", birth_date=BORN_72_YEARS_AGO), TODAY)

    assert (evaluation.eligible, evaluation.met, evaluation.unmet) == (False, [], [])


def test_reasons_are_json_and_keep_the_criterion_as_it_stood():
    facts = Facts(postcode="38000", birth_date=BORN_72_YEARS_AGO)

    evaluation = evaluate(SENIOR_IN_ISERE, facts, TODAY)

    assert json.loads(json.dumps(evaluation.met)) == [
        {"criterion": {"kind": DEPARTEMENT, "values": ["38"]}, "met": True, "fact": "38"},
        {"criterion": {"kind": AGE, "minimum": 65}, "met": True, "fact": 72},
    ]


# --- criteria_fields ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("criterion", "fields"),
    [
        (crit(DEPARTEMENT, "38"), {"postcode", "commune"}),
        (crit(COMMUNE, "38185"), {"commune"}),
        (crit(POSTCODE, "38"), {"postcode"}),
        (crit(AGE, minimum=18), {"birth_date"}),
        (crit(HOUSEHOLD_SIZE, minimum=2), {"household_size"}),
        (crit(DEPENDENT_CHILDREN, minimum=1), {"dependent_children"}),
        (crit(INCOME_BRACKET, maximum=3), {"income_bracket"}),
        (aid("holds"), set()),
        (crit(ATTRIBUTE, "oui", attribute="boursier"), {"attributes.boursier"}),
    ],
    ids=lambda value: value.kind if isinstance(value, Criterion) else None,
)
def test_criteria_fields_of_each_kind(criterion, fields):
    assert criteria_fields([criterion]) == fields


def test_criteria_fields_of_several_criteria_and_snapshots():
    criteria = [
        crit(AGE, minimum=18),
        {"kind": ATTRIBUTE, "attribute": "quotient_familial", "maximum": 700},
        crit(ATTRIBUTE, "oui", attribute="boursier"),
        crit(POSTCODE, "38"),
    ]

    assert criteria_fields(criteria) == {
        "birth_date",
        "attributes.quotient_familial",
        "attributes.boursier",
        "postcode",
    }


def test_no_criteria_read_no_field():
    assert criteria_fields([]) == set()


# --- fairness groups ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (None, ""),
        (0, "0-17"),
        (17, "0-17"),
        (18, "18-25"),
        (25, "18-25"),
        (26, "26-39"),
        (39, "26-39"),
        (40, "40-59"),
        (59, "40-59"),
        (60, "60-74"),
        (74, "60-74"),
        (75, "75+"),
        (110, "75+"),
    ],
)
def test_age_band_edges(age, band):
    assert age_band(age) == band


@pytest.mark.parametrize(
    ("size", "children", "kind"),
    [
        (1, 0, "alone"),
        (1, None, "alone"),
        (2, 0, "no_children"),
        (5, 0, "no_children"),
        (2, 1, "children_1_2"),
        (4, 2, "children_1_2"),
        (5, 3, "children_3_plus"),
        (None, 2, "children_1_2"),
        (None, 4, "children_3_plus"),
        (2, None, ""),
        (None, 0, ""),
        (None, None, ""),
    ],
)
def test_household_type(size, children, kind):
    assert household_type(size, children) == kind


def test_every_group_key_has_a_label_in_display_order():
    assert [key for key, _label in eligibility.AGE_BANDS] == [
        "0-17",
        "18-25",
        "26-39",
        "40-59",
        "60-74",
        "75+",
        "",
    ]
    assert [key for key, _label in eligibility.HOUSEHOLD_TYPES] == [
        "alone",
        "no_children",
        "children_1_2",
        "children_3_plus",
        "",
    ]


def test_groups_of_a_known_person():
    facts = Facts(
        postcode="38000", birth_date=BORN_72_YEARS_AGO, household_size=2, dependent_children=0
    )

    assert eligibility.groups(facts, TODAY) == {
        "departement": "38",
        "age_band": "60-74",
        "household_type": "no_children",
    }


def test_groups_of_an_unknown_person_are_empty_keys():
    assert eligibility.groups(Facts(), TODAY) == {
        "departement": "",
        "age_band": "",
        "household_type": "",
    }


@pytest.mark.parametrize(
    ("day", "band"), [(date(2026, 6, 14), "0-17"), (date(2026, 6, 15), "18-25")]
)
def test_groups_use_the_age_on_the_day_of_evaluation(day, band):
    facts = Facts(birth_date=date(2008, 6, 15))

    assert eligibility.groups(facts, day)["age_band"] == band


def test_groups_read_the_commune_before_the_postcode():
    facts = Facts(postcode="38000", commune="73065")

    assert eligibility.groups(facts, TODAY)["departement"] == "73"


@pytest.mark.parametrize(
    ("dimension", "key", "label"),
    [
        ("departement", "38", "Isère (38)"),
        ("departement", "2A", "Corse-du-Sud (2A)"),
        ("departement", "974", "La Réunion (974)"),
        ("departement", "", "not known"),
        ("age_band", "0-17", "under 18"),
        ("age_band", "75+", "75 and over"),
        ("age_band", "", "not known"),
        ("household_type", "alone", "living alone"),
        ("household_type", "children_3_plus", "3 dependent children or more"),
        ("household_type", "", "not known"),
    ],
)
def test_group_label(dimension, key, label):
    assert group_label(dimension, key) == label


# --- in words -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("criterion", "words"),
    [
        (crit(DEPARTEMENT, "38", "73"), "Lives in Isère (38) or Savoie (73)"),
        (crit(DEPARTEMENT, "2A"), "Lives in Corse-du-Sud (2A)"),
        (crit(COMMUNE, "38185"), "Lives in the commune 38185"),
        (crit(POSTCODE, "38", "73"), "Postcode starting with 38 or 73"),
        (crit(AGE, minimum=65), "Aged 65 or more"),
        (crit(AGE, maximum=25), "Aged 25 or less"),
        (crit(AGE, minimum=18, maximum=25), "Aged 18 to 25"),
        (crit(HOUSEHOLD_SIZE, minimum=2, maximum=4), "People in the household: from 2 to 4"),
        (crit(HOUSEHOLD_SIZE, minimum=3, maximum=3), "People in the household: 3"),
        (crit(DEPENDENT_CHILDREN, minimum=1), "Dependent children: at least 1"),
        (crit(DEPENDENT_CHILDREN, minimum=0, maximum=0), "Dependent children: 0"),
        (crit(INCOME_BRACKET, maximum=3), "Income bracket: at most 3"),
        (aid("holds"), "Holds the aid “Food aid” now"),
        (aid("does_not_hold"), "Does not hold the aid “Food aid” now"),
        (aid("exhausted"), "Has spent all of the aid “Food aid”"),
        (aid("never_received"), "Never received the aid “Food aid”"),
        (crit(ATTRIBUTE, "oui", "yes", attribute="boursier"), "“boursier” is “oui” or “yes”"),
        (
            crit(ATTRIBUTE, attribute="quotient_familial", minimum=0, maximum=700),
            "“quotient_familial”: from 0 to 700",
        ),
        (
            crit(ATTRIBUTE, attribute="quotient_familial", maximum=700),
            "“quotient_familial”: at most 700",
        ),
    ],
)
def test_describe(criterion, words):
    assert describe(criterion) == words


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (
            {"criterion": {"kind": AGE, "minimum": 65}, "met": True, "fact": 72},
            "Aged 65 or more (here: 72 years old)",
        ),
        (
            {"criterion": {"kind": DEPARTEMENT, "values": ["38"]}, "met": False, "fact": "73"},
            "Lives in Isère (38) (here: Savoie (73))",
        ),
        (
            {"criterion": {"kind": POSTCODE, "values": ["38"]}, "met": True, "fact": "38000"},
            "Postcode starting with 38 (here: 38000)",
        ),
        (
            {"criterion": {"kind": HOUSEHOLD_SIZE, "maximum": 4}, "met": False, "fact": 6},
            "People in the household: at most 4 (here: 6)",
        ),
        (
            {
                "criterion": {"kind": ATTRIBUTE, "attribute": "boursier", "values": ["oui"]},
                "met": True,
                "fact": "Oui",
            },
            "“boursier” is “oui” (here: Oui)",
        ),
    ],
)
def test_explain(reason, words):
    assert explain(reason) == words


@pytest.mark.parametrize(
    ("state", "words"),
    [
        (HOLDS, "holds it"),
        (EXHAUSTED, "spent all of it"),
        (RECEIVED, "received it before"),
        (None, "never received it"),
    ],
)
def test_explain_other_aid_states(state, words):
    facts = Facts(aid={} if state is None else {OTHER: state})

    reason = check(aid("does_not_hold"), facts, TODAY)

    assert explain(reason) == f"Does not hold the aid “Food aid” now (here: {words})"


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        (ALREADY_HOLDS, "Already holds this aid"),
        (NOT_FOLLOWED, "No longer among the people the funder helps, or their data was erased"),
    ],
)
def test_explain_a_situation(kind, words):
    assert explain(situation(kind)) == words


def french_catalogue_has(msgid: str) -> bool:
    with translation.override("fr"):
        return gettext(msgid) != msgid


def skip_until_translated(msgid: str) -> None:
    if not french_catalogue_has(msgid):
        pytest.skip(f"the French catalogue has no translation of {msgid!r} yet (translation pass)")


@pytest.mark.parametrize(
    ("criterion", "msgid"),
    [
        (crit(AGE, minimum=65), "Aged %(min)s or more"),
        (crit(AGE, minimum=18, maximum=25), "Aged %(min)s to %(max)s"),
        (crit(DEPARTEMENT, "38", "73"), "Lives in %(places)s"),
    ],
    ids=["age-min", "age-range", "departement"],
)
def test_describe_in_french_is_not_the_english(criterion, msgid):
    skip_until_translated(msgid)
    english = describe(criterion)

    with translation.override("fr"):
        assert describe(criterion) != english


def test_explain_an_unknown_fact_in_french_is_not_the_english():
    skip_until_translated("not known")
    reason = check(crit(AGE, minimum=65), Facts(), TODAY)
    english = explain(reason)

    with translation.override("fr"):
        assert explain(reason) != english


# --- snapshots ----------------------------------------------------------------------------------

FOOD_AID = Program(pk=OTHER, name="Food aid")

MODELS = [
    EligibilityCriterion(kind=DEPARTEMENT, values=["38", "2A"]),
    EligibilityCriterion(kind=COMMUNE, values=["38185"]),
    EligibilityCriterion(kind=POSTCODE, values=["38"]),
    EligibilityCriterion(kind=AGE, minimum=18, maximum=25),
    EligibilityCriterion(kind=HOUSEHOLD_SIZE, minimum=3),
    EligibilityCriterion(kind=DEPENDENT_CHILDREN, minimum=0, maximum=0),
    EligibilityCriterion(kind=INCOME_BRACKET, maximum=3),
    EligibilityCriterion(kind=OTHER_AID, other_program=FOOD_AID, aid_condition="exhausted"),
    EligibilityCriterion(kind=ATTRIBUTE, attribute="boursier", values=["oui"]),
    EligibilityCriterion(kind=ATTRIBUTE, attribute="quotient_familial", minimum=0, maximum=700),
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.kind)
def test_a_snapshot_stored_as_json_describes_the_criterion_as_the_model_did(model):
    snapshot = json.loads(json.dumps(Criterion.of(model).snapshot()))

    assert Criterion.of(snapshot) == Criterion.of(model)
    assert describe(snapshot) == describe(model)


def test_a_snapshot_keeps_only_what_the_criterion_says():
    assert Criterion.of(MODELS[3]).snapshot() == {"kind": AGE, "minimum": 18, "maximum": 25}


def test_a_snapshot_keeps_a_bound_of_zero():
    assert Criterion.of(MODELS[5]).snapshot() == {
        "kind": DEPENDENT_CHILDREN,
        "minimum": 0,
        "maximum": 0,
    }


def test_a_snapshot_of_other_aid_keeps_the_program_name():
    assert Criterion.of(MODELS[7]).snapshot() == {
        "kind": OTHER_AID,
        "other_program": OTHER,
        "other_program_name": "Food aid",
        "aid_condition": "exhausted",
    }


def test_a_stored_reason_is_explained_as_it_was_after_the_criterion_changes():
    model = EligibilityCriterion(kind=AGE, minimum=65)
    reason = json.loads(
        json.dumps(check(Criterion.of(model), Facts(birth_date=BORN_72_YEARS_AGO), TODAY))
    )

    model.minimum = 80

    assert explain(reason) == "Aged 65 or more (here: 72 years old)"


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("criterion", "fields"),
    [
        # zones
        (crit(DEPARTEMENT), {"values"}),
        (crit(DEPARTEMENT, "99"), {"values"}),
        (crit(DEPARTEMENT, "20"), {"values"}),  # Corsica is 2A or 2B
        (crit(DEPARTEMENT, "38", "2A", "974", "975"), set()),
        (crit(COMMUNE), {"values"}),
        (crit(COMMUNE, "3818"), {"values"}),
        (crit(COMMUNE, "99001"), {"values"}),
        (crit(COMMUNE, "38185", "2A004"), set()),
        (crit(POSTCODE), {"values"}),
        (crit(POSTCODE, "3"), {"values"}),
        (crit(POSTCODE, "380000"), {"values"}),
        (crit(POSTCODE, "38a"), {"values"}),
        (crit(POSTCODE, "38", "38000"), set()),
        # numbers
        (crit(AGE), {"minimum"}),
        (crit(HOUSEHOLD_SIZE), {"minimum"}),
        (crit(DEPENDENT_CHILDREN), {"minimum"}),
        (crit(INCOME_BRACKET), {"minimum"}),
        (crit(HOUSEHOLD_SIZE, minimum=5, maximum=2), {"maximum"}),
        (crit(AGE, minimum=26, maximum=25), {"maximum"}),
        (crit(DEPENDENT_CHILDREN, minimum=-1), {"minimum"}),
        (crit(INCOME_BRACKET, maximum=-1), {"maximum"}),
        (crit(AGE, maximum=131), {"maximum"}),
        (crit(AGE, minimum=131), {"minimum"}),
        (crit(AGE, minimum=0, maximum=130), set()),
        (crit(HOUSEHOLD_SIZE, maximum=31), {"maximum"}),
        (crit(INCOME_BRACKET, maximum=21), {"maximum"}),
        (crit(DEPENDENT_CHILDREN, minimum=0, maximum=0), set()),
        # other aid
        (Criterion(kind=OTHER_AID, aid_condition="holds"), {"other_program"}),
        (Criterion(kind=OTHER_AID, other_program=OTHER), {"aid_condition"}),
        (Criterion(kind=OTHER_AID, other_program=OTHER, aid_condition="bogus"), {"aid_condition"}),
        (Criterion(kind=OTHER_AID), {"other_program", "aid_condition"}),
        (aid("never_received"), set()),
        # facts from the funder's files
        (crit(ATTRIBUTE, "oui"), {"attribute"}),
        (crit(ATTRIBUTE, attribute="quotient_familial"), {"minimum"}),
        (crit(ATTRIBUTE, "oui", attribute="boursier", minimum=1), {"values"}),
        (crit(ATTRIBUTE, attribute="quotient_familial", minimum=700, maximum=0), {"maximum"}),
        (crit(ATTRIBUTE, "oui", attribute="boursier"), set()),
        (crit(ATTRIBUTE, attribute="quotient_familial", maximum=700), set()),
    ],
)
def test_criterion_errors(criterion, fields):
    errors = criterion_errors(criterion)

    assert set(errors) == fields
    assert all(
        isinstance(message, str) and message for messages in errors.values() for message in messages
    )


def test_criterion_errors_name_each_bad_value():
    errors = criterion_errors(crit(DEPARTEMENT, "38", "99", "100"))

    assert len(errors["values"]) == 2
    assert "99" in errors["values"][0]
    assert "100" in errors["values"][1]


def test_criterion_errors_read_a_snapshot_too():
    assert set(criterion_errors({"kind": AGE, "minimum": 30, "maximum": 20})) == {"maximum"}
