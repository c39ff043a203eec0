"""Allocation files: reading, the check (a dry run), and the apply (all rows or none, once)."""

import io
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from core.errors import InvalidState
from core.money import format_money
from funders import imports, tasks
from funders.imports import (
    DayWidget,
    DepartementsWidget,
    EurosWidget,
    ImportFileError,
    allocation_import_apply,
    allocation_import_confirm,
    allocation_import_create,
    allocation_import_recheck,
    read_rows,
)
from funders.models import Allocation, AllocationImport, Enrolment
from funders.services import beneficiary_enrol, program_fund
from ledger.models import Account, Entry, Transfer
from tests.concurrency import run_together
from tests.factories import BeneficiaryFactory, make_allocation, make_program
from tests.markers import postgresql_case_folding, postgresql_only
from wallet.models import Beneficiary

FILES = Path(__file__).parent / "files"
PARIS = ZoneInfo("Europe/Paris")
Status = AllocationImport.Status
VALID_TOTAL = 5000 + 7550 + 10025  # the amounts of files/valid.csv, in cents


@pytest.fixture(autouse=True)
def today(time_machine):
    # The files' dates are in the winter of 2026-2027.
    time_machine.move_to(datetime(2026, 11, 23, 10, 0, tzinfo=PARIS), tick=True)


@pytest.fixture
def program(funder):
    return make_program(funder=funder, funded=100_000)


def valid_xlsx() -> bytes:
    """files/valid.csv as a spreadsheet program saves it: dates and amounts are typed cells."""
    book = openpyxl.Workbook()
    sheet = book.active
    rows = [
        ("Numéro dossier", "Prénom", "Nom", "Email", "Téléphone", "Code postal", "Montant",
         "Début", "Fin", "Départements", "Plafond par paiement"),
        ("D-001", "Camille", "Martin", "camille.martin@example.org", "06 12 34 56 78", 38000, 50,
         date(2026, 12, 1), date(2027, 5, 31), None, None),
        ("D-002", "Léa", "Bernard", "lea.bernard@example.org", None, 38100, 75.5,
         date(2026, 12, 1), date(2027, 5, 31), "38, 73", 25),
        (None,) * 11,  # an empty line is skipped, and the next keeps its line number
        ("D-003", "Hugo", "Petit", None, "07 98 76 54 32", 73000, 100.25,
         date(2026, 12, 1), None, None, None),
    ]  # fmt: skip
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(program, name="valid.csv", content=None):
    if content is None:
        content = (FILES / name).read_bytes()
    return allocation_import_create(program=program, filename=name, content=content)


def apply(allocation_import):
    return allocation_import_apply(
        allocation_import=allocation_import_confirm(allocation_import=allocation_import)
    )


def snapshot():
    return {
        model.__name__: model.objects.count()
        for model in (Allocation, Beneficiary, Enrolment, Transfer, Entry)
    }


def errors_by_row(allocation_import) -> dict[int, set[tuple]]:
    return {
        row["row"]: {(error["field"], error["code"]) for error in row["errors"]}
        for row in allocation_import.report
    }


# --- reading cells -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "cents"),
    [
        ("50", 5000),
        ("50,00", 5000),
        ("50.5", 5050),
        ("1 234,50 €", 123450),
        (50, 5000),
        (75.5, 7550),
        (100.25, 10025),
        ("", None),
    ],
)
def test_amounts_are_read_as_exact_cents(cell, cents):
    assert EurosWidget().clean(cell) == cents


@pytest.mark.parametrize(
    ("cell", "code"),
    [
        ("-20", "amount_not_positive"),
        ("0", "amount_not_positive"),
        ("12,345", "amount_too_precise"),
        ("12,500", "amount_too_precise"),  # twelve and a half, or twelve thousand five hundred?
        (0.001, "amount_too_precise"),
        ("fifty", "invalid_amount"),
        ("1.234,50", "invalid_amount"),
        ("99999999999", "amount_too_large"),
    ],
)
def test_bad_amounts_are_refused_with_their_code(cell, code):
    with pytest.raises(imports.CellError) as refused:
        EurosWidget().clean(cell)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("cell", "day"),
    [
        ("2026-12-01", date(2026, 12, 1)),
        ("01/12/2026", date(2026, 12, 1)),
        (" 1/12/2026 ", date(2026, 12, 1)),
        (datetime(2026, 12, 1), date(2026, 12, 1)),
        ("", None),
    ],
)
def test_dates_are_read_in_both_formats(cell, day):
    assert DayWidget().clean(cell) == day


