"""No silent double grant, no aid granted unseen where no shop takes it: the grant page (one
person or a selection) says so before granting; the program's default validity fills the form."""

from datetime import date

import pytest
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from core.time import PARIS, end_of_day
from funders.models import Allocation
from funders.services import beneficiary_enrol
from tests.factories import BeneficiaryFactory, make_allocation, make_merchant, make_program
from tests.funders.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel("2027-09-01 10:00 +02:00", tick=False):
        yield


@pytest.fixture
def people(funder):
    people = [BeneficiaryFactory(last_name=name) for name in ("Bernard", "Dupont", "Moreau")]
    for person in people:
        beneficiary_enrol(funder=funder, beneficiary=person)
    return people


@pytest.fixture
def program(funder):
    make_merchant()
    return make_program(funder=funder, funded=100_000, name="Aide rentrée")


def bulk(client, people, **data):
    return client.post(
        reverse("admin:wallet_beneficiary_changelist"),
        {
            "action": "grant_aid",
            ACTION_CHECKBOX_NAME: [p.pk for p in people],
            "program": data.pop("program").pk,
            "amount": "50",
            "valid_from": "2027-09-01",
            "valid_until": "2027-09-30",
            "token": "t1",
            "grant": "1",
            **data,
        },
    )


def test_people_who_already_hold_the_aid_are_flagged_then_skipped(manager, program, people):
    make_allocation(
        program=program,
        beneficiary=people[1],
        amount=15_000,
        valid_until=end_of_day(date(2027, 9, 30)),
    )
    client = client_for(manager)

    warned = bulk(client, people, program=program)
    assert warned.status_code == 200
    flagged = "Déjà titulaire de cette aide (150,00\xa0€ jusqu\u2019au 30/09/2027)"
    assert flagged in warned.content.decode()
    assert Allocation.objects.filter(program=program).count() == 1  # nothing granted yet

    done = bulk(client, people, program=program, warned="1")
    assert done.status_code == 302
    assert set(Allocation.objects.filter(program=program).values_list("beneficiary", "amount")) == {
        (people[0].pk, 5_000),
        (people[1].pk, 15_000),
        (people[2].pk, 5_000),
    }


def test_a_manager_grants_again_on_purpose(manager, program, people):
    make_allocation(program=program, beneficiary=people[0], amount=15_000)

    bulk(client_for(manager), people[:1], program=program, warned="1", grant_again="on")

    assert Allocation.objects.filter(program=program, beneficiary=people[0]).count() == 2


def test_an_aid_no_shop_accepts_is_granted_only_after_a_warning(manager, funder, people):
    program = make_program(funder=funder, rules={"zone": {"departements": ["2A"]}})
    make_merchant()  # in Grenoble: not in Corse-du-Sud
    page = reverse("admin:wallet_beneficiary_grant", args=[people[0].pk])
    client = client_for(manager)
    form = {
        "program": program.pk,
        "amount": "50",
        "valid_from": "2027-09-01",
        "token": "t2",
        "grant": "1",
    }

    warned = client.post(page, form)
    assert "Aucun commerce agréé n\u2019accepte encore cette aide" in warned.content.decode()
    assert not Allocation.objects.exists()

    assert client.post(page, {**form, "warned": "1"}).status_code == 302
    assert Allocation.objects.get().beneficiary == people[0]


def test_the_grant_form_starts_from_the_program_s_default_validity(manager, funder, people):
    program = make_program(funder=funder, name="Aide hiver")
    program.default_valid_until = date(2027, 9, 30)
    program.save()
    page = client_for(manager).get(reverse("admin:wallet_beneficiary_grant", args=[people[0].pk]))
    form = page.context["form"]

    # one program to choose from: its validity is there; start defaults to today
    assert form.initial["valid_from"] == date(2027, 9, 1)
    assert form.initial["valid_until"] == date(2027, 9, 30)
    assert 'data-valid-until="2027-09-30"' in page.content.decode()


@pytest.mark.parametrize(
    ("start", "end", "days", "expected"),
    [
        (None, None, None, (date(2027, 9, 1), None)),
        (None, date(2027, 9, 30), None, (date(2027, 9, 1), date(2027, 9, 30))),
        (None, None, 30, (date(2027, 9, 1), date(2027, 9, 30))),
        (date(2027, 10, 1), None, 31, (date(2027, 10, 1), date(2027, 10, 31))),
        (date(2027, 1, 1), None, 10, (date(2027, 9, 1), date(2027, 9, 10))),  # a past start
    ],
)
def test_a_program_s_default_validity(funder, start, end, days, expected):
    program = make_program(funder=funder)
    program.default_valid_from, program.default_valid_until = start, end
    program.default_validity_days = days

    assert program.default_validity(date(2027, 9, 1)) == expected
    assert end_of_day(date(2027, 9, 30)).tzinfo == PARIS


def test_the_program_form_s_preview_tells_the_rules_and_the_shops(manager, agent):
    url = reverse("admin:funders_program_preview")
    data = {"allow_groups": ["food"], "departements": ["38"], "limit_per_payment": "30"}
    make_merchant()  # a grocery in Grenoble

    answer = client_for(manager).post(url, data).content.decode()

    assert "Isère" in answer and "30,00" in answer
    assert "1 commerce agréé accepterait cette aide" in answer
    assert client_for(manager).get(url).status_code == 405
    assert client_for(agent).post(url, data).status_code == 403
