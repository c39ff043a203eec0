"""The back-office pages of beneficiary data: the file upload (legal basis, declaration), the
check's result, confirmation; the profiles typed by hand; and who reaches them."""

import csv
import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from backoffice.admin import profiles as profiles_admin
from funders.campaigns import profile_save
from funders.models import (
    BeneficiaryProfile,
    EligibilityCriterion,
    Enrolment,
    LegalBasis,
    ProfileImport,
)
from funders.profile_imports import profile_import_create
from funders.services import beneficiary_enrol
from tests.factories import BeneficiaryFactory, make_program

Status = ProfileImport.Status
Kind = EligibilityCriterion.Kind
ADD = reverse("admin:funders_profileimport_add")
LIST = reverse("admin:funders_profileimport_changelist")
PROFILES = reverse("admin:funders_beneficiaryprofile_changelist")
ADD_PROFILE = reverse("admin:funders_beneficiaryprofile_add")
CONTENT = (
    "numero_dossier;prenom;nom;courriel;date_naissance;taille_foyer\n"
    "D-001;;;;12/03/1950;2\n"
    "D-002;Léa;Bernard;lea.bernard@example.org;14/07/1958;1\n"
).encode("cp1252")


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Europe/Paris")))


@pytest.fixture
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True


def with_criteria(funder):
    program = make_program(funder=funder, funded=0)
    EligibilityCriterion.objects.create(program=program, kind=Kind.AGE, minimum=65)
    EligibilityCriterion.objects.create(program=program, kind=Kind.HOUSEHOLD_SIZE, maximum=2)
    return program


@pytest.fixture
def program(funder):
    return with_criteria(funder)


@pytest.fixture
def known(funder):
    person = BeneficiaryFactory(first_name="Camille", last_name="Martin")
    beneficiary_enrol(funder=funder, beneficiary=person, reference="D-001")
    return person


@pytest.fixture
def checked(funder, program, known):
    return profile_import_create(
        funder=funder, filename="donnees.csv", content=CONTENT, legal_basis=LegalBasis.CONSENT
    )


@pytest.fixture
def other_checked(other_funder):
    with_criteria(other_funder)
    person = BeneficiaryFactory()
    beneficiary_enrol(funder=other_funder, beneficiary=person, reference="D-001")
    return profile_import_create(
        funder=other_funder,
        filename="savoie.csv",
        content=CONTENT,
        legal_basis=LegalBasis.PUBLIC_TASK,
    )


@pytest.fixture
def profile(funder, known):
    return profile_save(
        enrolment=Enrolment.objects.get(beneficiary=known),
        data={"birth_date": date(1950, 3, 12), "household_size": 2},
        reevaluate=False,
    )


@pytest.fixture
def other_profile(other_funder):
    person = BeneficiaryFactory(last_name="Savoyard")
    enrolment = beneficiary_enrol(funder=other_funder, beneficiary=person, reference="S-1")
    return profile_save(enrolment=enrolment, data={"household_size": 3}, reevaluate=False)


def change_url(obj, view="change"):
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{view}", args=[obj.pk])


def post_upload(client, funder, *, content=CONTENT, informed=True, legal_basis="consent"):
    data = {
        "funder": funder.pk,
        "legal_basis": legal_basis,
        "file": SimpleUploadedFile("donnees.csv", content),
    }
    if informed:
        data["people_informed"] = "on"
    return client.post(ADD, data)


# --- upload, result, confirmation ----------------------------------------------------------------


def test_the_upload_page_offers_only_the_users_funders(manager_client, funder, other_funder):
    page = manager_client.get(ADD)
    assert page.status_code == 200
    assert list(page.context["form"].fields["funder"].queryset) == [funder]


def test_a_manager_uploads_confirms_and_the_profiles_are_written(
    manager_client, funder, program, known, eager, django_capture_on_commit_callbacks
):
    # when a manager sends the file
    response = post_upload(manager_client, funder)
    profile_import = ProfileImport.objects.get()
    assert response.status_code == 302
    assert response.url == change_url(profile_import)
    # then the result page shows each row
    page = manager_client.get(response.url)
    assert page.status_code == 200
    assert [row["result"] for row in page.context["rows"]] == ["update", "new"]
    assert page.context["can_confirm"]
    assert "Léa Bernard" in page.text
    # when they confirm, the file is written
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = manager_client.post(change_url(profile_import, "confirm"))
    assert confirmed.status_code == 302
    profile_import.refresh_from_db()
    assert profile_import.status == Status.APPLIED
    assert profile_import.legal_basis == LegalBasis.CONSENT
    written = BeneficiaryProfile.objects.get(enrolment__beneficiary=known)
    assert (written.birth_date, written.household_size) == (date(1950, 3, 12), 2)
    assert written.legal_basis == LegalBasis.CONSENT
    assert Enrolment.objects.get(funder=funder, reference="D-002").profile.household_size == 1