@pytest.mark.parametrize("cell", ["2026-13-45", "31/02/2026", "12/01/26", "tomorrow", 46000])
def test_bad_dates_are_refused(cell):
    with pytest.raises(imports.CellError) as refused:
        DayWidget().clean(cell)
    assert refused.value.code == "invalid_date"


@pytest.mark.parametrize(
    ("cell", "codes"),
    [("38, 73", ["38", "73"]), ("2a;974", ["2A", "974"]), ("1", ["01"]), (38.0, ["38"])],
)
def test_departements_are_read_as_codes(cell, codes):
    assert DepartementsWidget().clean(cell) == codes


def test_an_unknown_departement_is_refused():
    with pytest.raises(imports.CellError) as refused:
        DepartementsWidget().clean("38, 99")
    assert refused.value.code == "unknown_departement"
    assert refused.value.params == {"value": "99"}


# --- reading files -------------------------------------------------------------------------------


def test_a_french_csv_saved_by_a_spreadsheet_program_is_read():
    # given the valid file as French Excel writes CSV: Windows-1252, ";" between columns
    text = (FILES / "valid.csv").read_text().replace(",", ";").replace('"38; 73"', "38, 73")
    text = text.replace('"75;50"', "75,50")
    content = text.encode("cp1252")
    # when it is read
    rows = read_rows(content=content, filename="valid.csv")
    # then accents and amounts come through
    assert [row.cells["first_name"] for row in rows] == ["Camille", "Léa", "Hugo"]
    assert rows[1].cells["amount"] == "75,50"


@pytest.mark.parametrize(
    ("content", "filename", "fragment"),
    [
        (b"first_name,last_name,email,amount,valid_from,colour\n", "a.csv", "colour"),
        (b"first_name,last_name,email,valid_from\nA,B,a@b.fr,2026-12-01\n", "a.csv", "amount"),
        (b"first_name,last_name,amount,valid_from\nA,B,5,2026-12-01\n", "a.csv", "phone"),
        (b"first_name,last_name,email,amount,valid_from\n,,,,\n", "a.csv", ""),
        (b"first_name,last_name,email,amount,valid_from\nA,B,a@b.fr,5,00,2026\n", "a.csv", ";"),
        (b"%PDF-1.4 not a spreadsheet", "a.pdf", ""),
        (b"PK\x03\x04 a broken archive", "a.xlsx", ""),
    ],
)
def test_a_file_that_cannot_be_used_is_refused_whole(content, filename, fragment):
    with pytest.raises(ImportFileError) as refused:
        read_rows(content=content, filename=filename)
    assert refused.value.code == "import_file_invalid"
    assert fragment in str(refused.value.message)


def test_a_refused_file_creates_no_import(program):
    with pytest.raises(ImportFileError):
        upload(program, content=b"name,amount\nA,5\n")
    assert not AllocationImport.objects.exists()


# --- the check -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_the_check_gives_each_row_its_result_and_writes_nothing(program, kind):
    before = snapshot()
    content = valid_xlsx() if kind == "xlsx" else None
    allocation_import = upload(program, f"valid.{kind}", content)
    assert allocation_import.status == Status.CHECKED
    assert [row["result"] for row in allocation_import.report] == ["new", "new", "new"]
    assert [row["row"] for row in allocation_import.report] == (
        [2, 3, 5] if kind == "xlsx" else [2, 3, 4]
    )
    assert allocation_import.total_amount == VALID_TOTAL
    assert allocation_import.processed_rows == allocation_import.total_rows == 3
    assert snapshot() == before


def test_people_already_helped_are_recognised_by_file_number_email_or_phone(program, funder):
    by_reference = BeneficiaryFactory(email="other@example.org")
    beneficiary_enrol(funder=funder, beneficiary=by_reference, reference="D-001")
    by_email = BeneficiaryFactory(email="LEA.BERNARD@example.org")
    beneficiary_enrol(funder=funder, beneficiary=by_email)
    by_phone = BeneficiaryFactory(email="", phone="+33798765432")
    beneficiary_enrol(funder=funder, beneficiary=by_phone)

    allocation_import = upload(program)

    assert [(row["result"], row["beneficiary_id"]) for row in allocation_import.report] == [
        ("existing", by_reference.pk),
        ("existing", by_email.pk),
        ("existing", by_phone.pk),
    ]


