"""Files of beneficiary data: reading (only the columns the criteria use), the check (a dry run),
and the apply (all rows or none, through profile_save, one re-evaluation)."""

import io
import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.utils import translation

from core.errors import InvalidState
from funders import profile_imports
from funders.campaigns import campaign_create
from funders.models import (
    BeneficiaryProfile,
    EligibilityCriterion,
    Enrolment,
    LegalBasis,
    ProfileImport,
    Proposal,
)
from funders.profile_imports import (
    SpreadsheetFileError,
    error_message,
    profile_import_apply,
    profile_import_confirm,
    profile_import_create,
    profile_import_recheck,
    read_rows,
)
from funders.services import beneficiary_enrol
from gdpr.services import beneficiary_erase
from tests.factories import BeneficiaryFactory, make_program
from tests.markers import postgresql_case_folding
from wallet.models import Beneficiary

PARIS = ZoneInfo("Europe/Paris")
Status = ProfileImport.Status
Kind = EligibilityCriterion.Kind

FRENCH_HEADERS = (
    "Numéro dossier;Prénom;Nom;Courriel;Téléphone;Code postal;Commune;Date naissance;"
    "Taille foyer;Enfants à charge;Tranche revenus;Quotient familial"
)


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 10, 0, tzinfo=PARIS), tick=True)


@pytest.fixture
def program(funder):
    return make_program(funder=funder, funded=100_000)


@pytest.fixture
def criteria(program):
    """A criterion of every kind that reads a profile: every fact column is accepted."""
    rows = [
        {"kind": Kind.DEPARTEMENT, "values": ["38"]},
        {"kind": Kind.AGE, "minimum": 65},
        {"kind": Kind.HOUSEHOLD_SIZE, "maximum": 4},
        {"kind": Kind.DEPENDENT_CHILDREN, "minimum": 0},
        {"kind": Kind.INCOME_BRACKET, "maximum": 3},
        {"kind": Kind.ATTRIBUTE, "attribute": "quotient_familial", "maximum": 800},
    ]
    return [EligibilityCriterion.objects.create(program=program, **row) for row in rows]


@pytest.fixture
def known(funder):
    """Someone the funder already helps, file number D-001."""
    person = BeneficiaryFactory(
        first_name="Camille", last_name="Martin", email="camille.martin@example.org"
    )
    beneficiary_enrol(funder=funder, beneficiary=person, reference="D-001")
    return person


def french_csv(*lines: str, headers: str = FRENCH_HEADERS) -> bytes:
    """As French Excel saves "CSV": Windows-1252, ";" between columns."""
    return "\r\n".join([headers, *lines]).encode("cp1252")


@pytest.fixture(autouse=True)
def _english():
    """Messages are read in English here; their French is the catalogue's business."""
    with translation.override("en"):
        yield


def english_csv(*lines: str, headers: str) -> bytes:
    return "\n".join([headers, *lines]).encode()


VALID = french_csv(
    "D-001;;;;;38000;38185;12/03/1950;2;0;2;650",
    "D-002;Léa;Bernard;lea.bernard@example.org;;38100;38185;1958-07-14;1;0;1;",
)


def upload(funder, content=VALID, name="donnees.csv", legal_basis=LegalBasis.PUBLIC_TASK):
    return profile_import_create(
        funder=funder, filename=name, content=content, legal_basis=legal_basis
    )


def apply(profile_import):
    return profile_import_apply(
        profile_import=profile_import_confirm(profile_import=profile_import)
    )


def snapshot():
    return {
        model.__name__: model.objects.count()
        for model in (Beneficiary, Enrolment, BeneficiaryProfile)
    }


def errors_by_row(profile_import) -> dict[int, set[tuple]]:
    return {
        row["row"]: {(error["field"], error["code"]) for error in row["errors"]}
        for row in profile_import.report
    }


def profile_of(funder, person) -> BeneficiaryProfile:
    return BeneficiaryProfile.objects.get(enrolment__funder=funder, enrolment__beneficiary=person)


