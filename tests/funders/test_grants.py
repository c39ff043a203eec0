"""Granting aid from the admin: to one beneficiary from their page, or to a selection at once."""

from datetime import date

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from funders.models import Allocation
from funders.services import beneficiary_enrol
from ledger.models import Transfer
from tests.factories import BeneficiaryFactory, make_merchant, make_program
from tests.funders.conftest import client_for


@pytest.fixture
def program(funder):
    # A shop accepts the aid: the grant page asks twice before granting an aid no shop takes
    # (tests/backoffice/test_grant_warnings.py).
    make_merchant()
    return make_program(funder=funder, funded=100_000)


@pytest.fixture
def people(funder):
    people = [BeneficiaryFactory() for _ in range(3)]
    for person in people:
        beneficiary_enrol(funder=funder, beneficiary=person)
    return people


def grant_form(program, amount="50,00", token="t1", **extra):
    return {
        "program": program.pk,
        "amount": amount,
        "valid_from": "2026-12-01",
        "valid_until": "2027-03-31",
        "token": token,
        "grant": "1",
        **extra,
    }


def bulk(client, people, data):
    return client.post(
        reverse("admin:wallet_beneficiary_changelist"),
        {"action": "grant_aid", ACTION_CHECKBOX_NAME: [p.pk for p in people], **data},
    )


def test_a_manager_grants_aid_to_one_beneficiary_from_their_page(manager_client, program, people):
    page = reverse("admin:wallet_beneficiary_grant", args=[people[0].pk])
    assert manager_client.get(page).status_code == 200
    answer = manager_client.post(page, grant_form(program))
    assert answer.status_code == 302
    allocation = Allocation.objects.get(beneficiary=people[0])
    assert allocation.amount == 5_000
    # "until the 31st of March" includes the 31st: the aid ends at midnight after it, in Paris
    # (summer time by then).
    assert allocation.valid_until.isoformat() == "2027-03-31T22:00:00+00:00"
    assert allocation.valid_from.isoformat() == "2026-11-30T23:00:00+00:00"


def test_a_manager_grants_aid_to_a_selection_all_at_once(manager_client, program, people):
    answer = bulk(manager_client, people, grant_form(program))
    assert answer.status_code == 302
    assert Allocation.objects.filter(program=program).count() == 3
    program.float_account.refresh_from_db()
    assert program.float_account.available == 100_000 - 3 * 5_000


def test_the_same_form_sent_twice_grants_once(manager_client, program, people):
    bulk(manager_client, people, grant_form(program))
    bulk(manager_client, people, grant_form(program))
    assert Allocation.objects.filter(program=program).count() == 3
    assert Transfer.objects.filter(kind=Transfer.Kind.ALLOCATE).count() == 3


def test_a_selection_the_program_cannot_fund_gets_nothing(manager_client, program, people):
    answer = bulk(manager_client, people, grant_form(program, amount="400"))
    assert answer.status_code == 200
    assert "amount" in answer.context["form"].errors
    assert Allocation.objects.count() == 0
    program.float_account.refresh_from_db()
    assert program.float_account.available == 100_000


@pytest.mark.parametrize("amount", ["-5", "0", "12,345", "douze", "1e3"])
def test_bad_amounts_are_refused_with_a_message(manager_client, program, people, amount):
    page = reverse("admin:wallet_beneficiary_grant", args=[people[0].pk])
    answer = manager_client.post(page, grant_form(program, amount=amount))
    assert answer.status_code == 200
    assert answer.context["form"].errors["amount"]
    assert Allocation.objects.count() == 0


def test_an_end_before_the_start_is_refused(manager_client, program, people):
    page = reverse("admin:wallet_beneficiary_grant", args=[people[0].pk])
    answer = manager_client.post(page, grant_form(program, valid_until="2026-11-01"))
    assert answer.context["form"].errors["valid_until"]


def test_another_funders_program_cannot_be_chosen(manager_client, other_funder, people):
    theirs = make_program(funder=other_funder)
    page = reverse("admin:wallet_beneficiary_grant", args=[people[0].pk])
    answer = manager_client.post(page, grant_form(theirs))
    assert answer.context["form"].errors["program"]
    assert Allocation.objects.count() == 0


def test_another_funders_beneficiaries_are_not_granted(
    manager_client, program, people, other_funder
):
    stranger = BeneficiaryFactory()
    beneficiary_enrol(funder=other_funder, beneficiary=stranger)
    page = reverse("admin:wallet_beneficiary_grant", args=[stranger.pk])
    assert manager_client.post(page, grant_form(program)).status_code == 404
    bulk(manager_client, [*people, stranger], grant_form(program))
    assert not Allocation.objects.filter(beneficiary=stranger).exists()
    assert Allocation.objects.count() == 3


def test_an_agent_cannot_grant(agent, program, people):
    client = client_for(agent)
    page = reverse("admin:wallet_beneficiary_grant", args=[people[0].pk])
    assert client.post(page, grant_form(program)).status_code == 403
    bulk(client, people, grant_form(program))
    assert Allocation.objects.count() == 0


def test_an_agent_registers_a_beneficiary_who_is_enrolled_with_the_funder(agent, funder):
    client = client_for(agent)
    answer = client.post(
        reverse("admin:wallet_beneficiary_add"),
        {
            "first_name": "Odette",
            "last_name": "Girard",
            "email": "odette@example.org",
            "phone": "06 12 34 56 78",
            "postcode": "38100",
            "preferred_language": "fr",
            "funder": funder.pk,
            "reference": "DOS-42",
        },
    )
    assert answer.status_code == 302
    enrolment = funder.enrolments.get()
    assert enrolment.reference == "DOS-42"
    assert enrolment.beneficiary.wallet.pockets.count() == 0
    assert date.today()  # the person now appears in the funder's list
    listing = client.get(reverse("admin:wallet_beneficiary_changelist")).content.decode()
    assert "Girard" in listing