def test_another_funders_beneficiary_is_never_matched(program, other_funder):
    theirs = BeneficiaryFactory(email="camille.martin@example.org")
    beneficiary_enrol(funder=other_funder, beneficiary=theirs, reference="D-001")

    allocation_import = upload(program)

    assert allocation_import.report[0]["result"] == "new"
    assert allocation_import.report[0]["beneficiary_id"] is None


def test_a_file_number_known_for_someone_else_is_an_error(program, funder):
    known = BeneficiaryFactory(email="camille.martin@example.org")
    beneficiary_enrol(funder=funder, beneficiary=known, reference="X-9")

    allocation_import = upload(program)

    assert allocation_import.status == Status.INVALID
    assert errors_by_row(allocation_import)[2] == {("reference", "reference_mismatch")}


def test_the_check_lists_every_error_with_its_row_and_nothing_changes(program):
    before = snapshot()

    allocation_import = upload(program, "errors.csv")

    assert allocation_import.status == Status.INVALID
    assert errors_by_row(allocation_import) == {
        2: {("departements", "unknown_departement")},
        3: {("amount", "amount_not_positive")},
        4: {("amount", "amount_too_precise")},
        5: {("valid_until", "dates_reversed")},
        6: {("valid_from", "invalid_date")},
        7: {("reference", "duplicate_in_file")},
        8: {("last_name", "required")},
        9: {(None, "contact_missing")},
        10: {
            ("email", "invalid_email"),
            ("phone", "invalid_phone"),
            ("postcode", "invalid_postcode"),
        },
        11: set(),
    }
    assert allocation_import.report[5]["errors"][0]["params"] == {"row": 2}
    assert snapshot() == before


def test_a_file_with_errors_cannot_be_applied(program):
    allocation_import = upload(program, "errors.csv")
    before = snapshot()

    with pytest.raises(InvalidState):
        allocation_import_confirm(allocation_import=allocation_import)
    allocation_import_apply(allocation_import=allocation_import)

    allocation_import.refresh_from_db()
    assert allocation_import.status == Status.INVALID
    assert snapshot() == before


def test_each_error_has_a_message_in_plain_words(program):
    allocation_import = upload(program, "errors.csv")
    messages = [
        imports.error_message(error) for row in allocation_import.report for error in row["errors"]
    ]
    assert all(message and "%(" not in message for message in messages)


def test_an_aid_that_would_end_before_today_is_an_error(program):
    content = (
        b"first_name,last_name,email,amount,valid_from,valid_until\n"
        b"Anne,Durand,anne@example.org,30,2026-01-01,2026-11-22\n"
    )
    allocation_import = upload(program, "past.csv", content)
    assert errors_by_row(allocation_import) == {2: {("valid_until", "already_ended")}}


def test_a_file_needing_more_than_the_program_has_is_refused_with_the_amounts(funder):
    program = make_program(funder=funder, funded=10_000)

    allocation_import = upload(program)

    assert allocation_import.status == Status.INVALID
    assert all(not row["errors"] for row in allocation_import.report)
    assert allocation_import.total_amount == VALID_TOTAL
    assert format_money(VALID_TOTAL, "EUR") in allocation_import.error
    assert format_money(10_000, "EUR") in allocation_import.error
    with pytest.raises(InvalidState):
        allocation_import_confirm(allocation_import=allocation_import)


def test_a_file_refused_for_funds_passes_once_the_program_is_funded(funder):
    program = make_program(funder=funder, funded=10_000)
    allocation_import = upload(program)

    program_fund(program=program, amount=50_000, idempotency_key="top-up")
    assert allocation_import_recheck(allocation_import=allocation_import).status == Status.CHECKED


def test_the_check_writes_its_progress_every_50_rows(program, monkeypatch):
    # given a file of 120 rows, and a look at the stored progress as each row is matched
    lines = ["first_name,last_name,email,amount,valid_from"]
    lines += [f"A,B{n},p{n}@example.org,1,2026-12-01" for n in range(120)]
    seen = []
    match = imports._match

    def spy(funder, draft):
        seen.append(AllocationImport.objects.get().processed_rows)
        return match(funder, draft)

    monkeypatch.setattr(imports, "_match", spy)
    # when it is checked
    allocation_import = upload(program, "big.csv", "\n".join(lines).encode())
    # then other readers saw the count move by 50s, and the end
    assert seen[0] == 0 and seen[50] == 50 and seen[100] == 100
    assert allocation_import.processed_rows == 120