@pytest.fixture
def reevaluations(monkeypatch):
    """Each call of profiles_changed by the import: (funder, sorted ids)."""
    calls = []

    def spy(*, funder, beneficiary_ids):
        calls.append((funder.pk, sorted(beneficiary_ids)))

    monkeypatch.setattr(profile_imports, "profiles_changed", spy)
    return calls


# --- reading -------------------------------------------------------------------------------------


def test_a_french_csv_saved_by_a_spreadsheet_program_is_read(funder, criteria):
    rows = read_rows(funder=funder, content=VALID, filename="donnees.csv")

    assert [row.cells["first_name"] for row in rows] == ["", "Léa"]
    assert rows[0].cells["household_size"] == "2"
    assert rows[1].cells["attributes.quotient_familial"] == ""


@pytest.mark.parametrize(
    ("criterion", "refused"),
    [
        ({"kind": Kind.AGE, "minimum": 65}, "Taille foyer"),
        ({"kind": Kind.HOUSEHOLD_SIZE, "maximum": 4}, "Date naissance"),
    ],
)
def test_a_fact_column_no_criterion_uses_is_refused_by_name(program, funder, criterion, refused):
    # given a funder whose only criterion reads one fact
    EligibilityCriterion.objects.create(program=program, **criterion)
    content = english_csv("D-001,2,1950-03-12", headers="reference,Taille foyer,Date naissance")
    # when a file brings another fact, then it is refused whole, naming the column and why
    with pytest.raises(SpreadsheetFileError) as refused_file:
        upload(funder, content)
    assert refused_file.value.code == "import_file_invalid"
    message = str(refused_file.value.message)
    assert f"“{refused}”" in message
    assert "no eligibility criterion" in message.lower()
    assert not ProfileImport.objects.exists()


def test_a_column_that_is_no_fact_at_all_is_refused(funder, criteria):
    content = english_csv("D-001,1,2 75 05 38 185 001 42", headers="reference,household_size,nir")
    with pytest.raises(SpreadsheetFileError) as refused:
        upload(funder, content)
    assert "“nir”" in str(refused.value.message)


def test_a_criterion_of_a_closed_program_does_not_open_its_column(program, funder):
    EligibilityCriterion.objects.create(program=program, kind=Kind.AGE, minimum=65)
    program.is_active = False
    program.save(update_fields=["is_active"])
    with pytest.raises(SpreadsheetFileError) as refused:
        upload(funder, english_csv("D-001,1950-03-12", headers="reference,birth_date"))
    assert "no eligibility criteria yet" in str(refused.value.message)


def test_another_funders_criteria_do_not_open_a_column(funder, other_funder):
    other = make_program(funder=other_funder, funded=0)
    EligibilityCriterion.objects.create(program=other, kind=Kind.AGE, minimum=65)
    with pytest.raises(SpreadsheetFileError):
        upload(funder, english_csv("D-001,1950-03-12", headers="reference,birth_date"))


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ("first_name,last_name,household_size", "reference"),  # who is each row about?
        ("reference,first_name,email", "no column of facts"),
    ],
)
def test_a_file_without_identity_or_facts_is_refused(funder, criteria, headers, fragment):
    with pytest.raises(SpreadsheetFileError) as refused:
        upload(funder, english_csv("A,B,3", headers=headers))
    assert fragment in str(refused.value.message)


def test_a_legal_basis_is_required(funder, criteria):
    with pytest.raises(InvalidState) as refused:
        upload(funder, legal_basis="")
    assert refused.value.field == "legal_basis"
    assert not ProfileImport.objects.exists()


# --- the check -----------------------------------------------------------------------------------


