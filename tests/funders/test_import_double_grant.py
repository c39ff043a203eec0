"""An import's dry run flags the people who already hold the program's aid, and the apply
skips them: no silent double grant. Rows without dates take the program's default validity."""

from datetime import date, datetime

import pytest

from core.time import PARIS, end_of_day, start_of_day
from funders.imports import (
    allocation_import_apply,
    allocation_import_confirm,
    allocation_import_create,
)
from funders.models import Allocation
from funders.services import beneficiary_enrol
from tests.factories import BeneficiaryFactory, make_allocation, make_program

pytestmark = pytest.mark.django_db

FILE = (
    "reference,first_name,last_name,email,amount,valid_from,valid_until\n"
    "D-001,Camille,Martin,camille.martin@example.org,50,,\n"
    "D-002,Léa,Bernard,lea.bernard@example.org,75,2026-12-01,2027-05-31\n"
).encode()


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 10, 0, tzinfo=PARIS), tick=True)


def test_a_person_already_holding_the_aid_is_flagged_and_skipped(funder):
    program = make_program(funder=funder, funded=100_000)
    program.default_valid_until = date(2027, 3, 31)
    program.save()
    lea = BeneficiaryFactory(first_name="Léa", last_name="Bernard", email="lea.bernard@example.org")
    beneficiary_enrol(funder=funder, beneficiary=lea, reference="D-002")
    make_allocation(
        program=program, beneficiary=lea, amount=15_000, valid_until=end_of_day(date(2027, 9, 30))
    )

    checked = allocation_import_create(program=program, filename="f.csv", content=FILE)
    report = {row["row"]: row for row in checked.report}

    assert report[3]["result"] == "already_holds"
    assert report[3]["already_holds"].startswith("Déjà titulaire de cette aide (150,00")
    assert checked.total_amount == 5_000  # the skipped row is not counted
    # the row without dates: from today to the program's last day
    assert (report[2]["valid_from"], report[2]["valid_until"]) == ("2026-11-23", "2027-03-31")

    allocation_import_apply(allocation_import=allocation_import_confirm(allocation_import=checked))
    assert Allocation.objects.filter(program=program, beneficiary=lea).count() == 1
    camille = Allocation.objects.get(program=program, beneficiary__last_name="Martin")
    assert camille.valid_from == start_of_day(date(2026, 11, 23))
    assert camille.valid_until == end_of_day(date(2027, 3, 31))


def test_an_import_granting_again_on_purpose_grants_the_holder_too(funder):
    program = make_program(funder=funder, funded=100_000)
    lea = BeneficiaryFactory(first_name="Léa", last_name="Bernard", email="lea.bernard@example.org")
    beneficiary_enrol(funder=funder, beneficiary=lea, reference="D-002")
    make_allocation(program=program, beneficiary=lea, amount=15_000)

    checked = allocation_import_create(
        program=program, filename="f.csv", content=FILE, grant_to_holders=True
    )
    report = {row["row"]: row for row in checked.report}
    assert report[3]["already_holds"]  # still said, so the manager sees whom it concerns
    assert checked.total_amount == 12_500  # and counted: both rows are granted

    allocation_import_apply(allocation_import=allocation_import_confirm(allocation_import=checked))
    assert Allocation.objects.filter(program=program, beneficiary=lea).count() == 2
