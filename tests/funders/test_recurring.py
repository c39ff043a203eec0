"""Recurring allocations: each run is made once, on its day, all or none."""

from datetime import date

import pytest
import time_machine
from django.urls import reverse

from funders.models import Allocation, RecurringAllocation
from funders.services import beneficiary_enrol, recurring_run_date
from funders.tasks import recurring_allocations_run_due
from tests.factories import BeneficiaryFactory, make_program


@pytest.fixture
def schedule(funder):
    program = make_program(funder=funder, funded=30_000)
    schedule = RecurringAllocation.objects.create(
        program=program,
        name="Aide mensuelle",
        amount=5_000,
        day_of_month=1,
        starts_on=date(2027, 1, 1),
        runs=6,
        validity_days=31,
    )
    schedule.beneficiaries.add(BeneficiaryFactory(), BeneficiaryFactory())
    return schedule


@pytest.mark.parametrize(
    ("starts_on", "run", "expected"),
    [
        (date(2027, 1, 1), 0, date(2027, 1, 1)),
        (date(2027, 1, 1), 5, date(2027, 6, 1)),
        (date(2026, 11, 15), 2, date(2027, 1, 1)),  # the day of the month, not of starts_on
        (date(2027, 12, 1), 1, date(2028, 1, 1)),
    ],
)
def test_run_dates_follow_the_months(starts_on, run, expected):
    schedule = RecurringAllocation(starts_on=starts_on, day_of_month=1)
    assert recurring_run_date(schedule, run) == expected


def test_nothing_is_granted_before_the_first_day(schedule):
    with time_machine.travel("2026-12-31 23:30 +01:00"):
        assert recurring_allocations_run_due() == 0
    assert Allocation.objects.count() == 0


def test_each_run_is_made_once_however_often_the_task_runs(schedule):
    with time_machine.travel("2027-02-01 08:00 +01:00"):
        assert recurring_allocations_run_due() == 2  # January's run and February's
        assert recurring_allocations_run_due() == 0
    schedule.refresh_from_db()
    assert schedule.runs_done == 2
    assert Allocation.objects.filter(program=schedule.program).count() == 4
    first = Allocation.objects.order_by("valid_from").first()
    assert first.valid_from.isoformat() == "2026-12-31T23:00:00+00:00"
    assert (first.valid_until - first.valid_from).days == 31


def test_a_run_the_program_cannot_fund_waits_and_says_why(schedule):
    with time_machine.travel("2027-04-01 08:00 +02:00"):
        recurring_allocations_run_due()  # 3 runs of 2 grants of 50 €: the whole 300 €
        assert recurring_allocations_run_due() == 0
    schedule.refresh_from_db()
    assert schedule.runs_done == 3
    with time_machine.travel("2027-05-01 08:00 +02:00"):
        assert recurring_allocations_run_due() == 0
    schedule.refresh_from_db()
    assert schedule.runs_done == 3
    assert "100,00" in schedule.last_error  # what the run needs, said to the funder
    assert Allocation.objects.count() == 6  # not one grant of the unfunded run

    from funders.services import program_fund

    program_fund(program=schedule.program, amount=20_000, idempotency_key="top-up")
    with time_machine.travel("2027-05-01 09:00 +02:00"):
        assert recurring_allocations_run_due() == 2  # April's, late, and May's
    schedule.refresh_from_db()
    assert schedule.last_error == ""
    assert Allocation.objects.count() == 10


def test_a_stopped_schedule_grants_nothing_more(schedule):
    schedule.is_active = False
    schedule.save()
    with time_machine.travel("2027-03-01 08:00 +01:00"):
        assert recurring_allocations_run_due() == 0


def test_a_manager_schedules_from_the_admin_and_the_history_keeps_it(
    manager_client, funder, manager
):
    program = make_program(funder=funder)
    person = BeneficiaryFactory()
    beneficiary_enrol(funder=funder, beneficiary=person)
    answer = manager_client.post(
        reverse("admin:funders_recurringallocation_add"),
        {
            "program": program.pk,
            "name": "Chaque mois",
            "amount": "50",
            "day_of_month": 1,
            "starts_on": "2027-01-01",
            "runs": 6,
            "validity_days": 30,
            "beneficiaries": [person.pk],
            "is_active": "on",
        },
    )
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    schedule = RecurringAllocation.objects.get()
    assert schedule.amount == 5_000
    assert schedule.created_by == manager
    assert {h.history_user for h in schedule.history.all()} == {manager}


def test_a_day_past_the_28th_is_refused(manager_client, funder):
    program = make_program(funder=funder)
    answer = manager_client.post(
        reverse("admin:funders_recurringallocation_add"),
        {
            "program": program.pk,
            "name": "x",
            "amount": "50",
            "day_of_month": 31,
            "starts_on": "2027-01-01",
            "runs": 6,
        },
    )
    assert answer.status_code == 200
    assert "day_of_month" in answer.context["adminform"].form.errors