def test_the_check_gives_each_row_its_result_and_writes_nothing(funder, criteria, known):
    # given a profile already known for Camille
    profile_imports.profile_save(
        enrolment=Enrolment.objects.get(beneficiary=known),
        data={"household_size": 3, "postcode": "38000"},
        reevaluate=False,
    )
    before = snapshot()
    # when the file is checked
    profile_import = upload(funder)
    # then each row says what it would do, and nothing was written
    assert profile_import.status == Status.CHECKED
    assert [row["result"] for row in profile_import.report] == ["update", "new"]
    assert snapshot() == before
    assert profile_of(funder, known).household_size == 3
    assert profile_import.legal_basis == LegalBasis.PUBLIC_TASK


def test_the_report_names_the_facts_that_change_not_their_values(funder, criteria, known):
    profile_imports.profile_save(
        enrolment=Enrolment.objects.get(beneficiary=known),
        data={"postcode": "38000", "commune": "38185", "birth_date": date(1950, 3, 12)},
        reevaluate=False,
    )
    profile_import = upload(funder)

    first = profile_import.report[0]
    assert first["result"] == "update"
    assert set(first["changed"]) == {
        "household_size",
        "dependent_children",
        "income_bracket",
        "attributes.quotient_familial",
    }
    # the report is kept: the values read in the file are not in it
    stored = json.dumps(profile_import.report)
    assert "650" not in stored and "1950" not in stored


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("birth_date", "2027-01-01", "birth_date_in_future"),
        ("birth_date", "31/12/1899", "birth_date_too_old"),
        ("birth_date", "31/02/1950", "invalid_date"),
        ("household_size", "0", "out_of_range"),
        ("household_size", "31", "out_of_range"),
        ("household_size", "2.5", "not_a_whole_number"),
        ("household_size", "deux", "not_a_whole_number"),
        ("dependent_children", "-1", "out_of_range"),
        ("income_bracket", "0", "out_of_range"),
        ("income_bracket", "21", "out_of_range"),
        ("commune", "99999", "invalid_commune"),
        ("commune", "Grenoble", "invalid_commune"),
        ("postcode", "3800", "invalid_postcode"),
        ("attributes.quotient_familial", "9" * 101, "too_long"),
    ],
)
def test_a_bad_value_is_refused_with_its_code(funder, criteria, known, column, value, code):
    header = column.removeprefix("attributes.")
    content = english_csv(f"D-001,{value}", headers=f"reference,{header}")

    profile_import = upload(funder, content)

    assert profile_import.status == Status.INVALID
    assert errors_by_row(profile_import) == {2: {(column, code)}}
    assert error_message(profile_import.report[0]["errors"][0])


def test_a_bad_contact_is_refused_with_its_code(funder, criteria, known):
    content = english_csv(
        "D-001,camille.at.example.org,2", headers="reference,email,household_size"
    )
    profile_import = upload(funder, content)
    assert errors_by_row(profile_import) == {2: {("email", "invalid_email")}}


def test_children_must_be_fewer_than_the_people_in_the_household(funder, criteria, known):
    content = english_csv("D-001,2,2", headers="reference,household_size,dependent_children")
    profile_import = upload(funder, content)
    assert errors_by_row(profile_import) == {
        2: {("dependent_children", "children_not_fewer_than_household")}
    }


def test_children_are_compared_with_the_household_already_known(funder, criteria, known):
    # given Camille known to live alone, when a file gives her 1 child and no household size
    profile_imports.profile_save(
        enrolment=Enrolment.objects.get(beneficiary=known),
        data={"household_size": 1},
        reevaluate=False,
    )
    profile_import = upload(funder, english_csv("D-001,1", headers="reference,dependent_children"))
    # then the household she would have is refused
    assert errors_by_row(profile_import) == {
        2: {("dependent_children", "children_not_fewer_than_household")}
    }


def test_the_same_person_twice_in_a_file_is_an_error(funder, criteria, known):
    content = english_csv(
        "D-001,,2",
        ",camille.martin@example.org,3",
        headers="reference,email,household_size",
    )
    profile_import = upload(funder, content)
    assert errors_by_row(profile_import) == {
        2: set(),
        3: {(None, "duplicate_in_file")},
    }