# --- the apply -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_applying_a_valid_file_grants_every_row(program, funder, kind):
    float_before = Account.objects.get(pk=program.float_account_id).available
    content = valid_xlsx() if kind == "xlsx" else None

    allocation_import = apply(upload(program, f"valid.{kind}", content))

    assert allocation_import.status == Status.APPLIED
    assert allocation_import.applied_at is not None
    allocations = Allocation.objects.filter(program=program).order_by("amount")
    assert [a.amount for a in allocations] == [5000, 7550, 10025]
    assert sum(a.pocket.account.available for a in allocations) == VALID_TOTAL
    assert Account.objects.get(pk=program.float_account_id).available == (
        float_before - VALID_TOTAL
    )
    references = set(Enrolment.objects.filter(funder=funder).values_list("reference", flat=True))
    assert references == {"D-001", "D-002", "D-003"}
    assert [row["allocation_id"] for row in allocation_import.report] == [
        a.pk for a in Allocation.objects.filter(program=program).order_by("pk")
    ]
    assert [row["result"] for row in allocation_import.report] == ["new", "new", "new"]


def test_validity_runs_from_midnight_to_the_end_of_the_last_day_in_paris(program):
    apply(upload(program))
    first, _, third = Allocation.objects.filter(program=program).order_by("amount")
    assert first.valid_from == datetime(2026, 12, 1, tzinfo=PARIS)
    assert first.valid_until == datetime(2027, 6, 1, tzinfo=PARIS)  # 31 May included
    assert third.valid_until is None


def test_a_row_overrides_the_programs_departements_and_limit_per_payment(funder):
    program = make_program(
        funder=funder, rules={"zone": {"countries": ["FR"], "departements": ["38"]}}
    )
    apply(upload(program))
    overridden = Allocation.objects.get(program=program, amount=7550)
    assert overridden.rules == {
        "zone": {"countries": ["FR"], "departements": ["38", "73"]},
        "limits": {"per_payment": 2500},
    }
    assert Allocation.objects.get(program=program, amount=5000).rules == {}


def test_an_existing_beneficiary_gets_the_grant_and_keeps_their_details(program, funder):
    known = BeneficiaryFactory(first_name="Camille", email="camille.martin@example.org")
    beneficiary_enrol(funder=funder, beneficiary=known)

    apply(upload(program))

    assert Allocation.objects.get(program=program, amount=5000).beneficiary == known
    assert Enrolment.objects.get(funder=funder, beneficiary=known).reference == "D-001"
    known.refresh_from_db()
    assert known.phone == ""  # the file's phone number did not overwrite their record


def test_the_same_file_uploaded_again_is_refused_as_already_allocated(program):
    apply(upload(program))
    before = snapshot()

    again = upload(program)

    assert again.status == Status.INVALID
    assert errors_by_row(again) == {n: {(None, "already_allocated")} for n in (2, 3, 4)}
    assert again.total_amount == 0
    with pytest.raises(InvalidState):
        allocation_import_confirm(allocation_import=again)
    assert snapshot() == before


def test_the_same_file_checked_twice_then_applied_twice_grants_once(program):
    first, second = upload(program), upload(program)
    apply(first)
    float_after_first = Account.objects.get(pk=program.float_account_id).available
    before = snapshot()

    second = apply(second)

    assert second.status == Status.APPLIED
    assert [row["result"] for row in second.report] == ["already_allocated"] * 3
    assert snapshot() == before
    assert Account.objects.get(pk=program.float_account_id).available == float_after_first


def test_when_money_runs_out_during_the_apply_nothing_is_granted(funder):
    # given a checked file, then a grant by hand that leaves too little for it
    program = make_program(funder=funder, funded=30_000)
    allocation_import = upload(program)
    assert allocation_import.status == Status.CHECKED
    make_allocation(program=program, amount=20_000)
    before = snapshot()
    # when it is applied
    allocation_import = apply(allocation_import)
    # then all of it is undone, and the import says why
    assert allocation_import.status == Status.FAILED
    assert format_money(10_000, "EUR") in allocation_import.error
    assert snapshot() == before
    assert Account.objects.get(pk=program.float_account_id).available == 10_000


def test_applying_again_does_nothing(program):
    allocation_import = apply(upload(program))
    before = snapshot()
    assert allocation_import_apply(allocation_import=allocation_import).status == Status.APPLIED
    assert snapshot() == before