def test_the_people_must_be_declared_informed(manager_client, funder, program):
    response = post_upload(manager_client, funder, informed=False)
    assert response.status_code == 200
    assert response.context["form"].errors["people_informed"]
    assert not ProfileImport.objects.exists()


def test_a_legal_basis_must_be_chosen(manager_client, funder, program):
    response = post_upload(manager_client, funder, legal_basis="")
    assert response.context["form"].errors["legal_basis"]
    assert not ProfileImport.objects.exists()


def test_a_column_no_criterion_uses_is_a_form_error_naming_it(manager_client, funder, program):
    content = b"reference;tranche_revenus\nD-001;2\n"
    response = post_upload(manager_client, funder, content=content)
    assert response.status_code == 200
    assert "“tranche_revenus”" in response.context["form"].errors["file"][0]
    assert not ProfileImport.objects.exists()


def test_a_file_with_errors_shows_them_by_row_and_cannot_be_confirmed(
    manager_client, funder, program, known
):
    post_upload(manager_client, funder, content=b"reference;taille_foyer\nD-001;0\n")
    profile_import = ProfileImport.objects.get()
    page = manager_client.get(change_url(profile_import))

    assert profile_import.status == Status.INVALID
    assert not page.context["can_confirm"]
    assert page.context["rows"][0]["messages"]
    response = manager_client.post(change_url(profile_import, "confirm"))
    assert response.status_code == 302
    profile_import.refresh_from_db()
    assert profile_import.status == Status.INVALID


def test_confirming_needs_a_post(manager_client, checked):
    assert manager_client.get(change_url(checked, "confirm")).status_code == 405


def test_the_page_of_a_file_being_applied_shows_its_progress(manager_client, checked):
    ProfileImport.objects.filter(pk=checked.pk).update(status=Status.APPLYING)
    page = manager_client.get(change_url(checked))
    assert '<meta http-equiv="refresh" content="2">' in page.text


@pytest.mark.parametrize("headers", ["fr", "en"])
def test_the_csv_template_has_the_identity_and_only_the_facts_the_criteria_use(
    manager_client, funder, program, headers
):
    response = manager_client.get(
        reverse("admin:funders_profileimport_template", args=["csv"]),
        {"funder": funder.pk, "headers": headers},
    )
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    delimiter = ";" if headers == "fr" else ","
    titles = next(csv.reader(io.StringIO(text), delimiter=delimiter))
    assert titles == {
        "fr": ["numero_dossier", "prenom", "nom", "email", "telephone", "date_naissance",
               "taille_foyer"],
        "en": ["reference", "first_name", "last_name", "email", "phone", "birth_date",
               "household_size"],
    }[headers]  # fmt: skip


def test_the_xlsx_template_names_the_custom_facts(manager_client, funder, program):
    EligibilityCriterion.objects.create(
        program=program, kind=Kind.ATTRIBUTE, attribute="quotient_familial", maximum=800
    )
    response = manager_client.get(
        reverse("admin:funders_profileimport_template", args=["xlsx"]), {"funder": funder.pk}
    )
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    titles = [cell.value for cell in next(sheet.iter_rows(max_row=1))]
    assert titles[-1] == "quotient_familial"


def test_another_funders_template_is_not_found(manager_client, other_funder):
    response = manager_client.get(
        reverse("admin:funders_profileimport_template", args=["csv"]), {"funder": other_funder.pk}
    )
    assert response.status_code == 404


# --- who reaches what ----------------------------------------------------------------------------


def test_an_agent_sees_the_imports_but_cannot_upload_nor_confirm(agent_client, checked):
    assert agent_client.get(LIST).status_code == 200
    page = agent_client.get(change_url(checked))
    assert page.status_code == 200
    assert not page.context["can_confirm"]
    assert agent_client.get(ADD).status_code == 403
    assert agent_client.post(change_url(checked, "confirm")).status_code == 403
    checked.refresh_from_db()
    assert checked.status == Status.CHECKED


def test_another_funders_import_answers_404(manager_client, checked, other_checked):
    assert other_checked.filename not in manager_client.get(LIST).text
    assert manager_client.get(change_url(other_checked)).status_code == 404
    assert manager_client.post(change_url(other_checked, "confirm")).status_code == 404
    assert manager_client.post(change_url(other_checked, "recheck")).status_code == 404
    other_checked.refresh_from_db()
    assert other_checked.status == Status.CHECKED


def test_another_funder_cannot_be_picked_for_an_upload(manager_client, program, other_funder):
    response = post_upload(manager_client, other_funder)
    assert response.status_code == 404
    assert not ProfileImport.objects.exists()


# --- profiles ------------------------------------------------------------------------------------