def test_someone_unknown_without_names_and_contact_is_an_error(funder, criteria):
    content = english_csv("D-404,,,3", headers="reference,first_name,last_name,household_size")
    profile_import = upload(funder, content)
    assert errors_by_row(profile_import) == {2: {(None, "person_unknown")}}


def test_another_funders_file_number_is_never_matched(funder, other_funder, criteria):
    # given someone the other funder knows as D-001
    theirs = BeneficiaryFactory()
    beneficiary_enrol(funder=other_funder, beneficiary=theirs, reference="D-001")
    # when our file names D-001, or their email, without what a new person needs
    content = english_csv(
        "D-001,,3", f",{theirs.email},2", headers="reference,email,household_size"
    )
    profile_import = upload(funder, content)
    # then nobody is found
    assert errors_by_row(profile_import) == {
        2: {(None, "person_unknown")},
        3: {(None, "person_unknown")},
    }
    assert not BeneficiaryProfile.objects.exists()


def test_the_check_of_a_large_file_runs_in_a_task(
    funder, criteria, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    lines = [f"P-{n},A,B{n},p{n}@example.org,2" for n in range(201)]
    content = english_csv(*lines, headers="reference,first_name,last_name,email,household_size")

    with django_capture_on_commit_callbacks(execute=True):
        profile_import = upload(funder, content)
    assert profile_import.status == Status.CHECKING

    profile_import.refresh_from_db()
    assert profile_import.status == Status.CHECKED
    assert profile_import.processed_rows == 201


# --- the apply -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_applying_writes_every_profile_and_creates_the_unknown(
    funder, criteria, known, reevaluations, kind
):
    content = VALID if kind == "csv" else valid_xlsx()
    profile_import = upload(funder, content, name=f"donnees.{kind}")
    assert profile_import.status == Status.CHECKED, profile_import.report

    profile_import = apply(profile_import)

    assert profile_import.status == Status.APPLIED
    camille = profile_of(funder, known)
    assert (camille.postcode, camille.commune) == ("38000", "38185")
    assert camille.birth_date == date(1950, 3, 12)
    assert (camille.household_size, camille.dependent_children, camille.income_bracket) == (2, 0, 2)
    assert camille.attributes == {"quotient_familial": "650"}
    assert camille.legal_basis == LegalBasis.PUBLIC_TASK
    # Léa is new: created, enrolled with her file number, her profile written
    lea = Enrolment.objects.get(funder=funder, reference="D-002")
    assert (lea.beneficiary.first_name, lea.beneficiary.email) == (
        "Léa",
        "lea.bernard@example.org",
    )
    assert lea.profile.birth_date == date(1958, 7, 14)
    assert lea.profile.attributes == {}
    # the file itself is not kept once its facts are in the profiles
    assert bytes(profile_import.content) == b""
    # one re-evaluation for the whole file
    assert reevaluations == [(funder.pk, sorted([known.pk, lea.beneficiary_id]))]


def valid_xlsx() -> bytes:
    """VALID as a spreadsheet program saves it: dates and numbers are typed cells."""
    book = openpyxl.Workbook()
    sheet = book.active
    rows = [
        FRENCH_HEADERS.split(";"),
        ["D-001", None, None, None, None, 38000, 38185, datetime(1950, 3, 12), 2, 0, 2, 650],
        [None] * 12,  # an empty line is skipped
        ["D-002", "Léa", "Bernard", "lea.bernard@example.org", None, 38100, "38185",
         datetime(1958, 7, 14), 1.0, 0, 1, None],
    ]  # fmt: skip
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_number_cell_keeps_the_leading_zero_of_codes(funder, criteria, known):
    book = openpyxl.Workbook()
    book.active.append(["reference", "postcode", "commune"])
    book.active.append(["D-001", 1000, 1004])
    out = io.BytesIO()
    book.save(out)

    apply(upload(funder, out.getvalue(), name="codes.xlsx"))

    assert (profile_of(funder, known).postcode, profile_of(funder, known).commune) == (
        "01000",
        "01004",
    )