def test_a_row_that_changed_since_the_check_stops_the_apply(program, funder):
    allocation_import = upload(program)
    allocation_import_confirm(allocation_import=allocation_import)
    # Between the check and the apply, two people known to the funder take row 2's email.
    for _ in range(2):
        beneficiary_enrol(
            funder=funder, beneficiary=BeneficiaryFactory(email="lea.bernard@example.org")
        )
    before = snapshot()

    allocation_import = allocation_import_apply(allocation_import=allocation_import)

    assert allocation_import.status == Status.INVALID
    assert errors_by_row(allocation_import)[3] == {(None, "ambiguous_contact")}
    assert snapshot() == before


def test_the_tasks_check_and_apply(program, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    allocation_import = upload(program)
    AllocationImport.objects.filter(pk=allocation_import.pk).update(status=Status.CHECKING)

    assert tasks.allocation_import_check(allocation_import.pk) == Status.CHECKED
    allocation_import_confirm(allocation_import=allocation_import)
    assert tasks.allocation_import_apply(allocation_import.pk) == Status.APPLIED
    assert tasks.allocation_import_apply(allocation_import.pk) == Status.APPLIED
    assert Allocation.objects.filter(program=program).count() == 3
    assert tasks.allocation_import_check(0) is None


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_same_file_applied_twice_at_once_grants_once(funder):
    # given the same file uploaded twice, both checked and confirmed
    program = make_program(funder=funder, funded=100_000)
    first, second = upload(program), upload(program)
    # Confirmed as allocation_import_confirm does, without queueing the task: the test runs
    # both applies.
    AllocationImport.objects.update(status=Status.APPLYING)
    # when both are applied at the same moment, by two workers
    outcomes = run_together(
        [lambda i=i: allocation_import_apply(allocation_import=i).status for i in (first, second)]
    )
    # then both end applied, the file is granted once, and one of them says so
    assert outcomes == [Status.APPLIED, Status.APPLIED]
    assert Allocation.objects.filter(program=program).count() == 3
    results = sorted(row["result"] for i in AllocationImport.objects.all() for row in i.report)
    assert results == ["already_allocated"] * 3 + ["new"] * 3
    assert Account.objects.get(pk=program.float_account_id).available == 100_000 - VALID_TOTAL


# --- email addresses, by their canonical form ----------------------------------------------------

HEADERS = "reference,first_name,last_name,email,phone,postcode,amount,valid_from,valid_until"


def file_of(*lines: str) -> bytes:
    return "\n".join([HEADERS, *lines]).encode()


@postgresql_case_folding
def test_a_look_alike_address_is_not_someone_already_helped(program, funder):
    # given Léa, helped at lea@gmail.com; PostgreSQL's UPPER() folds a dotless i (U+0131) to I
    lea = BeneficiaryFactory(email="lea@gmail.com")
    beneficiary_enrol(funder=funder, beneficiary=lea)

    allocation_import = upload(
        program, content=file_of(",Léa,Bernard,lea@gma\u0131l.com,,38000,50,2026-12-01,")
    )

    assert allocation_import.report[0]["result"] == "new"
    assert allocation_import.report[0]["beneficiary_id"] is None


def test_an_address_in_another_case_is_someone_already_helped(program, funder):
    lea = BeneficiaryFactory(email="lea@gmail.com")
    beneficiary_enrol(funder=funder, beneficiary=lea)

    allocation_import = upload(
        program, content=file_of(",Léa,Bernard,Lea@GMAIL.com,,38000,50,2026-12-01,")
    )

    assert allocation_import.report[0]["result"] == "existing"
    assert allocation_import.report[0]["beneficiary_id"] == lea.pk


def test_two_spellings_of_one_address_in_a_file_are_the_same_person(program):
    allocation_import = upload(
        program,
        content=file_of(
            "D-1,Ann,Lee,ann@Bücher.de,,38000,50,2026-12-01,",
            "D-2,Ann,Lee,ANN@xn--bcher-kva.de,,38000,50,2026-12-01,",
        ),
    )

    assert errors_by_row(allocation_import) == {2: set(), 3: {("email", "duplicate_in_file")}}


def test_a_non_ascii_part_before_the_at_sign_is_a_row_error(program):
    allocation_import = upload(
        program, content=file_of("D-1,Ann,Lee,\u017fam@gmail.com,,38000,50,2026-12-01,")
    )

    assert errors_by_row(allocation_import) == {2: {("email", "non_ascii_email")}}


def test_a_new_person_is_recorded_with_the_canonical_address(program):
    allocation_import = upload(
        program, content=file_of("D-1,Ann,Lee,Ann.Lee@Bücher.DE,,38000,50,2026-12-01,")
    )

    apply(allocation_import)

    assert Beneficiary.objects.get().email == "ann.lee@xn--bcher-kva.de"