def test_the_list_shows_the_funders_profiles_with_the_age(
    agent_client, profile, other_profile, known
):
    page = agent_client.get(PROFILES)
    assert page.status_code == 200
    assert "Martin" in page.text and "D-001" in page.text
    assert "Savoyard" not in page.text
    assert page.context["cl"].result_count == 1
    assert ">76<" in page.text  # born 12 March 1950, on 23 November 2026


def test_the_list_is_searched_by_file_number(agent_client, profile):
    assert agent_client.get(PROFILES, {"q": "D-001"}).context["cl"].result_count == 1
    assert agent_client.get(PROFILES, {"q": "D-999"}).context["cl"].result_count == 0


def form_data(profile, **changes):
    data = {
        "postcode": profile.postcode,
        "commune": profile.commune,
        "birth_date": profile.birth_date.isoformat() if profile.birth_date else "",
        "household_size": profile.household_size or "",
        "dependent_children": ""
        if profile.dependent_children is None
        else profile.dependent_children,
        "income_bracket": profile.income_bracket or "",
        "attributes": "{}",
        "legal_basis": profile.legal_basis,
    }
    data.update(changes)
    return data


def test_a_change_is_saved_through_profile_save(manager_client, manager, profile, monkeypatch):
    # given a look at each call of the service
    calls = []

    def spy(**kwargs):
        calls.append(kwargs)
        return profile_save(**kwargs)

    monkeypatch.setattr(profiles_admin, "profile_save", spy)
    # when a manager changes the household size
    response = manager_client.post(change_url(profile), form_data(profile, household_size=3))
    # then it is saved by the service, which re-evaluates the person
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.household_size == 3
    assert len(calls) == 1
    assert calls[0]["data"] == {"household_size": 3}
    assert calls[0]["by"] == manager
    assert calls[0].get("reevaluate", True)


def test_the_age_is_shown_next_to_the_birth_date(agent_client, profile):
    page = agent_client.get(change_url(profile))
    assert page.status_code == 200
    assert "76" in page.text


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"household_size": 2, "dependent_children": 2}, "dependent_children",
         "children_not_fewer_than_household"),
        ({"household_size": 31}, "household_size", "out_of_range"),
        ({"birth_date": "2027-01-01"}, "birth_date", "birth_date_in_future"),
        ({"commune": "99999"}, "commune", "invalid_commune"),
        ({"income_bracket": 21}, "income_bracket", "max_value"),
        ({"attributes": '{"nir": "1 50 03"}'}, "attributes", "attribute_not_used"),
    ],
)  # fmt: skip
def test_a_bad_value_typed_by_hand_is_refused(manager_client, profile, changes, field, code):
    response = manager_client.post(change_url(profile), form_data(profile, **changes))
    assert response.status_code == 200
    assert code in [
        error.code for error in response.context["adminform"].form.errors.as_data()[field]
    ]
    profile.refresh_from_db()
    assert profile.household_size == 2


def test_a_profile_is_added_for_one_of_the_funders_people(
    manager_client, funder, program, known, other_profile
):
    page = manager_client.get(ADD_PROFILE)
    choices = page.context["adminform"].form.fields["enrolment"].queryset
    assert list(choices) == [Enrolment.objects.get(funder=funder, beneficiary=known)]

    enrolment = Enrolment.objects.get(beneficiary=known)
    data = {"enrolment": enrolment.pk, **form_data(BeneficiaryProfile(), birth_date="1950-03-12")}
    response = manager_client.post(ADD_PROFILE, {**data, "legal_basis": "consent"})

    assert response.status_code == 302
    added = BeneficiaryProfile.objects.get(enrolment=enrolment)
    assert (added.birth_date, added.legal_basis) == (date(1950, 3, 12), "consent")


def test_another_funders_person_cannot_be_picked(manager_client, program, other_funder):
    theirs = beneficiary_enrol(funder=other_funder, beneficiary=BeneficiaryFactory())
    data = {"enrolment": theirs.pk, **form_data(BeneficiaryProfile(), household_size=2)}
    response = manager_client.post(ADD_PROFILE, data)
    assert response.status_code == 200
    assert "enrolment" in response.context["adminform"].form.errors
    assert not BeneficiaryProfile.objects.exists()


def test_another_funders_profile_answers_404(manager_client, other_profile):
    assert manager_client.get(change_url(other_profile)).status_code == 404
    response = manager_client.post(change_url(other_profile), form_data(other_profile))
    assert response.status_code == 404


def test_an_agent_reads_a_profile_but_cannot_change_it(agent_client, profile):
    assert agent_client.get(change_url(profile)).status_code == 200
    response = agent_client.post(change_url(profile), form_data(profile, household_size=5))
    assert response.status_code == 403
    assert agent_client.get(ADD_PROFILE).status_code == 403
    profile.refresh_from_db()
    assert profile.household_size == 2


def test_nobody_deletes_a_profile_here(manager_client, profile):
    assert manager_client.get(change_url(profile, "delete")).status_code == 403