def test_an_empty_cell_clears_the_fact_and_a_missing_column_keeps_it(funder, criteria, known):
    # given Camille's household and income known
    profile_imports.profile_save(
        enrolment=Enrolment.objects.get(beneficiary=known),
        data={
            "household_size": 3,
            "income_bracket": 2,
            "attributes": {"quotient_familial": "650"},
        },
        reevaluate=False,
    )
    # when a file leaves her household size and quotient empty, and has no income column
    content = english_csv(
        "D-001,,,1950-03-12", headers="reference,household_size,quotient_familial,birth_date"
    )
    profile_import = apply(upload(funder, content))
    # then those are cleared, the income kept
    assert profile_import.status == Status.APPLIED
    camille = profile_of(funder, known)
    assert camille.household_size is None
    assert camille.attributes == {}
    assert camille.income_bracket == 2
    assert camille.birth_date == date(1950, 3, 12)


def test_the_same_file_applied_twice_writes_the_same_values(funder, criteria, known, reevaluations):
    first = apply(upload(funder))
    after_first = snapshot()
    written = {p.pk: p.updated_at for p in BeneficiaryProfile.objects.all()}

    second = upload(funder)
    assert [row["result"] for row in second.report] == ["unchanged", "unchanged"]
    second = apply(second)

    assert (first.status, second.status) == (Status.APPLIED, Status.APPLIED)
    assert snapshot() == after_first  # no new person, no new profile
    assert {p.pk: p.updated_at for p in BeneficiaryProfile.objects.all()} == written
    assert reevaluations[1] == (funder.pk, [])  # nobody's facts changed


def test_applying_again_does_nothing(funder, criteria, known):
    profile_import = apply(upload(funder))
    before = snapshot()
    assert profile_import_apply(profile_import=profile_import).status == Status.APPLIED
    assert snapshot() == before


def test_a_file_with_errors_cannot_be_applied(funder, criteria, known):
    profile_import = upload(funder, english_csv("D-001,0", headers="reference,household_size"))
    with pytest.raises(InvalidState):
        profile_import_confirm(profile_import=profile_import)


def test_a_person_erased_since_the_check_stops_the_apply(funder, criteria, known):
    # given a checked file about Camille, who then has her data erased
    profile_import = profile_import_confirm(profile_import=upload(funder))
    beneficiary_erase(beneficiary=known, by=None, reason="Demande de la personne")
    before = snapshot()
    # when the file is applied
    profile_import = profile_import_apply(profile_import=profile_import)
    # then nothing is written and the row says why
    assert profile_import.status == Status.INVALID
    assert snapshot() == before
    assert errors_by_row(profile_import)[2] == {(None, "person_unknown")}
    assert not BeneficiaryProfile.objects.filter(enrolment__beneficiary=known).exists()


def test_a_row_about_someone_else_since_the_check_stops_the_apply(funder, criteria):
    # given a file adding Léa, checked; then Léa is enrolled by hand
    content = english_csv(
        "D-002,Léa,Bernard,lea@example.org,1",
        headers="reference,first_name,last_name,email,household_size",
    )
    profile_import = profile_import_confirm(profile_import=upload(funder, content))
    beneficiary_enrol(funder=funder, beneficiary=BeneficiaryFactory(email="lea@example.org"))
    before = snapshot()
    # when it is applied, Léa is no longer new: nothing is written
    profile_import = profile_import_apply(profile_import=profile_import)
    assert profile_import.status == Status.INVALID
    assert errors_by_row(profile_import)[2] == {(None, "changed_since_check")}
    assert snapshot() == before


def test_a_criterion_removed_since_the_check_stops_the_apply(funder, criteria, known):
    profile_import = profile_import_confirm(profile_import=upload(funder))
    EligibilityCriterion.objects.filter(kind=Kind.INCOME_BRACKET).delete()

    profile_import = profile_import_apply(profile_import=profile_import)

    assert profile_import.status == Status.INVALID
    assert "“Tranche revenus”" in profile_import.error
    assert not BeneficiaryProfile.objects.exists()


def test_a_file_is_checked_again_on_request(funder, criteria, known):
    profile_import = upload(
        funder, english_csv("D-001,2,2", headers="reference,household_size,dependent_children")
    )
    assert profile_import.status == Status.INVALID
    EligibilityCriterion.objects.filter(kind=Kind.DEPENDENT_CHILDREN).delete()
    # the column is no longer used: checked again, the whole file is refused
    profile_import = profile_import_recheck(profile_import=profile_import)
    assert profile_import.status == Status.INVALID
    assert "“dependent_children”" in profile_import.error


def test_the_tasks_check_and_apply(funder, criteria, known, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from funders import tasks

    profile_import = upload(funder)
    ProfileImport.objects.filter(pk=profile_import.pk).update(status=Status.CHECKING)
    assert tasks.profile_import_check(profile_import.pk) == Status.CHECKED
    ProfileImport.objects.filter(pk=profile_import.pk).update(status=Status.APPLYING)
    assert tasks.profile_import_apply(profile_import.pk) == Status.APPLIED
    assert profile_of(funder, known).household_size == 2


def test_an_imported_fact_makes_a_campaign_propose_the_aid(
    funder, program, known, settings, django_capture_on_commit_callbacks
):
    # given a campaign for people aged 65 or more, and Camille's age unknown
    settings.CELERY_TASK_ALWAYS_EAGER = True
    EligibilityCriterion.objects.create(program=program, kind=Kind.AGE, minimum=65)
    campaign = campaign_create(program=program, name="Aînés", amount=5_000)
    # when a file gives her birth date
    content = english_csv("D-001,1950-03-12", headers="reference,birth_date")
    with django_capture_on_commit_callbacks(execute=True):
        profile_import = upload(funder, content)
        apply(profile_import)
    # then the campaign proposes her the aid
    assert Proposal.objects.filter(campaign=campaign, beneficiary=known).count() == 1


# --- email addresses, by their canonical form ----------------------------------------------------


@postgresql_case_folding
def test_a_look_alike_address_is_not_someone_already_helped(funder, criteria):
    # given Sam, helped at sam@gmail.com; PostgreSQL's UPPER() folds a dotless i (U+0131) to I
    sam = BeneficiaryFactory(email="sam@gmail.com")
    beneficiary_enrol(funder=funder, beneficiary=sam)

    content = english_csv(",sam@gma\u0131l.com,3", headers="reference,email,household_size")
    profile_import = upload(funder, content)

    assert errors_by_row(profile_import) == {2: {(None, "person_unknown")}}


def test_an_address_in_another_case_is_someone_already_helped(funder, criteria):
    sam = BeneficiaryFactory(email="sam@gmail.com")
    beneficiary_enrol(funder=funder, beneficiary=sam)

    profile_import = apply(
        upload(funder, english_csv(",SAM@Gmail.com,3", headers="reference,email,household_size"))
    )

    assert profile_import.status == Status.APPLIED
    assert profile_of(funder, sam).household_size == 3


def test_two_spellings_of_one_address_in_a_file_are_the_same_person(funder, criteria):
    content = english_csv(
        "D-7,Ann,Lee,ann@Bücher.de,3",
        "D-8,Ann,Lee,ANN@xn--bcher-kva.de,3",
        headers="reference,first_name,last_name,email,household_size",
    )
    profile_import = upload(funder, content)

    assert errors_by_row(profile_import) == {2: set(), 3: {("email", "duplicate_in_file")}}


def test_a_non_ascii_part_before_the_at_sign_is_a_row_error(funder, criteria, known):
    content = english_csv("D-001,\u017fam@gmail.com,2", headers="reference,email,household_size")
    profile_import = upload(funder, content)

    assert errors_by_row(profile_import) == {2: {("email", "non_ascii_email")}}
